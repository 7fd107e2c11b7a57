/**
 * The request's Content-Type: is it multipart/form-data, and what is its boundary
 * (RFC 7578 4.1, RFC 2046 5.1.1, RFC 9110 8.3.1).
 */
import { strict as assert } from 'node:assert';
import { describe, test } from 'node:test';
import { SluiceError } from '../lib/errors.js';
import { boundaryFromContentType, isMultipartFormData } from '../multipart/content-type.js';

const B70 = "0123456789'()+_,-./:=?abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUV";

interface BoundaryCase {
  readonly what: string;
  readonly header: string | undefined;
  /** The boundary, or the error code. */
  readonly expect: { readonly boundary: string } | { readonly code: 'BOUNDARY_MISSING' | 'BOUNDARY_INVALID' };
}

const boundaryCases: BoundaryCase[] = [
  { what: 'RFC 2046 5.1.1: a bare (token) boundary', header: 'multipart/form-data; boundary=abc123', expect: { boundary: 'abc123' } },
  { what: 'RFC 2046 5.1.1: a quoted boundary', header: 'multipart/form-data; boundary="abc123"', expect: { boundary: 'abc123' } },
  {
    what: 'RFC 2046 5.1.1: a quoted boundary with spaces and specials (bchars)',
    header: "multipart/form-data; boundary=\"a b'()+_,-./:=?z\"",
    expect: { boundary: "a b'()+_,-./:=?z" },
  },
  {
    what: 'the boundary WebKit/Chromium send',
    header: 'multipart/form-data; boundary=----WebKitFormBoundary7MA4YWxkTrZu0gW',
    expect: { boundary: '----WebKitFormBoundary7MA4YWxkTrZu0gW' },
  },
  { what: 'RFC 2045 5.1: the parameter name is case-insensitive', header: 'multipart/form-data; BoUnDaRy=abc', expect: { boundary: 'abc' } },
  { what: 'RFC 2046 5.1.1: the boundary value is case-sensitive', header: 'multipart/form-data; boundary=AbCdEf', expect: { boundary: 'AbCdEf' } },
  { what: 'RFC 2045 5.1: the media type is case-insensitive', header: 'Multipart/Form-Data; boundary=abc', expect: { boundary: 'abc' } },
  { what: 'RFC 2045 5.1: other parameters before the boundary', header: 'multipart/form-data; charset=utf-8; boundary=abc', expect: { boundary: 'abc' } },
  { what: 'RFC 2045 5.1: other parameters after the boundary', header: 'multipart/form-data; boundary="abc"; charset=utf-8', expect: { boundary: 'abc' } },
  { what: 'RFC 9110 5.6.6: no whitespace around `;`', header: 'multipart/form-data;boundary=abc', expect: { boundary: 'abc' } },
  { what: 'RFC 9110 5.6.6: whitespace before `;`', header: 'multipart/form-data ; boundary=abc', expect: { boundary: 'abc' } },
  { what: 'RFC 2046 5.1.1: a 1-character boundary', header: 'multipart/form-data; boundary=a', expect: { boundary: 'a' } },
  { what: 'RFC 2046 5.1.1: a 70-character boundary (the maximum)', header: `multipart/form-data; boundary="${B70}"`, expect: { boundary: B70 } },
  { what: 'RFC 9110 token characters outside bchars (Android HttpURLConnection samples: `*****`), as undici and Go take them', header: 'multipart/form-data;boundary=*****', expect: { boundary: '*****' } },
  { what: 'every RFC 9110 tchar that is not a bchar, unquoted', header: 'multipart/form-data; boundary=a!#$%&*^`|~z', expect: { boundary: 'a!#$%&*^`|~z' } },
  { what: 'Python email: `===...==` boundary, quoted, parameter not last', header: 'multipart/form-data; boundary="===============5833894746536139643=="; charset=x', expect: { boundary: '===============5833894746536139643==' } },
  { what: 'RFC 2046 5.1.1: a boundary is required', header: 'multipart/form-data', expect: { code: 'BOUNDARY_MISSING' } },
  { what: 'RFC 2046 5.1.1: a boundary is required (other parameters only)', header: 'multipart/form-data; charset=utf-8', expect: { code: 'BOUNDARY_MISSING' } },
  { what: 'no Content-Type header at all', header: undefined, expect: { code: 'BOUNDARY_MISSING' } },
  { what: 'RFC 2046 5.1.1: an empty bare boundary is invalid', header: 'multipart/form-data; boundary=', expect: { code: 'BOUNDARY_INVALID' } },
  { what: 'RFC 2046 5.1.1: an empty quoted boundary is invalid', header: 'multipart/form-data; boundary=""', expect: { code: 'BOUNDARY_INVALID' } },
  {
    what: 'RFC 2046 5.1.1: a 71-character boundary is invalid (1*70 bchars)',
    header: `multipart/form-data; boundary="${B70}x"`,
    expect: { code: 'BOUNDARY_INVALID' },
  },
  { what: 'not a bchar but printable (`@`, as undici, Go and formidable take it)', header: 'multipart/form-data; boundary="a@b"', expect: { boundary: 'a@b' } },
  { what: 'a quote (as a quoted-pair) is printable', header: 'multipart/form-data; boundary="a\\"b"', expect: { boundary: 'a"b' } },
  { what: 'RFC 2046 5.1.1: a boundary must not end with a space (bcharsnospace)', header: 'multipart/form-data; boundary="abc "', expect: { code: 'BOUNDARY_INVALID' } },
  { what: 'RFC 2046 5.1.1: non-ASCII is not a bchar', header: 'multipart/form-data; boundary="abcé"', expect: { code: 'BOUNDARY_INVALID' } },
  { what: 'RFC 2046 5.1.1: a control byte is not a bchar', header: 'multipart/form-data; boundary="ab\tc"', expect: { code: 'BOUNDARY_INVALID' } },
  { what: 'formidable fixture base64/menu_seperator: an unquoted boundary of backslashes and slashes', header: 'multipart/form-data; boundary=\\/\\/\\/\\/', expect: { boundary: '\\/\\/\\/\\/' } },
  { what: 'DEL is not printable', header: 'multipart/form-data; boundary="a\x7fb"', expect: { code: 'BOUNDARY_INVALID' } },
  { what: 'an unterminated quoted boundary is BOUNDARY_INVALID', header: 'multipart/form-data; boundary="abc', expect: { code: 'BOUNDARY_INVALID' } },
  {
    what: 'a repeated boundary (which one would a proxy in front have used?) is BOUNDARY_INVALID',
    header: 'multipart/form-data; boundary=abc; boundary=def',
    expect: { code: 'BOUNDARY_INVALID' },
  },
  {
    what: 'the same boundary twice is still a repeated parameter',
    header: 'multipart/form-data; boundary=abc; BOUNDARY=abc',
    expect: { code: 'BOUNDARY_INVALID' },
  },
];

