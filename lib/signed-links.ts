/**
 * Expiring signed links: a URL that lets its holder make one kind of request (a method on a
 * path) without the bearer token, until it expires. The query carries `expires` (Unix seconds),
 * `max` (an upload link's largest file, when set) and `sig`, an HMAC-SHA256 over everything the
 * link grants: its kind, its methods, its path, its expiry and its maxBytes. Nothing else of the
 * request is signed, so `?filename=` can be added to an upload link.
 */
import { createHmac, hkdfSync, timingSafeEqual } from 'node:crypto';
import type { Config } from './config.js';
import type { RequestContext } from './context.js';
import { ForbiddenError } from './errors.js';

/**
 * `link`: made by `POST /links`. `upload`: made by sluice for one resumable upload that a link
 * created (see uploadLinkQuery), so the link's holder can go on with it.
 */
export type LinkKind = 'link' | 'upload';

/** What a signed link lets its holder do; on RequestContext.grant for a request it authorized. */
export interface LinkGrant {
  readonly kind: LinkKind;
  /** Upper-case methods, sorted: a GET link allows HEAD as well. */
  readonly methods: readonly string[];
  /** The exact path (no query), as `new URL()` normalizes it. */
  readonly path: string;
  /** Unix time in seconds; the link works while the clock is before it. */
  readonly expires: number;
  /** Largest file an upload through the link may store; null = MAX_FILE_BYTES alone. */
  readonly maxBytes: number | null;
}

/** A derived upload link reaches its upload as tus and the IETF draft do: offset, append, cancel, options. */
export const UPLOAD_METHODS: readonly string[] = ['DELETE', 'HEAD', 'OPTIONS', 'PATCH'];

/** Longest life `POST /links` grants, as S3 presigned URLs (7 days). */
export const MAX_EXPIRES_IN_SECONDS = 7 * 24 * 3600;

/** Bumped if the signed text ever changes, so old links fail instead of meaning something else. */
const SIGNED_PREFIX = 'sluice-link-v1';
/** HKDF info: the link key is never the token itself, and not usable as anything else. */
const KEY_LABEL = 'sluice signed links v1';
const SIG_BYTES = 32;
const SIG_FORMAT = /^[A-Za-z0-9_-]{43}$/; // 32 bytes, base64url without padding
const UINT = /^(0|[1-9][0-9]{0,15})$/;

/**
 * The requests a link may grant: downloads and deletes of one file, uploads. Never `/links`
 * itself (a link must not mint links), `/fetch` or `/proxy` (outbound requests), `/metrics`.
 */
export function isGrantable(method: string, path: string): boolean {
  if (/^\/files\/[^/]+$/.test(path)) return method === 'GET' || method === 'HEAD' || method === 'DELETE';
  if (path === '/upload') return method === 'POST' || method === 'PUT';
  if (/^\/upload\/[^/]+$/.test(path)) return method === 'PUT';
  if (path === '/uploads') return method === 'POST';
  return false;
}

/** Upload links may carry maxBytes; a download link has nothing to bound. */
export function isUploadGrant(method: string, path: string): boolean {
  return isGrantable(method, path) && (method === 'POST' || method === 'PUT');
}

/** The methods a link made for `method` allows. */
export function methodsFor(method: string): string[] {
  return method === 'GET' ? ['GET', 'HEAD'] : [method];
}

const keys = new WeakMap<Config, Buffer | null>();

/**
 * The HMAC key: from LINK_SECRET, else from AUTH_TOKEN (HKDF-SHA256 either way, RFC 5869), so
 * changing either secret revokes every link. Null without AUTH_TOKEN: everything is open then,
 * and there are no links.
 */
export function linkKey(config: Config): Buffer | null {
  let key = keys.get(config);
  if (key === undefined) {
    const secret = config.authToken === null ? null : (config.linkSecret ?? config.authToken);
    key = secret === null ? null : Buffer.from(hkdfSync('sha256', secret, 'sluice', KEY_LABEL, SIG_BYTES));
    keys.set(config, key);
  }
  return key;
}

function signature(key: Buffer, grant: LinkGrant): Buffer {
  const text = [SIGNED_PREFIX, grant.kind, grant.methods.join(','), grant.path, String(grant.expires), grant.maxBytes === null ? '-' : String(grant.maxBytes)].join('\n');
  return createHmac('sha256', key).update(text, 'utf8').digest();
}

