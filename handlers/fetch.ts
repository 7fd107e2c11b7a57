import type { IncomingMessage } from 'node:http';
import { pipeline } from 'node:stream/promises';
import type { RequestContext } from '../lib/context.js';
import { BadGatewayError, LimitExceededError, MalformedRequestError, UnsupportedMediaTypeError } from '../lib/errors.js';
import { headerValue } from '../lib/header-value.js';
import { requestBody } from '../lib/request-body.js';
import { sendJson } from '../lib/respond.js';
import { connectionTokens, isHopByHop } from '../net/hop-by-hop.js';
import { cleanFilename, filenameFromDisposition, filenameFromUrl, relayableDisposition } from '../net/upstream-filename.js';
import { openUpstream, type UpstreamOptions, type UpstreamResponse } from '../net/upstream.js';
import { declaredLength } from '../net/upstream-body.js';
import { formatContentDisposition } from '../multipart/content-disposition.js';
import { mediaTypeEssence } from '../multipart/content-type.js';
import { saveStream } from '../storage/save-stream.js';

/** Written to send the status and headers before the first body byte (see handleFetch). */
const NO_BYTES = Buffer.alloc(0);
/** `POST /fetch` takes a URL and a name: 64 KiB is generous (URLs past 8 KiB rarely work anywhere). */
const MAX_JSON_BODY_BYTES = 64 * 1024;
/** The client's conditional range request, passed on (RFC 9110 14.2, 13.1.5). */
const FORWARDED_REQUEST_HEADERS = ['range', 'if-range'] as const;
/** End-to-end headers that describe the body relayed (RFC 9110 8, 14.4); the rest stays upstream. */
const RELAYED_RESPONSE_HEADERS = [
  'content-type',
  'content-length',
  'content-range',
  'content-disposition',
  'content-encoding',
  'etag',
  'last-modified',
  'accept-ranges',
] as const;

/**
 * `GET|HEAD /fetch?url=...`: streams the remote resource to the client, status and range included
 * (HEAD asks the origin for HEAD too).
 */
export async function handleFetch(ctx: RequestContext): Promise<void> {
  const target = parseTargetUrl(ctx.url.searchParams.get('url'));
  const forwarded = forwardedHeaders(ctx.req);
  const method = ctx.req.method === 'HEAD' ? 'HEAD' : 'GET';
  const upstream = await openUpstream(target, { ...upstreamOptions(ctx, forwarded), method });
  try {
    // Broken before a byte was read (a tiny body with garbage behind it): still time for a 502.
    if (upstream.body.errored !== null) throw upstream.body.errored;
    // A part the client did not ask for would pass for the whole resource.
    if (upstream.status === 206 && forwarded.range === undefined) throw new BadGatewayError('UPSTREAM_PARTIAL', 'The origin answered 206 to a request without Range');
  } catch (err) {
    upstream.body.destroy();
    throw err;
  }
  const { res } = ctx;
  res.statusCode = upstream.status;
  for (const [name, value] of relayedHeaders(upstream)) res.setHeader(name, value);
  // No name from the origin: the one the URL gives, so `curl -OJ`, `wget --content-disposition`
  // and a browser's "Save as" do not all call the file "fetch". Inline: how it is shown is unchanged.
  if (!res.hasHeader('content-disposition') && (upstream.status === 200 || upstream.status === 206)) {
    const name = filenameFromUrl(upstream.url);
    if (name !== null) res.setHeader('content-disposition', formatContentDisposition('inline', name));
  }
  // The origin's bytes go out under our origin: no sniffing them into HTML, no scripts if they are.
  res.setHeader('x-content-type-options', 'nosniff');
  res.setHeader('content-security-policy', "sandbox; default-src 'none'");
  // The status and headers go out now, not with the first body chunk (which UpstreamBody may
  // hold back): the client learns the answer as soon as we do. Not with flushHeaders(): Node
  // sends that header block as UTF-8, so an origin's bytes past ASCII (obs-text in a Content-Type
  // or an ETag) would reach the client changed; a write sends it as Latin-1, byte for byte.
  res.write(NO_BYTES);
  // An upstream failure destroys the response: the client sees a broken transfer, never a
  // clean short file.
  await pipeline(upstream.body, res);
}

/** `POST /fetch` `{"url", "filename"?}`: stores the remote resource, answers 201 with its record. */
export async function handleFetchToStore(ctx: RequestContext): Promise<void> {
  const request = parseFetchRequest(await readJsonBody(ctx.req, MAX_JSON_BODY_BYTES));
  const upstream = await openUpstream(request.url, upstreamOptions(ctx, {}));
  try {
    // We asked for the whole resource; part of it stored as if it were all would be a lie.
    if (upstream.status === 206) throw new BadGatewayError('UPSTREAM_PARTIAL', 'The origin answered 206 to a request without Range');
    await checkDeclaredLength(ctx, upstream.body.expectedLength);
  } catch (err) {
    upstream.body.destroy();
    throw err;
  }
  const meta = {
    field: null,
    filename: request.filename ?? filenameFromDisposition(headerValue(upstream.headers['content-disposition'])) ?? filenameFromUrl(upstream.url),
    contentType: storedContentType(upstream.headers['content-type'], headerValue(upstream.headers['content-encoding'])),
  };
  // saveStream removes the file when the body breaks (UpstreamBody errors on any short body).
  const record = await saveStream(ctx.store, upstream.body, meta, { maxBytes: ctx.config.maxFileBytes, signal: ctx.signal });
  ctx.metrics.filesStored(1);
  // RFC 9110 15.3.2: 201 with Location naming the new resource.
  sendJson(ctx.res, 201, record, { location: `/files/${record.id}` });
}

