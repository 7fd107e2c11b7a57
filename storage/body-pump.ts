import type { Hash } from 'node:crypto';
import { Readable, type Writable } from 'node:stream';

/** Why a pump stopped. */
export type PumpEnd =
  /** The body ended. */
  | { readonly kind: 'ended' }
  /** The body failed, or a signal aborted: `error` is its error or the signal's reason. */
  | { readonly kind: 'cut'; readonly error: unknown }
  /** The body went past the limit; the chunk that would have passed it was not taken. */
  | { readonly kind: 'over' }
  /** The writer failed (a write error): `error` is its error. */
  | { readonly kind: 'writer'; readonly error: unknown };

/**
 * How long a body taken over goes on being read: only while its bytes keep coming at once. A
 * dead connection (the case a takeover is for) delivers nothing and stops within `idleMs`; a
 * connection cut by the network still has what reached the kernel before the cut (megabytes of
 * socket buffers on a fast link), which is read and kept instead of re-sent.
 */
export interface TakeoverDrain {
  readonly signal: AbortSignal;
  /** Stop when no chunk came for this long (time spent waiting for the writer not counted). */
  readonly idleMs: number;
  /** Stop this long after the takeover, whatever comes. */
  readonly maxMs: number;
  /** Stop after this many more bytes. */
  readonly maxBytes: number;
}

export interface PumpOptions {
  /** Bytes the body may carry; one more and the pump stops with `over`. */
  readonly limit: number;
  /** Any of them aborting stops the pump at once, whatever the body is doing. */
  readonly signals: ReadonlyArray<AbortSignal | undefined>;
  /** Its signal aborting stops the pump once the body has nothing more at hand (see TakeoverDrain). */
  readonly takeover?: TakeoverDrain;
  /** Updated with every byte handed to the writer (the tus checksum of this body). */
  readonly digest: Hash | null;
  /** Told the length of every chunk handed to the writer, as it is handed on. */
  readonly onChunk?: (bytes: number) => void;
}

export interface PumpResult {
  readonly end: PumpEnd;
  /** Bytes handed to the writer. */
  readonly bytes: number;
}

/**
 * Feeds `body` into `writer` by the body's `'data'` events, pausing the body while the writer
 * says wait, until the body ends, fails, passes the limit, the writer fails, or a signal aborts.
 *
 * Events, not async iteration: a promise per chunk (and `read()` gathering the buffered chunks
 * into one) cost a 1 GiB upload about a quarter of a CPU-second more, the thread of the hash
 * and the socket (bench:ab, issue 18).
 *
 * It never waits on the body once a signal has aborted (a body that delivers nothing, a dead
 * socket, cannot hold it; a takeover waits at most its drain's bounds), and never ends or
 * destroys either side: a stopped body is left paused with the rest of its bytes unread (the
 * error answer's path discards them), ending the writer is the caller's (every byte taken so
 * far is then written). An async iterable is read through a Readable of its own, which is
 * destroyed when the pump stops early (the iterable's `return()`). Resolves with why it
 * stopped and the bytes the writer took; never rejects.
 */
