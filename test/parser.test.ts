/**
 * MultipartParser: framing (RFC 2046 5.1.1, RFC 7578), part headers, limits, truncation,
 * backpressure, and a cross-check against busboy on random bodies.
 *
 * Every table case is fed whole, one byte at a time, split in two at every offset, and in seeded
 * random chunkings (see `chunkings` in helpers/multipart-body.ts), always expecting the same
 * result. Add a case by adding a row.
 */
import { strict as assert } from 'node:assert';
import { execFile } from 'node:child_process';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import busboy from 'busboy';
import type { MultipartEvent } from '../multipart/events.js';
import {
  BOUNDARY,
  assertSluiceError,
  buildBody,
  bytes,
  collect,
  collectPiped,
  eventsOf,
  field,
  file,
  mulberry32,
  newParser,
  onePart,
  oneByteChunks,
  randomChunks,
  randomInt,
  runErrorCase,
  runValidCase,
  type CaseOptions,
  type ErrorCase,
  type ExpectedPart,
  type PartSpec,
  type ValidCase,
} from './helpers/multipart-body.js';

const B = BOUNDARY;
const CD = (name: string): string => `Content-Disposition: form-data; name="${name}"`;
/** Every byte value, twice: binary data with CR, LF and dashes in every position. */
const ALL_BYTES = Buffer.concat([Buffer.from(Array.from({ length: 256 }, (_, i) => i)), Buffer.from(Array.from({ length: 256 }, (_, i) => 255 - i))]);
/** 70 characters, the RFC 2046 maximum, using every bchars special. */
const BOUNDARY_70 = "0123456789'()+_,-./:=?abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUV";
assert.equal(BOUNDARY_70.length, 70);

// ---------------------------------------------------------------------------------------------
// Framing

const framingValid: ValidCase[] = [
  {
    what: 'RFC 2046 5.1.1: the first delimiter may open the body (no preamble)',
    body: buildBody(B, [field('a', '1'), file('f', 'a.txt', 'text/plain', 'hello')]),
    parts: [
      { name: 'a', data: '1' },
      { name: 'f', filename: 'a.txt', contentType: 'text/plain', data: 'hello' },
    ],
  },
  {
    what: 'RFC 2046 5.1.1: a preamble line before the first delimiter is ignored',
    body: buildBody(B, [field('a', '1')], { preamble: 'This is the preamble. It is to be ignored.' }),
    parts: [{ name: 'a', data: '1' }],
  },
  {
    what: 'RFC 2046 5.1.1: a multi-line preamble with boundary look-alikes not at a line start, and a partial delimiter line, is ignored',
    body: buildBody(B, [field('a', '1')], { preamble: 'line one\r\nx--boundary\r\n--boundar\r\n\r\n' }),
    parts: [{ name: 'a', data: '1' }],
  },
  {
    what: 'issue 2 (delimiter counts only when followed by --, padding or CRLF): `--boundaryX` / `--boundary-x` preamble lines are preamble',
    body: buildBody(B, [field('a', '1')], { preamble: '--boundaryX\r\n--boundary-x' }),
    parts: [{ name: 'a', data: '1' }],
  },
  {
    what: 'RFC 2046 5.1.1: the epilogue after the close delimiter is ignored, even when it looks like more parts',
    body: buildBody(B, [field('a', '1')], {
      epilogue: `epilogue\r\n--${B}\r\n${CD('ghost')}\r\n\r\nboo\r\n--${B}--\r\n`,
    }),
    parts: [{ name: 'a', data: '1' }],
  },
  {
    what: 'RFC 2046 5.1.1: the close delimiter need not be followed by CRLF',
    body: buildBody(B, [field('a', '1'), field('b', '2')], { finalCrlf: false }),
    parts: [
      { name: 'a', data: '1' },
      { name: 'b', data: '2' },
    ],
  },
  {
    what: 'RFC 2046 5.1.1 transport-padding: spaces and tabs after every delimiter and after the close delimiter',
    body: buildBody(B, [field('a', '1'), field('b', '2')], { padding: ' \t ', closePadding: '\t \t' }),
    parts: [
      { name: 'a', data: '1' },
      { name: 'b', data: '2' },
    ],
  },
  {
    what: 'RFC 2046 5.1.1 transport-padding: padding after the close delimiter only, with no final CRLF',
    body: buildBody(B, [field('a', '1')], { closePadding: '   ', finalCrlf: false }),
    parts: [{ name: 'a', data: '1' }],
  },
  {
    what: 'issue 2: `\\r\\n--boundaryX` inside data is data (the delimiter must be followed by --, padding or CRLF)',
    body: buildBody(B, [field('a', 'x\r\n--boundaryX\r\ny'), field('b', '\r\n--boundaryX')]),
    parts: [
      { name: 'a', data: 'x\r\n--boundaryX\r\ny' },
      { name: 'b', data: '\r\n--boundaryX' },
    ],
  },
  {
    what: 'issue 2: `\\r\\n--boundary-x` (one dash, not the close delimiter) inside data is data',
    body: buildBody(B, [field('a', 'x\r\n--boundary-x\r\ny'), field('b', '\r\n--boundary-')]),
    parts: [
      { name: 'a', data: 'x\r\n--boundary-x\r\ny' },
      { name: 'b', data: '\r\n--boundary-' },
    ],
  },
  {
    what: 'RFC 2046 5.1.1 (the delimiter must be preceded by CRLF): `--boundary` without CRLF before it is data',
    body: buildBody(B, [field('a', 'x--boundary\r\ny--boundary--'), field('b', '\n--boundary\r\n'), field('c', '\r--boundary\r\n')]),
    parts: [
      { name: 'a', data: 'x--boundary\r\ny--boundary--' },
      { name: 'b', data: '\n--boundary\r\n' },
      { name: 'c', data: '\r--boundary\r\n' },
    ],
  },
  {
    what: 'RFC 2046 5.1.1: every proper prefix of `\\r\\n--boundary` inside data is data (split across chunks by the splits)',
    body: buildBody(B, [
      field('a', 'x\r\n--boundar y'),
      field('b', 'x\r\n--boundar'),
      field('c', '\r\n--bound'),
      field('d', '\r\n-'),
      field('e', '\r\n--'),
      field('f', '\r'),
    ]),
    parts: [
      { name: 'a', data: 'x\r\n--boundar y' },
      { name: 'b', data: 'x\r\n--boundar' },
      { name: 'c', data: '\r\n--bound' },
      { name: 'd', data: '\r\n-' },
      { name: 'e', data: '\r\n--' },
      { name: 'f', data: '\r' },
    ],
  },
  {
    what: 'RFC 2046 5.1.1: empty part data (the delimiter right after the empty line)',
    body: buildBody(B, [field('a', ''), file('f', 'empty.bin', 'application/octet-stream', ''), field('c', '')]),
    parts: [
      { name: 'a', data: '' },
      { name: 'f', filename: 'empty.bin', contentType: 'application/octet-stream', data: '' },
      { name: 'c', data: '' },
    ],
  },
  {
    what: 'RFC 2046 5.1.1: data made only of CRLFs, and data ending with CR or CRLF, keeps every byte',
    body: buildBody(B, [field('a', '\r\n'), field('b', '\r\n\r\n'), field('c', 'abc\r'), field('d', 'abc\r\n'), field('e', '\n')]),
    parts: [
      { name: 'a', data: '\r\n' },
      { name: 'b', data: '\r\n\r\n' },
      { name: 'c', data: 'abc\r' },
      { name: 'd', data: 'abc\r\n' },
      { name: 'e', data: '\n' },
    ],
  },
  {
    what: 'dashes: data of `-`, `--`, `---` and ending with dashes',
    body: buildBody(B, [field('a', '-'), field('b', '--'), field('c', '---'), field('d', 'x--')]),
    parts: [
      { name: 'a', data: '-' },
      { name: 'b', data: '--' },
      { name: 'c', data: '---' },
      { name: 'd', data: 'x--' },
    ],
  },
  {
    what: 'binary data with every byte value survives intact',
    body: buildBody(B, [file('f', 'bin', 'application/octet-stream', ALL_BYTES), field('a', 'after')]),
    parts: [
      { name: 'f', filename: 'bin', contentType: 'application/octet-stream', data: ALL_BYTES },
      { name: 'a', data: 'after' },
    ],
  },
  {
    what: 'RFC 2046 5.1.1: a 1-character boundary',
    boundary: 'a',
    body: buildBody('a', [field('x', 'a--a\r\n-a\r\n--'), field('y', 'aaa')]),
    parts: [
      { name: 'x', data: 'a--a\r\n-a\r\n--' },
      { name: 'y', data: 'aaa' },
    ],
  },
  {
    what: 'RFC 2046 5.1.1: a 70-character boundary (the maximum) with every bchars special',
    boundary: BOUNDARY_70,
    body: buildBody(BOUNDARY_70, [field('x', `\r\n--${BOUNDARY_70.slice(0, 69)}`), field('y', 'two')]),
    parts: [
      { name: 'x', data: `\r\n--${BOUNDARY_70.slice(0, 69)}` },
      { name: 'y', data: 'two' },
    ],
  },
  {
    what: "RFC 2046 5.1.1 bchars: a boundary with spaces and specials (one that must be quoted in Content-Type)",
    boundary: "a b'()+_,-./:=? z",
    body: buildBody("a b'()+_,-./:=? z", [field('x', 'one'), field('y', '\r\n--a b')]),
    parts: [
      { name: 'x', data: 'one' },
      { name: 'y', data: '\r\n--a b' },
    ],
  },
  {
    what: 'RFC 2046 5.1.1: a close delimiter right away is a body of zero parts',
    body: Buffer.from(`--${B}--\r\n`),
    parts: [],
  },
  {
    what: 'RFC 2046 5.1.1: a close delimiter right away, no CRLF, is a body of zero parts',
    body: Buffer.from(`--${B}--`),
    parts: [],
  },
  {
    what: 'RFC 2046 5.1.1: a preamble then the close delimiter is a body of zero parts',
    body: Buffer.from(`preamble\r\n--${B}--\r\nepilogue`),
    parts: [],
  },
  {
    what: 'data that looks like a header block and the close delimiter without CRLF is data',
    body: buildBody(B, [field('a', `${CD('fake')}\r\n\r\nnot a part--${B}--\r\n`)]),
    parts: [{ name: 'a', data: `${CD('fake')}\r\n\r\nnot a part--${B}--\r\n` }],
  },
  {
    what: 'many small parts in a row, order kept',
    body: buildBody(B, Array.from({ length: 12 }, (_, i) => field(`f${i}`, String(i).repeat(i)))),
    parts: Array.from({ length: 12 }, (_, i) => ({ name: `f${i}`, data: String(i).repeat(i) })),
  },
];

