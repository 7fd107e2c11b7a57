import { request as httpRequest, type ClientRequest, type IncomingMessage, type OutgoingHttpHeaders, type ServerResponse } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { Socket } from 'node:net';
import { Transform, Writable, type Duplex, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { RequestContext } from '../lib/context.js';
import { BadGatewayError, GatewayTimeoutError, LimitExceededError, ServiceUnavailableError } from '../lib/errors.js';
import { boundaryFromContentType, isMultipartFormData } from '../multipart/content-type.js';
import { MultipartEncoder } from '../multipart/encoder.js';
import { MultipartParser } from '../multipart/parser.js';
import { connectionTokens, isHopByHop } from '../net/hop-by-hop.js';
import { parserOptions } from './multipart-options.js';

/**
 * End-to-end request headers that stay here. `authorization` carries sluice's own bearer token
 * (AUTH_TOKEN) and `cookie` was set for sluice's origin: neither is the destination's business.
 * The body headers are set from the body we actually send, and the tracing ones are rebuilt.
 */
const NOT_FORWARDED = new Set(['authorization', 'cookie', 'content-length', 'content-type', 'x-request-id', 'via', 'x-forwarded-for']);
/** Headers about the exact body bytes (RFC 9530 digests, RFC 9110 8.4 coding): false for a re-encoded multipart body. */
const ABOUT_BODY_BYTES = new Set(['content-encoding', 'content-md5', 'content-digest', 'repr-digest', 'digest']);

/** What the destination gets as a body: the streams the client's bytes go through, and their headers. */
interface OutboundBody {
  readonly stages: readonly [Duplex, ...Duplex[]];
  readonly headers: OutgoingHttpHeaders;
  /** The bytes are re-encoded (multipart), so headers about the original bytes no longer hold. */
  readonly reencoded: boolean;
}

/**
 * `POST /proxy`: forwards the body to PROXY_TARGET and relays the answer, streamed both ways.
 * multipart/form-data is parsed (our limits apply) and re-encoded with a fresh boundary; any
 * other body goes through as it is. Outbound with node:http(s), not fetch: undici keeps a copy
 * of a streamed request body in memory to replay it on redirects (undici issue 4058).
 */
export async function handleProxy(ctx: RequestContext): Promise<void> {
  const target = ctx.config.proxyTarget;
  if (target === null) {
    throw new ServiceUnavailableError('PROXY_NOT_CONFIGURED', 'No proxy destination is configured (PROXY_TARGET is unset)');
  }
  const { 'content-type': contentType, 'content-encoding': coding } = ctx.req.headers;
  // A content-coded body (a gzip'd form) is not ours to read: it goes on as it is, like any
  // other body, for a destination that decodes it, rather than failing our parser with a 400.
  const reencode = isMultipartFormData(contentType) && (coding === undefined || /^\s*(?:identity)?\s*$/i.test(coding));
  const body = reencode ? multipartBody(ctx, contentType) : rawBody(ctx);
  await exchange(ctx, target, body);
}

function multipartBody(ctx: RequestContext, contentType: string | undefined): OutboundBody {
  const parser = new MultipartParser(parserOptions(ctx.config, boundaryFromContentType(contentType)));
  const encoder = new MultipartEncoder();
  // No Content-Length (the size is only known at the end), so Node sends it chunked (RFC 9112 7.1).
  return { stages: [parser, encoder], headers: { 'content-type': encoder.contentType }, reencoded: true };
}

function rawBody(ctx: RequestContext): OutboundBody {
  const max = ctx.config.maxFileBytes;
  const { 'content-type': type, 'content-length': length } = ctx.req.headers;
  // Node's parser has already refused a Content-Length that is not a number.
  if (length !== undefined && Number(length) > max) {
    throw new LimitExceededError('FILE_TOO_LARGE', `The body (${length} bytes) is over the limit of ${max} bytes`, max);
  }
  const headers: OutgoingHttpHeaders = {};
  if (type !== undefined) headers['content-type'] = type;
  // Neither Content-Length nor Transfer-Encoding: no body at all (RFC 9112 6.3). Say so with
  // `Content-Length: 0`, not the empty chunked body Node would send, which a destination that
  // wants a length (S3 answers 411) would refuse.
  if (length !== undefined) headers['content-length'] = length;
  else if (ctx.req.headers['transfer-encoding'] === undefined) headers['content-length'] = '0';
  return { stages: [new ByteLimit(max)], headers, reencoded: false };
}

type Phase = 'connecting' | 'sending' | 'waiting' | 'relaying';

/**
 * One round trip to the destination. Settles once: with the answer relayed, or with the first
 * failure, after which the outbound request is destroyed (the destination sees it aborted).
 */
function exchange(ctx: RequestContext, target: URL, body: OutboundBody): Promise<void> {
  const { req, res, config } = ctx;
  return new Promise<void>((resolve, reject) => {
    if (ctx.signal.aborted) return reject(ctx.signal.reason);
    const send = target.protocol === 'https:' ? httpsRequest : httpRequest;
    // A fresh connection per request (agent: false): an upload cut short leaves its socket unusable,
    // and a pooled socket the destination has closed would turn into a false 502 on reuse.
    // `timeout` is the socket's idle timeout; set before connecting, it covers the connect too.
    // What an idle socket means depends on the phase (the 'timeout' handler below).
    const outbound = send(target, {
      method: 'POST',
      agent: false,
      timeout: config.proxyTimeoutMs,
      // Not the `Connection: close` Node sends without an agent: a server that answers early
      // (413) on a connection about to close stops reading, and the reset that follows can
      // destroy its answer before we read it. On a persistent connection it reads and drops the
      // rest instead, its answer reaches us, and we stop sending. We close the socket after.
      headers: { ...forwardedHeaders(ctx, body), ...body.headers, connection: 'keep-alive' },
    });
    // Headers go out now, not with the first body bytes: a destination that refuses on headers
    // alone (401, 413 on its own limits) can answer before we have read any of the body.
    outbound.flushHeaders();
    const head = body.stages[0];
    const stopSending = new AbortController();
    let phase: Phase = 'connecting';
    let settled = false;

    const settle = (err?: unknown): void => {
      if (settled) return;
      settled = true;
      ctx.signal.removeEventListener('abort', onClientGone);
      stopSending.abort();
      req.unpipe(head);
      // Harmless after a complete exchange; otherwise it aborts the request mid-body.
      outbound.destroy();
      if (err === undefined) resolve();
      else reject(err);
    };
    const onClientGone = (): void => settle(ctx.signal.reason);
    ctx.signal.addEventListener('abort', onClientGone, { once: true });

    outbound.on('socket', (socket: Socket) => {
      const connected = target.protocol === 'https:' ? 'secureConnect' : 'connect';
      const onConnected = (): void => {
        if (phase === 'connecting') phase = 'sending';
      };
      if (socket.connecting) socket.once(connected, onConnected);
      else onConnected();
    });
    // Stays attached: a destroyed request may still report 'socket hang up' after settling.
    outbound.on('error', (err: NodeJS.ErrnoException) => settle(destinationError(err, phase)));
    outbound.on('timeout', () => {
      const ms = config.proxyTimeoutMs;
      switch (phase) {
        case 'connecting':
          return settle(new GatewayTimeoutError('PROXY_TIMEOUT', `The proxy destination did not accept the connection within ${ms} ms`));
        case 'sending':
          // Idle while we wait for the client's next bytes is the client's delay, and IDLE_TIMEOUT_MS
          // deals with that; idle with bytes the destination will not take is the destination's.
          if (!outbound.writableNeedDrain) return;
          return settle(new GatewayTimeoutError('PROXY_TIMEOUT', `The proxy destination read nothing for ${ms} ms`));
        case 'waiting':
          return settle(new GatewayTimeoutError('PROXY_TIMEOUT', `The proxy destination did not answer within ${ms} ms`));
        case 'relaying':
          if (res.writableNeedDrain) return; // the client reads slowly; not the destination's fault
          return settle(new GatewayTimeoutError('PROXY_TIMEOUT', `The proxy destination stalled for ${ms} ms in its answer`));
      }
    });

    outbound.once('response', (answer: IncomingMessage) => {
      if (settled) return void answer.resume();
      if (!outbound.writableEnded) {
        // The destination answered before it had the whole body (its own 413, a 401...): stop
        // sending, and stop reading the client, which then stalls instead of uploading the rest.
        stopSending.abort();
        req.unpipe(head);
        req.pause();
        lingerThenClose(req, res);
      }
      phase = 'relaying';
      res.statusCode = answer.statusCode ?? 502;
      const tokens = connectionTokens(answer.headers.connection);
      for (const [name, value] of Object.entries(answer.headers)) {
        // Our X-Request-Id (set by app.ts) names this request in our logs; keep it.
        if (value === undefined || isHopByHop(name, tokens) || name === 'x-request-id') continue;
        res.setHeader(name, value);
      }
      // A destination that breaks off mid-answer breaks our answer too (pipeline destroys res):
      // the client sees a failed transfer, never a clean short body.
      pipeline(answer, res).then(
        () => settle(),
        (err: unknown) => settle(ctx.signal.aborted ? ctx.signal.reason : new BadGatewayError('PROXY_DESTINATION_RESET', 'The proxy destination broke off its answer', { cause: err })),
      );
    });

    // Not pipeline(req, ...): on failure pipeline destroys its streams, and destroying req resets
    // the client's socket before our error answer can go out. A plain pipe leaves req alone (it
    // unpipes when `head` closes) and app.ts drains it after answering.
    req.pipe(head);
    req.once('error', (err) => head.destroy(err));
    pipeline([...body.stages, new RequestBodySink(outbound)], { signal: stopSending.signal }).then(
      () => {
        if (phase === 'sending' || phase === 'connecting') phase = 'waiting';
      },
      (err: unknown) => {
        // After an early answer or a failure elsewhere, stopping is what we asked for.
        if (!stopSending.signal.aborted) settle(err);
      },
    );
  });
}

/**
 * After an early answer the rest of the client's body is unwanted, but closing at once would
 * reset the connection while the client is still sending, and many clients (Node's own) then
 * drop the answer they have not read yet. So the answer goes out on an open connection, the
 * client gets this long to read it (a curl-like client stops sending when it does), and only
 * then is the connection closed, unless the body ended by itself. nginx's lingering close does
 * the same with 5 to 30 s; the client here is only blocked, not read, so a short wait will do.
 */
const EARLY_ANSWER_LINGER_MS = 2_000;

function lingerThenClose(req: IncomingMessage, res: ServerResponse): void {
  res.once('finish', () => {
    const timer = setTimeout(() => {
      if (!req.complete) req.socket.destroy();
    }, EARLY_ANSWER_LINGER_MS);
    timer.unref();
    req.once('end', () => clearTimeout(timer));
  });
}

/** The client's end-to-end headers for the destination (RFC 9110 7.6: never the hop-by-hop ones). */
function forwardedHeaders(ctx: RequestContext, body: OutboundBody): OutgoingHttpHeaders {
  const incoming = ctx.req.headers;
  const tokens = connectionTokens(incoming.connection);
  const headers: OutgoingHttpHeaders = {};
  for (const [name, value] of Object.entries(incoming)) {
    if (value === undefined || isHopByHop(name, tokens) || NOT_FORWARDED.has(name)) continue;
    if (body.reencoded && ABOUT_BODY_BYTES.has(name)) continue;
    headers[name] = value;
  }
  headers['x-request-id'] = ctx.requestId;
  // RFC 9110 7.6.3: a gateway MUST send Via in each request it forwards.
  headers.via = appendTo(incoming.via, '1.1 sluice');
  const client = ctx.req.socket.remoteAddress;
  if (client !== undefined) headers['x-forwarded-for'] = appendTo(incoming['x-forwarded-for'], client);
  return headers;
}

function appendTo(existing: string | string[] | undefined, value: string): string {
  const before = Array.isArray(existing) ? existing.join(', ') : existing;
  return before === undefined || before === '' ? value : `${before}, ${value}`;
}

const UNREACHABLE = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'ETIMEDOUT', 'EADDRNOTAVAIL']);