export function pumpBody(source: Readable | AsyncIterable<Buffer>, writer: Writable, options: PumpOptions): Promise<PumpResult> {
  const owned = !(source instanceof Readable);
  const body = source instanceof Readable ? source : Readable.from(source, { objectMode: false });
  const { limit, digest, onChunk, takeover } = options;
  const signals = options.signals.filter((s): s is AbortSignal => s !== undefined);
  return new Promise<PumpResult>((resolve) => {
    let bytes = 0;
    let settled = false;
    let waitingForWriter = false;
    // The takeover drain: when it started, the bytes by then, and its two clocks.
    let takenOverAt: number | null = null;
    let bytesAtTakeover = 0;
    let idleTimer: NodeJS.Timeout | null = null;
    let maxTimer: NodeJS.Timeout | null = null;

    const stop = (end: PumpEnd): void => {
      if (settled) return;
      settled = true;
      body.off('data', onData);
      body.off('end', onEnd);
      body.off('error', onBodyError);
      body.off('close', onBodyClose);
      writer.off('drain', onDrain);
      writer.off('error', onWriterError);
      writer.off('close', onWriterClose);
      for (const s of signals) s.removeEventListener('abort', onAbort);
      takeover?.signal.removeEventListener('abort', onTakeover);
      if (idleTimer !== null) clearTimeout(idleTimer);
      if (maxTimer !== null) clearTimeout(maxTimer);
      if (end.kind !== 'ended') {
        body.pause();
        if (owned) body.destroy();
      }
      resolve({ end, bytes });
    };
    const cutByTakeover = (): void => stop({ kind: 'cut', error: (takeover as TakeoverDrain).signal.reason });
    const armIdle = (): void => {
      if (idleTimer !== null) clearTimeout(idleTimer);
      idleTimer = setTimeout(cutByTakeover, (takeover as TakeoverDrain).idleMs);
    };

    function onData(value: unknown): void {
      const chunk = toBuffer(value);
      if (chunk === null) return stop({ kind: 'cut', error: new TypeError('a body yields Buffers') });
      if (bytes + chunk.length > limit) return stop({ kind: 'over' });
      digest?.update(chunk);
      bytes += chunk.length;
      onChunk?.(chunk.length);
      const more = writer.write(chunk);
      if (settled) return;
      if (takenOverAt !== null && bytes - bytesAtTakeover >= (takeover as TakeoverDrain).maxBytes) return cutByTakeover();
      if (!more) {
        waitingForWriter = true;
        body.pause();
        // Waiting for our own writer is not the body going quiet.
        if (idleTimer !== null) clearTimeout(idleTimer);
        idleTimer = null;
      } else if (takenOverAt !== null) {
        armIdle();
      }
    }
    function onDrain(): void {
      if (!waitingForWriter) return;
      waitingForWriter = false;
      if (takenOverAt !== null) armIdle();
      body.resume();
    }
    function onEnd(): void {
      stop({ kind: 'ended' });
    }
    function onBodyError(err: unknown): void {
      stop({ kind: 'cut', error: err });
    }
    function onBodyClose(): void {
      // Closed before its end without an error: destroyed under us (what async iteration
      // reports as a premature close).
      stop({ kind: 'cut', error: body.errored ?? prematureClose() });
    }
    function onWriterError(err: unknown): void {
      stop({ kind: 'writer', error: err });
    }
    function onWriterClose(): void {
      stop({ kind: 'writer', error: writer.errored ?? new Error('file writer closed') });
    }
    function onAbort(event: Event): void {
      stop({ kind: 'cut', error: (event.target as AbortSignal).reason });
    }
    function onTakeover(): void {
      if (settled || takenOverAt !== null) return;
      takenOverAt = Date.now();
      bytesAtTakeover = bytes;
      const drain = takeover as TakeoverDrain;
      maxTimer = setTimeout(cutByTakeover, drain.maxMs);
      if (!waitingForWriter) armIdle();
    }

    // Whatever has already happened decides before any event can.
    if (writer.errored !== null && writer.errored !== undefined) return stop({ kind: 'writer', error: writer.errored });
    if (writer.destroyed) return stop({ kind: 'writer', error: new Error('file writer closed') });
    const aborted = signals.find((s) => s.aborted);
    if (aborted !== undefined) return stop({ kind: 'cut', error: aborted.reason });
    if (body.readableEnded) return stop({ kind: 'ended' });
    if (body.destroyed) return stop({ kind: 'cut', error: body.errored ?? prematureClose() });

    for (const s of signals) s.addEventListener('abort', onAbort, { once: true });
    writer.on('error', onWriterError);
    writer.on('close', onWriterClose);
    writer.on('drain', onDrain);
    body.on('end', onEnd);
    body.on('error', onBodyError);
    body.on('close', onBodyClose);
    if (takeover !== undefined) {
      if (takeover.signal.aborted) onTakeover();
      else takeover.signal.addEventListener('abort', onTakeover, { once: true });
    }
    body.on('data', onData);
    // A body paused before (by an earlier reader) stays paused by `on('data')`.
    body.resume();
  });
}

function prematureClose(): Error {
  return Object.assign(new Error('Premature close'), { code: 'ERR_STREAM_PREMATURE_CLOSE' });
}

function toBuffer(value: unknown): Buffer | null {
  if (Buffer.isBuffer(value)) return value;
  if (value instanceof Uint8Array) return Buffer.from(value.buffer, value.byteOffset, value.byteLength);
  if (typeof value === 'string') return Buffer.from(value);
  return null;
}