const framingErrors: ErrorCase[] = [
  {
    what: 'issue 2: a body with no delimiter is MULTIPART_NO_DELIMITER, not an empty success',
    body: Buffer.from('hello world, there is no delimiter here\r\n'),
    code: 'MULTIPART_NO_DELIMITER',
    status: 400,
  },
  {
    what: 'issue 2: a body framed with another boundary has no delimiter',
    body: buildBody('other', [field('a', '1')]),
    code: 'MULTIPART_NO_DELIMITER',
    status: 400,
  },
  {
    what: 'issue 2: a body whose only boundary look-alikes are `--boundaryX` lines has no delimiter',
    body: Buffer.from('--boundaryX\r\nContent-Disposition: form-data; name="a"\r\n\r\n1\r\n--boundaryX--\r\n'),
    code: 'MULTIPART_NO_DELIMITER',
    status: 400,
  },
  {
    what: 'issue 2: an empty body is an error, not zero parts',
    body: Buffer.alloc(0),
    code: ['MULTIPART_NO_DELIMITER', 'MULTIPART_TRUNCATED'],
    status: 400,
  },
  {
    what: 'issue 2: a body that ends before the close delimiter is MULTIPART_TRUNCATED',
    body: Buffer.from(`--${B}\r\n${CD('a')}\r\n\r\nsome data`),
    code: 'MULTIPART_TRUNCATED',
    status: 400,
  },
  {
    what: 'issue 2: a body that ends right after a delimiter line is MULTIPART_TRUNCATED',
    body: Buffer.from(`--${B}\r\n${CD('a')}\r\n\r\n1\r\n--${B}\r\n`),
    code: 'MULTIPART_TRUNCATED',
    status: 400,
  },
  {
    what: 'issue 2: a body whose last `delimiter` is `--boundaryX` (data) ends inside a part: MULTIPART_TRUNCATED',
    body: Buffer.from(`--${B}\r\n${CD('a')}\r\n\r\n1\r\n--${B}X--\r\n`),
    code: 'MULTIPART_TRUNCATED',
    status: 400,
  },
  {
    what: 'contract: a body that ends inside a header block is MULTIPART_TRUNCATED',
    body: Buffer.from(`--${B}\r\n${CD('a')}\r\nContent-Ty`),
    code: 'MULTIPART_TRUNCATED',
    status: 400,
  },
  {
    what: 'RFC 2046 5.1.1: a delimiter followed by transport padding and then not CRLF is malformed',
    body: Buffer.from(`--${B}\r\n${CD('a')}\r\n\r\n1\r\n--${B} x\r\n${CD('b')}\r\n\r\n2\r\n--${B}--\r\n`),
    code: 'MULTIPART_MALFORMED',
    status: 400,
  },
  {
    what: 'RFC 2046 5.1.1 (lines end in CRLF): a body framed with bare LFs is rejected with a 400',
    body: Buffer.from(`--${B}\n${CD('a')}\n\n1\n--${B}--\n`),
    code: ['MULTIPART_NO_DELIMITER', 'MULTIPART_MALFORMED', 'MULTIPART_TRUNCATED', 'PART_HEADER_MALFORMED'],
    status: 400,
  },
];