/** 502 for a destination that cannot be reached or that drops the connection. */
function destinationError(err: NodeJS.ErrnoException, phase: Phase): BadGatewayError {
  const code = err.code ?? 'UNKNOWN';
  if (phase === 'connecting' || UNREACHABLE.has(code)) {
    return new BadGatewayError('PROXY_DESTINATION_UNREACHABLE', `The proxy destination cannot be reached (${code})`, { cause: err });
  }
  if (code.startsWith('HPE_')) {
    // Node's HTTP parser refused what came back: not a reset, and the message should say so.
    return new BadGatewayError('PROXY_DESTINATION_RESET', `The proxy destination sent an invalid HTTP answer (${code})`, { cause: err });
  }
  return new BadGatewayError('PROXY_DESTINATION_RESET', `The proxy destination closed the connection (${code})`, { cause: err });
}

/**
 * Bytes the outbound request may hold unsent before the upload waits for it to drain. bench:ab,
 * `proxy`, against waiting whenever write() returns false: 1.07× over 6 rounds, then 1.09× over
 * 8 (faster in 7), 1.39 -> 1.31 and 1.28 -> 1.12 CPU-s/GiB; peak RSS unchanged.
 */
const SEND_AHEAD_BYTES = 256 * 1024;

/**
 * The end of the upload chain: writes into the outbound request with its backpressure and ends
 * it. It is a stream of its own, not the request itself, so that stopping the upload (an early
 * answer) leaves the request open for that answer to be read.
 */
