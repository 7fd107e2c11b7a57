/**
 * Parameters of structured header values (`type/subtype; a=b; c="d"`), as RFC 9110 5.6.6 and
 * RFC 6266 define them, and RFC 8187 extended values (`filename*=UTF-8''na%C3%AFve.txt`).
 * Works on already decoded strings; knows nothing of HTTP or multipart.
 */
import { TextDecoder } from 'node:util';

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

export interface ParseOptions {
  /**
   * `true` (the default): a quoted-string holds `\"` and `\\` escapes (RFC 9110 5.6.4).
   * `false`: a quoted-string ends at the next `"` and a backslash is an ordinary byte, as the
   * HTML standard's multipart/form-data encoding writes names (browsers, curl) and as the
   * WHATWG parser (`Response#formData`) reads them.
   */
  readonly escapes?: boolean;
}

/**
 * Splits `value; name=token; name="quoted \" string"`. Returns null on a syntax error:
 * unterminated quotes, a parameter without `=`, a name that is not a token, junk after a value,
 * and a repeated parameter (RFC 6266 4.1 calls it invalid; peers disagree on which copy wins,
 * so any choice could name a different field or file than a proxy in front of us saw).
 */
export function parseParameterized(text: string, options: ParseOptions = {}): ParsedValue | null {
  const escapes = options.escapes !== false;
  const n = text.length;
  const semi = text.indexOf(';');
  const head = (semi === -1 ? text : text.slice(0, semi)).trim().toLowerCase();
  const params: Record<string, string> = Object.create(null) as Record<string, string>;
  let i = semi === -1 ? n : semi;
  // Where the next backslash is, looked up again only once passed: asking per quoted value
  // (lastIndexOf back to the start) made a header of many quoted values quadratic.
  let nextBackslash = -1;
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
      if (nextBackslash !== n && nextBackslash <= i) {
        const at = text.indexOf('\\', i + 1);
        nextBackslash = at === -1 ? n : at;
      }
      if (!escapes || nextBackslash > close) {
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
    if (params[name] !== undefined) return null;
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

/** What decodes a charset's bytes to text. */
export interface TextDecoding {
  decode(bytes: Buffer): string;
}

/**
 * windows-1252, what the WHATWG Encoding standard (so every browser) uses for the labels
 * `windows-1252`, `ISO-8859-1`, `latin1` and `us-ascii`: ISO-8859-1 but for 0x80-0x9F, which
 * are `€`, `‚`, `ƒ`... Node 20's TextDecoder decodes these labels as plain ISO-8859-1, so a
 * form sent with accept-charset=windows-1252 would lose its `€`.
 */
const WINDOWS_1252_C1 = '\u20ac\x81\u201a\u0192\u201e\u2026\u2020\u2021\u02c6\u2030\u0160\u2039\u0152\x8d\u017d\x8f\x90\u2018\u2019\u201c\u201d\u2022\u2013\u2014\u02dc\u2122\u0161\u203a\u0153\x9d\u017e\u0178';
const windows1252: TextDecoding = {
  decode: (bytes) => bytes.toString('latin1').replace(/[\x80-\x9f]/g, (c) => WINDOWS_1252_C1[c.charCodeAt(0) - 0x80] as string),
};

/** Decoders by charset label, made once each (labels are a fixed set; unknown ones are not kept). */
const decoders = new Map<string, TextDecoding>();

/**
 * A decoder for a charset label (`utf-8`, `ISO-8859-1`, `us-ascii`, `windows-1252`,
 * `shift_jis`...: the WHATWG Encoding labels), or null when the label names no charset we have.
 * `fatal`: invalid bytes throw instead of becoming U+FFFD. The BOM is kept: it is part of the
 * value the client sent.
 */
export function charsetDecoder(label: string, fatal = true): TextDecoding | null {
  const key = `${fatal ? 'f' : 'r'}:${label.trim().toLowerCase()}`;
  let decoder = decoders.get(key);
  if (decoder === undefined) {
    let textDecoder: TextDecoder;
    try {
      textDecoder = new TextDecoder(key.slice(2), { fatal, ignoreBOM: true });
    } catch {
      return null;
    }
    decoder = textDecoder.encoding === 'windows-1252' ? windows1252 : textDecoder;
    decoders.set(key, decoder);
  }
  return decoder;
}

/**
 * Decodes an RFC 8187 / RFC 2231 ext-value: `charset'[language]'pct-encoded`. UTF-8 and
 * ISO-8859-1 are the charsets RFC 8187 3.2.1 requires; others (`us-ascii`, which Python's
 * email package writes) are decoded when known. An unknown charset or invalid encoding returns
 * null so that the caller can fall back to the plain parameter.
 */
export function decodeExtValue(text: string): string | null {
  const match = /^([A-Za-z0-9!#$%&+^_`{}~-]+)'[^']*'(.*)$/s.exec(text);
  if (match === null) return null;
  const encoded = match[2] as string;
  if (!/^(?:[A-Za-z0-9!#$&+.^_`|~-]|%[0-9A-Fa-f]{2})*$/.test(encoded)) return null;
  const decoder = charsetDecoder(match[1] as string);
  if (decoder === null) return null;
  const bytes = Buffer.from(encoded.replace(/%([0-9A-Fa-f]{2})/g, (_m, h: string) => String.fromCharCode(parseInt(h, 16))), 'latin1');
  try {
    return decoder.decode(bytes);
  } catch {
    return null;
  }
}

/**
 * Header bytes as text: UTF-8 when they are valid UTF-8 (what browsers send for non-ASCII
 * names), else windows-1252 (what they send for a form with that accept-charset), so that no
 * byte is ever lost or turned into an error.
 */
export function decodeHeaderBytes(bytes: Buffer): string {
  try {
    return utf8.decode(bytes);
  } catch {
    return windows1252.decode(bytes);
  }
}