describe('framing (RFC 2046 5.1.1, RFC 7578 4.1)', () => {
  for (const c of framingValid) test(c.what, () => runValidCase(c));
  for (const c of framingErrors) test(c.what, () => runErrorCase(c));
});

// ---------------------------------------------------------------------------------------------
// Truncation: every prefix of a valid body that stops before the close delimiter is an error,
// and no part is ever reported complete before its closing delimiter arrived.

interface TruncationBody {
  readonly what: string;
  readonly body: Buffer;
  readonly expected: readonly ExpectedPart[];
}

const truncationParts: PartSpec[] = [
  field('first', 'one\r\n--bound'),
  file('second', 'b.bin', 'application/octet-stream', Buffer.from('\r\n\r\n--\r\x00\xff')),
  field('third', 'three'),
];
const truncationExpected: ExpectedPart[] = [
  { name: 'first', data: 'one\r\n--bound' },
  { name: 'second', filename: 'b.bin', contentType: 'application/octet-stream', data: Buffer.from('\r\n\r\n--\r\x00\xff') },
  { name: 'third', data: 'three' },
];
const truncationBodies: TruncationBody[] = [
  { what: 'a 3-part body with the final CRLF', body: buildBody(B, truncationParts), expected: truncationExpected },
  { what: 'a 3-part body without the final CRLF', body: buildBody(B, truncationParts, { finalCrlf: false }), expected: truncationExpected },
  {
    what: 'a 3-part body with transport padding and a preamble',
    body: buildBody(B, truncationParts, { padding: ' \t', closePadding: ' ', preamble: 'pre' }),
    expected: truncationExpected,
  },
];

/**
 * For each part, the shortest prefix after which the parser may know the part is over: its
 * closing `\r\n--boundary` plus the byte(s) that make it a delimiter (padding, or `\r\n`/`--`).
 */
function partEndKnownAt(body: Buffer, boundary: string, partCount: number): number[] {
  const needle = Buffer.from(`\r\n--${boundary}`);
  const ends: number[] = [];
  let from = body.indexOf(`--${boundary}`) + 2 + boundary.length; // past the first delimiter
  for (let i = 0; i < partCount; i++) {
    const at = body.indexOf(needle, from);
    assert.ok(at >= 0);
    const after = at + needle.length;
    const next = body[after];
    ends.push(next === 0x20 || next === 0x09 ? after + 1 : after + 2);
    from = after;
  }
  return ends;
}

describe('truncated bodies (issue 2: never a silent short success)', () => {
  for (const t of truncationBodies) {
    test(`${t.what}: cut at every offset before the end of the close delimiter is an error and no unfinished part is reported complete`, async () => {
      const closeEnd = t.body.lastIndexOf(`--${B}--`) + B.length + 4;
      const firstDelimiterLineEnd = t.body.indexOf('\r\n', t.body.indexOf(`--${B}`)) + 2;
      const knownAt = partEndKnownAt(t.body, B, t.expected.length);
      for (let cut = 0; cut < closeEnd; cut++) {
        const prefix = t.body.subarray(0, cut);
        for (const [label, chunks] of [
          ['whole', [prefix]],
          ['one byte at a time', oneByteChunks(prefix)],
        ] as const) {
          const where = `cut at ${cut} (${JSON.stringify(prefix.subarray(Math.max(0, cut - 12)).toString('latin1'))}), ${label}`;
          const result = await collect(newParser(B), chunks);
          // Before a whole first delimiter line arrived, "no delimiter" is as right as "truncated".
          const codes = cut <= firstDelimiterLineEnd ? ['MULTIPART_TRUNCATED', 'MULTIPART_NO_DELIMITER'] : ['MULTIPART_TRUNCATED'];
          assertSluiceError(result.error, codes, 400, where);
          result.parts.forEach((part, i) => {
            const expected = t.expected[i];
            assert.ok(expected !== undefined, `${where}: an extra part ${i}`);
            assert.equal(part.info.name, expected.name, where);
            const want = bytes(expected.data);
            assert.ok(want.subarray(0, part.data.length).equals(part.data), `${where}: part ${i} data is not a prefix of its real data`);
            if (part.ended) {
              assert.ok(cut >= (knownAt[i] ?? Infinity), `${where}: part ${i} reported complete before its delimiter arrived`);
              assert.ok(part.data.equals(want), `${where}: part ${i} reported complete with ${part.data.length} of ${want.length} bytes`);
            }
          });
        }
      }
      // The whole body (and, with a final CRLF, the body cut right after the close delimiter) parse.
      for (const cut of new Set([closeEnd, t.body.length])) {
        const result = await collect(newParser(B), [t.body.subarray(0, cut)]);
        assert.equal(result.error, null, `cut at ${cut}: ${String(result.error)}`);
        assert.equal(result.parts.length, t.expected.length);
      }
    });
  }
});

// ---------------------------------------------------------------------------------------------
// Part headers

const hpad = (n: number): string => `X-Pad: ${'p'.repeat(n)}`;
/** Bytes of a header block: every line with its CRLF, plus the empty line's CRLF. */
const headerBlockBytes = (lines: readonly string[]): number => lines.reduce((sum, line) => sum + Buffer.byteLength(line) + 2, 0) + 2;
/** Header lines of exactly `total` block bytes: a Content-Disposition and one padding header. */
function headerBlockOf(total: number): string[] {
  const base = headerBlockBytes([CD('a'), hpad(0)]);
  const lines = [CD('a'), hpad(total - base)];
  assert.equal(headerBlockBytes(lines), total);
  return lines;
}
const manyLines = (n: number): string[] => [CD('a'), ...Array.from({ length: n - 1 }, (_, i) => `X-H${i}: ${i}`)];

