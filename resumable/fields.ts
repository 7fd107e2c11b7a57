import type { IncomingMessage } from 'node:http';
import { headerValue } from '../lib/header-value.js';
import type { ChecksumAlgorithm } from '../storage/uploads.js';
import { ProtocolError } from './protocol-errors.js';

/**
 * The header fields of both protocols, parsed strictly: a value that is not what the text
 * defines is an error (400) rather than a guess. tus fields are plain decimal integers; the draft
 * defines its fields as RFC 8941 Structured Fields (Item: Integer or Boolean, with parameters
 * allowed and ignored).
 */

/** Largest offset or length we take: 2^53 - 1 (16 digits at most). */
const DECIMAL = /^[0-9]{1,16}$/;

/** The value of one request header, or undefined; repeated fields arrive joined with ", " (and then fail to parse). */
export function field(req: IncomingMessage, name: string): string | undefined {
  const value = headerValue(req.headers[name]);
  return value === undefined ? undefined : value.trim();
}

/** tus `Upload-Offset` / `Upload-Length`: "MUST be a non-negative integer" (tus core, "Headers"). */
export function parseTusInteger(value: string): number | null {
  if (!DECIMAL.test(value)) return null;
  const n = Number(value);
  return Number.isSafeInteger(n) ? n : null;
}

/** RFC 8941 3.3.1 sf-integer as a bare Item (parameters ignored), non-negative only; null otherwise. */
export function parseSfNonNegativeInteger(value: string): number | null {
  const match = /^([0-9]{1,15})(?:;.*)?$/.exec(value);
  if (match === null) return null;
  return Number(match[1]);
}

/** RFC 8941 3.3.6 sf-boolean (`?1` / `?0`), parameters ignored; null for anything else. */
export function parseSfBoolean(value: string): boolean | null {
  const match = /^\?([01])(?:;.*)?$/.exec(value);
  if (match === null) return null;
  return match[1] === '1';
}

/** A request's `Upload-Offset` in the dialect's syntax; a missing or malformed one is a 400. */
export function requireOffset(req: IncomingMessage, syntax: 'tus' | 'sf'): number {
  const text = field(req, 'upload-offset');
  const offset = text === undefined ? null : syntax === 'tus' ? parseTusInteger(text) : parseSfNonNegativeInteger(text);
  if (offset === null) {
    throw new ProtocolError('UPLOAD_OFFSET_INVALID', text === undefined ? 'Upload-Offset is required' : 'Upload-Offset must be a non-negative integer');
  }
  return offset;
}

/** A request's `Upload-Length`, or null when absent; malformed is a 400. */
export function optionalLength(req: IncomingMessage, syntax: 'tus' | 'sf'): number | null {
  const text = field(req, 'upload-length');
  if (text === undefined) return null;
  const length = syntax === 'tus' ? parseTusInteger(text) : parseSfNonNegativeInteger(text);
  if (length === null) throw new ProtocolError('UPLOAD_LENGTH_INVALID', 'Upload-Length must be a non-negative integer');
  return length;
}

/** The draft's `Upload-Complete` (required on creation and append); malformed or missing is a 400. */
export function requireUploadComplete(req: IncomingMessage): boolean {
  const text = field(req, 'upload-complete');
  const value = text === undefined ? null : parseSfBoolean(text);
  if (value === null) throw new ProtocolError('UPLOAD_COMPLETE_INVALID', 'Upload-Complete is required, as ?1 (this request ends the upload) or ?0');
  return value;
}

/** The request's declared body length, or null when it is chunked (or absent with no body). */
export function contentLength(req: IncomingMessage): number | null {
  const text = req.headers['content-length'];
  if (text === undefined) return null;
  const n = Number(text);
  return Number.isSafeInteger(n) && n >= 0 ? n : null;
}

/** Whether the request has a body at all (RFC 9112 6.3: Transfer-Encoding, or a Content-Length above 0). */
export function hasBody(req: IncomingMessage): boolean {
  if (req.headers['transfer-encoding'] !== undefined) return true;
  const length = contentLength(req);
  return length !== null && length > 0;
}

