import { decodeExtValue, parseParameterized } from './header-params.js';

export interface Disposition {
  /** `form-data`, `attachment`, `inline`..., lower-cased. */
  readonly type: string;
  readonly params: Readonly<Record<string, string>>;
}

/** Parses a `Content-Disposition` value (RFC 6266 / RFC 7578 4.2); null when malformed. */
export function parseContentDisposition(text: string): Disposition | null {
  const parsed = parseParameterized(text);
  if (parsed === null || parsed.value === '' || parsed.value.includes('/')) return null;
  return { type: parsed.value, params: parsed.params };
}

/**
 * The filename a disposition carries, as the client meant it: `filename*` (RFC 8187) wins over
 * `filename` whatever their order (RFC 6266 4.3); then only the last path segment is kept,
 * split on both `/` and `\` (old browsers sent full paths, RFC 7578 4.2 says to drop them).
 * `null` when there is no filename parameter at all; `''` for `filename=""`.
 */
export function dispositionFilename(disposition: Disposition): string | null {
  const ext = disposition.params['filename*'];
  const extDecoded = ext === undefined ? null : decodeExtValue(ext);
  const raw = extDecoded ?? disposition.params.filename;
  if (raw === undefined) return ext === undefined ? null : '';
  return lastPathSegment(raw);
}

export function lastPathSegment(name: string): string {
  const cut = Math.max(name.lastIndexOf('/'), name.lastIndexOf('\\'));
  return cut === -1 ? name : name.slice(cut + 1);
}
