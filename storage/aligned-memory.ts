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

/** The sizes an AlignedMemoryPool hands out. */
export interface AlignedSizes {
  /** What every taker gets when `largeBytes` are all out. */
  readonly bytes: number;
  /** What a taker gets while fewer than `largeAtOnce` of them are out. */
  readonly largeBytes: number;
  readonly largeAtOnce: number;
}

/**
 * Aligned buffers in two sizes: a large one while fewer than `largeAtOnce` are out, else the
 * regular one. A lone big upload then writes in fewer, larger calls (a direct write costs the
 * kernel per call, not only per byte: 1 GiB of O_DIRECT writes from a bare node script took
 * 0.22 system CPU-s in 512 KiB writes, 0.11 in 2 MiB ones),
 * while many uploads at once stay within the regular size's memory. A released buffer is kept
 * for the next taker (up to `maxIdle` of each size), so that a run of small files does not
 * fault in fresh pages for each one; the rest are left to the garbage collector. Pages are
 * committed only when written, so a small file in a large buffer costs no more than in a
 * regular one.
 */
export class AlignedMemoryPool {
  readonly #sizes: AlignedSizes;
  readonly #maxIdle: number;
  readonly #idle: Buffer[] = [];
  readonly #idleLarge: Buffer[] = [];
  #largeOut = 0;
  #out = 0;

  constructor(sizes: AlignedSizes, maxIdle: number) {
    for (const bytes of [sizes.bytes, sizes.largeBytes]) {
      if (bytes % WASM_PAGE_BYTES !== 0) throw new RangeError(`aligned buffers come in multiples of ${WASM_PAGE_BYTES} bytes`);
    }
    this.#sizes = sizes;
    this.#maxIdle = maxIdle;
  }

  /** Buffers taken and not yet released: the writers at work. */
  get outstanding(): number {
    return this.#out;
  }

  /** The regular size, what a taker should use of a large buffer while others are at work too. */
  get regularBytes(): number {
    return this.#sizes.bytes;
  }

  take(): Buffer {
    this.#out += 1;
    if (this.#largeOut < this.#sizes.largeAtOnce) {
      this.#largeOut += 1;
      return this.#idleLarge.pop() ?? allocate(this.#sizes.largeBytes);
    }
    return this.#idle.pop() ?? allocate(this.#sizes.bytes);
  }

  /** Only once no I/O uses `buffer` any more. */
  release(buffer: Buffer): void {
    const large = buffer.length === this.#sizes.largeBytes && buffer.length !== this.#sizes.bytes;
    this.#out -= 1;
    if (large) this.#largeOut -= 1;
    const idle = large ? this.#idleLarge : this.#idle;
    if (idle.length < this.#maxIdle) idle.push(buffer);
  }
}

function allocate(bytes: number): Buffer {
  const pages = bytes / WASM_PAGE_BYTES;
  return Buffer.from(new WebAssembly.Memory({ initial: pages, maximum: pages }).buffer);
}
