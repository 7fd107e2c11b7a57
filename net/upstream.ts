import { STATUS_CODES, request as httpRequest, type IncomingHttpHeaders, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { urlToHttpOptions } from 'node:url';
import { BadGatewayError, GatewayTimeoutError, RangeNotSatisfiableError, SluiceError, UpstreamStatusError } from '../lib/errors.js';
import { assertPublicLiteral, createGuardedLookup, isAllowedHost } from './ssrf.js';
import { UpstreamBody } from './upstream-body.js';

/** Issue 6: at most 5 redirects (the Fetch standard allows 20, curl 50; we are not a browser). */
export const MAX_REDIRECTS = 5;
/** RFC 9110 15.4: the redirections that carry a Location to follow. 300 and 304 are not among them. */
const REDIRECT_STATUSES = new Set([301, 302, 303, 307, 308]);
const USER_AGENT = 'sluice';

const guardedLookup = createGuardedLookup();

export interface UpstreamOptions {
  /** `GET` (the default) or `HEAD`, on every hop. */
  readonly method?: 'GET' | 'HEAD';
  /** Request headers beyond our own (the client's `Range`, `If-Range`); never hop-by-hop ones. */
  readonly headers: Readonly<Record<string, string>>;
  /** Time allowed from the first connect to the final response's headers (FETCH_TIMEOUT_MS). */
  readonly timeoutMs: number;
  /** FETCH_ALLOW: hosts exempt from the SSRF guard. */
  readonly allow: readonly string[];
  /** Aborts everything (the client went away); the reason is what the caller rejects with. */
  readonly signal: AbortSignal;
  /** Told of every body byte received (metrics). */
  readonly onBytes?: (bytes: number) => void;
}

/** The final, successful (2xx) response of the redirect chain. */
export interface UpstreamResponse {
  /** The URL that answered, after redirects. */
  readonly url: URL;
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  /** The body; destroy it to drop the upstream connection. */
  readonly body: UpstreamBody;
}

/**
 * Opens `GET url` with node:http(s) (not global fetch: undici buffers and pools in ways we do
 * not control), following redirects by hand so that every hop passes the SSRF guard. Rejects
 * with ForbiddenError (403), BadGatewayError (502: unreachable, non-2xx, bad redirect) or
 * GatewayTimeoutError (504), or with the signal's reason once it aborts.
 */
export async function openUpstream(start: URL, options: UpstreamOptions): Promise<UpstreamResponse> {
  if (options.signal.aborted) throw options.signal.reason;
  const guard = new AbortController();
  const onAbort = (): void => guard.abort(options.signal.reason);
  options.signal.addEventListener('abort', onAbort, { once: true });
  const timer = setTimeout(
    () => guard.abort(new GatewayTimeoutError('UPSTREAM_TIMEOUT', `The origin did not answer within ${options.timeoutMs} ms`)),
    options.timeoutMs,
  );
  try {
    let url = start;
    for (let redirects = 0; ; redirects += 1) {
      const hop = await requestOnce(url, options, guard.signal);
      const status = hop.response.statusCode ?? 0;
      const location = hop.response.headers.location;
      if (REDIRECT_STATUSES.has(status) && location !== undefined) {
        // The redirect's own body is of no interest; the connection was ours alone (agent: false).
        hop.body.destroy();
        if (redirects === MAX_REDIRECTS) {
          throw new BadGatewayError('TOO_MANY_REDIRECTS', `The origin redirected more than ${MAX_REDIRECTS} times`);
        }
        url = resolveRedirect(location, url);
        continue;
      }
      if (status < 200 || status > 299) {
        hop.body.destroy();
        // The client's own Range was out of bounds: its answer, not an origin failure.
        if (status === 416 && options.headers.range !== undefined) throw new RangeNotSatisfiableError(completeLength(hop.response.headers['content-range']));
        throw new UpstreamStatusError(status, `The origin answered ${status} ${STATUS_CODES[status] ?? ''}`.trimEnd());
      }
      if (!plainTransferCoding(hop.response.headers['transfer-encoding'])) {
        hop.body.destroy();
        throw new BadGatewayError('UPSTREAM_TRANSFER_CODING', `The origin sent its body with Transfer-Encoding: ${hop.response.headers['transfer-encoding']}; only chunked is understood`);
      }
      // From here on FETCH_TIMEOUT_MS is the body's idle timeout (UpstreamBody), and the client
      // going away (options.signal, watched by the body) stops the transfer.
      return { url, status, headers: hop.response.headers, body: hop.body };
    }
  } finally {
    clearTimeout(timer);
    options.signal.removeEventListener('abort', onAbort);
  }
}

/** The complete length in an origin's 416 Content-Range (`bytes *` then `/N`, RFC 9110 14.4); null when it sent none we can read. */
function completeLength(contentRange: string | undefined): number | null {
  const m = /^\s*bytes\s+\*\/(\d+)\s*$/i.exec(contentRange ?? '');
  const n = m === null ? NaN : Number(m[1]);
  return Number.isSafeInteger(n) ? n : null;
}

/**
 * RFC 9112 6.1: Node decodes `chunked` and nothing else. A body sent as `gzip, chunked` would
 * reach the client still compressed, with nothing left to say so (Transfer-Encoding is hop-by-hop).
 */
function plainTransferCoding(value: string | undefined): boolean {
  if (value === undefined) return true;
  return value.split(',').every((t) => ['chunked', 'identity', ''].includes(t.trim().toLowerCase()));
}

/** RFC 9110 10.2.2: Location is a URI reference, resolved against the URL that answered. */
function resolveRedirect(location: string, base: URL): URL {
  let next: URL;
  try {
    next = new URL(location, base);
  } catch (err) {
    throw new BadGatewayError('BAD_REDIRECT', 'The origin redirected to an invalid URL', { cause: err });
  }
  if (next.protocol !== 'http:' && next.protocol !== 'https:') {
    throw new BadGatewayError('BAD_REDIRECT', `The origin redirected to a ${next.protocol} URL; only http: and https: are followed`);
  }
  next.hash = '';
  return next;
}

interface Hop {
  readonly response: IncomingMessage;
  readonly body: UpstreamBody;
}

/** One request, one response's headers. The guard runs here, for every hop. */
function requestOnce(url: URL, options: UpstreamOptions, signal: AbortSignal): Promise<Hop> {
  return new Promise<Hop>((resolve, reject) => {
    if (signal.aborted) return reject(signal.reason);
    const allowed = isAllowedHost(url, options.allow);
    if (!allowed) assertPublicLiteral(url);
    const send = url.protocol === 'https:' ? httpsRequest : httpRequest;
    const request = send({
      ...urlToHttpOptions(url),
      method: options.method ?? 'GET',
      headers: {
        ...options.headers,
        'user-agent': USER_AGENT,
        // RFC 9110 12.5.3: the bytes as stored, so Content-Length and ranges mean what they say.
        'accept-encoding': 'identity',
      },
      // A connection of our own: no pooled socket checked for another request, and Node closes
      // it after the response (which UpstreamBody relies on to spot bytes beyond the body).
      agent: false,
      ...(allowed ? {} : { lookup: guardedLookup }),
    });
    const onAbort = (): void => void request.destroy(signal.reason instanceof Error ? signal.reason : undefined);
    signal.addEventListener('abort', onAbort, { once: true });
    // Stays for the request's whole life: an 'error' without a listener would crash the process.
    request.on('error', (err: Error) => {
      signal.removeEventListener('abort', onAbort);
      reject(toUpstreamError(err, url, signal));
    });
    request.once('response', (response: IncomingMessage) => {
      signal.removeEventListener('abort', onAbort);
      // Wrapped at once: a small body, and extra bytes behind it, can arrive and be found
      // malformed within the very socket read that delivered these headers.
      // RFC 9112 6.3: no body after HEAD, 204 or 304, whatever Content-Length says.
      const bodyless = options.method === 'HEAD' || response.statusCode === 204 || response.statusCode === 304;
      resolve({ response, body: new UpstreamBody(request, response, options.timeoutMs, options.signal, bodyless, options.onBytes) });
    });
    request.end();
  });
}

function toUpstreamError(err: Error, url: URL, signal: AbortSignal): Error {
  if (signal.aborted) return signal.reason instanceof Error ? signal.reason : err;
  if (err instanceof SluiceError) return err; // the guard's ForbiddenError
  const code = (err as NodeJS.ErrnoException).code;
  return new BadGatewayError('UPSTREAM_UNREACHABLE', `Could not get an answer from ${url.host}: ${code ?? err.message}`, { cause: err });
}
