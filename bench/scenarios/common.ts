/** Bodies and answer checks shared by the scenarios. */
import { upload, type TransferResult } from '../lib/clients.js';
import { bodyLength, makeBoundary, type BodySpec } from '../lib/multipart-body.js';
import type { TransferArgs } from '../lib/types.js';

export const MiB = 1024 * 1024;
export const GiB = 1024 * MiB;

/** "One large file plus fields": two fields before the file, one after, as a form would send. */
export function oneFileSpec(fileBytes: number): BodySpec {
  return {
    kind: 'multipart',
    files: 1,
    fileBytes,
    fieldsBefore: [
      { name: 'title', value: 'sluice benchmark upload' },
      { name: 'description', value: 'generated pseudo-random bytes '.repeat(8) },
    ],
    fieldsAfter: [{ name: 'note', value: 'the last field comes after the file' }],
    boundary: makeBoundary(),
  };
}

export function manyFilesSpec(files: number, fileBytes: number): BodySpec {
  return { kind: 'multipart', files, fileBytes, fieldsBefore: [], fieldsAfter: [], boundary: makeBoundary() };
}

export function rawSpec(bytes: number): BodySpec {
  return { kind: 'raw', files: 1, fileBytes: bytes, fieldsBefore: [], fieldsAfter: [], boundary: '' };
}

/** Uploads `spec` (once, or `parallel` times at once) to the measured server; over HTTPS when `caPath` is given. */
export function uploadTo(path: string, spec: BodySpec, parallel = 1, caPath: string | null = null): (a: TransferArgs) => Promise<TransferResult> {
  return (a) =>
    upload({
      caPath,
      client: a.ctx.client,
      buildDir: a.ctx.buildDir,
      tmpDir: a.tmpDir,
      port: a.port,
      path,
      spec,
      parallel,
      timeoutMs: a.ctx.timeoutFor(bodyLength(spec) * parallel),
    });
}

function parseJson(body: string): unknown {
  try {
    return JSON.parse(body);
  } catch {
    throw new Error(`answer is not JSON: ${body.slice(0, 300)}`);
  }
}

/** Every answer is `status` with `{files:[{size}]}` listing `count` files of `size` bytes. */
export function expectStored(result: TransferResult, status: number, count: number, size: number, requests = 1): void {
  if (result.responses.length !== requests) throw new Error(`expected ${requests} answers, got ${result.responses.length}`);
  for (const r of result.responses) {
    if (r.status !== status) throw new Error(`status ${r.status}, expected ${status}: ${r.body.slice(0, 300)}`);
    const files = (parseJson(r.body) as { files?: { size?: unknown }[] }).files ?? [];
    if (files.length !== count) throw new Error(`${files.length} files stored, expected ${count}`);
    const wrong = files.find((f) => f.size !== size);
    if (wrong !== undefined) throw new Error(`a file of ${String(wrong.size)} bytes stored, expected ${size}`);
  }
}

/** The destination (helpers/sink.js) saw at least `minBytes`, and its 200 came back. */
export function expectDelivered(result: TransferResult, minBytes: number): void {
  const r = result.responses[0];
  if (r === undefined || r.status !== 200) throw new Error(`status ${r?.status}, expected 200: ${r?.body.slice(0, 300)}`);
  const bytes = (parseJson(r.body) as { bytes?: unknown }).bytes;
  if (typeof bytes !== 'number' || bytes < minBytes) throw new Error(`destination got ${String(bytes)} bytes, expected at least ${minBytes}`);
}

/** A download (curl -o /dev/null) answered 200 with exactly `bytes` bytes. */
export function expectDownloaded(result: TransferResult, bytes: number): void {
  const got = (result as { bytes?: number }).bytes;
  const status = result.responses[0]?.status;
  if (status !== 200 || got !== bytes) throw new Error(`status ${status}, ${got} of ${bytes} bytes`);
}

export { bodyLength };
