import { randomBytes, timingSafeEqual, createHash } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { Config } from './config.js';
import type { RequestContext } from './context.js';
import {
  ClientAbortedError,
  LimitExceededError,
  MethodNotAllowedError,
  NotFoundError,
  RequestTimeoutError,
  ServiceUnavailableError,
  SluiceError,
  UnauthorizedError,
} from './errors.js';
import type { Logger } from './log.js';
import type { Metrics } from './metrics.js';
import { sendError, toSluiceError } from './respond.js';
import type { Store } from '../storage/store.js';
import { routeRequest, type Route } from './routes.js';

export interface AppDeps {
  readonly config: Config;
  readonly store: Store;
  readonly log: Logger;
  readonly metrics: Metrics;
}

export interface App {
  readonly server: Server;
  /**
   * Stops accepting, lets in-flight requests finish for up to `graceMs`, then aborts the rest
   * (their files are removed by their handlers) and resolves once every request has ended.
   */
  shutdown(graceMs: number): Promise<{ aborted: number }>;
}

/** A request in flight, as the server (not the handler) tracks it. */
interface InFlight {
  readonly controller: AbortController;
  readonly done: Promise<void>;
}

/** X-Request-Id values we echo instead of replacing: short and free of anything a log could choke on. */
const SANE_REQUEST_ID = /^[A-Za-z0-9._:@/+=-]{1,128}$/;

