/**
 * Memory for O_DIRECT writes. The kernel takes such a write straight from the caller's memory,
 * so the address, the length and the file offset must all be multiples of the device's block
 * size, or the write fails with EINVAL. Node has no aligned allocator: a Buffer comes from
 * malloc, 16-byte aligned. The memory of a WebAssembly.Memory is page-aligned (V8 maps it on
 * pages of its own), so direct-write buffers are carved from one. Its pages are committed only
 * when first touched.
 */

/** What every direct write is a multiple of: a page, the largest logical block size of disks. */
export const DIRECT_IO_ALIGNMENT = 4096;

const WASM_PAGE_BYTES = 64 * 1024;

// A global of Node; TypeScript types it only in its DOM lib, which this project does not load.
declare const WebAssembly: {
  Memory: new (descriptor: { initial: number; maximum: number }) => { readonly buffer: ArrayBuffer };
};

/**
 * Aligned buffers of one size. A released buffer is kept for the next taker (up to `maxIdle` of
 * them), so that a run of small files does not fault in fresh pages for each one; the rest are
 * left to the garbage collector.
 */
export class AlignedMemoryPool {
  readonly bytes: number;
  readonly #maxIdle: number;
  readonly #idle: Buffer[] = [];

  constructor(bytes: number, maxIdle: number) {
    if (bytes % WASM_PAGE_BYTES !== 0) throw new RangeError(`aligned buffers come in multiples of ${WASM_PAGE_BYTES} bytes`);
    this.bytes = bytes;
    this.#maxIdle = maxIdle;
  }

  take(): Buffer {
    const pages = this.bytes / WASM_PAGE_BYTES;
    return this.#idle.pop() ?? Buffer.from(new WebAssembly.Memory({ initial: pages, maximum: pages }).buffer);
  }

  /** Only once no I/O uses `buffer` any more. */
  release(buffer: Buffer): void {
    if (this.#idle.length < this.#maxIdle) this.#idle.push(buffer);
  }
}
