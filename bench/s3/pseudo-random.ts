import { createCipheriv, createHash } from 'node:crypto';

/** Bytes produced per step: big enough for throughput, small enough to never matter for RSS. */
export const BLOCK_BYTES = 1024 * 1024;

/**
 * `size` pseudo-random bytes in blocks of BLOCK_BYTES: the AES-128-CTR keystream of `seed`
 * (AES-NI makes it several GB/s; incompressible and never repeating, unlike a repeated block).
 * The same seed always gives the same bytes, so several runs upload identical data.
 */
export function* pseudoRandomBlocks(size: number, seed: string): Generator<Buffer> {
  const key = createHash('sha256').update(seed).digest();
  const cipher = createCipheriv('aes-128-ctr', key.subarray(0, 16), key.subarray(16, 32));
  const zeros = Buffer.alloc(BLOCK_BYTES);
  for (let left = size; left > 0; left -= BLOCK_BYTES) {
    yield cipher.update(left >= BLOCK_BYTES ? zeros : zeros.subarray(0, left));
  }
}

/** sha256 of what `pseudoRandomBlocks(size, seed)` yields, for checking what was stored. */
export function pseudoRandomSha256(size: number, seed: string): string {
  const hash = createHash('sha256');
  for (const block of pseudoRandomBlocks(size, seed)) hash.update(block);
  return hash.digest('hex');
}
