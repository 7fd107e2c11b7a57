import type { IncomingHttpHeaders } from 'node:http';
import { BadGatewayError } from '../lib/errors.js';
import { parseContentDigest } from '../handlers/content-digest.js';

/**
 * The sha-256 digests an origin gives for its bytes (RFC 9530). An origin's digest header we
 * cannot read is not checked (RFC 9530 lets a recipient ignore what it cannot use): it never
 * fails a fetch by itself.
 */

/** `Repr-Digest: sha-256=...` as lower-case hex: the selected representation (as sent, content coding included), on any answer. */
export function reprSha256(headers: IncomingHttpHeaders): string | null {
  return readable(headers['repr-digest']);
}

/**
 * Every sha-256 the whole stored body must have: the client's (`sha256` of the request), the
 * origin's `Repr-Digest`, and its `Content-Digest` on a `200`, whose content is the whole
 * representation (on a `206` it covers only the part sent, RFC 9530 2).
 */
export function wantedSha256s(requested: string | null, headers: IncomingHttpHeaders, status: number): string[] {
  const wanted = requested === null ? [] : [requested];
  const found = [reprSha256(headers), status === 200 ? readable(headers['content-digest']) : null];
  for (const digest of found) if (digest !== null && !wanted.includes(digest)) wanted.push(digest);
  return wanted;
}

/** Throws 502 `DIGEST_MISMATCH` unless the bytes' sha-256 is every one wanted. */
export function checkSha256(wanted: readonly string[], actual: string): void {
  const other = wanted.find((w) => w !== actual);
  if (other !== undefined) throw digestMismatch(other, actual);
}

export function digestMismatch(wanted: string, actual: string): BadGatewayError {
  return new BadGatewayError('DIGEST_MISMATCH', `The fetched bytes have sha256 ${actual}, not ${wanted}; nothing was stored`);
}

function readable(header: string | string[] | undefined): string | null {
  try {
    return parseContentDigest(header);
  } catch {
    return null;
  }
}
