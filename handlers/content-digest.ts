import { MalformedRequestError } from '../lib/errors.js';

/**
 * The sha-256 of a `Content-Digest` or `Repr-Digest` header (RFC 9530 2, 3), as lower-case hex; null when the header
 * is absent or names only algorithms we do not check (RFC 9530 lets a recipient ignore those).
 * The value is a Structured Fields dictionary (RFC 8941): `sha-256=:<base64>:, sha-512=:...:`.
 */
export function parseContentDigest(header: string | string[] | undefined): string | null {
  if (header === undefined) return null;
  const text = Array.isArray(header) ? header.join(',') : header;
  let found: string | null = null;
  for (const member of text.split(',')) {
    const item = member.trim();
    if (item === '') continue;
    const match = /^([a-z*][a-z0-9_.*-]*)=:([A-Za-z0-9+/]*={0,2}):(?:;.*)?$/.exec(item);
    if (match === null) throw new MalformedRequestError('CONTENT_DIGEST_MALFORMED', 'Content-Digest or Repr-Digest is not a valid RFC 9530 dictionary');
    if (match[1] !== 'sha-256') continue;
    const digest = Buffer.from(match[2] as string, 'base64');
    if (digest.length !== 32) throw new MalformedRequestError('CONTENT_DIGEST_MALFORMED', 'A sha-256 digest must be 32 bytes, base64-encoded');
    found = digest.toString('hex');
  }
  return found;
}

/** A sha-256 (lower-case hex) as an RFC 9530 digest value: `sha-256=:<base64>:`. */
export function formatSha256Digest(hex: string): string {
  return `sha-256=:${Buffer.from(hex, 'hex').toString('base64')}:`;
}
