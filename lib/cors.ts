import type { IncomingMessage, ServerResponse } from 'node:http';
import { setStickyHeader } from './sticky-headers.js';

/**
 * CORS (the Fetch standard's "CORS protocol") for `CORS_ORIGINS`: with no origins configured
 * nothing is added anywhere; otherwise an allowed `Origin` gets `Access-Control-Allow-Origin` on
 * every answer (errors included), the headers a tus or draft client must read are exposed, and
 * preflights are answered before authentication (a browser never sends credentials on one).
 */

/** What a browser script may read: the tus and draft fields, and those of downloads and errors. */
export const EXPOSED_HEADERS = [
  'Location',
  'Upload-Offset',
  'Upload-Length',
  'Upload-Expires',
  'Upload-Complete',
  'Upload-Limit',
  'Upload-Metadata',
  'Upload-Defer-Length',
  'Upload-Concat',
  'Upload-Draft-Interop-Version',
  'Tus-Resumable',
  'Tus-Version',
  'Tus-Extension',
  'Tus-Max-Size',
  'Tus-Checksum-Algorithm',
  'X-Request-Id',
  'Content-Disposition',
  'Content-Range',
  'Accept-Ranges',
  'Repr-Digest',
  'Content-Digest',
  'ETag',
  'Retry-After',
  'WWW-Authenticate',
].join(', ');

/** Preflight results may be cached this long (seconds); browsers cap it themselves (Chromium: 2 h). */
const PREFLIGHT_MAX_AGE_S = 86_400;

/** A header list as `Access-Control-Request-Headers` carries it: tokens and commas only. */
const HEADER_LIST = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+(?:[ \t]*,[ \t]*[!#$%&'*+.^_`|~0-9A-Za-z-]+)*$/;

/** The allowed origin to echo, or null when the request has none or it is not allowed. */
export function allowedOrigin(req: IncomingMessage, origins: readonly string[]): string | null {
  if (origins.length === 0) return null;
  const origin = req.headers.origin;
  if (origin === undefined) return null;
  if (origins[0] === '*') return '*';
  return origins.includes(origin.toLowerCase()) ? origin : null;
}

/** A CORS preflight: OPTIONS with `Origin` and `Access-Control-Request-Method`. */
export function isPreflight(req: IncomingMessage): boolean {
  return req.method === 'OPTIONS' && req.headers.origin !== undefined && req.headers['access-control-request-method'] !== undefined;
}

/** Adds the headers every answer to an allowed origin carries (kept on error answers too). */
export function addCorsHeaders(res: ServerResponse, origin: string): void {
  setStickyHeader(res, 'access-control-allow-origin', origin);
  if (origin !== '*') setStickyHeader(res, 'vary', 'Origin');
  setStickyHeader(res, 'access-control-expose-headers', EXPOSED_HEADERS);
}

/** Answers a preflight: 204 with the methods the route takes and the request headers asked for. */
export function answerPreflight(req: IncomingMessage, res: ServerResponse, methods: readonly string[]): void {
  const asked = req.headers['access-control-request-headers'];
  res.statusCode = 204;
  res.setHeader('access-control-allow-methods', methods.join(', '));
  // Echo the names asked for (Authorization included: Access-Control-Allow-Headers: * would not
  // cover it), as long as they are header names at all.
  if (asked !== undefined && HEADER_LIST.test(asked.trim())) res.setHeader('access-control-allow-headers', asked.trim());
  res.setHeader('access-control-max-age', String(PREFLIGHT_MAX_AGE_S));
  res.setHeader('content-length', '0');
  res.end();
}