/** tus checksum extension: the algorithms we verify (protocol.md: at least `sha1`). */
export const CHECKSUM_ALGORITHMS: readonly ChecksumAlgorithm[] = ['sha1', 'md5', 'sha256', 'sha512'];
const DIGEST_BYTES: Readonly<Record<ChecksumAlgorithm, number>> = { sha1: 20, md5: 16, sha256: 32, sha512: 64 };

/**
 * tus `Upload-Checksum: <algorithm> <base64>`; null when absent. An algorithm we do not support
 * is CHECKSUM_ALGORITHM_UNSUPPORTED (400, as protocol.md says), a malformed value or a digest of
 * the wrong size UPLOAD_CHECKSUM_MALFORMED.
 */
export function optionalChecksum(req: IncomingMessage): { readonly algorithm: ChecksumAlgorithm; readonly digest: Buffer } | null {
  const text = field(req, 'upload-checksum');
  if (text === undefined) return null;
  const match = /^([!-~]+) ([A-Za-z0-9+/]+={0,2})$/.exec(text);
  if (match === null) throw new ProtocolError('UPLOAD_CHECKSUM_MALFORMED', 'Upload-Checksum must be an algorithm name, a space and a base64 digest');
  const name = match[1] as string;
  const algorithm = CHECKSUM_ALGORITHMS.find((a) => a === name);
  if (algorithm === undefined) {
    throw new ProtocolError('CHECKSUM_ALGORITHM_UNSUPPORTED', `Checksum algorithm ${JSON.stringify(name.slice(0, 32))} is not supported; use one of ${CHECKSUM_ALGORITHMS.join(', ')}`);
  }
  const digest = Buffer.from(match[2] as string, 'base64');
  if (digest.length !== DIGEST_BYTES[algorithm]) {
    throw new ProtocolError('UPLOAD_CHECKSUM_MALFORMED', `A ${algorithm} digest is ${DIGEST_BYTES[algorithm]} bytes, base64-encoded`);
  }
  return { algorithm, digest };
}

/** What tus `Upload-Concat` asks for: a partial upload, or a final one of these upload ids. */
export type Concat = { readonly kind: 'partial' } | { readonly kind: 'final'; readonly ids: readonly string[] };

/** Most parts one final upload may name (tus-js-client's parallelUploads is a handful). */
export const MAX_CONCAT_PARTS = 1000;

/**
 * tus concatenation `Upload-Concat`: `partial`, or `final;` and space-separated URLs of partial
 * uploads, "absolute or relative"; each must name an upload of this server (`.../uploads/<id>`).
 */
export function parseConcat(value: string): Concat {
  if (value === 'partial') return { kind: 'partial' };
  const match = /^final;(.*)$/.exec(value);
  if (match === null) throw new ProtocolError('UPLOAD_CONCAT_MALFORMED', 'Upload-Concat must be "partial" or "final;" followed by upload URLs');
  const urls = (match[1] as string).split(' ').filter((u) => u !== '');
  if (urls.length === 0 || urls.length > MAX_CONCAT_PARTS) {
    throw new ProtocolError('UPLOAD_CONCAT_MALFORMED', `Upload-Concat: final needs 1 to ${MAX_CONCAT_PARTS} upload URLs`);
  }
  const ids = urls.map((u) => {
    const id = uploadIdFromUrl(u);
    if (id === null) throw new ProtocolError('UPLOAD_CONCAT_MALFORMED', 'Every URL in Upload-Concat must be an upload of this server (/uploads/<id>)');
    return id;
  });
  return { kind: 'final', ids };
}

/** `/uploads/<id>` or `http://host/uploads/<id>?...` → `<id>`; null for anything else. */
export function uploadIdFromUrl(text: string): string | null {
  let url: URL;
  try {
    url = new URL(text, 'http://sluice.invalid');
  } catch {
    return null;
  }
  const match = /^\/uploads\/([^/]+)$/.exec(url.pathname);
  return match === null ? null : decodeURIComponentOrNull(match[1] as string);
}

function decodeURIComponentOrNull(text: string): string | null {
  try {
    return decodeURIComponent(text);
  } catch {
    return null;
  }
}