describe('boundaryFromContentType', () => {
  for (const c of boundaryCases) {
    test(c.what, () => {
      if ('boundary' in c.expect) {
        assert.equal(boundaryFromContentType(c.header), c.expect.boundary);
      } else {
        const { code } = c.expect;
        assert.throws(
          () => boundaryFromContentType(c.header),
          (err: unknown) => err instanceof SluiceError && err.code === code && err.status === 400,
          `${JSON.stringify(c.header)} should throw ${code}`,
        );
      }
    });
  }
});

const multipartCases: readonly (readonly [string, string | undefined, boolean])[] = [
  ['RFC 7578 4.1: multipart/form-data with a boundary', 'multipart/form-data; boundary=abc', true],
  ['RFC 2045 5.1: the type is case-insensitive', 'MULTIPART/FORM-DATA; boundary=abc', true],
  ['RFC 7578 4.1: the type without parameters is still form-data', 'multipart/form-data', true],
  ['no `;` space', 'multipart/form-data;boundary=abc', true],
  ['another multipart subtype is not form-data', 'multipart/mixed; boundary=abc', false],
  ['a subtype that merely starts with form-data', 'multipart/form-datax; boundary=abc', false],
  ['not multipart', 'application/octet-stream', false],
  ['form-urlencoded', 'application/x-www-form-urlencoded', false],
  ['parameters that do not parse do not make it a raw upload (the boundary check then answers 400)', 'multipart/form-data; boundary="abc', true],
  ['a repeated parameter likewise', 'multipart/form-data; boundary=a; boundary=b', true],
  ['whitespace around the type', '  multipart/form-data  ; boundary=a', true],
  ['an empty header', '', false],
  ['no header', undefined, false],
];

describe('isMultipartFormData', () => {
  for (const [what, header, expected] of multipartCases) {
    test(`${what}: ${JSON.stringify(header)} -> ${expected}`, () => {
      assert.equal(isMultipartFormData(header), expected);
    });
  }
});
