/**
 * Blocking writes to a pipe or FIFO, for the generator processes. A generator has nothing else
 * to do, so writeSync (one syscall per MiB, no promise, no event-loop turn) is the cheapest way
 * to keep the pipe full; small pieces are gathered into one staging block first so that 2,000
 * tiny parts do not cost 6,000 syscalls.
 */
import { writeSync } from 'node:fs';
import { BLOCK_BYTES } from './pattern.js';

/** A reader that takes nothing for this long means the other side is gone: give up. */
const STALL_LIMIT_MS = 60_000;

export class SyncWriter {
  private readonly staging = Buffer.allocUnsafeSlow(BLOCK_BYTES);
  private used = 0;
  written = 0;

  constructor(private readonly fd: number) {}


  /** `data` may alias a buffer the caller reuses: it is copied or written before returning. */
  write(data: Buffer): void {
    if (data.length >= this.staging.length / 4) {
      this.flush();
      this.writeFully(data);
      return;
    }
    if (this.used + data.length > this.staging.length) this.flush();
    data.copy(this.staging, this.used);
    this.used += data.length;
  }

  flush(): void {
    if (this.used === 0) return;
    this.writeFully(this.staging.subarray(0, this.used));
    this.used = 0;
  }

  private writeFully(data: Buffer): void {
    let offset = 0;
    let stalledSince = 0;
    while (offset < data.length) {
      let n = 0;
      try {
        n = writeSync(this.fd, data, offset, data.length - offset);
      } catch (err) {
        // A non-blocking descriptor (a socketpair from child_process): wait a little and retry.
        if ((err as NodeJS.ErrnoException).code !== 'EAGAIN') throw err;
      }
      if (n > 0) {
        offset += n;
        stalledSince = 0;
        continue;
      }
      const now = Date.now();
      if (stalledSince === 0) stalledSince = now;
      else if (now - stalledSince > STALL_LIMIT_MS) throw new Error('generator: the reader stopped reading');
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 1);
    }
    this.written += data.length;
  }
}