const headerValid: ValidCase[] = [
  {
    what: 'RFC 7578 4.8 / RFC 5322 1.2.2: header names are case-insensitive and kept lower-cased',
    body: onePart(B, ['CONTENT-DISPOSITION: form-data; name="a"', 'content-TYPE: text/plain', 'X-Custom-Thing: yes'], 'v'),
    parts: [
      {
        name: 'a',
        contentType: 'text/plain',
        data: 'v',
        headers: { 'content-disposition': 'form-data; name="a"', 'content-type': 'text/plain', 'x-custom-thing': 'yes' },
      },
    ],
  },
  {
    what: 'RFC 9110 5.5: optional whitespace around a value is not part of it; none after the colon is fine',
    body: onePart(B, [CD('a'), 'Content-Type:\t  text/plain \t', 'X-A:b'], 'v'),
    parts: [{ name: 'a', contentType: 'text/plain', data: 'v', headers: { 'x-a': 'b' } }],
  },
  {
    what: 'RFC 9110 5.5: HTAB inside a header value is allowed',
    body: onePart(B, [CD('a'), 'X-A: one\ttwo'], 'v'),
    parts: [{ name: 'a', data: 'v', headers: { 'x-a': 'one\ttwo' } }],
  },
  {
    what: 'RFC 5322 2.2.3 (folding, busboy vector "Folded header value"): a line starting with a space continues the field before it',
    body: onePart(B, ['Content-Disposition: form-data;', ' name="a";', ' filename="f.txt"', 'Content-Type:', ' text/plain; charset=utf8'], 'v'),
    parts: [{ name: 'a', filename: 'f.txt', contentType: 'text/plain; charset=utf8', data: 'v' }],
  },
  {
    what: 'RFC 5322 2.2.3: unfolding removes only the CRLF; a tab-folded line keeps its tab, inside a quoted filename too',
    body: onePart(B, ['Content-Disposition: form-data; name="a"; filename="two', '\twords.txt"', 'X-A: one', ' two', '\t three'], 'v'),
    parts: [{ name: 'a', filename: 'two\twords.txt', data: 'v', headers: { 'x-a': 'one two\t three' } }],
  },
  {
    what: 'RFC 5322 2.2.3: folded lines count against maxHeaderLines',
    options: { maxHeaderLines: 3 },
    body: onePart(B, ['Content-Disposition: form-data;', ' name="a"', 'X-A: b'], 'v'),
    parts: [{ name: 'a', data: 'v' }],
  },
  {
    what: 'repeated headers other than Content-Disposition/Type/Transfer-Encoding combine with commas (RFC 9110 5.3)',
    body: onePart(B, [CD('a'), 'X-A: 1', 'x-a: 2'], 'v'),
    parts: [{ name: 'a', data: 'v', headers: { 'x-a': '1, 2' } }],
  },
  {
    what: 'prototype-named headers are plain entries of a null-prototype record',
    body: onePart(B, [CD('a'), '__proto__: polluted', 'constructor: c', 'prototype: p', 'hasOwnProperty: h', 'toString: t'], 'v'),
    parts: [
      {
        name: 'a',
        data: 'v',
        headers: { ['__proto__']: 'polluted', constructor: 'c', prototype: 'p', hasownproperty: 'h', tostring: 't' },
      },
    ],
  },
  {
    what: 'maxPartHeaderBytes: a header block of exactly the limit passes',
    options: { maxPartHeaderBytes: 200 },
    body: onePart(B, headerBlockOf(200), 'v'),
    parts: [{ name: 'a', data: 'v' }],
  },
  {
    what: 'maxPartHeaderBytes: the 16 KiB default, a block of exactly 16384 bytes passes',
    body: onePart(B, headerBlockOf(16 * 1024), 'v'),
    parts: [{ name: 'a', data: 'v' }],
    thorough: false,
  },
  {
    what: 'maxHeaderLines: exactly the limit passes',
    options: { maxHeaderLines: 3 },
    body: onePart(B, manyLines(3), 'v'),
    parts: [{ name: 'a', data: 'v' }],
  },
  {
    what: 'maxHeaderLines: the default of 32 lines passes',
    body: onePart(B, manyLines(32), 'v'),
    parts: [{ name: 'a', data: 'v' }],
  },
];

const malformedHeader = (what: string, lines: readonly (string | Buffer)[]): ErrorCase => ({
  what,
  body: onePart(B, lines, 'v'),
  code: 'PART_HEADER_MALFORMED',
  status: 400,
});

