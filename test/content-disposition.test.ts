/**
 * Content-Disposition of a part (RFC 7578 4.2, RFC 6266 4, RFC 8187), tested through the parser
 * (its contract is PartInfo, not a header helper). Every case is fed whole, one byte at a time,
 * split at every offset and in seeded random chunkings.
 */
import { describe, test } from 'node:test';
import { BOUNDARY, onePart, runErrorCase, runValidCase, type ErrorCase, type ValidCase } from './helpers/multipart-body.js';

const B = BOUNDARY;
const disposition = (value: string | Buffer): Buffer =>
  Buffer.concat([Buffer.from('Content-Disposition: '), typeof value === 'string' ? Buffer.from(value) : value]);

/** One part with this Content-Disposition value (and optional Content-Type), data `d`. */
function valid(what: string, value: string | Buffer, expected: { name: string; filename?: string | null; contentType?: string | null }, contentType?: string): ValidCase {
  const headers = [disposition(value), ...(contentType === undefined ? [] : [`Content-Type: ${contentType}`])];
  return { what, body: onePart(B, headers, 'd'), parts: [{ ...expected, data: 'd' }] };
}

function invalid(what: string, value: string, code: string | readonly string[] = 'CONTENT_DISPOSITION_MALFORMED'): ErrorCase {
  return { what, body: onePart(B, [disposition(value)], 'd'), code, status: 400 };
}

