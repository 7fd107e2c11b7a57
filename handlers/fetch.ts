import type { IncomingMessage } from 'node:http';
import { pipeline } from 'node:stream/promises';
import type { RequestContext } from '../lib/context.js';
import { BadGatewayError } from '../lib/errors.js';
import { headerValue } from '../lib/header-value.js';
import { sendJson } from '../lib/respond.js';
import { fetchBody } from '../net/fetch-body.js';
import { connectionTokens, isHopByHop } from '../net/hop-by-hop.js';
import { checkSha256, digestMismatch, wantedSha256s } from '../net/origin-digest.js';
import { resumePointOf } from '../net/resume-point.js';
import { ResumingBody, type RetryEvent } from '../net/resuming-body.js';
import { filenameFromDisposition, filenameFromUrl, relayableDisposition } from '../net/upstream-filename.js';
import { openUpstream, type UpstreamOptions, type UpstreamResponse } from '../net/upstream.js';
import { declaredLength } from '../net/upstream-body.js';
import { formatContentDisposition } from '../multipart/content-disposition.js';
import { saveStream } from '../storage/save-stream.js';
import { checkDeclaredLength, parseTargetUrl, readFetchRequest, storedContentType } from './fetch-request.js';

/** Written to send the status and headers before the first body byte (see handleFetch). */
const NO_BYTES = Buffer.alloc(0);
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
  // A broken origin body is asked again for the rest, so the client sees one uninterrupted body
  // of the length announced. A failure for good (retries spent, a changed resource) destroys the
  // response: the client sees a broken transfer, never a clean short file or two versions spliced.
  const resumable = method === 'GET' ? resumePointOf(upstream.url, upstream.status, upstream.headers) : null;
  const body =
    resumable === null || ctx.config.fetchRetries === 0
      ? upstream.body
      : new ResumingBody(upstream.body, resumable.span, resumable.point, ctx.fetchJobs.settings(null, { onRetry: (r) => logRetry(ctx, r) }), ctx.signal);
  await pipeline(body, res);
}

/**
 * `POST /fetch` `{"url", "filename"?, "sha256"?}`: stores the remote resource, answers 201 with its
 * record. A broken origin body is resumed (Range + If-Range), over FETCH_CONNECTIONS connections
 * where the origin allows; the stored bytes are checked against the wanted and the origin's sha-256.
 */
export async function handleFetchToStore(ctx: RequestContext): Promise<void> {
  const request = await readFetchRequest(ctx);
  const settings = ctx.fetchJobs.settings('fetch', { onRetry: (r) => logRetry(ctx, r) });
  const upstream = await openUpstream(request.url, { ...upstreamOptions(ctx, {}), onBytes: settings.onBytes });
  let wanted: string[];
  try {
    // We asked for the whole resource; part of it stored as if it were all would be a lie.
    if (upstream.status === 206) throw new BadGatewayError('UPSTREAM_PARTIAL', 'The origin answered 206 to a request without Range');
    await checkDeclaredLength(ctx, upstream.body.expectedLength);
    wanted = wantedSha256s(request.sha256, upstream.headers, upstream.status);
    // The client's digest and the origin's disagree: no byte can match both.
    if (wanted.length > 1) throw digestMismatch(wanted[0] as string, wanted[1] as string);
  } catch (err) {
    upstream.body.destroy();
    throw err;
  }
  const resumable = resumePointOf(upstream.url, upstream.status, upstream.headers);
  const span = resumable?.span ?? { start: 0, end: Infinity };
  const body = fetchBody(upstream.body, span, resumable?.point ?? null, settings, ctx.signal);
  const meta = {
    field: null,
    filename: request.filename ?? filenameFromDisposition(headerValue(upstream.headers['content-disposition'])) ?? filenameFromUrl(upstream.url),
    contentType: storedContentType(upstream.headers['content-type'], headerValue(upstream.headers['content-encoding'])),
  };
  // saveStream removes the file when the body breaks for good (never a short file) or its digest is wrong.
  const record = await saveStream(ctx.store, body, meta, {
    maxBytes: ctx.config.maxFileBytes,
    signal: ctx.signal,
    verify: ({ sha256 }) => checkSha256(wanted, sha256),
  }).catch((err: unknown) => {
    // saveStream only reads the body; closing the origin's connection is ours to do.
    body.destroy();
    throw err;
  });
  ctx.metrics.filesStored(1);
  // RFC 9110 15.3.2: 201 with Location naming the new resource.
  sendJson(ctx.res, 201, record, { location: `/files/${record.id}` });
}

function logRetry(ctx: RequestContext, retry: RetryEvent): void {
  ctx.log.warn('origin body broke, resuming', { requestId: ctx.requestId, position: retry.position, attempt: retry.attempt, delayMs: retry.delayMs, reason: (retry.reason as { code?: string }).code ?? retry.reason.message });
}

function upstreamOptions(ctx: RequestContext, headers: Record<string, string>): UpstreamOptions {
  return { headers, timeoutMs: ctx.config.fetchTimeoutMs, allow: ctx.config.fetchAllow, signal: ctx.signal };
}

function forwardedHeaders(req: IncomingMessage): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const name of FORWARDED_REQUEST_HEADERS) {
    const value = req.headers[name];
    if (typeof value === 'string') headers[name] = value;
  }
  return headers;
}

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

