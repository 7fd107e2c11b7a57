/**
 * The body generator of the curl client: writes one request body (raw or multipart, described
 * by a BodySpec) to a FIFO that curl uploads from (`curl -T <fifo>`), in 1 MiB blocks, never
 * holding more than one block.
 *
 * It says `ready` on stderr *before* opening the FIFO: the open blocks until curl opens the
 * other end, so the runner starts the stopwatch with curl and Node's start-up stays out of it.
 *
 *   node generator.js --spec <base64url JSON> --out <fifo path | ->
 */
import { closeSync, openSync } from 'node:fs';
import { PatternSource } from '../lib/pattern.js';
import { bodyPieces, decodeSpec } from '../lib/multipart-body.js';
import { SyncWriter } from '../lib/sync-writer.js';

function argValue(name: string): string {
  const i = process.argv.indexOf(name);
  const v = i === -1 ? undefined : process.argv[i + 1];
  if (v === undefined) throw new Error(`generator: ${name} is required`);
  return v;
}

function main(): void {
  const spec = decodeSpec(argValue('--spec'));
  const target = argValue('--out');
  // PatternSource reuses one block: safe here because every write is synchronous.
  const source = new PatternSource();
  process.stderr.write('ready\n');
  const fd = target === '-' ? 1 : openSync(target, 'w');
  const out = new SyncWriter(fd);
  for (const piece of bodyPieces(spec, source)) out.write(piece);
  out.flush();
  if (fd !== 1) closeSync(fd);
}

try {
  main();
} catch (err) {
  // EPIPE: the client went away (the runner kills it on failure); say so and exit non-zero.
  process.stderr.write(`generator: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exitCode = 1;
}
