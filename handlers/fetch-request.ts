import type { RequestContext } from '../lib/context.js';
import { LimitExceededError, MalformedRequestError } from '../lib/errors.js';
import { readJsonBody } from '../lib/json-body.js';
import { cleanFilename } from '../net/upstream-filename.js';

/** `POST /fetch` and `POST /fetches` take a URL, a name and a digest: 64 KiB is generous (URLs past 8 KiB rarely work anywhere). */
export const MAX_JSON_BODY_BYTES = 64 * 1024;

/** What `POST /fetch` and `POST /fetches` ask for. */
export interface FetchRequest {
  readonly url: URL;
  readonly filename: string | null;
  /** The sha256 the bytes must have (lower-case hex), e.g. the one a model hub publishes. */
  readonly sha256: string | null;
}

/** Only absolute http: and https: URLs; the fragment is never sent (RFC 9110 4.2.5). */
export function parseTargetUrl(text: string | null | undefined): URL {
  if (text === null || text === undefined || text === '') {
    throw new MalformedRequestError('MISSING_URL', 'Name the resource to fetch: ?url=https://... (or {"url": ...} for POST)');
  }
  let url: URL;
  try {
    url = new URL(text);
  } catch (err) {
    throw new MalformedRequestError('INVALID_URL', 'The url is not a valid absolute URL', { cause: err });
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new MalformedRequestError('UNSUPPORTED_URL_SCHEME', `Only http: and https: URLs can be fetched, not ${url.protocol}`);
  }
  url.hash = '';
  return url;
}

/** The JSON body of `POST /fetch` / `POST /fetches`, checked: `{"url", "filename"?, "sha256"?}`. */
export async function readFetchRequest(ctx: RequestContext): Promise<FetchRequest> {
  return parseFetchRequest(await readJsonBody(ctx.req, MAX_JSON_BODY_BYTES, `${ctx.req.method ?? 'POST'} ${ctx.url.pathname}`));
}

function parseFetchRequest(body: unknown): FetchRequest {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw new MalformedRequestError('BAD_FETCH_REQUEST', 'The body must be a JSON object: {"url": "https://...", "filename"?: "...", "sha256"?: "<64 hex digits>"}');
  }
  const { url, filename, sha256 } = body as Record<string, unknown>;
  if (url !== undefined && typeof url !== 'string') throw new MalformedRequestError('BAD_FETCH_REQUEST', '"url" must be a string');
  if (filename !== undefined && filename !== null && typeof filename !== 'string') {
    throw new MalformedRequestError('BAD_FETCH_REQUEST', '"filename" must be a string');
  }
  const name = typeof filename === 'string' ? cleanFilename(filename) : null;
  if (typeof filename === 'string' && name === null) throw new MalformedRequestError('BAD_FILENAME', '"filename" has no usable characters');
  if (sha256 !== undefined && sha256 !== null && (typeof sha256 !== 'string' || !/^[0-9a-fA-F]{64}$/.test(sha256))) {
    throw new MalformedRequestError('BAD_FETCH_REQUEST', '"sha256" must be the 64 hex digits of a SHA-256 digest');
  }
  return { url: parseTargetUrl(url), filename: name, sha256: typeof sha256 === 'string' ? sha256.toLowerCase() : null };
}

/**
 * The type to store a fetched body under. We ask for `identity`, but an origin may encode anyway
 * (Apache's `AddEncoding x-gzip .gz`): the bytes are stored as sent, as curl and wget save them,
 * and then their type is the encoding's, never a type that would serve gzip as text without the
 * Content-Encoding that said so.
 */
export function storedContentType(contentType: string | undefined, contentEncoding: string | undefined): string {
  const codings = (contentEncoding ?? '').split(',').map((c) => c.trim().toLowerCase()).filter((c) => c !== '' && c !== 'identity');
  const outermost = codings[codings.length - 1];
  if (outermost === undefined) return contentType ?? 'application/octet-stream';
  return ENCODING_TYPES[outermost] ?? 'application/octet-stream';
}

/** Media types of compressed data (RFC 6713, RFC 8878), by content-coding. */
const ENCODING_TYPES: Readonly<Record<string, string>> = { gzip: 'application/gzip', 'x-gzip': 'application/gzip', zstd: 'application/zstd' };

/** Refuses before reading a byte when the origin already says the file will not fit. */
export async function checkDeclaredLength(ctx: Pick<RequestContext, 'config' | 'store'>, declared: number | null): Promise<void> {
  if (declared === null) return;
  const max = ctx.config.maxFileBytes;
  if (declared > max) {
    throw new LimitExceededError('FILE_TOO_LARGE', `The resource (${declared} bytes) is over the limit of ${max} bytes`, max);
  }
  const free = await ctx.store.freeBytes();
  const usable = free === null ? Infinity : Math.max(0, free - ctx.config.minFreeBytes);
  if (declared > usable) {
    throw new LimitExceededError('NOT_ENOUGH_SPACE', `The resource (${declared} bytes) does not fit in the free space of the store (${usable} bytes usable)`, usable);
  }
}
