import { randomBytes, timingSafeEqual, createHash } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerOptions, type ServerResponse } from 'node:http';
import { createServer as createTlsServer, type Server as TlsServer } from 'node:https';
import type { Socket } from 'node:net';
import type { Config } from './config.js';
import type { RequestContext } from './context.js';
import {
  ClientAbortedError,
  LimitExceededError,
  MalformedRequestError,
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
import { checkDeclaredUpload, fileLimit } from '../handlers/upload-limits.js';
import { isMultipartFormData } from '../multipart/content-type.js';
import { hasLink, linkKey, verifyLink, type LinkGrant } from './signed-links.js';
import type { TlsPair } from './tls.js';
import { addCorsHeaders, allowedOrigin, answerPreflight, isPreflight } from './cors.js';
import { isStickyHeader } from './sticky-headers.js';
import { headerValue } from './header-value.js';
import { startExpirySweep } from '../resumable/expiry-sweep.js';
import { FetchJobs } from '../jobs/fetch-jobs.js';

export interface AppDeps {
  readonly config: Config;
  readonly store: Store;
  readonly log: Logger;
  readonly metrics: Metrics;
  /** With a pair, the server speaks HTTPS (HTTP/1.1 only) on its port; null or absent: plain HTTP. */
  readonly tls?: TlsPair | null;
  /** How often expired resumable uploads are looked for (default: every minute); tests shorten it. */
  readonly expirySweepMs?: number;
}

export interface App {
  /** An `https.Server` under TLS: the same HTTP server with TLS in front of each connection. */
  readonly server: Server;
  /** New connections use `pair` from now on; connections already open keep theirs. */
  setTlsPair(pair: TlsPair): void;
  /**
   * Stops accepting, lets in-flight requests finish for up to `graceMs`, then aborts the rest
   * (their files are removed by their handlers) and resolves once every request has ended.
   */
  shutdown(graceMs: number): Promise<{ aborted: number }>;
}

/** A request in flight, as the server (not the handler) tracks it. */
interface InFlight {
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  readonly controller: AbortController;
  readonly done: Promise<void>;
}

/** X-Request-Id values we echo instead of replacing: short and free of anything a log could choke on. */
const SANE_REQUEST_ID = /^[A-Za-z0-9._:@/+=-]{1,128}$/;

/**
 * How long a connection stays open, half-closed, after an answer sent while its body was still
 * arriving (see lingerThenClose). nginx's lingering_timeout is 5 s as well.
 */
const LINGER_MS = 5_000;

/** Idle keep-alive connections; see createServer's options below. */
const KEEP_ALIVE_MS = 65_000;

/** How long shutdown waits, after aborting, for handlers to finish removing their files. */
const ABORT_WAIT_MS = 5_000;

/** Socket byte counters at the end of the previous request on it, for per-request byte counts. */
interface Counted {
  read: number;
  written: number;
}

export function createApp(deps: AppDeps): App {
  const { config, log, metrics } = deps;
  const fetchJobs = new FetchJobs(deps);
  const inFlight = new Set<InFlight>();
  const bySocket = new WeakMap<Socket, InFlight>();
  const counted = new WeakMap<Socket, Counted>();
  // Sockets whose body broke mid-request; the parser reports the same error for every later chunk.
  const brokenBody = new WeakSet<Socket>();
  let uploadsInFlight = 0;
  let shuttingDown = false;
  // Incomplete resumable uploads past UPLOAD_EXPIRY_MS go at start-up and then every minute.
  const expirySweep = startExpirySweep({ store: deps.store, log, metrics, ...(deps.expirySweepMs === undefined ? {} : { intervalMs: deps.expirySweepMs }) });

  const httpOptions: ServerOptions = {
    // The absolute request timeout (300 s by default) would cut any long upload; the idle
    // timeout below (server.timeout) is what stops stalled clients instead.
    requestTimeout: 0,
    headersTimeout: config.headersTimeoutMs,
    // An idle keep-alive connection is kept this long. Behind a load balancer it must outlast
    // the balancer's own idle timeout (AWS ALB: 60 s), or the balancer reuses a connection we
    // are closing and its client gets a 502. nginx keeps 75 s; Node's 5 s is too short for that.
    keepAliveTimeout: KEEP_ALIVE_MS,
    // Check headersTimeout every second, not every 30 s, so slow-header clients are cut on time.
    connectionsCheckingInterval: 1_000,
  };
  const onRequest = (req: IncomingMessage, res: ServerResponse): void => void handle(req, res, false);
  const tls = deps.tls ?? null;
  const server =
    tls === null
      ? createServer(httpOptions, onRequest)
      : // node:https is node:http's server behind TLS (HTTP/1.1; ALPN says so to clients that
        // offer h2). Its type is not http.Server's, its behaviour is: every method used below exists.
        (createTlsServer(
          { ...httpOptions, cert: tls.cert, key: tls.key, ALPNProtocols: ['http/1.1'], minVersion: 'TLSv1.2', handshakeTimeout: config.headersTimeoutMs },
          onRequest,
        ) as unknown as Server);
  if (tls !== null) {
    // A failed handshake: a plain-HTTP request on this port (its first bytes are no TLS record),
    // a client that does not trust the certificate, a scanner. Node closes the connection; it
    // never reaches a handler, so nothing is served.
    server.on('tlsClientError', (err: NodeJS.ErrnoException) => log.debug('TLS handshake failed', { code: err.code ?? null, message: err.message }));
  }
  // A client that half-closes once its request is sent (`nc -q`, `socat`, scripts calling
  // shutdown(SHUT_WR)) still reads the answer. Node's default aborts the request at the FIN, so
  // such an upload was dropped and answered with nothing. A FIN in the middle of a body is still
  // a broken request (HPE_INVALID_EOF_STATE, clientError below). `httpAllowHalfOpen` is a
  // long-standing but untyped property of http.Server; test/server.test.ts checks its effect.
  (server as Server & { httpAllowHalfOpen: boolean }).httpAllowHalfOpen = true;
  // Expect: 100-continue: answer 401/413/503 before the client sends the body.
  server.on('checkContinue', (req: IncomingMessage, res: ServerResponse) => void handle(req, res, true));
  server.on('checkExpectation', (req: IncomingMessage, res: ServerResponse) => {
    if (hasUnreadBody(req)) {
      req.resume();
      lingerThenClose(req.socket);
    }
    res.writeHead(417, { 'content-type': 'application/json; charset=utf-8', connection: 'close' });
    res.end(`${JSON.stringify({ error: { code: 'EXPECTATION_FAILED', message: 'Only 100-continue is supported' } })}\n`);
  });
  server.on('clientError', (err: NodeJS.ErrnoException, socket: Socket) => {
    if (brokenBody.has(socket)) return; // already handed to the request's handler, below
    // A reset peer reads nothing; a socket we already ended must not get a second answer.
    if (!socket.writable || err.code === 'ECONNRESET') return void socket.destroy();
    const current = bySocket.get(socket);
    if (err.code === 'HPE_INVALID_EOF_STATE' && current !== undefined) {
      // The client closed its side in the middle of the body: it gave up, nobody reads an answer.
      current.controller.abort(new ClientAbortedError());
      return void socket.destroy();
    }
    if (current !== undefined) {
      // The body broke mid-request (bad chunk framing, ...). The handler owns this socket's answer:
      // abort it, and the one error path answers 400 and closes. Writing a raw answer here could
      // interleave with the response the handler is writing.
      brokenBody.add(socket);
      current.controller.abort(new MalformedRequestError('BAD_HTTP_BODY', `The HTTP request body is malformed (${err.code ?? err.message})`));
      return;
    }
    const status = err.code === 'HPE_HEADER_OVERFLOW' ? 431 : err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? 408 : 400;
    const code = status === 431 ? 'HEADERS_TOO_LARGE' : status === 408 ? 'HEADERS_TIMEOUT' : 'BAD_REQUEST';
    const body = `${JSON.stringify({ error: { code, message: err.code ?? 'Bad request' } })}\n`;
    // No request object exists (the head never completed): still one access line, so that
    // slowloris cuts and oversized heads show up in the log.
    log.info('request', { requestId: null, method: null, path: null, status, bytesIn: socket.bytesRead - (counted.get(socket)?.read ?? 0), bytesOut: 0, durationMs: null, error: code });
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
    // The body is all in and no answer has started: the wait is the server's own (the final
    // sync of an upload, the origin of POST /fetch, a takeover), not an idle client's. The
    // answer's first bytes re-arm the timer; a stalled origin or store has its own timeout.
    if (current.req.complete && !current.res.headersSent) return;
    current.controller.abort(new RequestTimeoutError(`No data for ${config.idleTimeoutMs} ms`));
  });

  async function handle(req: IncomingMessage, res: ServerResponse, expectsContinue: boolean): Promise<void> {
    const started = process.hrtime.bigint();
    // Kept here: a handler's pipeline may detach req.socket when it destroys the request.
    const socket = req.socket;
    const incoming = req.headers['x-request-id'];
    const requestId = typeof incoming === 'string' && SANE_REQUEST_ID.test(incoming) ? incoming : randomBytes(12).toString('base64url');
    res.setHeader('x-request-id', requestId);
    if (shuttingDown) res.setHeader('connection', 'close');

    const controller = new AbortController();
    let resolveDone: () => void = () => {};
    const entry: InFlight = { req, res, controller, done: new Promise((r) => (resolveDone = r)) };
    // Settles when the handler itself does, which may be after its answer was sent (an abort
    // answers at once while the handler still removes its files). Shutdown waits for it.
    let handlerSettled: Promise<unknown> = Promise.resolve();
    inFlight.add(entry);
    bySocket.set(socket, entry);
    // The client going away (before the answer is complete) aborts whatever the handler is doing.
    const onClose = (): void => {
      if (!res.writableFinished) controller.abort(new ClientAbortedError());
    };
    res.once('close', onClose);

    let route: Route | null = null;
    let errorCode: string | null = null;
    let holdsSlot = false;
    let isUpload = false;
    try {
      const url = parseTarget(req.url);
      const origin = allowedOrigin(req, config.corsOrigins);
      if (origin !== null) addCorsHeaders(res, origin);
      const match = routeRequest(req.method ?? 'GET', url.pathname, headerValue(req.headers['x-http-method-override']), config);
      route = match.route;
      match.route?.prelude?.(req, res);
      if (origin !== null && isPreflight(req)) {
        // Before authentication: browsers send no credentials on a preflight.
        answerPreflight(req, res, match.kind === 'not-found' ? [] : match.methods);
        return;
      }
      if (match.kind === 'not-found') throw new NotFoundError(`No route for ${url.pathname}`);
      if (match.kind === 'method') throw new MethodNotAllowedError(match.allowed);
      // The bearer token, else a signed link for exactly this request (403 LINK_* if it is bad).
      let grant: LinkGrant | null = null;
      if (match.route.auth && !authorized(req, config.authToken)) {
        const key = linkKey(config);
        if (key === null || !hasLink(url.searchParams)) throw new UnauthorizedError();
        grant = verifyLink(key, match.method, url.pathname, url.searchParams);
      }
      if (match.route.upload) {
        if (shuttingDown) throw new ServiceUnavailableError('SHUTTING_DOWN', 'The server is shutting down', 5);
        if (uploadsInFlight >= config.maxConcurrentUploads) {
          throw new ServiceUnavailableError('TOO_MANY_UPLOADS', `More than ${config.maxConcurrentUploads} uploads in flight; retry later`, 5);
        }
        // Take the slot before the await below, or concurrent requests could all pass the check.
        uploadsInFlight += 1;
        holdsSlot = true;
        await checkDeclaredLength(req, match.route, deps, fileLimit({ config, grant }));
        // Counted as an upload (in flight, then stored or aborted) only once it may send its body.
        isUpload = true;
        metrics.uploadStarted();
      }
      let continued = !expectsContinue;
      // Once, and only while no answer has started: a handler that refuses the request after
      // reading its headers answers instead (the body is then never sent).
      const sendContinue = (): void => {
        if (continued || res.headersSent) return;
        continued = true;
        res.writeContinue();
      };
      if (!match.route.deferContinue) sendContinue();
      const ctx: RequestContext = {
        req,
        res,
        url,
        method: match.method,
        config,
        store: deps.store,
        signal: controller.signal,
        requestId,
        log,
        metrics,
        sendContinue,
        grant,
        fetchJobs,
      };
      const work = match.handler(ctx);
      handlerSettled = work.catch(() => {});
      await abortable(work, controller.signal);
      if (isUpload) metrics.uploadFinished('ok');
    } catch (caught) {
      let err = toSluiceError(caught);
      // An abort carries its reason (timeout, shutdown, client gone) as the error to report.
      if (controller.signal.aborted && !(caught instanceof SluiceError)) err = toSluiceError(controller.signal.reason);
      errorCode = err.code;
      if (isUpload) metrics.uploadFinished('aborted');
      if (err.status >= 500 && err.status !== 501 && err.status !== 502 && err.status !== 503 && err.status !== 504 && err.status !== 507) {
        log.error('request failed', { requestId, err: caught });
      } else if (err.status >= 500) {
        log.warn('upstream, capacity or unsupported-feature failure', { requestId, code: err.code, message: err.message, cause: err.cause });
      }
      // A server-side abort (idle timeout, shutdown past its grace) while the body is unfinished:
      // the client is stalled or we are leaving, so after the answer the connection goes too.
      // That also ends the body the handler is waiting on, so its files are removed at once.
      const hangUp = controller.signal.aborted && controller.signal.reason === err && (err instanceof RequestTimeoutError || err.code === 'SHUTTING_DOWN');
      answerError(req, res, socket, err, hangUp);
    } finally {
      if (holdsSlot) uploadsInFlight -= 1;
      if (bySocket.get(socket) === entry) bySocket.delete(socket);
      const finish = (): void => {
        res.off('close', onClose);
        const status = errorCode === 'CLIENT_ABORTED' ? 499 : res.statusCode;
        // Bytes since the previous request on this connection ended: this request's head and
        // body, and this answer. (Counting from the start of this call would miss the head and
        // whatever part of the body arrived with it.)
        const before = counted.get(socket) ?? { read: 0, written: 0 };
        const bytesIn = socket.bytesRead - before.read;
        const bytesOut = socket.bytesWritten - before.written;
        counted.set(socket, { read: socket.bytesRead, written: socket.bytesWritten });
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
        void handlerSettled.then(() => {
          inFlight.delete(entry);
          resolveDone();
        });
      };
      if (res.writableFinished || res.destroyed) finish();
      else res.once('close', finish);
    }
  }

  async function shutdown(graceMs: number): Promise<{ aborted: number }> {
    shuttingDown = true;
    expirySweep.stop();
    // Fetch jobs stop at once: their bytes are kept, and they go on after the restart.
    const jobsStopped = fetchJobs.stop();
    server.close();
    server.closeIdleConnections();
    const all = (): Promise<unknown> => Promise.all([...inFlight].map((e) => e.done));
    const timedOut = await waitAtMost(all(), graceMs);
    let aborted = 0;
    if (timedOut) {
      for (const e of inFlight) {
        aborted += 1;
        e.controller.abort(new ServiceUnavailableError('SHUTTING_DOWN', 'The server shut down before the transfer finished'));
      }
      // Most handlers settle at once; wait a little for any that must first notice the abort.
      // Not unref'd: while it runs, this wait is what keeps a stopping process alive.
      await waitAtMost(all(), ABORT_WAIT_MS);
    }
    server.closeAllConnections();
    await jobsStopped;
    // Destroying the last connections ends the bodies that handlers still read from; give them
    // a moment to remove their partial files before the caller exits the process.
    await waitAtMost(all(), ABORT_WAIT_MS);
    return { aborted };
  }

  function setTlsPair(pair: TlsPair): void {
    if (tls === null) throw new Error('the server was started without TLS');
    (server as unknown as TlsServer).setSecureContext({ cert: pair.cert, key: pair.key, minVersion: 'TLSv1.2' });
  }

  return { server, shutdown, setTlsPair };
}

/** Resolves when `work` does or after `ms`, whichever comes first; true if the time ran out. */
async function waitAtMost(work: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timedOut = await Promise.race([work.then(() => false), new Promise<boolean>((r) => (timer = setTimeout(() => r(true), ms)))]);
  clearTimeout(timer);
  return timedOut;
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

/**
 * Sends the JSON error if the answer has not started; otherwise breaks the response off.
 * `hangUp`: with the body unfinished, close the connection once the answer is out instead of
 * lingering for the rest of the body.
 */
function answerError(req: IncomingMessage, res: ServerResponse, socket: Socket, err: SluiceError, hangUp = false): void {
  if (res.headersSent || res.destroyed || err instanceof ClientAbortedError) {
    res.destroy();
    return;
  }
  if (hasUnreadBody(req)) {
    // The rest of the body is unwanted: say so, read what is already on its way (without
    // storing it), and close gently, so the client sees this answer rather than a reset.
    res.setHeader('connection', 'close');
    req.resume();
    if (hangUp) {
      // Destroying the request destroys its socket; 'finish' means the answer is in the kernel's
      // hands, which still delivers it before the FIN.
      res.once('finish', () => req.destroy());
    } else {
      lingerThenClose(socket);
    }
  }
  // Headers that a handler set for a success (content-length, etag...) must not leak into the error.
  // CORS and the tus version (sticky headers) stay: they belong to the request, not to its outcome.
  for (const name of res.getHeaderNames()) {
    if (name !== 'x-request-id' && name !== 'connection' && !isStickyHeader(res, name)) res.removeHeader(name);
  }
  sendError(res, err);
}

/**
 * Node's server ends a `Connection: close` answer with `socket.destroySoon()`: FIN, then close
 * once the answer is flushed. If body bytes are still arriving then, closing makes the kernel
 * reset the connection, and a client that is still sending (curl without Expect, fetch) fails
 * with EPIPE/ECONNRESET instead of reading our 401/413. So for this socket, half-close instead
 * and keep reading (the parser discards the body) until the client closes its side or LINGER_MS
 * passes: nginx's lingering_close, for the same reason.
 */
function lingerThenClose(socket: Socket): void {
  socket.destroySoon = (): void => {
    if (socket.writable) socket.end();
    // The client already closed its side: nothing left to drain.
    if (socket.readableEnded || !socket.readable) return void socket.destroy();
    const close = (): void => {
      clearTimeout(timer);
      socket.destroy();
    };
    // unref: a lingering client must not keep a stopping process alive.
    const timer = setTimeout(close, LINGER_MS).unref();
    socket.once('end', close);
    socket.once('close', () => clearTimeout(timer));
  };
}

function hasUnreadBody(req: IncomingMessage): boolean {
  if (req.complete || req.readableEnded) return false;
  const length = req.headers['content-length'];
  return req.headers['transfer-encoding'] !== undefined || (length !== undefined && length !== '0');
}

async function checkDeclaredLength(req: IncomingMessage, route: Route, deps: AppDeps, maxFileBytes: number): Promise<void> {
  const header = req.headers['content-length'];
  if (header === undefined || !route.storesBody) return;
  const declared = Number(header);
  if (!Number.isSafeInteger(declared)) return; // Node's parser has already rejected nonsense
  const { minFreeBytes } = deps.config;
  // A raw body is one file; a multipart body may carry several, and is refused only when no
  // acceptable body could be as long (handlers/upload-limits.ts).
  const multipart = route.bodyIsOneFile !== true && isMultipartFormData(req.headers['content-type']);
  checkDeclaredUpload(declared, multipart, deps.config, maxFileBytes);
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

