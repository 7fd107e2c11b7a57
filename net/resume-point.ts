import type { IncomingHttpHeaders } from 'node:http';
import { BadGatewayError } from '../lib/errors.js';
import { headerValue } from '../lib/header-value.js';
import { parseHttpDate } from '../handlers/http-conditional.js';
import { declaredLength } from './upstream-body.js';
import { reprSha256 } from './origin-digest.js';

/**
 * What it takes to ask an origin again for the rest of a body (RFC 9110 14.2 Range, 13.1.5
 * If-Range): the URL that answered, a validator it may be asked with, and the complete length.
 * Taken from the first answer; every later answer is held to it.
 */
export interface ResumePoint {
  /** The URL that answered, after redirects: the one asked again (through the SSRF guard again). */
  readonly url: URL;
  /** The `If-Range` value: a strong ETag, else a Last-Modified date that RFC 9110 lets stand in for one. */
  readonly validator: string;
  /** The first answer's ETag and Last-Modified, as sent. */
  readonly etag: string | null;
  readonly lastModified: string | null;
  /** The complete length of the representation (RFC 9110 14.4 complete-length). */
  readonly total: number;
  /** The origin's sha-256 `Repr-Digest` (hex) when it sent one: another version has another digest. */
  readonly reprDigest: string | null;
}

/** A byte range `start`-`end` (inclusive) of a `total`-byte representation. */
export interface Span {
  readonly start: number;
  readonly end: number;
}

/** The resource is not the one whose bytes we have: nothing may be spliced. */
export class UpstreamChangedError extends BadGatewayError {
  constructor(message: string) {
    super('UPSTREAM_CHANGED', `The resource changed while it was fetched: ${message}`);
  }
}

/**
 * RFC 9110 13.1.4 and 8.8.2.2: the validator a client may send in If-Range, or null when there is
 * none. A strong ETag; a weak one never (13.1.4: "MUST NOT generate ... an entity tag that is
 * marked as weak"). A Last-Modified date only when the answer had no ETag at all ("unless the
 * client has no entity tag") and the date is strong in the client's sense of 8.8.2.2: the answer's
 * Date at least one second after it (both from the origin's clock). Else null.
 */
export function ifRangeValidator(headers: IncomingHttpHeaders): string | null {
  const etag = headerValue(headers.etag)?.trim();
  if (etag !== undefined && etag !== '') return /^"[\x21\x23-\x7e\x80-\xff]*"$/.test(etag) ? etag : null;
  const lastModified = headerValue(headers['last-modified'])?.trim();
  const modified = parseHttpDate(lastModified);
  const date = parseHttpDate(headerValue(headers.date));
  if (lastModified === undefined || modified === null || date === null) return null;
  return date - modified >= 1000 ? lastModified : null;
}

/** RFC 9110 14.3: `Accept-Ranges: bytes` (a list; `none` or another unit is no offer). */
function offersByteRanges(headers: IncomingHttpHeaders): boolean {
  const value = headerValue(headers['accept-ranges']) ?? '';
  return value.split(',').some((unit) => unit.trim().toLowerCase() === 'bytes');
}

/** `bytes first-last/complete` (RFC 9110 14.4); `complete` null for `*`. Null when it is not that form. */
export function parseContentRange(value: string | undefined): { first: number; last: number; complete: number | null } | null {
  const m = /^\s*bytes\s+(\d+)-(\d+)\/(\d+|\*)\s*$/i.exec(value ?? '');
  if (m === null) return null;
  const first = Number(m[1]);
  const last = Number(m[2]);
  const complete = m[3] === '*' ? null : Number(m[3]);
  if (!Number.isSafeInteger(first) || !Number.isSafeInteger(last) || last < first) return null;
  if (complete !== null && (!Number.isSafeInteger(complete) || last >= complete)) return null;
  return { first, last, complete };
}

/**
 * The resume point of a first answer, with the span its body covers; null when a break could not
 * be resumed: no byte ranges offered, no validator, or no known length (a chunked or
 * close-delimited body). A `206` (the client's own Range, passed on) offers ranges by being one.
 */
export function resumePointOf(url: URL, status: number, headers: IncomingHttpHeaders): { point: ResumePoint; span: Span } | null {
  const validator = ifRangeValidator(headers);
  if (validator === null) return null;
  let span: Span;
  let total: number;
  if (status === 206) {
    const range = parseContentRange(headerValue(headers['content-range']));
    if (range === null || range.complete === null) return null;
    span = { start: range.first, end: range.last };
    total = range.complete;
  } else if (status === 200) {
    const length = declaredLength(headers);
    if (length === null || length === 0 || !offersByteRanges(headers)) return null;
    span = { start: 0, end: length - 1 };
    total = length;
  } else {
    return null;
  }
  const point: ResumePoint = {
    url,
    validator,
    etag: headerValue(headers.etag) ?? null,
    lastModified: headerValue(headers['last-modified']) ?? null,
    total,
    reprDigest: reprSha256(headers),
  };
  return { point, span };
}

/**
 * Holds an answer to `Range: bytes=<start>-<end>` + `If-Range` to the point: only a `206` with
 * exactly that Content-Range, the same complete length, and (where it says) the same validators
 * and digest is the rest of the same bytes (RFC 9110 13.1.5: a `200` means the validator no
 * longer matches, whatever its ETag says). Throws UpstreamChangedError otherwise.
 */
export function checkResumeAnswer(point: ResumePoint, span: Span, status: number, headers: IncomingHttpHeaders): void {
  if (status !== 206) throw new UpstreamChangedError(`asked for bytes ${span.start}-${span.end} if still ${point.validator}, the origin answered ${status}`);
  const range = parseContentRange(headerValue(headers['content-range']));
  if (range === null) throw new UpstreamChangedError('the origin answered 206 without a single byte range (Content-Range)');
  if (range.first !== span.start || range.last !== span.end) {
    throw new UpstreamChangedError(`asked for bytes ${span.start}-${span.end}, the origin sent ${range.first}-${range.last}`);
  }
  if (range.complete !== point.total) throw new UpstreamChangedError(`the length was ${point.total}, the origin now says ${range.complete ?? 'unknown'}`);
  const etag = headerValue(headers.etag);
  if (etag !== undefined && etag !== point.etag) throw new UpstreamChangedError(`the ETag was ${point.etag ?? 'none'}, it is now ${etag}`);
  const lastModified = headerValue(headers['last-modified']);
  if (point.etag === null && lastModified !== undefined && lastModified !== point.lastModified) {
    throw new UpstreamChangedError(`Last-Modified was ${point.lastModified ?? 'none'}, it is now ${lastModified}`);
  }
  const digest = reprSha256(headers);
  if (digest !== null && point.reprDigest !== null && digest !== point.reprDigest) throw new UpstreamChangedError('its Repr-Digest is another');
}