class RequestBodySink extends Writable {
  readonly #outbound: ClientRequest;
  #cancelWait: (() => void) | null = null;

  constructor(outbound: ClientRequest) {
    // Hold no chunk of our own beyond the one being written.
    super({ highWaterMark: 1 });
    this.#outbound = outbound;
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (err?: Error | null) => void): void {
    // write() says wait past the socket's 16 KiB, so after every 64 KiB chunk; waiting then for
    // 'drain' (a turn of the event loop each time) left the next chunk unparsed meanwhile.
    if (this.#outbound.write(chunk) || this.#outbound.writableLength < SEND_AHEAD_BYTES) return callback();
    const outbound = this.#outbound;
    const done = (err?: Error): void => {
      outbound.off('drain', onDrain);
      outbound.off('close', onClose);
      this.#cancelWait = null;
      callback(err);
    };
    const onDrain = (): void => done();
    const onClose = (): void => done(new BadGatewayError('PROXY_DESTINATION_RESET', 'The proxy destination closed the connection'));
    outbound.on('drain', onDrain);
    outbound.on('close', onClose);
    this.#cancelWait = () => {
      outbound.off('drain', onDrain);
      outbound.off('close', onClose);
    };
  }

  override _final(callback: (err?: Error | null) => void): void {
    this.#outbound.end();
    callback();
  }

  override _destroy(err: Error | null, callback: (err?: Error | null) => void): void {
    this.#cancelWait?.();
    callback(err);
  }
}

/** Counts a raw body through and fails it past MAX_FILE_BYTES, as an upload would be. */
class ByteLimit extends Transform {
  readonly #max: number;
  #seen = 0;

  constructor(max: number) {
    super();
    this.#max = max;
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.#seen += chunk.length;
    if (this.#seen > this.#max) {
      return callback(new LimitExceededError('FILE_TOO_LARGE', `The body is over the limit of ${this.#max} bytes`, this.#max));
    }
    callback(null, chunk);
  }
}