export function createApp(deps: AppDeps): App {
  const { config, log, metrics } = deps;
  const inFlight = new Set<InFlight>();
  const bySocket = new WeakMap<Socket, InFlight>();
  let uploadsInFlight = 0;
  let shuttingDown = false;

  const server = createServer(
    {
      // The absolute request timeout (300 s by default) would cut any long upload; the idle
      // timeout below (server.timeout) is what stops stalled clients instead.
      requestTimeout: 0,
      headersTimeout: config.headersTimeoutMs,
      keepAliveTimeout: 5_000,
      // Check headersTimeout every second, not every 30 s, so slow-header clients are cut on time.
      connectionsCheckingInterval: 1_000,
    },
    (req, res) => void handle(req, res, false),
  );
  // Expect: 100-continue: answer 401/413/503 before the client sends the body.
  server.on('checkContinue', (req: IncomingMessage, res: ServerResponse) => void handle(req, res, true));
  server.on('checkExpectation', (_req: IncomingMessage, res: ServerResponse) => {
    res.writeHead(417, { 'content-type': 'application/json; charset=utf-8', connection: 'close' });
    res.end(`${JSON.stringify({ error: { code: 'EXPECTATION_FAILED', message: 'Only 100-continue is supported' } })}\n`);
  });
  server.on('clientError', (err: NodeJS.ErrnoException, socket: Socket) => {
    if (!socket.writable || (err.code === 'ECONNRESET' && socket.bytesWritten === 0)) return void socket.destroy();
    const status = err.code === 'HPE_HEADER_OVERFLOW' ? 431 : err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? 408 : 400;
    const code = status === 431 ? 'HEADERS_TOO_LARGE' : status === 408 ? 'HEADERS_TIMEOUT' : 'BAD_REQUEST';
    const body = `${JSON.stringify({ error: { code, message: err.code ?? 'Bad request' } })}\n`;
    socket.end(
      `HTTP/1.1 ${status} ${status === 431 ? 'Request Header Fields Too Large' : status === 408 ? 'Request Timeout' : 'Bad Request'}\r\n` +
        `content-type: application/json; charset=utf-8\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`,
    );
  });
  // Idle timeout: a socket with no traffic either way for IDLE_TIMEOUT_MS. Reading a body and
  // writing a response both count as traffic, so long transfers that move are never cut.
  server.setTimeout(config.idleTimeoutMs, (socket: Socket) => {
    const current = bySocket.get(socket);
    if (current === undefined) return void socket.destroy();
    current.controller.abort(new RequestTimeoutError(`No data for ${config.idleTimeoutMs} ms`));
  });

  async function handle(req: IncomingMessage, res: ServerResponse, expectsContinue: boolean): Promise<void> {
    const started = process.hrtime.bigint();
    const socket = req.socket;
    const readAtStart = socket.bytesRead;
    const writtenAtStart = socket.bytesWritten;
    const incoming = req.headers['x-request-id'];
    const requestId = typeof incoming === 'string' && SANE_REQUEST_ID.test(incoming) ? incoming : randomBytes(12).toString('base64url');
    res.setHeader('x-request-id', requestId);
    if (shuttingDown) res.setHeader('connection', 'close');

    const controller = new AbortController();
    let resolveDone: () => void = () => {};
    const entry: InFlight = { controller, done: new Promise((r) => (resolveDone = r)) };
    inFlight.add(entry);
    bySocket.set(socket, entry);
    // The client going away (before the answer is complete) aborts whatever the handler is doing.
    const onClose = (): void => {
      if (!res.writableFinished) controller.abort(new ClientAbortedError());
    };
    res.once('close', onClose);

    let route: Route | null = null;
    let errorCode: string | null = null;
    let isUpload = false;
    try {
      const url = parseTarget(req.url);
      const match = routeRequest(req.method ?? 'GET', url.pathname);
      route = match.route;
      if (match.kind === 'not-found') throw new NotFoundError(`No route for ${url.pathname}`);
      if (match.kind === 'method') throw new MethodNotAllowedError(match.allowed);
      if (match.route.auth && !authorized(req, config.authToken)) throw new UnauthorizedError();
      if (match.route.upload) {
        if (shuttingDown) throw new ServiceUnavailableError('SHUTTING_DOWN', 'The server is shutting down', 5);
        if (uploadsInFlight >= config.maxConcurrentUploads) {
          throw new ServiceUnavailableError('TOO_MANY_UPLOADS', `More than ${config.maxConcurrentUploads} uploads in flight; retry later`, 5);
        }
        await checkDeclaredLength(req, match.route, deps);
        isUpload = true;
        uploadsInFlight += 1;
        metrics.uploadStarted();
      }
      if (expectsContinue) res.writeContinue();
      const ctx: RequestContext = { req, res, url, config, store: deps.store, signal: controller.signal, requestId, log, metrics };
      await abortable(match.handler(ctx), controller.signal);
      if (isUpload) metrics.uploadFinished('ok');
    } catch (caught) {
      let err = toSluiceError(caught);
      // An abort carries its reason (timeout, shutdown, client gone) as the error to report.
      if (controller.signal.aborted && !(caught instanceof SluiceError)) err = toSluiceError(controller.signal.reason);
      errorCode = err.code;
      if (isUpload) metrics.uploadFinished('aborted');
      if (err.status >= 500 && err.status !== 502 && err.status !== 503 && err.status !== 504 && err.status !== 507) {
        log.error('request failed', { requestId, err: caught });
      } else if (err.status >= 500) {
        log.warn('upstream or capacity failure', { requestId, code: err.code, message: err.message, cause: err.cause });
      }
      answerError(req, res, err);
    } finally {
      if (isUpload) uploadsInFlight -= 1;
      if (bySocket.get(socket) === entry) bySocket.delete(socket);
      const finish = (): void => {
        res.off('close', onClose);
        inFlight.delete(entry);
        const status = errorCode === 'CLIENT_ABORTED' ? 499 : res.statusCode;
        const bytesIn = socket.bytesRead - readAtStart;
        const bytesOut = socket.bytesWritten - writtenAtStart;
        const durationSeconds = Number(process.hrtime.bigint() - started) / 1e9;
        metrics.observeRequest({ route: route?.name ?? 'unknown', method: req.method ?? 'GET', status, durationSeconds, bytesIn, bytesOut });
        log.info('request', {
          requestId,
          method: req.method,
          path: safePath(req.url),
          status,
          bytesIn,
          bytesOut,
          durationMs: Math.round(durationSeconds * 1000),
          ...(errorCode === null ? {} : { error: errorCode }),
        });
        resolveDone();
      };
      if (res.writableFinished || res.destroyed) finish();
      else res.once('close', finish);
    }
  }

  async function shutdown(graceMs: number): Promise<{ aborted: number }> {
    shuttingDown = true;
    server.close();
    server.closeIdleConnections();
    const all = (): Promise<unknown> => Promise.all([...inFlight].map((e) => e.done));
    let timer: NodeJS.Timeout | undefined;
    const timedOut = await Promise.race([
      all().then(() => false),
      new Promise<boolean>((r) => (timer = setTimeout(() => r(true), graceMs))),
    ]);
    clearTimeout(timer);
    let aborted = 0;
    if (timedOut) {
      for (const e of inFlight) {
        aborted += 1;
        e.controller.abort(new ServiceUnavailableError('SHUTTING_DOWN', 'The server shut down before the transfer finished'));
      }
      await Promise.race([all(), new Promise((r) => setTimeout(r, 5_000).unref())]);
    }
    server.closeAllConnections();
    return { aborted };
  }

  return { server, shutdown };
}