/** The query of a link for `grant`: `expires`, `max` when it has maxBytes, `sig`. */
export function signLink(key: Buffer, grant: LinkGrant): URLSearchParams {
  const query = new URLSearchParams({ expires: String(grant.expires) });
  if (grant.maxBytes !== null) query.set('max', String(grant.maxBytes));
  query.set('sig', signature(key, grant).toString('base64url'));
  return query;
}

/** Whether the request target carries a link at all (else the bearer token is what counts). */
export function hasLink(query: URLSearchParams): boolean {
  return query.has('sig');
}

/**
 * The grant of the link in `query` for this method and path. Throws 403 LINK_INVALID when it is
 * malformed, tampered with, or made for another request (method, path, a derived link used on
 * another upload), and 403 LINK_EXPIRED when it was genuine but its time is up.
 */
export function verifyLink(key: Buffer, method: string, path: string, query: URLSearchParams, now = Date.now()): LinkGrant {
  const expiresText = query.get('expires') ?? '';
  const maxText = query.get('max');
  const sigText = query.get('sig') ?? '';
  if (!UINT.test(expiresText) || (maxText !== null && !UINT.test(maxText)) || !SIG_FORMAT.test(sigText)) throw invalid();
  const expires = Number(expiresText);
  const maxBytes = maxText === null ? null : Number(maxText);
  if (!Number.isSafeInteger(expires) || (maxBytes !== null && !Number.isSafeInteger(maxBytes))) throw invalid();
  const given = Buffer.from(sigText, 'base64url');
  let granted: LinkGrant | null = null;
  // The few grants this request could come under; each is checked in full (no early exit that
  // timing could show), and the signature is compared in constant time.
  for (const grant of candidates(method, path, expires, maxBytes)) {
    if (timingSafeEqual(signature(key, grant), given) && granted === null) granted = grant;
  }
  if (granted === null) throw invalid();
  if (now >= expires * 1000) throw new ForbiddenError('LINK_EXPIRED', `The link expired at ${new Date(expires * 1000).toISOString()}`);
  return granted;
}

function candidates(method: string, path: string, expires: number, maxBytes: number | null): LinkGrant[] {
  const out: LinkGrant[] = [];
  const link = (methods: string[]): void => void out.push({ kind: 'link', methods, path, expires, maxBytes });
  if (isGrantable(method, path)) link(methodsFor(method));
  if (method === 'HEAD' && isGrantable('GET', path)) link(methodsFor('GET'));
  if (UPLOAD_METHODS.includes(method) && /^\/uploads\/[^/]+$/.test(path)) out.push({ kind: 'upload', methods: [...UPLOAD_METHODS], path, expires, maxBytes });
  return out;
}

function invalid(): ForbiddenError {
  return new ForbiddenError('LINK_INVALID', 'The signed link is malformed, was tampered with, or does not grant this request');
}

/**
 * For the resumable-upload handler: when `ctx` created an upload through a signed link for
 * `POST /uploads`, the query (`expires=…&max=…&sig=…`) that lets the link's holder reach that
 * upload at `uploadPath` (`/uploads/<id>`) with HEAD, PATCH, DELETE and OPTIONS, until the same
 * expiry and with the same maxBytes. Null when the request did not come with such a link (the
 * bearer token, or no AUTH_TOKEN): the upload's plain URL is all the client needs then.
 */
export function uploadLinkQuery(ctx: Pick<RequestContext, 'config' | 'grant'>, uploadPath: string): string | null {
  const { grant } = ctx;
  if (grant === null || grant.kind !== 'link' || grant.path !== '/uploads' || !grant.methods.includes('POST')) return null;
  const key = linkKey(ctx.config);
  if (key === null) return null;
  const path = new URL(uploadPath, 'http://sluice.invalid').pathname;
  if (!/^\/uploads\/[^/]+$/.test(path)) throw new Error(`not an upload's path: ${uploadPath}`);
  return signLink(key, { kind: 'upload', methods: [...UPLOAD_METHODS], path, expires: grant.expires, maxBytes: grant.maxBytes }).toString();
}