function upstreamOptions(ctx: RequestContext, headers: Record<string, string>): UpstreamOptions {
  return { headers, timeoutMs: ctx.config.fetchTimeoutMs, allow: ctx.config.fetchAllow, signal: ctx.signal };
}

/** Only absolute http: and https: URLs; the fragment is never sent (RFC 9110 4.2.5). */
function parseTargetUrl(text: string | null | undefined): URL {
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

function forwardedHeaders(req: IncomingMessage): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const name of FORWARDED_REQUEST_HEADERS) {
    const value = req.headers[name];
    if (typeof value === 'string') headers[name] = value;
  }
  return headers;
}

/**
 * The type to store a fetched body under. We ask for `identity`, but an origin may encode anyway
 * (Apache's `AddEncoding x-gzip .gz`): the bytes are stored as sent, as curl and wget save them,
 * and then their type is the encoding's, never a type that would serve gzip as text without the
 * Content-Encoding that said so.
 */
function storedContentType(contentType: string | undefined, contentEncoding: string | undefined): string {
  const codings = (contentEncoding ?? '').split(',').map((c) => c.trim().toLowerCase()).filter((c) => c !== '' && c !== 'identity');
  const outermost = codings[codings.length - 1];
  if (outermost === undefined) return contentType ?? 'application/octet-stream';
  return ENCODING_TYPES[outermost] ?? 'application/octet-stream';
}

/** Media types of compressed data (RFC 6713, RFC 8878), by content-coding. */
const ENCODING_TYPES: Readonly<Record<string, string>> = { gzip: 'application/gzip', 'x-gzip': 'application/gzip', zstd: 'application/zstd' };

function relayedHeaders(upstream: UpstreamResponse): Array<[string, string]> {
  // RFC 9110 7.6.1: whatever the origin's Connection header names is hop-by-hop too.
  const tokens = connectionTokens(upstream.headers.connection);
  const relayed: Array<[string, string]> = [];
  for (const name of RELAYED_RESPONSE_HEADERS) {
    if (isHopByHop(name, tokens)) continue;
    const raw = headerValue(upstream.headers[name]);
    const value = name === 'content-disposition' && raw !== undefined ? (relayableDisposition(raw) ?? undefined) : raw;
    if (value === undefined) continue;
    // A length only when it frames the body (never beside Transfer-Encoding, RFC 9112 6.3; for
    // HEAD, the length GET would have), and never on a 204 (RFC 9110 8.6).
    if (name === 'content-length' && (declaredLength(upstream.headers) === null || upstream.status === 204)) continue;
    relayed.push([name, value]);
  }
  return relayed;
}

/** Refuses before reading a byte when the origin already says the file will not fit. */
async function checkDeclaredLength(ctx: RequestContext, declared: number | null): Promise<void> {
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

interface FetchRequest {
  readonly url: URL;
  readonly filename: string | null;
}

function parseFetchRequest(body: unknown): FetchRequest {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw new MalformedRequestError('BAD_FETCH_REQUEST', 'The body must be a JSON object: {"url": "https://...", "filename"?: "..."}');
  }
  const { url, filename } = body as Record<string, unknown>;
  if (url !== undefined && typeof url !== 'string') throw new MalformedRequestError('BAD_FETCH_REQUEST', '"url" must be a string');
  if (filename !== undefined && filename !== null && typeof filename !== 'string') {
    throw new MalformedRequestError('BAD_FETCH_REQUEST', '"filename" must be a string');
  }
  const name = typeof filename === 'string' ? cleanFilename(filename) : null;
  if (typeof filename === 'string' && name === null) throw new MalformedRequestError('BAD_FILENAME', '"filename" has no usable characters');
  return { url: parseTargetUrl(url), filename: name };
}

/** RFC 8259 / RFC 6839 3.1: `application/json` or any `+json` type, parameters aside. */
function isJsonMediaType(header: string | undefined): boolean {
  const type = mediaTypeEssence(header ?? '');
  return type === 'application/json' || (type.startsWith('application/') && type.endsWith('+json'));
}

/** The whole (small) body as JSON; 413 past `limit`, 415 unless JSON, 400 unless valid UTF-8 JSON. */
async function readJsonBody(req: IncomingMessage, limit: number): Promise<unknown> {
  if (!isJsonMediaType(req.headers['content-type'])) throw new UnsupportedMediaTypeError('POST /fetch takes an application/json body');
  const tooLarge = (): LimitExceededError => new LimitExceededError('BODY_TOO_LARGE', `The JSON body is over ${limit} bytes`, limit);
  const declared = Number(req.headers['content-length']);
  if (Number.isSafeInteger(declared) && declared > limit) throw tooLarge();
  const chunks: Buffer[] = [];
  let size = 0;
  // requestBody: leaving the loop early must not destroy the socket the 413 goes out on.
  for await (const chunk of requestBody(req)) {
    size += chunk.length;
    if (size > limit) throw tooLarge();
    chunks.push(chunk);
  }
  let text: string;
  try {
    // RFC 8259 8.1: JSON between systems is UTF-8.
    text = new TextDecoder('utf-8', { fatal: true }).decode(Buffer.concat(chunks, size));
  } catch (err) {
    throw new MalformedRequestError('BAD_JSON', 'The body is not UTF-8', { cause: err });
  }
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    throw new MalformedRequestError('BAD_JSON', 'The body is not valid JSON', { cause: err });
  }
}
