import { DIRECT_IO_ALIGNMENT, type AlignedMemoryPool } from './aligned-memory.js';

/**
 * How a file writer turns incoming chunks into write calls of a batch each. The writer has at
 * most one batch in flight and gathers the next meanwhile; it takes a batch only once the one
 * before it has been written.
 */
export interface WriteBatches {
  /** Takes `chunk`'s bytes from `from` on; returns where it stopped (`chunk.length` unless a batch filled up). */
  add(chunk: Buffer, from: number): number;
  /** A batch is ready: it must be taken (and written) before more can be added. */
  readonly full: boolean;
  /** The gathered bytes as the buffers of one writev, leaving nothing gathered. `last`: the file ends here. */
  take(last: boolean): Buffer[];
  /** Called once no write uses the batches' memory any more. */
  dispose(): void;
}

/**
 * Page-cache writes: the chunks themselves, by reference, gathered until they reach a batch.
 * Every file-system call is a round trip through libuv's thread pool, so one writev per batch
 * rather than one write per socket read.
 */
export class GatheredBatches implements WriteBatches {
  readonly #batchBytes: number;
  #chunks: Buffer[] = [];
  #bytes = 0;

  constructor(batchBytes: number) {
    this.#batchBytes = batchBytes;
  }

  get full(): boolean {
    return this.#bytes >= this.#batchBytes;
  }

  add(chunk: Buffer, from: number): number {
    this.#chunks.push(from === 0 ? chunk : chunk.subarray(from));
    this.#bytes += chunk.length - from;
    return chunk.length;
  }

  take(): Buffer[] {
    const chunks = this.#chunks;
    this.#chunks = [];
    this.#bytes = 0;
    return chunks;
  }

  dispose(): void {
    this.#chunks = [];
  }
}

/**
 * O_DIRECT writes: chunks are copied into one of two aligned halves of a buffer; a full batch is
 * written while the other half fills. A batch is the whole half while this writer is the only
 * one at work, else the regular size (a large buffer's larger writes slowed 32 concurrent
 * uploads), decided as each batch starts; every size is a multiple of the alignment. The last
 * batch is padded with zeros to the alignment, and the writer truncates the file back to its
 * length. The copy costs far less than what it saves: the kernel no longer copies every byte
 * into the page cache and writes it back later.
 */
export class AlignedBatches implements WriteBatches {
  readonly #pool: AlignedMemoryPool;
  #memory: Buffer | null;
  readonly #halves: readonly [Buffer, Buffer];
  #filling = 0;
  #filled = 0;
  /** Bytes of the batch being gathered. */
  #batchBytes: number;
  /** Bytes at the start of the first batch that are the file's own (seedTail), not new ones. */
  #seeded = 0;

  constructor(pool: AlignedMemoryPool) {
    this.#pool = pool;
    const memory = pool.take();
    // The pool's buffers are whole WebAssembly pages (64 KiB): each half starts 4 KiB-aligned.
    const half = memory.length / 2;
    this.#memory = memory;
    this.#halves = [memory.subarray(0, half), memory.subarray(half)];
    this.#batchBytes = this.#nextBatchBytes();
  }

  #nextBatchBytes(): number {
    const half = (this.#halves[0] as Buffer).length;
    return this.#pool.outstanding > 1 ? Math.min(half, this.#pool.regularBytes / 2) : half;
  }

  get full(): boolean {
    return this.#filled === this.#batchBytes;
  }

  add(chunk: Buffer, from: number): number {
    const room = this.#batchBytes - this.#filled;
    const copied = chunk.copy(this.#halves[this.#filling] as Buffer, this.#filled, from, Math.min(chunk.length, from + room));
    this.#filled += copied;
    return from + copied;
  }

  /**
   * An append at an offset inside a block: the first batch starts at that block, with its
   * `length` bytes before the offset, which the caller reads from the file into the block
   * returned (one aligned block, so that a direct read can fill it). Before any add().
   */
  seedTail(length: number): Buffer {
    if (length <= 0 || length >= DIRECT_IO_ALIGNMENT) throw new RangeError(`a tail is 1 to ${DIRECT_IO_ALIGNMENT - 1} bytes`);
    this.#filled = length;
    this.#seeded = length;
    return (this.#halves[this.#filling] as Buffer).subarray(0, DIRECT_IO_ALIGNMENT);
  }

  take(last: boolean): Buffer[] {
    const half = this.#halves[this.#filling] as Buffer;
    // Only the file's own bytes, nothing new: there is nothing to write.
    if (this.#filled === this.#seeded && this.#seeded > 0) return [];
    this.#seeded = 0;
    let length = this.#filled;
    if (last) {
      length = Math.ceil(length / DIRECT_IO_ALIGNMENT) * DIRECT_IO_ALIGNMENT;
      // Zeros, not whatever an earlier file left in this memory, until the truncate cuts them.
      half.fill(0, this.#filled, length);
    }
    this.#filling = 1 - this.#filling;
    this.#filled = 0;
    this.#batchBytes = this.#nextBatchBytes();
    return length === 0 ? [] : [half.subarray(0, length)];
  }

  dispose(): void {
    if (this.#memory === null) return;
    this.#pool.release(this.#memory);
    this.#memory = null;
  }
}