const headerErrors: ErrorCase[] = [
  malformedHeader('CVE-2022-24434: the first header line starting with a space (a fold with nothing to continue) is rejected, not a crash', [` ${CD('a')}`]),
  malformedHeader('CVE-2022-24434: the first header line starting with a tab is rejected', [`\t${CD('a')}`]),
  malformedHeader('a second Content-Disposition is rejected (busboy keeps the first, undici the last)', [CD('a'), CD('b')]),
  malformedHeader('a second Content-Type is rejected, not joined into "text/plain, text/html"', [CD('a'), 'Content-Type: text/plain', 'content-type: text/html']),
  malformedHeader('a second Content-Transfer-Encoding is rejected', [CD('a'), 'Content-Transfer-Encoding: base64', 'Content-Transfer-Encoding: 8bit']),
  malformedHeader('RFC 9112 2.2: a bare CR in a header name is rejected', [CD('a'), 'X-A\rB: v']),
  malformedHeader('RFC 9112 2.2: a bare CR in a header value is rejected', [CD('a'), 'X-A: v\rw']),
  malformedHeader('RFC 9112 2.2: a bare CR right before the line end (CR CR LF) is rejected', [CD('a'), 'X-A: v\r']),
  malformedHeader('RFC 9112 2.2: a bare LF in a header value is rejected', [CD('a'), 'X-A: v\nw']),
  malformedHeader('RFC 9112 2.2: a bare LF in a header name is rejected', [CD('a'), 'X-\nA: v']),
  malformedHeader('RFC 9112 2.2: a line ending in a bare LF is rejected', [`${CD('a')}\nX-A: v`]),
  malformedHeader('RFC 9110 5.5: NUL in a header value is rejected', [CD('a'), 'X-A: v\x00w']),
  malformedHeader('RFC 9110 5.5: a control byte (0x01) in a header value is rejected', [CD('a'), 'X-A: v\x01w']),
  malformedHeader('RFC 9110 5.5: DEL in a header value is rejected', [CD('a'), 'X-A: v\x7fw']),
  malformedHeader('RFC 5322 2.2: a header line without a colon is rejected', [CD('a'), 'X-A v']),
  malformedHeader('RFC 9110 5.1: an empty header name is rejected', [CD('a'), ': v']),
  malformedHeader('RFC 9112 5.1: whitespace between the name and the colon is rejected', [CD('a'), 'X-A : v']),
  malformedHeader('RFC 9112 5.1: a tab between the name and the colon is rejected', [CD('a'), 'X-A\t: v']),
  malformedHeader('RFC 9110 5.1 (name is a token): a space inside a name is rejected', [CD('a'), 'X A: v']),
  malformedHeader('RFC 9110 5.1 (name is a token): a separator in a name is rejected', [CD('a'), 'X(A): v']),
  malformedHeader('RFC 9110 5.1 (name is a token): a non-ASCII name is rejected', [CD('a'), 'Ä: v']),
  {
    what: 'maxPartHeaderBytes: one byte over the limit is PART_HEADER_TOO_LARGE',
    options: { maxPartHeaderBytes: 200 },
    body: onePart(B, headerBlockOf(201), 'v'),
    code: 'PART_HEADER_TOO_LARGE',
    status: 413,
  },
  {
    what: 'maxPartHeaderBytes: the 16 KiB default, 16385 bytes is PART_HEADER_TOO_LARGE',
    body: onePart(B, headerBlockOf(16 * 1024 + 1), 'v'),
    code: 'PART_HEADER_TOO_LARGE',
    status: 413,
    thorough: false,
  },
  {
    what: 'maxPartHeaderBytes: applies to every part, not just the first',
    options: { maxPartHeaderBytes: 200 },
    body: buildBody(B, [field('a', '1'), { headers: headerBlockOf(201), data: 'v' }]),
    code: 'PART_HEADER_TOO_LARGE',
    status: 413,
  },
  {
    what: 'maxHeaderLines: one line over the limit is PART_HEADER_TOO_MANY_LINES',
    options: { maxHeaderLines: 3 },
    body: onePart(B, manyLines(4), 'v'),
    code: 'PART_HEADER_TOO_MANY_LINES',
    status: 413,
  },
  {
    what: 'maxHeaderLines: a folded line is a line (one over the limit is PART_HEADER_TOO_MANY_LINES)',
    options: { maxHeaderLines: 3 },
    body: onePart(B, ['Content-Disposition: form-data;', ' name="a"', 'X-A: b', ' c'], 'v'),
    code: 'PART_HEADER_TOO_MANY_LINES',
    status: 413,
  },
  {
    what: 'maxHeaderLines: the default of 32, 33 lines is PART_HEADER_TOO_MANY_LINES',
    body: onePart(B, manyLines(33), 'v'),
    code: 'PART_HEADER_TOO_MANY_LINES',
    status: 413,
  },
  {
    what: 'RFC 7578 4.2: a part without Content-Disposition is CONTENT_DISPOSITION_MISSING',
    body: onePart(B, ['Content-Type: text/plain'], 'v'),
    code: 'CONTENT_DISPOSITION_MISSING',
    status: 400,
  },
  {
    what: 'RFC 7578 4.2: a part with an empty header block is CONTENT_DISPOSITION_MISSING',
    body: onePart(B, [], 'v'),
    code: 'CONTENT_DISPOSITION_MISSING',
    status: 400,
  },
  {
    what: 'RFC 7578 4.2: a Content-Disposition that is not form-data is CONTENT_DISPOSITION_MALFORMED',
    body: onePart(B, ['Content-Disposition: attachment; name="a"'], 'v'),
    code: 'CONTENT_DISPOSITION_MALFORMED',
    status: 400,
  },
  {
    what: 'RFC 7578 4.2: a form-data Content-Disposition without a name is CONTENT_DISPOSITION_MALFORMED',
    body: onePart(B, ['Content-Disposition: form-data; filename="a.txt"'], 'v'),
    code: 'CONTENT_DISPOSITION_MALFORMED',
    status: 400,
  },
];

describe('part headers (RFC 7578 4.8, RFC 9110 5)', () => {
  for (const c of headerValid) test(c.what, () => runValidCase(c));
  for (const c of headerErrors) test(c.what, () => runErrorCase(c));

  test('prototype-named headers leave Object.prototype untouched', async () => {
    const before = Object.getOwnPropertyNames(Object.prototype).sort();
    const body = onePart(B, [CD('a'), '__proto__: polluted', 'constructor: c', 'prototype: p'], 'v');
    for (const chunks of [[body], oneByteChunks(body)]) {
      const result = await collect(newParser(B), chunks);
      assert.equal(result.error, null);
      const headers = result.parts[0]?.info.headers;
      assert.ok(headers !== undefined);
      assert.equal(Object.getPrototypeOf(headers), null);
      assert.equal(Object.getOwnPropertyDescriptor(headers, '__proto__')?.value, 'polluted');
    }
    assert.deepEqual(Object.getOwnPropertyNames(Object.prototype).sort(), before);
    const probe: Record<string, unknown> = {};
    assert.equal(probe['polluted'], undefined);
    assert.equal(Object.getPrototypeOf(probe), Object.prototype);
    assert.equal(typeof Object.prototype.constructor, 'function');
  });
});

// ---------------------------------------------------------------------------------------------
// Limits (issue 2: enforced while streaming, 413, with a code naming which)

const twoFilesAndAField = [file('f1', 'a', null, 'A'), field('x', '1'), file('f2', 'b', null, 'B')];
const twoFieldsAndAFile = [field('x', '1'), file('f', 'a', null, 'A'), field('y', '2')];

const limitValid: ValidCase[] = [
  {
    what: 'maxFiles: exactly the limit of files passes (fields do not count)',
    options: { maxFiles: 2 },
    body: buildBody(B, twoFilesAndAField),
    parts: [
      { name: 'f1', filename: 'a', data: 'A' },
      { name: 'x', data: '1' },
      { name: 'f2', filename: 'b', data: 'B' },
    ],
  },
  {
    what: 'maxFields: exactly the limit of fields passes (files do not count)',
    options: { maxFields: 2 },
    body: buildBody(B, twoFieldsAndAFile),
    parts: [
      { name: 'x', data: '1' },
      { name: 'f', filename: 'a', data: 'A' },
      { name: 'y', data: '2' },
    ],
  },
  {
    what: 'maxParts: exactly the limit of parts passes',
    options: { maxParts: 3 },
    body: buildBody(B, twoFieldsAndAFile),
    parts: [
      { name: 'x', data: '1' },
      { name: 'f', filename: 'a', data: 'A' },
      { name: 'y', data: '2' },
    ],
  },
  {
    what: 'maxParts: zero parts pass a limit of zero',
    options: { maxParts: 0, maxFiles: 0, maxFields: 0 },
    body: Buffer.from(`--${B}--\r\n`),
    parts: [],
  },
  {
    what: 'maxFieldBytes: a field of exactly the limit passes; files are not limited by it',
    options: { maxFieldBytes: 5 },
    body: buildBody(B, [field('a', 'abcde'), file('f', 'f', null, '0123456789'), field('b', '\r\n--b')]),
    parts: [
      { name: 'a', data: 'abcde' },
      { name: 'f', filename: 'f', data: '0123456789' },
      { name: 'b', data: '\r\n--b' },
    ],
  },
  {
    what: 'maxFileBytes: a file of exactly the limit passes; fields are not limited by it',
    options: { maxFileBytes: 5 },
    body: buildBody(B, [file('f', 'f', null, 'abcde'), field('a', '0123456789'), file('g', 'g', null, '\r\n--b')]),
    parts: [
      { name: 'f', filename: 'f', data: 'abcde' },
      { name: 'a', data: '0123456789' },
      { name: 'g', filename: 'g', data: '\r\n--b' },
    ],
  },
  {
    what: 'maxFieldBytes: the 1 MiB default, a field of exactly 1 MiB passes',
    body: buildBody(B, [field('a', Buffer.alloc(1024 * 1024, 0x61))]),
    parts: [{ name: 'a', data: Buffer.alloc(1024 * 1024, 0x61) }],
    thorough: false,
  },
];

