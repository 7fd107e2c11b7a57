/**
 * The client side of every scenario, run as separate processes so that the client never
 * shares the measured server's event loop:
 * - uploads: `node` (helpers/http-client.js, generator in-process, one process for any number
 *   of parallel requests) or `curl` (helpers/generator.js writing into a FIFO per request,
 *   `curl -T <fifo>`, `-Z` for parallel requests);
 * - downloads: always curl into /dev/null.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { contentTypeOf, encodeSpec, type BodySpec } from './multipart-body.js';
import { spawnTracked, waitForExit, waitForLine } from './processes.js';

export type ClientKind = 'node' | 'curl';

export interface Response {
  readonly status: number;
  readonly body: string;
}

export interface TransferResult {
  /** Seconds the transfer took: for parallel requests, first start to last end. */
  readonly seconds: number;
  /** Epoch milliseconds (fractional) of the first start and the last end. */
  readonly startedAt: number;
  readonly endedAt: number;
  readonly responses: readonly Response[];
  /** What the scenario learnt besides the time (an origin's counters), printed under the table. */
  readonly note?: string;
}

export interface UploadOptions {
  readonly client: ClientKind;
  readonly buildDir: string;
  readonly tmpDir: string;
  readonly port: number;
  readonly path: string;
  readonly spec: BodySpec;
  readonly parallel: number;
  readonly timeoutMs: number;
  /** HTTPS, trusting this CA file; null: plain HTTP. */
  readonly caPath?: string | null;
}

export function epochMs(): number {
  return performance.timeOrigin + performance.now();
}

export function upload(o: UploadOptions): Promise<TransferResult> {
  return o.client === 'node' ? uploadWithNode(o) : uploadWithCurl(o);
}

async function uploadWithNode(o: UploadOptions): Promise<TransferResult> {
  const args = [join(o.buildDir, 'helpers', 'http-client.js'), '--port', String(o.port), '--path', o.path];
  args.push('--spec', encodeSpec(o.spec), '--parallel', String(o.parallel));
  if (o.caPath) args.push('--ca', o.caPath);
  const child = spawnTracked(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (c: Buffer) => (stdout += c.toString()));
  child.stderr?.on('data', (c: Buffer) => (stderr += c.toString()));
  const exit = await waitForExit(child, o.timeoutMs, 'node client');
  if (exit.code !== 0) throw new Error(`node client failed (${exit.code ?? exit.signal}): ${stderr.trim()}`);
  const parsed = JSON.parse(stdout) as { requests: { status: number; body: string; startedAt: number; endedAt: number }[] };
  const startedAt = Math.min(...parsed.requests.map((r) => r.startedAt));
  const endedAt = Math.max(...parsed.requests.map((r) => r.endedAt));
  return { seconds: (endedAt - startedAt) / 1000, startedAt, endedAt, responses: parsed.requests };
}

