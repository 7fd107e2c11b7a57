import { decodeExtValue, parseParameterized } from './header-params.js';

export interface Disposition {
  /** `form-data`, `attachment`, `inline`..., lower-cased. */
  readonly type: string;
  readonly params: Readonly<Record<string, string>>;
}

/**
 * Parses a `Content-Disposition` value (RFC 6266 / RFC 7578 4.2); null when malformed.
 *
 * `formData`: the header of a multipart/form-data part. Clients quote names two ways there:
 * RFC 9110 quoted-pairs (`\"`, `\\`: Go, Python's email package) and the HTML standard's
 * encoding (browsers, curl: `"` as `%22` and backslashes as they are, so a name ending in `\`
 * is sent as `"a\"`). The escaped reading is tried first; a value that only the HTML reading
 * can parse is read that way instead of being refused.
 */
export function parseContentDisposition(text: string, options: { formData?: boolean } = {}): Disposition | null {
  let parsed = parseParameterized(text);
  if (parsed === null && options.formData === true) parsed = parseParameterized(text, { escapes: false });
  if (parsed === null || parsed.value === '' || parsed.value.includes('/')) return null;
  return { type: parsed.value, params: parsed.params };
}

/**
 * The filename a disposition carries, as the client meant it (see `dispositionParam`); then only
 * the last path segment is kept, split on both `/` and `\` (old browsers sent full paths, RFC
 * 7578 4.2 says to drop them). `null` when there is no filename parameter at all; `''` for
 * `filename=""`.
 */
export function dispositionFilename(disposition: Disposition, options: { formData?: boolean } = {}): string | null {
  const filename = dispositionParam(disposition, 'filename', options);
  return filename === null ? null : lastPathSegment(filename);
}

/**
 * A parameter's value, whichever way it was sent: `name*` (RFC 8187) wins over `name` whatever
 * their order (RFC 6266 4.3), then RFC 2231 continuations (`name*0*=utf-8''...; name*1*=...`,
 * which Python's email package writes for long values), then the plain `name`, with the HTML
 * standard's `%22`/`%0D`/`%0A` undone in form-data. `null` when the parameter is absent; `''`
 * when only an undecodable extended form was sent.
 */
export function dispositionParam(disposition: Disposition, name: 'name' | 'filename', options: { formData?: boolean } = {}): string | null {
  const { params } = disposition;
  const keys = KEYS[name];
  const ext = params[keys.ext];
  const extDecoded = ext === undefined ? null : decodeExtValue(ext);
  if (extDecoded !== null) return extDecoded;
  const continued = params[keys.first] !== undefined || params[keys.firstExt] !== undefined;
  const joined = continued ? joinContinuations(params, name) : null;
  if (joined !== null) return joined;
  const plain = params[name];
  if (plain === undefined) return ext === undefined && !continued ? null : '';
  return options.formData === true ? decodeFormDataEscapes(plain) : plain;
}

/** The parameter names looked up for every part, made once. */
const KEYS = {
  name: { ext: 'name*', first: 'name*0', firstExt: 'name*0*' },
  filename: { ext: 'filename*', first: 'filename*0', firstExt: 'filename*0*' },
} as const;

/**
 * RFC 2231 3-4: `name*0`, `name*1`... joined in order; sections written `name*N*` are
 * percent-encoded in the charset that `name*0*` names (`charset'lang'...`). Null when they do
 * not decode.
 */
function joinContinuations(params: Readonly<Record<string, string>>, name: string): string | null {
  const first = params[`${name}*0*`];
  // Built as one ext-value: plain sections percent-encoded, encoded ones as they are.
  let value = first === undefined ? "utf-8''" : '';
  for (let i = 0; ; i += 1) {
    const encoded = params[`${name}*${i}*`];
    const plain = params[`${name}*${i}`];
    if (encoded === undefined && plain === undefined) break;
    if (encoded !== undefined && plain !== undefined) return null;
    value += encoded ?? percentEncode(plain as string);
  }
  return decodeExtValue(value);
}

function percentEncode(text: string): string {
  let out = '';
  for (const byte of Buffer.from(text, 'utf8')) out += `%${byte.toString(16).padStart(2, '0')}`;
  return out;
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
