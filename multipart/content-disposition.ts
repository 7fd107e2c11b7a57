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
export function dispositionFilename(disposition: Disposition, options: { formData?: boolean } = {}): string | null {
  const ext = disposition.params['filename*'];
  const extDecoded = ext === undefined ? null : decodeExtValue(ext);
  if (extDecoded !== null) return lastPathSegment(extDecoded);
  const plain = disposition.params.filename;
  if (plain === undefined) return ext === undefined ? null : '';
  return lastPathSegment(options.formData === true ? decodeFormDataEscapes(plain) : plain);
}

/**
 * Undoes what the HTML standard's multipart/form-data encoding does to names and filenames:
 * `"` sent as `%22`, CR as `%0D`, LF as `%0A` (and nothing else, `%` itself is not escaped), as
 * the WHATWG parser (`Response#formData`) reads them back.
 */
export function decodeFormDataEscapes(text: string): string {
  return text.indexOf('%') === -1 ? text : text.replace(/%(22|0[Dd]|0[Aa])/g, (_m, hex: string) => String.fromCharCode(parseInt(hex, 16)));
}

export function lastPathSegment(name: string): string {
  const cut = Math.max(name.lastIndexOf('/'), name.lastIndexOf('\\'));
  const segment = cut === -1 ? name : name.slice(cut + 1);
  // `.` and `..` name directories, not files (busboy drops them too).
  return segment === '.' || segment === '..' ? '' : segment;
}

/** RFC 8187 3.2.1 attr-char: what may stand unencoded in an ext-value. */
const ATTR_CHAR = /[A-Za-z0-9!#$&+\-.^_`|~]/;

/**
 * A `Content-Disposition` response value (RFC 6266 4.1): an ASCII `filename` fallback for old
 * clients and, when the name is not plain ASCII, `filename*=UTF-8''...`. Quotes, backslashes,
 * control characters and non-ASCII never reach the quoted string, so a hostile stored name
 * cannot inject a header or break out of the value.
 */
export function formatContentDisposition(type: 'attachment' | 'inline', filename: string | null): string {
  if (filename === null || filename === '') return type;
  const fallback = filename.replace(/[^\x20-\x7e]|["\\%]/g, '_');
  let value = `${type}; filename="${fallback}"`;
  if (fallback !== filename) {
    let encoded = '';
    for (const byte of Buffer.from(filename, 'utf8')) {
      const ch = String.fromCharCode(byte);
      encoded += byte < 0x80 && ATTR_CHAR.test(ch) ? ch : `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
    }
    value += `; filename*=UTF-8''${encoded}`;
  }
  return value;
}