async function uploadWithCurl(o: UploadOptions): Promise<TransferResult> {
  const generatorJs = join(o.buildDir, 'helpers', 'generator.js');
  const spec = encodeSpec(o.spec);
  const curlArgs = ['-sS', '-X', 'POST', '-H', 'Expect:', '-H', `Content-Type: ${contentTypeOf(o.spec)}`];
  if (o.caPath) curlArgs.push('--cacert', o.caPath);
  // filename_effective is the -o file: it pairs each status with its body in a parallel run.
  curlArgs.push('-w', '%{http_code} %{time_total} %{filename_effective}\\n');
  if (o.parallel > 1) curlArgs.push('-Z', '--parallel-immediate', '--parallel-max', String(o.parallel));
  const generators = [];
  for (let i = 0; i < o.parallel; i += 1) {
    const fifo = join(o.tmpDir, `body-${i}.fifo`);
    execFileSync('mkfifo', [fifo]);
    const gen = spawnTracked(process.execPath, [generatorJs, '--spec', spec, '--out', fifo], { stdio: ['ignore', 'ignore', 'pipe'] });
    generators.push(gen);
    curlArgs.push('-T', fifo, '-o', join(o.tmpDir, `response-${i}.txt`), `${o.caPath ? 'https' : 'http'}://127.0.0.1:${o.port}${o.path}`);
  }
  // Every generator is up and blocked on opening its FIFO before curl (and the clock) starts.
  await Promise.all(generators.map((g) => waitForLine(g, 'ready', 30_000)));
  const startedAt = epochMs();
  const curl = spawnTracked('curl', curlArgs, { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  curl.stdout?.on('data', (c: Buffer) => (stdout += c.toString()));
  curl.stderr?.on('data', (c: Buffer) => (stderr += c.toString()));
  const exit = await waitForExit(curl, o.timeoutMs, 'curl');
  const endedAt = epochMs();
  await Promise.all(generators.map((g) => waitForExit(g, 10_000, 'generator')));
  if (exit.code !== 0) throw new Error(`curl failed (${exit.code ?? exit.signal}): ${stderr.trim()}`);
  const lines = stdout.trim().split('\n');
  const responses = lines.map((line) => {
    const [status, , file] = line.split(' ');
    return { status: Number(status), body: file === undefined ? '' : readFileSync(file, 'utf8') };
  });
  // One request: curl's own clock (time_total) leaves out its process start-up.
  const seconds = o.parallel === 1 ? Number(lines[0]?.split(' ')[1]) : (endedAt - startedAt) / 1000;
  return { seconds, startedAt: o.parallel === 1 ? endedAt - seconds * 1000 : startedAt, endedAt, responses };
}

export interface DownloadResult extends TransferResult {
  readonly bytes: number;
}

export async function download(url: string, timeoutMs: number): Promise<DownloadResult> {
  const startedAt = epochMs();
  const curl = spawnTracked('curl', ['-sS', '-o', '/dev/null', '-w', '%{http_code} %{time_total} %{size_download}', url], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  curl.stdout?.on('data', (c: Buffer) => (stdout += c.toString()));
  curl.stderr?.on('data', (c: Buffer) => (stderr += c.toString()));
  const exit = await waitForExit(curl, timeoutMs, 'curl download');
  const endedAt = epochMs();
  if (exit.code !== 0) throw new Error(`curl failed (${exit.code ?? exit.signal}): ${stderr.trim()}`);
  const [status, total, bytes] = stdout.trim().split(' ').map(Number);
  const seconds = total ?? (endedAt - startedAt) / 1000;
  return { seconds, startedAt: endedAt - seconds * 1000, endedAt, bytes: bytes ?? 0, responses: [{ status: status ?? 0, body: '' }] };
}

/** `POST /fetch {"url"}` with curl: the server fetches `originUrl` and stores it; one JSON answer. */
export async function fetchToStore(port: number, originUrl: string, tmpDir: string, timeoutMs: number): Promise<TransferResult> {
  const out = join(tmpDir, 'fetch-answer.json');
  const curl = spawnTracked(
    'curl',
    ['-sS', '-X', 'POST', '-H', 'Content-Type: application/json', '--data-binary', JSON.stringify({ url: originUrl }), '-o', out, '-w', '%{http_code} %{time_total}', `http://127.0.0.1:${port}/fetch`],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let stdout = '';
  let stderr = '';
  curl.stdout?.on('data', (c: Buffer) => (stdout += c.toString()));
  curl.stderr?.on('data', (c: Buffer) => (stderr += c.toString()));
  const exit = await waitForExit(curl, timeoutMs, 'curl POST /fetch');
  const endedAt = epochMs();
  if (exit.code !== 0) throw new Error(`curl failed (${exit.code ?? exit.signal}): ${stderr.trim()}`);
  const [status, total] = stdout.trim().split(' ').map(Number);
  const seconds = total ?? 0;
  return { seconds, startedAt: endedAt - seconds * 1000, endedAt, responses: [{ status: status ?? 0, body: readFileSync(out, 'utf8') }] };
}
