/**
 * Parameters of structured header values (`type/subtype; a=b; c="d"`), as RFC 9110 5.6.6 and
 * RFC 6266 define them, and RFC 8187 extended values (`filename*=UTF-8''na%C3%AFve.txt`).
 * Works on already decoded strings; knows nothing of HTTP or multipart.
 */

/** RFC 9110 5.6.2 tchar, as a 128-entry lookup table (non-ASCII is never a token char). */
export const TOKEN_CHAR: Uint8Array = (() => {
  const table = new Uint8Array(128);
  for (const c of "!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz") table[c.charCodeAt(0)] = 1;
  return table;
})();

export interface ParsedValue {
  /** The part before the first `;`, trimmed, lower-cased (`form-data`, `multipart/form-data`). */
  readonly value: string;
  /** Parameter names lower-cased; a null-prototype record, so `__proto__` is just a name. */
  readonly params: Readonly<Record<string, string>>;
}

/**
 * Splits `value; name=token; name="quoted \" string"`. Returns null on a syntax error:
 * unterminated quotes, a parameter without `=`, a name that is not a token, junk after a value.
 * A repeated parameter keeps its last value (as werkzeug and browsers' own parsers do).
 */
export function parseParameterized(text: string): ParsedValue | null {
  const n = text.length;
  const semi = text.indexOf(';');
  const head = (semi === -1 ? text : text.slice(0, semi)).trim().toLowerCase();
  const params: Record<string, string> = Object.create(null) as Record<string, string>;
  let i = semi === -1 ? n : semi;
  while (i < n) {
    // at a ';'
    i = skipSpace(text, i + 1);
    if (i >= n) break; // a trailing ';' is tolerated
    if (text.charCodeAt(i) === SEMI) continue; // so is an empty parameter
    const nameStart = i;
    for (let c = text.charCodeAt(i); c < 128 && TOKEN_CHAR[c] === 1; c = text.charCodeAt(++i));
    if (i === nameStart) return null;
    const name = text.slice(nameStart, i).toLowerCase();
    i = skipSpace(text, i);
    if (text.charCodeAt(i) !== EQUALS) return null;
    i = skipSpace(text, i + 1);
    let value: string;
    if (text.charCodeAt(i) === QUOTE) {
      // RFC 9110 5.6.4 quoted-string.
      const close = text.indexOf('"', i + 1);
      if (close === -1) return null;
      if (text.lastIndexOf('\\', close) <= i) {
        // The common case: no backslash, the value is a plain slice.
        value = text.slice(i + 1, close);
        i = close + 1;
      } else {
        const unquoted = unquote(text, i + 1);
        if (unquoted === null) return null;
        [value, i] = unquoted;
      }
    } else {
      const valueStart = i;
      for (let c = text.charCodeAt(i); i < n && c !== SEMI && c !== SP && c !== HTAB && c !== QUOTE; c = text.charCodeAt(++i));
      if (i === valueStart) return null;
      value = text.slice(valueStart, i);
    }
    i = skipSpace(text, i);
    if (i < n && text.charCodeAt(i) !== SEMI) return null;
    params[name] = value;
  }
  return { value: head, params };
}

/** The rest of a quoted-string that holds backslashes, from just after its opening quote. */
function unquote(text: string, from: number): [string, number] | null {
  let out = '';
  let runStart = from;
  for (let i = from; i < text.length; i += 1) {
    const c = text.charCodeAt(i);
    if (c === QUOTE) return [out + text.slice(runStart, i), i + 1];
    // Only `\"` and `\\` are taken as escapes: a lone backslash stays, because clients
    // (old IE, Windows tools) send paths like `C:\Users\a.txt` unescaped, and meant them.
    if (c === BACKSLASH) {
      const next = text.charCodeAt(i + 1);
      if (next === QUOTE || next === BACKSLASH) {
        out += text.slice(runStart, i);
        runStart = i + 1;
        i += 1;
      }
    }
  }
  return null;
}

const SEMI = 0x3b;
const EQUALS = 0x3d;
const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const SP = 0x20;
const HTAB = 0x09;

function skipSpace(text: string, i: number): number {
  for (let c = text.charCodeAt(i); c === SP || c === HTAB; c = text.charCodeAt(++i));
  return i;
}

const utf8 = new TextDecoder('utf-8', { fatal: true });
const latin1 = new TextDecoder('latin1');

/**
 * Decodes an RFC 8187 ext-value: `charset'[language]'pct-encoded`. UTF-8 and ISO-8859-1 are
 * the charsets RFC 8187 3.2.1 requires; anything else, or invalid encoding, returns null so that
 * the caller can fall back to the plain parameter.
 */
export function decodeExtValue(text: string): string | null {
  const match = /^([A-Za-z0-9!#$%&+^_`{}~-]+)'[^']*'(.*)$/s.exec(text);
  if (match === null) return null;
  const charset = (match[1] as string).toLowerCase();
  const encoded = match[2] as string;
  if (!/^(?:[A-Za-z0-9!#$&+.^_`|~-]|%[0-9A-Fa-f]{2})*$/.test(encoded)) return null;
  const bytes = Buffer.from(encoded.replace(/%([0-9A-Fa-f]{2})/g, (_m, h: string) => String.fromCharCode(parseInt(h, 16))), 'latin1');
  try {
    if (charset === 'utf-8') return utf8.decode(bytes);
    if (charset === 'iso-8859-1') return latin1.decode(bytes);
  } catch {
    return null;
  }
  return null;
}

/**
 * Header bytes as text: UTF-8 when they are valid UTF-8 (what browsers send for non-ASCII
 * names), else latin1, so that no byte is ever lost or turned into an error.
 */
export function decodeHeaderBytes(bytes: Buffer): string {
  try {
    return utf8.decode(bytes);
  } catch {
    return latin1.decode(bytes);
  }
}
