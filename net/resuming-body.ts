import { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { BadGatewayError, GatewayTimeoutError, RangeNotSatisfiableError, SluiceError, UpstreamStatusError } from '../lib/errors.js';
import { checkResumeAnswer, UpstreamChangedError, type ResumePoint, type Span } from './resume-point.js';
import { openUpstream } from './upstream.js';
import { isBodyBreak, type UpstreamBody } from './upstream-body.js';

/** The backoff: about 0.5 s before the first retry, doubling, never more than 8 s. */
const FIRST_RETRY_DELAY_MS = 500;
const MAX_RETRY_DELAY_MS = 8_000;

/** How an origin is asked again; shared by every connection of a transfer. */
export interface ResumeSettings {
  /** FETCH_RETRIES: retries in a row without a byte of progress before the transfer fails. */
  readonly retries: number;
  /** FETCH_TIMEOUT_MS, for each new request as for the first. */
  readonly timeoutMs: number;
  /** FETCH_ALLOW: every retry passes the SSRF guard again. */
  readonly allow: readonly string[];
  /** Told of every retry, before its backoff (counts, logs). */
  readonly onRetry?: (retry: RetryEvent) => void;
  /** Told of every body byte received, on every connection (metrics). */
  readonly onBytes?: (bytes: number) => void;
}

export interface RetryEvent {
  /** The byte asked for next. */
  readonly position: number;
  /** Retries in a row without progress, this one included. */
  readonly attempt: number;
  readonly delayMs: number;
  readonly reason: Error;
}

/** The wait before the `attempt`-th retry in a row (1-based). */
export function retryDelayMs(attempt: number): number {
  return Math.min(FIRST_RETRY_DELAY_MS * 2 ** (attempt - 1), MAX_RETRY_DELAY_MS);
}

/**
 * Asks for `span` of the point's resource (`Range` + `If-Range`) and returns the body once the
 * answer is known to be those very bytes (checkResumeAnswer). Any answer but such a `206` is
 * UpstreamChangedError, except the ones that say nothing of the resource (5xx, 408, 429), which
 * are rethrown for the caller to retry, like a connection that could not be made.
 */
export async function openSpan(point: ResumePoint, span: Span, settings: ResumeSettings, signal: AbortSignal): Promise<UpstreamBody> {
  let upstream;
  try {
    upstream = await openUpstream(point.url, {
      // The rest of the resource is asked for as `bytes=<next>-`, the way curl -C and wget -c ask.
      headers: { range: `bytes=${span.start}-${span.end === point.total - 1 ? '' : span.end}`, 'if-range': point.validator },
      timeoutMs: settings.timeoutMs,
      allow: settings.allow,
      signal,
      ...(settings.onBytes === undefined ? {} : { onBytes: settings.onBytes }),
    });
  } catch (err) {
    if (err instanceof RangeNotSatisfiableError) throw new UpstreamChangedError(`bytes ${span.start}-${span.end} are out of its range now (416)`);
    if (err instanceof UpstreamStatusError && !transientStatus(err.upstreamStatus)) {
      throw new UpstreamChangedError(`asked for bytes ${span.start}-${span.end} again, the origin answered ${err.upstreamStatus}`);
    }
    throw err;
  }
  try {
    checkResumeAnswer(point, span, upstream.status, upstream.headers);
  } catch (err) {
    upstream.body.destroy();
    throw err;
  }
  return upstream.body;
}

/** RFC 9110 15.5.9, 15.6, RFC 6585 4: answers about the server's state, not the resource's. */
function transientStatus(status: number): boolean {
  return status >= 500 || status === 408 || status === 429;
}

/** A failure a later attempt may not meet: a connection that broke or could not be made, a busy origin. */
function isTransient(err: unknown): boolean {
  if (isBodyBreak(err)) return true;
  if (err instanceof UpstreamStatusError) return transientStatus(err.upstreamStatus);
  if (err instanceof BadGatewayError) return err.code === 'UPSTREAM_UNREACHABLE';
  return err instanceof GatewayTimeoutError && err.code === 'UPSTREAM_TIMEOUT';
}

/**
 * The bytes `span` of a resource as one stream, whatever becomes of the connections that carry
 * them: when one breaks (isBodyBreak), the rest is asked for again from the byte that comes next
 * (`Range: bytes=<next>-<end>`, `If-Range`) after a backoff, up to `retries` times in a row
 * without progress, and spliced on only when checkResumeAnswer holds. Anything else, a changed
 * resource among them, errors the stream: never a splice of two versions, never a clean short end.
 *
 * `first` is an open answer whose body starts at `span.start` (it may go on past `span.end`: it
 * is cut there); without one the span is asked for at once. Backpressure: the connection is
 * paused while our buffer is full. Destroying this stream drops the connection and any wait.
 */
export class ResumingBody extends Readable {
  readonly span: Span;
  private readonly point: ResumePoint | null;
  private readonly settings: ResumeSettings;
  /** Ends our own requests and backoff waits (destroy), and follows the caller's signal. */
  private readonly controller = new AbortController();
  private current: UpstreamBody | null = null;
  /** The next byte to deliver (absolute offset). */
  private position: number;
  private receivedOnCurrent = 0;
  private failuresInRow = 0;

  /** `point` null: the origin cannot be asked again, and a break fails the stream as it is. */
  constructor(first: UpstreamBody | null, span: Span, point: ResumePoint | null, settings: ResumeSettings, signal: AbortSignal) {
    super({ highWaterMark: 64 * 1024 });
    // Whoever reads us sees our error (pipeline, async iteration); one raised after they stopped
    // reading (an abort while the store winds down) must not be an uncaught exception.
    this.on('error', () => {});
    this.span = span;
    this.position = span.start;
    this.point = point;
    this.settings = settings;
    if (!destroyOnAbort(this, signal)) {
      first?.destroy();
      return;
    }
    if (span.start > span.end) {
      first?.destroy();
      this.push(null);
    } else if (first !== null) {
      this.attach(first);
    } else {
      void this.reconnect(null);
    }
  }

  /** The byte to deliver next: all before it were delivered. */
  get delivered(): number {
    return this.position - this.span.start;
  }

  private attach(body: UpstreamBody): void {
    this.current = body;
    this.receivedOnCurrent = 0;
    body.on('data', (chunk: Buffer) => this.onChunk(body, chunk));
    body.once('end', () => this.onEnd(body));
    body.once('error', (err: Error) => this.onBreak(body, err));
    // It broke before anyone listened (a tiny body with trouble behind it).
    if (body.errored !== null) this.onBreak(body, body.errored);
  }

  private detach(body: UpstreamBody): void {
    body.removeAllListeners('data');
    // An error after this is of no interest, but must still have a listener.
    body.on('error', () => {});
    body.destroy();
    if (this.current === body) this.current = null;
  }

  private onChunk(body: UpstreamBody, chunk: Buffer): void {
    if (this.destroyed || this.current !== body) return;
    const left = this.span.end + 1 - this.position;
    const bytes = chunk.length > left ? chunk.subarray(0, left) : chunk;
    this.position += bytes.length;
    this.receivedOnCurrent += bytes.length;
    const more = this.push(bytes);
    if (this.position > this.span.end) {
      // The span is whole; a first answer that goes on past it (a piece of a parallel fetch) is cut.
      this.detach(body);
      this.push(null);
    } else if (!more) {
      body.pause();
    }
  }

  private onEnd(body: UpstreamBody): void {
    if (this.destroyed || this.current !== body) return;
    // UpstreamBody ends only once its declared length was all there; an unknown one ends the span.
    if (Number.isFinite(this.span.end) && this.position <= this.span.end) {
      return void this.destroy(new BadGatewayError('UPSTREAM_BODY_BROKEN', `The origin ended the body at byte ${this.position}, before ${this.span.end + 1}`));
    }
    this.current = null;
    this.push(null);
  }

  private onBreak(body: UpstreamBody, err: Error): void {
    if (this.destroyed || this.current !== body) return;
    this.detach(body);
    if (!isBodyBreak(err) || this.point === null || this.settings.retries === 0) return void this.destroy(err);
    void this.reconnect(err);
  }

  /** Asks for the rest until a good answer comes, the retries run out, or the resource changed. */
  private async reconnect(reason: Error | null): Promise<void> {
    const point = this.point as ResumePoint;
    let last = reason;
    for (;;) {
      if (last !== null) {
        // RFC-free policy from the issue: the count starts again after a retry that made progress.
        if (this.receivedOnCurrent > 0) this.failuresInRow = 0;
        this.receivedOnCurrent = 0;
        if (this.failuresInRow >= this.settings.retries) return void this.destroy(gaveUp(last, this.failuresInRow));
        this.failuresInRow += 1;
        const delayMs = retryDelayMs(this.failuresInRow);
        this.settings.onRetry?.({ position: this.position, attempt: this.failuresInRow, delayMs, reason: last });
        try {
          await sleep(delayMs, undefined, { signal: this.controller.signal });
        } catch {
          return; // destroyed while waiting
        }
      }
      try {
        const body = await openSpan(point, { start: this.position, end: this.span.end }, this.settings, this.controller.signal);
        if (this.destroyed) return void body.destroy();
        return this.attach(body);
      } catch (err) {
        if (this.destroyed) return;
        if (!isTransient(err) || this.settings.retries === 0) return void this.destroy(err as Error);
        last = err as Error;
      }
    }
  }

  override _read(): void {
    this.current?.resume();
  }

  override _destroy(err: Error | null, callback: (err?: Error | null) => void): void {
    this.controller.abort(err ?? new Error('destroyed'));
    if (this.current !== null) this.detach(this.current);
    callback(err);
  }
}

/**
 * Ties `stream` to `signal` (the client going away, a cancelled job): its abort destroys the
 * stream with the signal's reason. False, and the stream destroyed, when it has aborted already.
 */
export function destroyOnAbort(stream: Readable, signal: AbortSignal): boolean {
  const onAbort = (): void => void stream.destroy(signal.reason instanceof Error ? signal.reason : undefined);
  if (signal.aborted) {
    onAbort();
    return false;
  }
  signal.addEventListener('abort', onAbort, { once: true });
  stream.once('close', () => signal.removeEventListener('abort', onAbort));
  return true;
}

/** The last failure, saying that it ended `retries` retries in a row. */
function gaveUp(err: Error, retries: number): Error {
  if (!(err instanceof SluiceError) || retries === 0) return err;
  return new SluiceError(err.code, `${err.message} (gave up after ${retries} ${retries === 1 ? 'retry' : 'retries'} in a row)`, err.status, { cause: err });
}