/** Rejects as soon as the signal aborts, so a handler stuck on I/O is not waited for. */
function abortable(work: Promise<void>, signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise((resolve, reject) => {
    const onAbort = (): void => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    work.then(
      () => {
        signal.removeEventListener('abort', onAbort);
        resolve();
      },
      (err: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(err);
      },
    );
  });
}

/** Sends the JSON error if the answer has not started; otherwise breaks the response off. */
function answerError(req: IncomingMessage, res: ServerResponse, err: SluiceError): void {
  if (res.headersSent || res.destroyed || err instanceof ClientAbortedError) {
    res.destroy();
    return;
  }
  if (hasUnreadBody(req)) {
    // The rest of the body is unwanted: say so, and read what is already on its way (without
    // storing it) so the client sees this answer rather than a reset.
    res.setHeader('connection', 'close');
    req.resume();
  }
  // Headers that a handler set for a success (content-length, etag...) must not leak into the error.
  for (const name of res.getHeaderNames()) if (name !== 'x-request-id' && name !== 'connection') res.removeHeader(name);
  sendError(res, err);
}

function hasUnreadBody(req: IncomingMessage): boolean {
  if (req.complete || req.readableEnded) return false;
  const length = req.headers['content-length'];
  return req.headers['transfer-encoding'] !== undefined || (length !== undefined && length !== '0');
}

async function checkDeclaredLength(req: IncomingMessage, route: Route, deps: AppDeps): Promise<void> {
  const header = req.headers['content-length'];
  if (header === undefined || !route.storesBody) return;
  const declared = Number(header);
  if (!Number.isSafeInteger(declared)) return; // Node's parser has already rejected nonsense
  const { minFreeBytes } = deps.config;
  // A raw body is one file; a multipart body may carry several (MAX_REQUEST_BYTES, which
  // defaults to MAX_FILE_BYTES, so an oversized upload is refused before it is sent).
  const multipart = /^\s*multipart\//i.test(req.headers['content-type'] ?? '');
  const maxRequestBytes = multipart ? deps.config.maxRequestBytes : deps.config.maxFileBytes;
  if (declared > maxRequestBytes) {
    throw new LimitExceededError(
      multipart ? 'REQUEST_TOO_LARGE' : 'FILE_TOO_LARGE',
      `The body (${declared} bytes) is over the limit of ${maxRequestBytes} bytes`,
      maxRequestBytes,
    );
  }
  const free = await deps.store.freeBytes();
  if (free !== null && declared > free - minFreeBytes) {
    throw new LimitExceededError(
      'NOT_ENOUGH_SPACE',
      `The body (${declared} bytes) does not fit in the free space of the store (${Math.max(0, free - minFreeBytes)} bytes usable)`,
      Math.max(0, free - minFreeBytes),
    );
  }
}

function authorized(req: IncomingMessage, token: string | null): boolean {
  if (token === null) return true;
  const header = req.headers.authorization ?? '';
  const match = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(header);
  if (match === null) return false;
  // Compare digests, so neither the length nor the content of the token leaks through timing.
  const given = createHash('sha256').update(match[1] as string).digest();
  const wanted = createHash('sha256').update(token).digest();
  return timingSafeEqual(given, wanted);
}

function parseTarget(target: string | undefined): URL {
  try {
    return new URL(target ?? '/', 'http://sluice.invalid');
  } catch {
    throw new NotFoundError('Malformed request target');
  }
}

/** The path without its query: query strings may carry tokens or signed URLs. */
function safePath(target: string | undefined): string {
  const t = target ?? '/';
  const q = t.indexOf('?');
  return q === -1 ? t : t.slice(0, q);
}

