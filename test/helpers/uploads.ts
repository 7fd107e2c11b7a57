/**
 * Shared by the resumable-upload store tests: a deterministic pattern of bytes (the same in a
 * child process and in the test), bodies cut into uneven chunks, bodies that stall or fail.
 */
import { createCipheriv, createHash } from 'node:crypto';
import type { NewUpload } from '../../storage/uploads.js';

export const meta = { field: null, filename: 'weights.bin', contentType: 'application/octet-stream' };

export function newUpload(length: number | null, extra: Partial<NewUpload> = {}): NewUpload {
  return { length, meta, metadata: { note: 'kept' }, partial: false, ...extra };
}

/** `size` bytes that depend only on `seed` (AES-CTR of zeros): fast, and the same in every process. */
export function pattern(size: number, seed = 1): Buffer {
  const key = createHash('sha256').update(`key ${seed}`).digest();
  return createCipheriv('aes-256-ctr', key, Buffer.alloc(16)).update(Buffer.alloc(size));
}

export function sha256(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

/** Chunks of awkward sizes (1 byte to past a write batch), cut from `data`. */
export function* unevenChunks(data: Buffer): Generator<Buffer> {
  const sizes = [1, 7, 4096, 65_536, 1000, 200 * 1024, 3, 512 * 1024 - 1, 2, 65_535, 700_001];
  for (let at = 0, i = 0; at < data.length; i += 1) {
    const size = sizes[i % sizes.length] as number;
    yield data.subarray(at, at + size);
    at += size;
  }
}

/** A body that yields `data` and then neither ends nor fails: a dead connection the server has not noticed. */
export async function* stuckAfter(data: Buffer, stuck: Promise<void> = new Promise(() => {})): AsyncGenerator<Buffer> {
  yield data;
  await stuck;
}

/** A body that yields `data` and then fails with `error` (a client gone mid-PATCH). */
export async function* failingAfter(data: Buffer, error: Error): AsyncGenerator<Buffer> {
  yield data;
  await new Promise((r) => setImmediate(r));
  throw error;
}
