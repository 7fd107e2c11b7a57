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

export interface PumpOptions {
  /** Bytes the body may carry; one more and the pump stops with `over`. */
  readonly limit: number;
  /** Any of them aborting stops the pump at once, whatever the body is doing. */
  readonly signals: ReadonlyArray<AbortSignal | undefined>;
  /** Updated with every byte handed to the writer (the tus checksum of this body). */
  readonly digest: Hash | null;
}

const ABORTED = Symbol('aborted');

/**
 * Feeds `body` into `writer` chunk by chunk, waiting for `'drain'` when the writer says so, until
 * the body ends, fails, passes the limit, the writer fails, or a signal aborts. It never waits on
 * the body once a signal has aborted (a body that delivers nothing, a dead socket, cannot hold
 * it), and never ends or destroys either side: ending the writer (every byte taken so far is then
 * written) is the caller's, and so is the rest of the body. Resolves with why it stopped and the
 * bytes the writer took; never rejects.
 */
export async function pumpBody(body: Readable | AsyncIterable<Buffer>, writer: Writable, options: PumpOptions): Promise<{ end: PumpEnd; bytes: number }> {
  const it = (body as AsyncIterable<unknown>)[Symbol.asyncIterator]();
  let bytes = 0;
  let abortReason: unknown = null;
  let writerError: unknown = null;
  let wake: (() => void) | null = null;
  const stopped = new Promise<typeof ABORTED>((resolve) => (wake = () => resolve(ABORTED)));
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
  writer.on('error', onWriterError);
  const stop = (end: PumpEnd): { end: PumpEnd; bytes: number } => {
    // The body is left as it is: a pending read may still settle, and is ignored.
    void Promise.resolve(it.return?.()).catch(() => {});
    return { end, bytes };
  };
  try {
    for (;;) {
      if (writerError !== null) return stop({ kind: 'writer', error: writerError });
      if (abortReason !== null) return stop({ kind: 'cut', error: abortReason });
      const next = it.next();
      next.catch(() => {});
      let step: IteratorResult<unknown> | typeof ABORTED;
      try {
        step = await Promise.race([next, stopped]);
      } catch (err) {
        return stop({ kind: 'cut', error: err });
      }
      if (step === ABORTED) continue; // the checks at the top say why
      if (step.done === true) return { end: { kind: 'ended' }, bytes };
      const chunk = toBuffer(step.value);
      if (bytes + chunk.length > options.limit) return stop({ kind: 'over' });
      options.digest?.update(chunk);
      bytes += chunk.length;
      if (!writer.write(chunk)) {
        let onDrain = (): void => {};
        const drained = new Promise<void>((r) => (onDrain = r));
        writer.once('drain', onDrain);
        await Promise.race([drained, stopped]);
        writer.off('drain', onDrain);
      }
    }
  } finally {
    for (const s of signals) s.removeEventListener('abort', onAbort);
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
