/**
 * curl as a test client: every response it read (interim 1xx ones included, as `curl -i` prints
 * them), parsed into status, headers and the final body.
 */
import { execFile } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import type { IncomingHttpHeaders } from 'node:http';
import { join } from 'node:path';

export interface CurlResponse {
  readonly status: number;
  /** Lower-case names; a repeated field's values joined with ", ". */
  readonly headers: IncomingHttpHeaders & Record<string, string | undefined>;
}

export interface CurlResult extends CurlResponse {
  /** The interim (1xx) responses before the final one, in order. */
  readonly interim: readonly CurlResponse[];
  readonly body: Buffer;
  readonly stderr: string;
  /** curl's exit code (0 unless the transfer failed). */
  readonly exitCode: number;
}

/** Runs `curl -sS -i <args>` (add `-X`, `-H`, `--data-binary` ...) and parses what came back. */
export function curl(args: readonly string[]): Promise<CurlResult> {
  return new Promise((resolve, reject) => {
    execFile('curl', ['-sS', '-i', '--max-time', '60', ...args], { encoding: 'buffer', maxBuffer: 256 * 1024 * 1024 }, (err, stdout, stderr) => {
      const exitCode = err === null ? 0 : typeof (err as { code?: unknown }).code === 'number' ? ((err as { code: number }).code) : -1;
      if (err !== null && exitCode === -1) return reject(err);
      try {
        resolve({ ...parse(stdout), stderr: stderr.toString('utf8'), exitCode });
      } catch (parseErr) {
        reject(parseErr);
      }
    });
  });
}

function parse(out: Buffer): Omit<CurlResult, 'stderr' | 'exitCode'> {
  const blocks: CurlResponse[] = [];
  let at = 0;
  for (;;) {
    const end = out.indexOf('\r\n\r\n', at, 'latin1');
    if (end === -1) throw new Error(`no complete response head in curl output: ${out.toString('latin1').slice(at, at + 200)}`);
    const lines = out.toString('latin1', at, end).split('\r\n');
    const status = Number(/^HTTP\/[\d.]+ (\d{3})/.exec(lines[0] ?? '')?.[1]);
    const headers: Record<string, string> = {};
    for (const line of lines.slice(1)) {
      const colon = line.indexOf(':');
      const name = line.slice(0, colon).trim().toLowerCase();
      const value = line.slice(colon + 1).trim();
      headers[name] = headers[name] === undefined ? value : `${headers[name]}, ${value}`;
    }
    blocks.push({ status, headers });
    at = end + 4;
    if (status >= 200 || status === 0) break;
  }
  const final = blocks[blocks.length - 1] as CurlResponse;
  return { status: final.status, headers: final.headers, interim: blocks.slice(0, -1), body: out.subarray(at) };
}

/** Writes `bytes` to `dir/name` for `curl --data-binary @file`; returns the path. */
export async function scratchFile(dir: string, name: string, bytes: Buffer): Promise<string> {
  const path = join(dir, name);
  await writeFile(path, bytes);
  return path;
}

/** The final body, parsed as a JSON object. */
export function jsonBody(res: CurlResult): Record<string, unknown> {
  return JSON.parse(res.body.toString('utf8')) as Record<string, unknown>;
}