const limitError = (what: string, options: CaseOptions, parts: readonly PartSpec[], code: string): ErrorCase => ({
  what,
  options,
  body: buildBody(B, parts),
  code,
  status: 413,
});

const limitErrors: ErrorCase[] = [
  limitError('maxFiles: one file over the limit is TOO_MANY_FILES', { maxFiles: 1 }, twoFilesAndAField, 'TOO_MANY_FILES'),
  limitError('maxFiles: zero files allowed, one file is TOO_MANY_FILES', { maxFiles: 0 }, [file('f', 'a', null, 'A')], 'TOO_MANY_FILES'),
  limitError('maxFields: one field over the limit is TOO_MANY_FIELDS', { maxFields: 1 }, twoFieldsAndAFile, 'TOO_MANY_FIELDS'),
  limitError('maxParts: one part over the limit is TOO_MANY_PARTS', { maxParts: 2 }, twoFieldsAndAFile, 'TOO_MANY_PARTS'),
  limitError('maxFieldBytes: one byte over the limit is FIELD_TOO_LARGE', { maxFieldBytes: 5 }, [field('a', 'abcdef')], 'FIELD_TOO_LARGE'),
  limitError(
    'maxFieldBytes: one byte over, in the second field, is FIELD_TOO_LARGE',
    { maxFieldBytes: 5 },
    [field('a', 'abcde'), field('b', 'abcdef')],
    'FIELD_TOO_LARGE',
  ),
  limitError('maxFileBytes: one byte over the limit is FILE_TOO_LARGE', { maxFileBytes: 5 }, [file('f', 'f', null, 'abcdef')], 'FILE_TOO_LARGE'),
  limitError(
    'maxFileBytes: applies per file, in the second file',
    { maxFileBytes: 5 },
    [file('f', 'f', null, 'abcde'), file('g', 'g', null, 'abcdef')],
    'FILE_TOO_LARGE',
  ),
  {
    what: 'maxFieldBytes: the 1 MiB default, 1 MiB + 1 byte is FIELD_TOO_LARGE',
    body: buildBody(B, [field('a', Buffer.alloc(1024 * 1024 + 1, 0x61))]),
    code: 'FIELD_TOO_LARGE',
    status: 413,
    thorough: false,
  },
];

/** A lazily generated body: `head`, then `filler` `count` times, then `tail`; counts what was read. */
function meteredSource(head: Buffer, filler: Buffer, count: number, tail: Buffer): { source: Generator<Buffer>; readBytes: () => number } {
  let read = 0;
  function* source(): Generator<Buffer> {
    read += head.length;
    yield head;
    for (let i = 0; i < count; i++) {
      read += filler.length;
      yield filler;
    }
    read += tail.length;
    yield tail;
  }
  return { source: source(), readBytes: () => read };
}

const MiB = 1024 * 1024;
const CHUNK = 64 * 1024;

interface StreamingLimit {
  readonly what: string;
  readonly options: CaseOptions;
  readonly head: string;
  readonly filler: Buffer;
  readonly code: string | readonly string[];
  readonly status: 400 | 413;
  /** Most data bytes one part may have been given before the error. */
  readonly maxDataPerPart?: number;
}

const streamingLimits: StreamingLimit[] = [
  {
    what: 'maxFileBytes is enforced while streaming: a 64 MiB file against a 1 MiB limit fails early',
    options: { maxFileBytes: MiB },
    head: `--${B}\r\nContent-Disposition: form-data; name="f"; filename="big.bin"\r\n\r\n`,
    filler: Buffer.alloc(CHUNK, 0x61),
    code: 'FILE_TOO_LARGE',
    status: 413,
    maxDataPerPart: MiB,
  },
  {
    what: 'maxFieldBytes (1 MiB default) is enforced while streaming: a 64 MiB field fails early',
    options: {},
    head: `--${B}\r\n${CD('a')}\r\n\r\n`,
    filler: Buffer.alloc(CHUNK, 0x61),
    code: 'FIELD_TOO_LARGE',
    status: 413,
    maxDataPerPart: MiB,
  },
  {
    what: 'maxPartHeaderBytes is enforced while streaming: an endless header line fails early',
    options: {},
    head: `--${B}\r\n${CD('a')}\r\nX-Endless: `,
    filler: Buffer.alloc(CHUNK, 0x61),
    code: 'PART_HEADER_TOO_LARGE',
    status: 413,
  },
  {
    what: 'maxParts is enforced while streaming: endless tiny parts fail early',
    options: { maxParts: 100 },
    head: `--${B}\r\n`,
    filler: Buffer.from(`${CD('a')}\r\n\r\nv\r\n--${B}\r\n`.repeat(1000)),
    code: 'TOO_MANY_PARTS',
    status: 413,
  },
  {
    what: 'contract (transport padding too long): endless padding after a delimiter fails early with MULTIPART_MALFORMED',
    options: {},
    head: `--${B}`,
    filler: Buffer.alloc(CHUNK, 0x20),
    code: 'MULTIPART_MALFORMED',
    status: 400,
  },
  {
    what: 'contract (preamble too long): an endless preamble fails early instead of being scanned to the end',
    options: {},
    head: '',
    filler: Buffer.alloc(CHUNK, 0x2d),
    code: ['MULTIPART_MALFORMED', 'MULTIPART_NO_DELIMITER'],
    status: 400,
  },
];