const validCases: ValidCase[] = [
  valid('RFC 7578 4.2: a quoted-string name; no filename means a field (filename null)', 'form-data; name="a b"', { name: 'a b', filename: null }),
  valid('RFC 6266 4.1 / RFC 2045 5.1: a token name', 'form-data; name=field1', { name: 'field1' }),
  valid('RFC 9110 5.6.4: backslash escapes in a quoted-string', 'form-data; name="a\\"b\\\\c"', { name: 'a"b\\c' }),
  valid('RFC 9110 5.6.4: a quoted-string may hold `;`, `=` and `,`', 'form-data; name="a;b=c,d"', { name: 'a;b=c,d' }),
  valid(
    'RFC 6266 4.1: the disposition type and parameter names are case-insensitive',
    'FORM-DATA; NAME="a"; FileName="f.txt"',
    { name: 'a', filename: 'f.txt' },
  ),
  valid('RFC 6266 4.1: no whitespace around `;` is fine', 'form-data;name="a";filename="f.txt"', { name: 'a', filename: 'f.txt' }),
  valid(
    'RFC 6266 4.1 (implied LWS): whitespace around `;` and `=` is fine',
    'form-data ; name = "a" ;\tfilename= "f.txt"',
    { name: 'a', filename: 'f.txt' },
  ),
  valid('RFC 6266 4.1: unknown parameters are ignored', 'form-data; name="a"; size=3; foo="bar"', { name: 'a' }),
  valid('RFC 6266 4.1: a token filename makes a file part', 'form-data; name="f"; filename=a.txt', { name: 'f', filename: 'a.txt' }),
  valid(
    'RFC 6266 4.3: filename* (RFC 8187) wins over a filename that comes before it',
    "form-data; name=\"f\"; filename=\"naive.txt\"; filename*=UTF-8''na%C3%AFve.txt",
    { name: 'f', filename: 'naïve.txt' },
  ),
  valid(
    'RFC 6266 4.3: filename* (RFC 8187) wins over a filename that comes after it',
    "form-data; name=\"f\"; filename*=UTF-8''na%C3%AFve.txt; filename=\"naive.txt\"",
    { name: 'f', filename: 'naïve.txt' },
  ),
  valid('RFC 8187 3.2: filename* alone makes a file part', "form-data; name=\"f\"; filename*=UTF-8''a%20b.txt", { name: 'f', filename: 'a b.txt' }),
  valid(
    'RFC 8187 3.2.1: the charset is case-insensitive and a language tag is allowed',
    "form-data; name=\"f\"; filename*=utf-8'en'%E2%82%AC%20rates.txt",
    { name: 'f', filename: '€ rates.txt' },
  ),
  valid(
    'RFC 7578 5.1 / WHATWG HTML form encoding: a raw UTF-8 filename decodes as UTF-8, not latin1',
    Buffer.from('form-data; name="f"; filename="naïve 日本 €.txt"', 'utf8'),
    { name: 'f', filename: 'naïve 日本 €.txt' },
  ),
  valid('RFC 7578 5.1: a raw UTF-8 field name decodes as UTF-8', Buffer.from('form-data; name="名前"', 'utf8'), { name: '名前' }),
  valid('RFC 7578 4.2: only the last path segment of a filename is kept (../ traversal)', 'form-data; name="f"; filename="../../etc/passwd"', {
    name: 'f',
    filename: 'passwd',
  }),
  valid(
    'RFC 7578 4.2: only the last path segment is kept, split on backslashes (escaped in the quoted-string)',
    'form-data; name="f"; filename="C:\\\\Users\\\\x\\\\a.txt"',
    { name: 'f', filename: 'a.txt' },
  ),
  valid('RFC 7578 4.2: mixed / and \\ separators, last segment kept', 'form-data; name="f"; filename="a/b\\\\c.txt"', { name: 'f', filename: 'c.txt' }),
  valid(
    'RFC 7578 4.2: the last path segment is taken after percent-decoding filename*',
    "form-data; name=\"f\"; filename*=UTF-8''..%2F..%2Fetc%2Fpasswd",
    { name: 'f', filename: 'passwd' },
  ),
  valid('issue 2: filename="" (an empty file input) is a file part with filename \'\'', 'form-data; name="f"; filename=""', {
    name: 'f',
    filename: '',
  }),
  valid(
    'RFC 7578 4.4: the part Content-Type is kept as sent',
    'form-data; name="f"; filename="p.png"',
    { name: 'f', filename: 'p.png', contentType: 'image/png' },
    'image/png',
  ),
  valid(
    'RFC 7578 4.4: a Content-Type with parameters is kept whole',
    'form-data; name="a"',
    { name: 'a', contentType: 'text/plain; charset=utf-8' },
    'text/plain; charset=utf-8',
  ),
  valid('RFC 7578 4.4: no Content-Type gives null', 'form-data; name="f"; filename="x"', { name: 'f', filename: 'x', contentType: null }),
  valid('busboy: an empty Content-Type gives null, as if none was sent', 'form-data; name="f"; filename="x"', { name: 'f', filename: 'x', contentType: null }, ''),
  valid("RFC 8187: name*=UTF-8''... (Python's email package for non-ASCII names)", "form-data; name*=UTF-8''na%C3%AFve", { name: 'naïve' }),
  valid("RFC 6266 4.3 applied to name: name* wins over name", "form-data; name=\"naive\"; name*=UTF-8''na%C3%AFve", { name: 'naïve' }),
  valid(
    "RFC 2231 3-4: filename*0*/filename*1* continuations, percent-encoded, joined in order whatever their order in the header",
    "form-data; name=\"f\"; filename*1*=%20rates.txt; filename*0*=utf-8'en'%E2%82%AC",
    { name: 'f', filename: '€ rates.txt' },
  ),
  valid('RFC 2231 3: plain continuations (filename*0="..."; filename*1=...) join as they are', 'form-data; name="f"; filename*0="long "; filename*1=name.txt', { name: 'f', filename: 'long name.txt' }),
  valid(
    "RFC 2231: a mix of encoded and plain sections",
    "form-data; name=\"f\"; filename*0*=UTF-8''%C3%BC; filename*1=\" b\"; filename*2*=%C3%A9.txt",
    { name: 'f', filename: 'ü bé.txt' },
  ),
  valid("RFC 6266 4.3: filename* wins over continuations and filename", "form-data; name=\"f\"; filename=\"p.txt\"; filename*0=\"c.txt\"; filename*=UTF-8''e.txt", { name: 'f', filename: 'e.txt' }),
  valid('RFC 2231: continuations win over a plain filename', 'form-data; name="f"; filename="p.txt"; filename*0="c"; filename*1=".txt"', { name: 'f', filename: 'c.txt' }),
  valid("RFC 2231: continuations for name", "form-data; name*0*=utf-8''%E5%90%8D; name*1*=%E5%89%8D", { name: '名前' }),
  valid("Python email: filename*=us-ascii''...", "form-data; name=\"f\"; filename*=us-ascii''a%20b.txt", { name: 'f', filename: 'a b.txt' }),
  valid(
    "WHATWG Encoding: ISO-8859-1 in filename* is windows-1252 (0x80 is €), as browsers decode it",
    "form-data; name=\"f\"; filename*=ISO-8859-1''%80%E9.txt",
    { name: 'f', filename: '€é.txt' },
  ),
  valid("RFC 8187: an unknown charset falls back to the plain filename", "form-data; name=\"f\"; filename=\"plain.txt\"; filename*=x-unknown''abc", { name: 'f', filename: 'plain.txt' }),
  valid(
    'a header that is not UTF-8 (a form sent with accept-charset=windows-1252) decodes as windows-1252',
    Buffer.concat([Buffer.from('form-data; name="'), Buffer.from([0x80, 0xe9]), Buffer.from('"; filename="'), Buffer.from([0x9c]), Buffer.from('.txt"')]),
    { name: '€é', filename: 'œ.txt' },
  ),
  valid('HTML standard (browsers, curl): a name ending in a backslash, written "a\\" (no escape)', 'form-data; name="a\\"; filename="b.txt"', { name: 'a\\', filename: 'b.txt' }),
  valid('HTML standard: a lone backslash before %22 stays, %22 becomes a quote', 'form-data; name="a\\%22b"', { name: 'a\\"b' }),
];

