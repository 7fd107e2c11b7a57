import type { ClientRequest, IncomingHttpHeaders, IncomingMessage } from 'node:http';
import { Readable } from 'node:stream';
import { BadGatewayError, GatewayTimeoutError } from '../lib/errors.js';

/** Errors that mean the connection broke mid-body (see isBodyBreak). */
const BODY_BREAKS = new WeakSet<Error>();

/**
 * True when `err` is an UpstreamBody's report of a broken connection (a reset, an early close, a
 * body shorter than its Content-Length, FETCH_TIMEOUT_MS of silence): the bytes so far are good
 * and the rest may be asked for again. False for a malformed body or anything else.
 */
export function isBodyBreak(err: unknown): boolean {
  return err instanceof Error && BODY_BREAKS.has(err);
}

/** Our own read-ahead, on top of Node's 16 KiB in the IncomingMessage: one socket read. */
const HIGH_WATER_MARK = 64 * 1024;

/**
 * An upstream response body as a Readable that ends only once the body is known to be whole,
 * and otherwise errors with BadGatewayError (never a short body that looks complete):
 *
 * - fewer bytes than Content-Length, a chunked body without its last chunk, a reset: Node
 *   destroys the response (`aborted`, ECONNRESET), which becomes UPSTREAM_BODY_BROKEN;
 * - more bytes than Content-Length: Node ends the response after the declared length and then
 *   reports the extra bytes as a parse error on the request (RFC 9112 6.3: they are not a
 *   response of their own). So the chunk that completes the declared length (the last chunk
 *   received, when none is declared) is held back until the connection has closed cleanly; a
 *   client that trusts the relayed Content-Length never sees a "complete" body that we then
 *   learn was wrong.
 *
 * Backpressure: the response is paused whenever our buffer is full, and Node then stops reading
 * the socket. Destroying this stream destroys the upstream request (and its connection).
 */
export class UpstreamBody extends Readable {
  /** The body length to expect: the Content-Length the origin declared (0 when bodyless), or null (chunked or close-delimited). */
  readonly expectedLength: number | null;
  private readonly request: ClientRequest;
  private readonly response: IncomingMessage;
  private received = 0;
  private held: Buffer | null = null;
  private upstreamEnded = false;
  private readonly idleMs: number;
  /** Fires when the origin sends nothing for idleMs while we are ready to read (a stalled body). */
  private readonly idleTimer: NodeJS.Timeout;
  private readonly onBytes: ((bytes: number) => void) | undefined;

  /**
   * `bodyless`: the response has no body whatever its Content-Length says (the answer to a HEAD,
   * a 204 or a 304, RFC 9112 6.3), so the body to expect is zero bytes.
   */
  constructor(request: ClientRequest, response: IncomingMessage, idleMs: number, signal?: AbortSignal, bodyless = false, onBytes?: (bytes: number) => void) {
    super({ highWaterMark: HIGH_WATER_MARK });
    this.onBytes = onBytes;
    this.request = request;
    this.response = response;
    this.idleMs = idleMs;
    this.expectedLength = bodyless ? 0 : declaredLength(response.headers);
    this.idleTimer = setTimeout(() => this.onIdle(), idleMs);
    this.idleTimer.unref();
    // The body can break before anyone reads it (a small body and bytes past it arrive with the
    // headers). The error is kept (`errored`) and pipeline() reports it to whoever consumes us;
    // without this listener it would be an uncaught exception first.
    this.on('error', () => {});
    // Paused before the 'data' listener goes on, so nothing flows until someone reads us.
    response.pause();
    response.on('data', (chunk: Buffer) => this.onData(chunk));
    response.once('end', () => this.onEnd());
    response.once('error', (err: Error) => this.broke('The origin connection broke before the body ended', err));
    response.once('close', () => {
      if (!this.upstreamEnded) this.broke('The origin connection closed before the body ended');
    });
    // After the response has begun, request errors are the connection's: a reset, or a parse
    // error (HPE_*), such as bytes after the end of the body.
    request.on('error', (err: NodeJS.ErrnoException) => {
      // A malformed body is what the origin sends, not a mishap of the connection: no resume.
      if (err.code?.startsWith('HPE_') === true) this.fail('UPSTREAM_BODY_BROKEN', 'The origin sent a malformed body (more bytes than it declared?)', err);
      else this.broke('The origin connection broke before the body ended', err);
    });
    if (signal !== undefined) {
      // The client went away: drop the upstream at once, not at the next chunk.
      const onAbort = (): void => void this.destroy(signal.reason instanceof Error ? signal.reason : undefined);
      if (signal.aborted) onAbort();
      else {
        signal.addEventListener('abort', onAbort, { once: true });
        this.once('close', () => signal.removeEventListener('abort', onAbort));
      }
    }
  }