describe('limits (issue 2: typed errors, 413 for sizes and counts)', () => {
  for (const c of limitValid) test(c.what, () => runValidCase(c));
  for (const c of limitErrors) test(c.what, () => runErrorCase(c));

  for (const s of streamingLimits) {
    test(s.what, async () => {
      const count = (64 * MiB) / s.filler.length;
      const { source, readBytes } = meteredSource(Buffer.from(s.head), s.filler, count, Buffer.from(`\r\n--${B}--\r\n`));
      const result = await collect(newParser(B, s.options), source);
      assertSluiceError(result.error, s.code, s.status, s.what);
      assert.ok(readBytes() < 8 * MiB, `read ${readBytes()} bytes of a 64 MiB body before failing`);
      if (s.maxDataPerPart !== undefined) {
        for (const part of result.parts) {
          assert.ok(part.data.length <= s.maxDataPerPart, `a part was given ${part.data.length} bytes, over its limit ${s.maxDataPerPart}`);
        }
      }
    });
  }
});

// ---------------------------------------------------------------------------------------------
// A failed parser stays failed

/**
 * Node's Writable keeps draining its buffer after a `_transform` callback(err) that happens
 * synchronously inside `clearBuffer` (a consumer's read released a held callback), so
 * `_transform` runs again on a parser that already failed. It must not do anything then; in
 * particular it must not spin. Run in one child process, scenario after scenario: a synchronous
 * spin would freeze this process, test-runner timeouts included.
 */
const drainScenarios = [
  { code: 'TOO_MANY_FILES', options: { maxFiles: 0 }, chunk: 'Content-Disposition: form-data; name="x"; filename="a"\r\n\r\n' },
  { code: 'CONTENT_DISPOSITION_MISSING', options: {}, chunk: 'Content-Type: text/plain\r\n\r\n' },
  { code: 'PART_HEADER_MALFORMED', options: {}, chunk: 'Content-Disposition: form-data; name="x"\r\nX-A: v\rw\r\n\r\n' },
  { code: 'FIELD_TOO_LARGE', options: { maxFieldBytes: 5 }, chunk: 'Content-Disposition: form-data; name="x"\r\n\r\n0123456789' },
];

const drainScript = `
  const { MultipartParser } = await import(${JSON.stringify(new URL('../multipart/parser.js', import.meta.url).href)});
  const { setTimeout: sleep } = await import('node:timers/promises');
  for (const s of ${JSON.stringify(drainScenarios)}) {
    console.log('start ' + s.code);
    const p = new MultipartParser({ boundary: 'b', ...s.options });
    p.on('error', (e) => console.log('error ' + e.code));
    p.write('--b\\r\\n');
    // 4 one-part chunks fill the readable buffer (its high-water mark is 4 batches): the 4th
    // write's callback is held and the next writes are buffered.
    for (let i = 0; i < 4; i++) p.write('Content-Disposition: form-data; name="f' + i + '"\\r\\n\\r\\nv\\r\\n--b\\r\\n');
    p.write(s.chunk);
    p.write('more bytes after the failure');
    p.read();
    await sleep(20);
    console.log('alive ' + s.code);
  }
`;

describe('a failed parser stays failed', () => {
  test('an error raised while buffered writes drain does not run the parser again (nor freeze the event loop)', async () => {
    const result = await promisify(execFile)(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', drainScript], {
      timeout: 10_000,
      cwd: fileURLToPath(new URL('..', import.meta.url)),
    }).catch((err: unknown) => {
      const e = err as { killed?: boolean; stdout?: string; stderr?: string };
      if (e.killed !== true) assert.fail(`child failed: ${String(e.stderr ?? err)}`);
      return { stdout: e.stdout ?? '', killed: true };
    });
    const lines = result.stdout.split('\n');
    for (const s of drainScenarios) {
      const started = lines.includes(`start ${s.code}`);
      const alive = lines.includes(`alive ${s.code}`);
      assert.ok(!started || alive, `${s.code}: the event loop froze (the parser spun) after the error; child output: ${JSON.stringify(result.stdout)}`);
      assert.ok(started, `${s.code}: not reached`);
      assert.ok(lines.includes(`error ${s.code}`), `${s.code}: no error event; child output: ${JSON.stringify(result.stdout)}`);
    }
  });
});

// ---------------------------------------------------------------------------------------------
// Backpressure (issue 2: no unbounded queue anywhere)

describe('backpressure', () => {
  test('a consumer that never reads stalls the source after a bounded amount; reading again finishes the body', async () => {
    const total = 64 * MiB;
    const { source, readBytes } = meteredSource(
      Buffer.from(`--${B}\r\nContent-Disposition: form-data; name="f"; filename="big.bin"\r\n\r\n`),
      Buffer.alloc(CHUNK, 0x61),
      total / CHUNK,
      Buffer.from(`\r\n--${B}--\r\n`),
    );
    const parser = newParser(B);
    const piping = pipeline(Readable.from(source), parser);
    // Wait until the source has stopped being read for a while.
    let last = -1;
    for (let stable = 0, rounds = 0; stable < 5 && rounds < 200; rounds++) {
      await sleep(10);
      const now = readBytes();
      stable = now === last ? stable + 1 : 0;
      last = now;
    }
    assert.ok(readBytes() < 4 * MiB, `the source was read for ${readBytes()} bytes while nobody consumed the parser`);
    // Now consume everything: the stall was backpressure, not a hang.
    let dataBytes = 0;
    let ends = 0;
    for await (const item of parser as AsyncIterable<MultipartEvent[]>) {
      for (const event of eventsOf(item)) {
        if (event.type === 'data') dataBytes += event.data.length;
        else if (event.type === 'part-end') ends++;
      }
    }
    await piping;
    assert.equal(dataBytes, total);
    assert.equal(ends, 1);
  });

  test('a slow consumer (one batch of events per tick) gets every byte and the source is never read far ahead', async () => {
    const total = 8 * MiB;
    const { source, readBytes } = meteredSource(
      Buffer.from(`--${B}\r\nContent-Disposition: form-data; name="f"; filename="big.bin"\r\n\r\n`),
      Buffer.alloc(CHUNK, 0x62),
      total / CHUNK,
      Buffer.from(`\r\n--${B}--\r\n`),
    );
    const parser = newParser(B);
    const piping = pipeline(Readable.from(source), parser);
    let consumed = 0;
    let maxAhead = 0;
    for await (const item of parser as AsyncIterable<MultipartEvent[]>) {
      for (const event of eventsOf(item)) if (event.type === 'data') consumed += event.data.length;
      maxAhead = Math.max(maxAhead, readBytes() - consumed);
      await new Promise<void>((resolve) => setImmediate(resolve));
    }
    await piping;
    assert.equal(consumed, total);
    assert.ok(maxAhead < 4 * MiB, `the source ran ${maxAhead} bytes ahead of the consumer`);
  });
});