const errorCases: ErrorCase[] = [
  invalid('RFC 7578 4.2: the disposition type must be form-data (attachment)', 'attachment; name="a"'),
  invalid('RFC 7578 4.2: the disposition type must be form-data (inline, no parameters)', 'inline'),
  invalid('RFC 7578 4.2: a type that merely starts with form-data is not form-data', 'form-datax; name="a"'),
  invalid('RFC 7578 4.2: form-data without parameters has no name', 'form-data'),
  invalid('RFC 7578 4.2: form-data with a filename but no name', 'form-data; filename="a.txt"'),
  invalid('RFC 6266 4.1: an unterminated quoted-string', 'form-data; name="a'),
  invalid('RFC 6266 4.1: a parameter without a value', 'form-data; name'),
  invalid('RFC 6266 4.1: a parameter without a name', 'form-data; ="a"'),
  invalid('RFC 6266 4.1: parameters must be separated by `;`', 'form-data name="a"'),
  invalid('RFC 6266 4.1: a token value followed by junk', 'form-data; name=a b'),
  invalid('RFC 7578 4.2: an empty Content-Disposition value', '', ['CONTENT_DISPOSITION_MALFORMED', 'CONTENT_DISPOSITION_MISSING']),
  invalid('RFC 6266 4.1: a repeated parameter is invalid (peers disagree on which copy wins)', 'form-data; name="a"; name="b"'),
  invalid('RFC 6266 4.1: a repeated filename is invalid', 'form-data; name="a"; filename="a.txt"; FILENAME="a.php"'),
  invalid('neither reading parses: an unterminated quote after a backslash', 'form-data; name="a\\'),
];

describe('Content-Disposition (RFC 7578 4.2, RFC 6266, RFC 8187)', () => {
  for (const c of validCases) test(c.what, () => runValidCase(c));
  for (const c of errorCases) test(c.what, () => runErrorCase(c));
});
