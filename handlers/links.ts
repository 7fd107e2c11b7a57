import type { RequestContext } from '../lib/context.js';
import { MalformedRequestError, NotFoundError } from '../lib/errors.js';
import { readJsonBody } from '../lib/json-body.js';
import { sendJson } from '../lib/respond.js';
import { MAX_EXPIRES_IN_SECONDS, isGrantable, isUploadGrant, linkKey, methodsFor, signLink, type LinkGrant } from '../lib/signed-links.js';
import { parseSize } from '../lib/size.js';

/** A link request is a few dozen bytes of JSON. */
const MAX_LINK_REQUEST_BYTES = 16 * 1024;
/** `expiresIn` when the request leaves it out: an hour. */
const DEFAULT_EXPIRES_IN_SECONDS = 3600;
/** A Host header we will put into a URL: a name or address and an optional port, nothing else. */
const SANE_HOST = /^(?:[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(?::[0-9]{1,5})?$/;

/**
 * `POST /links` (bearer token required): `{"method": "GET", "path": "/files/<id>",
 * "expiresIn": 3600, "maxBytes"?: 1073741824}` → `201 {"url", "expires"}`. The url is absolute,
 * from PUBLIC_URL when set, else from the request's Host (and https on a TLS connection).
 * Without AUTH_TOKEN everything is open, and there are no links: 404.
 */
export async function handleCreateLink(ctx: RequestContext): Promise<void> {
  const key = linkKey(ctx.config);
  if (key === null) throw new NotFoundError('No route for /links: without AUTH_TOKEN every route is open, so there are no signed links');
  const grant = parseLinkRequest(await readJsonBody(ctx.req, MAX_LINK_REQUEST_BYTES, 'POST /links'), Date.now());
  const url = `${baseUrl(ctx)}${grant.path}?${signLink(key, grant).toString()}`;
  // The url is a credential: it goes to the client only, never to a log line.
  sendJson(ctx.res, 201, { url, expires: new Date(grant.expires * 1000).toISOString() });
}

function bad(message: string): MalformedRequestError {
  return new MalformedRequestError('BAD_LINK_REQUEST', message);
}

/** The grant a `POST /links` body asks for, checked: only requests a link may grant (lib/signed-links.ts). */
export function parseLinkRequest(body: unknown, now: number): LinkGrant {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw bad('The body must be a JSON object: {"method": "GET", "path": "/files/<id>", "expiresIn": 3600, "maxBytes"?: 1073741824}');
  }
  const { method, path, expiresIn, maxBytes } = body as Record<string, unknown>;
  if (typeof method !== 'string' || !/^[A-Za-z]{1,16}$/.test(method)) throw bad('"method" must be an HTTP method such as "GET" or "POST"');
  if (typeof path !== 'string' || !path.startsWith('/') || /[?#]/.test(path) || path.length > 2048) {
    throw bad('"path" must be a path such as "/files/<id>", without a query');
  }
  const verb = method.toUpperCase();
  // The link is verified against the path as the server parses request targets: hand out that form.
  const canonical = new URL(path, 'http://sluice.invalid').pathname;
  if (canonical !== path) throw bad(`"path" must be in normal form (${JSON.stringify(canonical)})`);
  if (!isGrantable(verb, path)) {
    throw bad(`A link cannot grant ${verb} ${path}: links grant GET, HEAD or DELETE /files/<id>, POST or PUT /upload, PUT /upload/<name>, POST /uploads`);
  }
  const seconds = expiresIn === undefined ? DEFAULT_EXPIRES_IN_SECONDS : expiresIn;
  if (typeof seconds !== 'number' || !Number.isInteger(seconds) || seconds < 1 || seconds > MAX_EXPIRES_IN_SECONDS) {
    throw bad(`"expiresIn" must be a whole number of seconds from 1 to ${MAX_EXPIRES_IN_SECONDS} (7 days)`);
  }
  let max: number | null = null;
  if (maxBytes !== undefined && maxBytes !== null) {
    if (!isUploadGrant(verb, path)) throw bad('"maxBytes" is for upload links (POST or PUT)');
    max = typeof maxBytes === 'number' ? maxBytes : typeof maxBytes === 'string' ? parseSize(maxBytes) : null;
    if (max === null || !Number.isSafeInteger(max) || max < 0) throw bad('"maxBytes" must be a number of bytes (or a size such as "10GiB")');
  }
  // Whole seconds, rounded up: a link never lives shorter than asked.
  return { kind: 'link', methods: methodsFor(verb), path, expires: Math.ceil(now / 1000) + seconds, maxBytes: max };
}

/** `https://files.example.com` (PUBLIC_URL, any path prefix kept), else scheme and Host of this request. */
function baseUrl(ctx: RequestContext): string {
  const publicUrl = ctx.config.publicUrl;
  if (publicUrl !== null) return `${publicUrl.origin}${publicUrl.pathname.replace(/\/+$/, '')}`;
  const host = ctx.req.headers.host;
  if (host === undefined || !SANE_HOST.test(host)) throw bad('The request has no usable Host header: set PUBLIC_URL');
  const tls = (ctx.req.socket as { encrypted?: boolean }).encrypted === true;
  return `${tls ? 'https' : 'http'}://${host}`;
}