// ---------------------------------------------------------------------------------------------
// Cross-check against busboy on random valid bodies

/** RFC 2046 5.1.1 bchars. */
const BCHARS = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ'()+_,-./:=? ";
const TEXT_ALPHABET = ['a', 'b', 'Z', '0', ' ', '-', '--', '\r', '\n', '\r\n', 'é', '€', '"', '\t'];
const NAME_ALPHABET = 'abcdefghijklmnopqrstuvwxyz0123456789_-. ';
const FILENAME_ALPHABET = ['a', 'b', 'z', '0', '9', '.', '-', ' ', 'é', 'ü', '€', '日', '本'];

interface RandomPart {
  readonly name: string;
  readonly filename: string | null;
  readonly contentType: string | null;
  readonly data: Buffer;
}

function randomString(random: () => number, alphabet: readonly string[] | string, min: number, max: number): string {
  let s = '';
  const n = randomInt(random, min, max);
  for (let i = 0; i < n; i++) s += alphabet[randomInt(random, 0, alphabet.length - 1)] ?? '';
  return s;
}

/** busboy turns '.' and '..' into '' (the contract says nothing of them), so they are not drawn. */
function plainFilename(drawn: string): string {
  const name = drawn.trim();
  return name === '' || name === '.' || name === '..' ? 'f' : name;
}

function randomBoundary(random: () => number): string {
  const length = random() < 0.3 ? randomInt(random, 1, 4) : randomInt(random, 5, 70);
  let b = randomString(random, BCHARS, length - 1, length - 1);
  b += randomString(random, BCHARS.trimEnd(), 1, 1); // bcharsnospace last
  return b;
}

function randomBinary(random: () => number): Buffer {
  const n = random() < 0.2 ? 0 : randomInt(random, 1, 300);
  const out = Buffer.alloc(n);
  for (let i = 0; i < n; i++) {
    const r = random();
    // Plenty of CR, LF and dashes, so that near-delimiters occur.
    out[i] = r < 0.15 ? 0x0d : r < 0.3 ? 0x0a : r < 0.5 ? 0x2d : randomInt(random, 0, 255);
  }
  return out;
}

function randomBody(seed: number): { boundary: string; body: Buffer; parts: RandomPart[] } {
  const random = mulberry32(seed);
  for (;;) {
    const boundary = randomBoundary(random);
    const parts: RandomPart[] = [];
    const n = randomInt(random, 0, 6);
    for (let i = 0; i < n; i++) {
      const name = randomString(random, NAME_ALPHABET, 1, 12).trim() || 'n';
      if (random() < 0.5) {
        parts.push({
          name,
          filename: plainFilename(randomString(random, FILENAME_ALPHABET, 1, 16)),
          contentType: random() < 0.7 ? 'application/x-test' : null,
          data: randomBinary(random),
        });
      } else {
        parts.push({
          name,
          filename: null,
          contentType: random() < 0.3 ? 'text/plain' : null,
          data: Buffer.from(randomString(random, TEXT_ALPHABET, 0, 80)),
        });
      }
    }
    const specs: PartSpec[] = parts.map((p) =>
      p.filename === null
        ? field(p.name, p.data, p.contentType === null ? [] : [`Content-Type: ${p.contentType}`])
        : file(p.name, p.filename, p.contentType, p.data),
    );
    const preamble = random() < 0.3 ? randomString(random, TEXT_ALPHABET, 0, 40) : undefined;
    const epilogue = random() < 0.3 ? randomString(random, TEXT_ALPHABET, 0, 40) : undefined;
    const body = buildBody(boundary, specs, { preamble, epilogue });
    // RFC 2046 5.1.1: the boundary must not occur in the encapsulated data; draw again if it does.
    const needle = `\r\n--${boundary}`;
    const delimiters = parts.length + 1;
    let found = 0;
    for (let at = body.indexOf(needle); at >= 0; at = body.indexOf(needle, at + 1)) found++;
    const startsWithDelimiter = preamble === undefined ? 1 : 0;
    if (found + startsWithDelimiter !== delimiters || (preamble !== undefined && preamble.includes(`--${boundary}`))) continue;
    return { boundary, body, parts };
  }
}

interface Comparable {
  name: string;
  filename: string | null;
  contentType: string;
  data: string;
}

function busboyParse(boundary: string, body: Buffer): Promise<Comparable[]> {
  return new Promise((resolve, reject) => {
    const bb = busboy({
      headers: { 'content-type': `multipart/form-data; boundary="${boundary}"` },
      defParamCharset: 'utf8',
      limits: { fieldSize: Infinity },
    });
    const parts: Comparable[] = [];
    bb.on('file', (name, stream, info) => {
      const chunks: Buffer[] = [];
      const part: Comparable = { name, filename: info.filename ?? null, contentType: info.mimeType, data: '' };
      parts.push(part);
      stream.on('data', (chunk: Buffer) => chunks.push(chunk));
      stream.on('end', () => {
        part.data = Buffer.concat(chunks).toString('latin1');
      });
    });
    bb.on('field', (name, value, info) => {
      parts.push({ name, filename: null, contentType: info.mimeType, data: Buffer.from(value, 'utf8').toString('latin1') });
    });
    bb.on('error', reject);
    bb.on('close', () => resolve(parts));
    bb.end(body);
  });
}

describe('cross-check with busboy', () => {
  test('random valid bodies (random boundaries, parts, binary data with CR/LF/dashes) parse as busboy parses them', async () => {
    for (let seed = 1; seed <= 150; seed++) {
      const { boundary, body, parts } = randomBody(seed);
      const theirs = await busboyParse(boundary, body);
      const intended: Comparable[] = parts.map((p) => ({
        name: p.name,
        filename: p.filename,
        contentType: p.contentType ?? 'text/plain',
        data: p.data.toString('latin1'),
      }));
      assert.deepEqual(theirs, intended, `seed ${seed}: busboy disagrees with the generator (test bug)`);
      for (const [feed, chunks] of [[collect, [body]], [collectPiped, randomChunks(body, seed, 64)]] as const) {
        const ours = await feed(newParser(boundary), chunks);
        assert.equal(ours.error, null, `seed ${seed}: ${String(ours.error)}`);
        const mine: Comparable[] = ours.parts.map((p) => ({
          name: p.info.name,
          filename: p.info.filename,
          contentType: p.info.contentType ?? 'text/plain',
          data: p.data.toString('latin1'),
        }));
        assert.deepEqual(mine, theirs, `seed ${seed}, boundary ${JSON.stringify(boundary)}`);
      }
    }
  });
});
