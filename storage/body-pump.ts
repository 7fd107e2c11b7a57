import type { Hash } from 'node:crypto';
import type { Readable, Writable } from 'node:stream';

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
  /** Stop when no chunk came for this long. */
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
}

const STOPPED = Symbol('stopped');
const IDLE = Symbol('idle');

/**
 * Feeds `body` into `writer` chunk by chunk, waiting for `'drain'` when the writer says so, until
 * the body ends, fails, passes the limit, the writer fails, or a signal aborts. It never waits on
 * the body once a signal has aborted (a body that delivers nothing, a dead socket, cannot hold
 * it; a takeover waits at most its drain's bounds), and never ends or destroys either side:
 * ending the writer (every byte taken so far is then written) is the caller's, and so is the
 * rest of the body. Resolves with why it stopped and the bytes the writer took; never rejects.
 */
export async function pumpBody(body: Readable | AsyncIterable<Buffer>, writer: Writable, options: PumpOptions): Promise<{ end: PumpEnd; bytes: number }> {
  const it = (body as AsyncIterable<unknown>)[Symbol.asyncIterator]();
  let bytes = 0;
  let abortReason: unknown = null;
  let writerError: unknown = null;
  // What wakes the wait in progress. A fresh promise per wait, never one for the whole pump:
  // every Promise.race against a promise that never settles leaves a reaction on it, and each
  // reaction holds its race's result, a chunk: the body would stay in memory until the end.
  let wake: (() => void) | null = null;
  const woken = (): Promise<typeof STOPPED> => new Promise((resolve) => (wake = () => resolve(STOPPED)));
  const onAbort = (event: Event): void => {
    abortReason ??= (event.target as AbortSignal).reason;
    wake?.();
  };
  const onWriterError = (err: Error): void => {
    writerError ??= err;
    wake?.();
  };
  const signals = options.signals.filter((s): s is AbortSignal => s !== undefined);
  for (const s of signals) {
    if (s.aborted) abortReason ??= s.reason;
    else s.addEventListener('abort', onAbort, { once: true });
  }
  // The takeover: from then on every read is raced against the drain's bounds.
  const drain = options.takeover;
  let takenOverAt: number | null = drain?.signal.aborted === true ? Date.now() : null;
  let bytesAtTakeover = takenOverAt === null ? 0 : bytes;
  const markTakeover = (): void => {
    takenOverAt ??= Date.now();
    bytesAtTakeover = bytes;
    wake?.();
  };
  if (drain !== undefined && takenOverAt === null) drain.signal.addEventListener('abort', markTakeover, { once: true });
  writer.on('error', onWriterError);
  const stop = (end: PumpEnd): { end: PumpEnd; bytes: number } => {
    // The body is left as it is: a pending read may still settle, and is ignored.
    void Promise.resolve(it.return?.()).catch(() => {});
    return { end, bytes };
  };
  // A read asked for and not yet answered: asked again it would lose a chunk, so it is kept.
  let pending: Promise<IteratorResult<unknown>> | null = null;
  try {
    for (;;) {
      if (writerError !== null) return stop({ kind: 'writer', error: writerError });
      if (abortReason !== null) return stop({ kind: 'cut', error: abortReason });
      let idle: NodeJS.Timeout | null = null;
      const waits: Array<Promise<unknown>> = [woken()];
      if (takenOverAt !== null && drain !== undefined) {
        const left = Math.min(drain.idleMs, takenOverAt + drain.maxMs - Date.now());
        if (left <= 0 || bytes - bytesAtTakeover >= drain.maxBytes) return stop({ kind: 'cut', error: drain.signal.reason });
        waits.push(new Promise((resolve) => (idle = setTimeout(() => resolve(IDLE), left))));
      }
      if (pending === null) {
        pending = it.next();
        pending.catch(() => {});
      }
      let step: unknown;
      try {
        step = await Promise.race([pending, ...waits]);
      } catch (err) {
        return stop({ kind: 'cut', error: err });
      } finally {
        if (idle !== null) clearTimeout(idle);
      }
      if (step === IDLE) return stop({ kind: 'cut', error: (drain as TakeoverDrain).signal.reason });
      if (step === STOPPED) continue; // the checks at the top say what next
      pending = null;
      const result = step as IteratorResult<unknown>;
      if (result.done === true) return { end: { kind: 'ended' }, bytes };
      const chunk = toBuffer(result.value);
      if (bytes + chunk.length > options.limit) return stop({ kind: 'over' });
      options.digest?.update(chunk);
      bytes += chunk.length;
      if (!writer.write(chunk)) {
        let onDrain = (): void => {};
        const drained = new Promise<void>((r) => (onDrain = r));
        writer.once('drain', onDrain);
        await Promise.race([drained, woken()]);
        writer.off('drain', onDrain);
      }
    }
  } finally {
    for (const s of signals) s.removeEventListener('abort', onAbort);
    drain?.signal.removeEventListener('abort', markTakeover);
    writer.off('error', onWriterError);
    wake = null;
  }
}

function toBuffer(value: unknown): Buffer {
  if (Buffer.isBuffer(value)) return value;
  if (value instanceof Uint8Array) return Buffer.from(value.buffer, value.byteOffset, value.byteLength);
  if (typeof value === 'string') return Buffer.from(value);
  throw new TypeError('a body yields Buffers');
}
