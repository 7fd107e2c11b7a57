/**
 * The node client: uploads generated bodies with node:http, the generator in the same process
 * writing straight to the socket (no pipe between a generator and curl, which on 2 cores costs
 * the measured server a large share of the CPU; see bench/README.md). `--parallel N` sends N
 * such requests at once, each with its own body stream.
 *
 *   node http-client.js --port P --path /upload --spec <base64url JSON> [--parallel N] [--ca ca.pem]
 *
 * With `--ca`, the request goes over HTTPS (node:https, the server's certificate verified
 * against that CA), as a real client would send it.
 *
 * Prints one JSON line: { requests: [{ status, body, startedAt, endedAt }] } with epoch times
 * in ms (fractional), measured in-process so that Node's start-up is not counted.
 */
import { readFileSync } from 'node:fs';
import { request, type ClientRequest, type RequestOptions } from 'node:http';
import { request as requestTls } from 'node:https';
import { bodyLength, bodyPieces, contentTypeOf, decodeSpec, type BodySpec } from '../lib/multipart-body.js';
import { drainOrClose } from '../lib/drain.js';
import { RingSource } from '../lib/pattern.js';

export interface ClientRequestResult {
  readonly status: number;
  readonly body: string;
  readonly startedAt: number;
  readonly endedAt: number;
}

function argValue(name: string, fallback?: string): string {
  const i = process.argv.indexOf(name);
  const v = i === -1 ? fallback : process.argv[i + 1];
  if (v === undefined) throw new Error(`http-client: ${name} is required`);
  return v;
}

function epochMs(): number {
  return performance.timeOrigin + performance.now();
}

async function writeBody(req: ClientRequest, spec: BodySpec): Promise<void> {
  for (const piece of bodyPieces(spec, new RingSource())) {
    if (req.destroyed) return;
    if (!req.write(piece)) await drainOrClose(req);
  }
  req.end();
}

async function upload(port: number, path: string, spec: BodySpec, ca: Buffer | null): Promise<ClientRequestResult> {
  const startedAt = epochMs();
  const options: RequestOptions = {
    host: '127.0.0.1',
    port,
    path,
    method: 'POST',
    // A known length, as browsers and curl -F send for a file: no chunked framing to pay for.
    headers: { 'content-type': contentTypeOf(spec), 'content-length': String(bodyLength(spec)) },
    agent: false,
  };
  const req = ca === null ? request(options) : requestTls({ ...options, ca });
  const answered = new Promise<{ status: number; body: string }>((resolve, reject) => {
    req.once('error', reject);
    req.once('response', (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.once('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
      res.once('error', reject);
    });
  });
  // An early answer (an error) ends the upload; the answer is what gets reported.
  writeBody(req, spec).catch(() => req.destroy());
  const { status, body } = await answered;
  return { status, body, startedAt, endedAt: epochMs() };
}

async function main(): Promise<void> {
  const port = Number(argValue('--port'));
  const path = argValue('--path');
  const spec = decodeSpec(argValue('--spec'));
  const parallel = Number(argValue('--parallel', '1'));
  const caPath = argValue('--ca', '');
  const ca = caPath === '' ? null : readFileSync(caPath);
  new RingSource(); // make the random blocks before the clock starts
  const requests = await Promise.all(Array.from({ length: parallel }, () => upload(port, path, spec, ca)));
  process.stdout.write(`${JSON.stringify({ requests })}\n`);
}

main().catch((err: unknown) => {
  process.stderr.write(`http-client: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exitCode = 1;
});