  private onData(chunk: Buffer): void {
    if (this.destroyed) return;
    this.idleTimer.refresh();
    this.received += chunk.length;
    this.onBytes?.(chunk.length);
    // Node's parser never hands over more than Content-Length; kept as a guard, not a path.
    if (this.expectedLength !== null && this.received > this.expectedLength) {
      return this.fail('UPSTREAM_BODY_TOO_LONG', `The origin sent more than the ${this.expectedLength} bytes it declared`);
    }
    // Only the chunk that completes the body waits for the clean close (see the class comment);
    // the ones before it go on at once, so a break loses none of them.
    const previous = this.held;
    const last = this.expectedLength === null || this.received >= this.expectedLength;
    this.held = last ? chunk : null;
    if (previous !== null && !this.push(previous)) this.response.pause();
    if (!last && !this.push(chunk)) this.response.pause();
  }

  /**
   * No byte from the origin for idleMs. While the response is paused that is our reader's
   * doing (a slow client, which IDLE_TIMEOUT_MS judges), and _read starts the clock again;
   * otherwise the origin has stalled mid-body: 504 for POST /fetch, a broken download for GET.
   */
  private onIdle(): void {
    if (this.upstreamEnded || this.destroyed || this.response.isPaused()) return;
    this.break(new GatewayTimeoutError('UPSTREAM_TIMEOUT', `The origin sent nothing for ${this.idleMs} ms in the middle of the body`));
  }

  private onEnd(): void {
    this.upstreamEnded = true;
    clearTimeout(this.idleTimer);
    // Node closes the connection after the response (the request is sent with agent: false, so
    // `Connection: close`); bytes the origin sent past the body surface as a request error
    // before the socket's 'close'. Only then is the body known to be whole.
    const socket = this.request.socket;
    if (socket === null || socket.destroyed) this.finish();
    else socket.once('close', () => this.finish());
  }

  private finish(): void {
    if (this.destroyed) return;
    if (this.expectedLength !== null && this.received < this.expectedLength) {
      return this.broke(`The origin sent ${this.received} of the ${this.expectedLength} bytes it declared`);
    }
    if (this.held !== null) this.push(this.held);
    this.held = null;
    this.push(null);
  }

  private fail(code: string, message: string, cause?: unknown): void {
    if (this.destroyed) return;
    this.destroy(new BadGatewayError(code, message, cause === undefined ? undefined : { cause }));
  }

  /** The connection broke (reset, early close, short body, silence): asking again for the rest may help. */
  private break(err: Error): void {
    if (this.destroyed) return;
    BODY_BREAKS.add(err);
    this.destroy(err);
  }

  private broke(message: string, cause?: unknown): void {
    this.break(new BadGatewayError('UPSTREAM_BODY_BROKEN', message, cause === undefined ? undefined : { cause }));
  }

  override _read(): void {
    if (this.upstreamEnded) return;
    this.idleTimer.refresh();
    this.response.resume();
  }

  override _destroy(err: Error | null, callback: (err?: Error | null) => void): void {
    clearTimeout(this.idleTimer);
    this.held = null;
    // Tears down the connection too; a no-op once the exchange has completed.
    this.request.destroy();
    callback(err);
  }
}

/** RFC 9112 6.3: Content-Length frames the body only without Transfer-Encoding. */
export function declaredLength(headers: IncomingHttpHeaders): number | null {
  if (headers['transfer-encoding'] !== undefined) return null;
  const text = headers['content-length'];
  if (text === undefined || !/^\d+$/.test(text)) return null;
  const n = Number(text);
  return Number.isSafeInteger(n) ? n : null;
}
