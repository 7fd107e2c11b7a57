/**
 * Cheap pseudo-random bytes for the benchmarks. Fresh random bytes per MiB would make the
 * generator (not the server) the bottleneck, so random blocks are made once and cycled.
 *
 * Two flavours, because of who holds the buffer afterwards:
 * - PatternSource stamps a counter into its one block before each use, so consecutive blocks
 *   differ; only for synchronous writers (writeSync) that are done with the bytes on return.
 * - RingSource cycles a few distinct blocks that are never modified, for asynchronous writers
 *   (socket.write) that may still hold a buffer queued when the next one is taken.
 */
import { randomFillSync } from 'node:crypto';

/** Size of one cycled block; also the write size of every generator. */
export const BLOCK_BYTES = 1024 * 1024;

export interface BlockSource {
  /** The next `bytes` (at most one block) of the stream. */
  next(bytes: number): Buffer;
}

function randomBlock(bytes: number): Buffer {
  // allocUnsafeSlow: a block of its own, never a slice of Node's shared pool.
  return randomFillSync(Buffer.allocUnsafeSlow(bytes));
}

export class PatternSource implements BlockSource {
  private readonly block = randomBlock(BLOCK_BYTES);
  private counter = 0;

  /** The view aliases the block: write it synchronously before calling again. */
  next(bytes: number): Buffer {
    this.counter = (this.counter + 1) >>> 0;
    // A moving offset, so that no position stays constant from block to block.
    this.block.writeUInt32LE(this.counter, (this.counter * 4099) % (this.block.length - 4));
    return this.block.subarray(0, Math.min(bytes, this.block.length));
  }
}

/** Eight blocks: more than a socket ever holds queued at once with 1 MiB writes. */
const RING_BLOCKS = 8;

export class RingSource implements BlockSource {
  private static shared: readonly Buffer[] | null = null;
  private readonly blocks: readonly Buffer[];
  private index = 0;

  constructor() {
    // Shared by every request of a process: the blocks are never written after creation.
    RingSource.shared ??= Array.from({ length: RING_BLOCKS }, () => randomBlock(BLOCK_BYTES));
    this.blocks = RingSource.shared;
  }

  next(bytes: number): Buffer {
    const block = this.blocks[this.index % this.blocks.length] as Buffer;
    this.index += 1;
    return bytes >= block.length ? block : block.subarray(0, bytes);
  }
}
