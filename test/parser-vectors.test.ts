/**
 * Bodies other parsers test with, and bodies real clients send, rewritten as our own cases:
 * busboy and @fastify/busboy (`test/types-multipart`), Go's mime/multipart (`multipart_test.go`),
 * undici's WHATWG `Response#formData` parser, and what Python's email package, browsers and curl
 * write. Each row names where it comes from and what the peers do where they disagree.
 *
 * Every case is fed whole, one byte at a time, split in two at every offset and in seeded random
 * chunkings (helpers/multipart-body.ts), so the streaming decoders (base64, quoted-printable)
 * and the header unfolding are tried at every chunk edge too.
 */
import { strict as assert } from 'node:assert';
import { describe, test } from 'node:test';
import {
  BOUNDARY,
  assertSluiceError,
  buildBody,
  collect,
  field,
  file,
  newParser,
  onePart,
  runErrorCase,
  runValidCase,
  type ErrorCase,
  type ValidCase,
} from './helpers/multipart-body.js';

const B = BOUNDARY;
const lines = (...parts: string[]): Buffer => Buffer.from(parts.join('\r\n'), 'utf8');
const CD = (params: string): string => `Content-Disposition: form-data; ${params}`;
const ALL_BYTES = Buffer.from(Array.from({ length: 256 }, (_, i) => i));

// ---------------------------------------------------------------------------------------------
// busboy / @fastify/busboy

const FF = '---------------------------paZqsnEHRufoShdX6fh0lUhXBP4k';
const WK = '----WebKitFormBoundaryTB2MiQ36fnSJlrhY';

const busboyCases: ValidCase[] = [
  {
    what: 'busboy "Fields and files": a Firefox boundary (27 dashes), two fields and two 1023-byte files',
    boundary: FF,
    body: lines(
      `--${FF}`, CD('name="file_name_0"'), '', 'super alpha file',
      `--${FF}`, CD('name="file_name_1"'), '', 'super beta file',
      `--${FF}`, CD('name="upload_file_0"; filename="1k_a.dat"'), 'Content-Type: application/octet-stream', '', 'A'.repeat(1023),
      `--${FF}`, CD('name="upload_file_1"; filename="1k_b.dat"'), 'Content-Type: application/octet-stream', '', 'B'.repeat(1023),
      `--${FF}--`,
    ),
    parts: [
      { name: 'file_name_0', data: 'super alpha file' },
      { name: 'file_name_1', data: 'super beta file' },
      { name: 'upload_file_0', filename: '1k_a.dat', contentType: 'application/octet-stream', data: 'A'.repeat(1023) },
      { name: 'upload_file_1', filename: '1k_b.dat', contentType: 'application/octet-stream', data: 'B'.repeat(1023) },
    ],
    thorough: false,
  },
  {
    what: 'busboy "Fields only": a WebKit boundary and a token (unquoted) name, no final CRLF',
    boundary: WK,
    body: lines(`--${WK}`, CD('name="cont"'), '', 'some random content', `--${WK}`, CD('name=bit'), '', '2', `--${WK}--`),
    parts: [
      { name: 'cont', data: 'some random content' },
      { name: 'bit', data: '2' },
    ],
  },
  {
    what: 'busboy "Files with filenames containing paths": /tmp/..., C:\\files\\... (raw backslashes), relative/...',
    boundary: FF,
    body: lines(
      `--${FF}`, CD('name="upload_file_0"; filename="/tmp/1k_a.dat"'), '', 'ABC',
      `--${FF}`, CD('name="upload_file_1"; filename="C:\\files\\1k_b.dat"'), '', 'ABC',
      `--${FF}`, CD('name="upload_file_2"; filename="relative/1k_c.dat"'), '', 'ABC',
      `--${FF}--`,
    ),
    parts: [
      { name: 'upload_file_0', filename: '1k_a.dat', data: 'ABC' },
      { name: 'upload_file_1', filename: '1k_b.dat', data: 'ABC' },
      { name: 'upload_file_2', filename: '1k_c.dat', data: 'ABC' },
    ],
  },
  {
    what: 'busboy "Empty content-type": `Content-Type: ` with no value is as if none was sent',
    boundary: WK,
    body: lines(`--${WK}`, CD('name="cont"; filename="c.txt"'), 'Content-Type: ', '', 'some random content', `--${WK}--`),
    parts: [{ name: 'cont', filename: 'c.txt', contentType: null, data: 'some random content' }],
  },
  {
    what: "busboy \"Unicode filenames\": filename*=utf-8''n%C3%A4me.txt",
    boundary: FF,
    body: lines(`--${FF}`, CD("name=\"file\"; filename*=utf-8''n%C3%A4me.txt"), 'Content-Type: application/octet-stream', '', 'ABC', `--${FF}--`),
    parts: [{ name: 'file', filename: 'näme.txt', contentType: 'application/octet-stream', data: 'ABC' }],
  },
  {
    what: 'busboy "Folded header value": `Content-Type:` folded onto the next line (RFC 5322 2.2.3)',
    boundary: FF,
    body: lines(`--${FF}`, CD('name="upload_file_0"; filename="notes.txt"'), 'Content-Type: ', ' text/plain; charset=utf8', '', 'a', `--${FF}--`),
    parts: [{ name: 'upload_file_0', filename: 'notes.txt', contentType: 'text/plain; charset=utf8', data: 'a' }],
  },
  {
    what: 'busboy "Empty part": a leading CRLF, token name and filename, other headers, no data',
    boundary: 'd1bf46b3-aa33-4061-b28d-6c5ced8b08ee',
    body: Buffer.from(
      '\r\n--d1bf46b3-aa33-4061-b28d-6c5ced8b08ee\r\nContent-Type: application/gzip\r\nContent-Encoding: gzip\r\n' +
        'Content-Disposition: form-data; name=batch-1; filename=batch-1\r\n\r\n\r\n--d1bf46b3-aa33-4061-b28d-6c5ced8b08ee--',
    ),
    parts: [{ name: 'batch-1', filename: 'batch-1', contentType: 'application/gzip', data: '', headers: { 'content-encoding': 'gzip' } }],
  },
  {
    what: '@fastify/busboy "Fields and files": per-part charsets, non-ASCII data kept as bytes',
    boundary: FF,
    body: lines(
      `--${FF}`, CD('name="field1"'), 'content-type: text/plain; charset=utf-8', '', 'Aufklärung ist der Ausgang',
      `--${FF}`, CD('name="field2"'), 'content-type: text/plain; charset=iso-8859-1', '', 'sapere aude!',
      `--${FF}--`,
    ),
    parts: [
      { name: 'field1', contentType: 'text/plain; charset=utf-8', data: 'Aufklärung ist der Ausgang' },
      { name: 'field2', contentType: 'text/plain; charset=iso-8859-1', data: 'sapere aude!' },
    ],
  },
];

const busboyErrors: ErrorCase[] = [
  {
    what: 'busboy "Stopped mid-header": `:)` instead of CRLF after the delimiter and header lines',
    boundary: 'asdasdasdasd',
    body: Buffer.from(['--asdasdasdasd\r\n', 'Content-Type: text/plain\r\n', 'Content-Disposition: form-data; name="foo"\r\n', '\r\n', 'asd\r\n', '--asdasdasdasd--'].join(':)')),
    code: ['PART_HEADER_MALFORMED', 'MULTIPART_NO_DELIMITER', 'MULTIPART_TRUNCATED'],
    status: 400,
  },
  {
    what: 'busboy "Stopped mid-file": the body ends inside a file, no close delimiter',
    boundary: FF,
    body: lines(`--${FF}`, CD('name=upload_file_0; filename="1k_a.dat"'), 'Content-Type: application/octet-stream', '', 'a'),
    code: 'MULTIPART_TRUNCATED',
    status: 400,
  },
  {
    what: 'busboy "Oversized part header": a 64 KiB filename is PART_HEADER_TOO_LARGE (413)',
    boundary: FF,
    body: lines(`--${FF}`, CD(`name="upload_file_0"; filename="${'a'.repeat(64 * 1024)}.txt"`), '', 'ab', `--${FF}--`),
    code: 'PART_HEADER_TOO_LARGE',
    status: 413,
    thorough: false,
  },
  {
    what: 'busboy "No Content-Disposition" (busboy skips the part): RFC 7578 4.2 requires one, 400',
    boundary: FF,
    body: lines(`--${FF}`, 'Content-Type: text/plain; charset=utf8', '', 'a', `--${FF}--`),
    code: 'CONTENT_DISPOSITION_MISSING',
    status: 400,
  },
  {
    what: '@fastify/busboy "empty form with preceding whitespace": no delimiter at a line start',
    boundary: WK,
    body: Buffer.from(`    --${WK}--\r\n`),
    code: 'MULTIPART_NO_DELIMITER',
    status: 400,
  },
  {
    what: '@fastify/busboy "one empty part should get ignored" (only it skips it): a delimiter line where a header should be is malformed',
    boundary: WK,
    body: lines(`--${WK}`, CD('name="regsubmit"'), '', 'yes', `--${WK}`, `--${WK}`, CD('name="referer"'), '', 'x', `--${WK}--`),
    code: 'PART_HEADER_MALFORMED',
    status: 400,
  },
];

// ---------------------------------------------------------------------------------------------
// Go mime/multipart

const GAE = '00151757727e9583fd04bfbca4c6';
const gaeField = (name: string, value: string | null): string[] => [
  `--${GAE}`,
  'Content-Type: text/plain; charset=ISO-8859-1',
  `Content-Disposition: form-data; name=${name}`,
  // An empty field ends with its header block: the delimiter's CRLF is the empty line's.
  ...(value === null ? [''] : ['', value]),
];

const goCases: ValidCase[] = [
  {
    what: 'Go "App Engine post": empty fields ended right after their header block, repeated names, a message/external-body part',
    boundary: GAE,
    body: lines(
      ...gaeField('otherEmpty1', null),
      ...gaeField('otherFoo1', 'foo'),
      ...gaeField('otherEmpty2', null),
      ...gaeField('otherRepeatFoo', 'foo'),
      ...gaeField('otherRepeatFoo', 'foo'),
      `--${GAE}`,
      'Content-Type: message/external-body; charset=ISO-8859-1; blob-key=AHAZQqG84qllx7HUqO_oou5Evd',
      'Content-Disposition: form-data; name=file; filename="fall.png"',
      '',
      'Content-Type: image/png',
      'Content-Length: 232303',
      '',
      '',
      `--${GAE}--`,
    ),
    parts: [
      { name: 'otherEmpty1', contentType: 'text/plain; charset=ISO-8859-1', data: '' },
      { name: 'otherFoo1', contentType: 'text/plain; charset=ISO-8859-1', data: 'foo' },
      { name: 'otherEmpty2', contentType: 'text/plain; charset=ISO-8859-1', data: '' },
      { name: 'otherRepeatFoo', contentType: 'text/plain; charset=ISO-8859-1', data: 'foo' },
      { name: 'otherRepeatFoo', contentType: 'text/plain; charset=ISO-8859-1', data: 'foo' },
      {
        name: 'file',
        filename: 'fall.png',
        contentType: 'message/external-body; charset=ISO-8859-1; blob-key=AHAZQqG84qllx7HUqO_oou5Evd',
        data: 'Content-Type: image/png\r\nContent-Length: 232303\r\n\r\n',
      },
    ],
    thorough: false,
  },
  {
    what: 'Go "single empty part, --boundary" and "final part empty then lwsp": close delimiter right after the headers, then padding',
    boundary: 'abc',
    body: Buffer.from(`--abc\r\n${CD('name="a"')}\r\n\r\n--abc\r\n${CD('name="b"')}\r\n\r\n--abc-- \t`),
    parts: [
      { name: 'a', data: '' },
      { name: 'b', data: '' },
    ],
  },
  {
    what: 'Go "single empty part, \\r\\n--boundary": the empty line, then the delimiter with its own CRLF',
    boundary: 'abc',
    body: Buffer.from(`--abc\r\n${CD('name="a"')}\r\n\r\n\r\n--abc--`),
    parts: [{ name: 'a', data: '' }],
  },
  {
    what: 'Go "no parts": the empty form Chrome sends',
    boundary: '----WebKitFormBoundaryQfEAfzFOiSemeHfA',
    body: Buffer.from('------WebKitFormBoundaryQfEAfzFOiSemeHfA--\r\n'),
    parts: [],
  },
  {
    what: 'Go "fake separator as data": `--sepFAKE` right after the header block is data',
    boundary: 'sep',
    body: Buffer.from(`--sep\r\n${CD('name="a"')}\r\n\r\n--sepFAKE\r\n--sep--`),
    parts: [{ name: 'a', data: '--sepFAKE' }],
  },
  {
    what: 'Go "boundary with whitespace" and "leading line": a preamble, then a delimiter with transport padding',
    boundary: 'MyBoundary',
    body: Buffer.from(`This is a multi-part message.  This line is ignored.\r\n--MyBoundary \r\n${CD('name="a"')}\r\n\r\ntext\r\n--MyBoundary--\r\n\r\nuseless trailer\r\n`),
    parts: [{ name: 'a', data: 'text' }],
  },
  {
    what: 'Go issue 10616: a nested boundary that the outer one is a prefix of (`--sep_alt`) is data',
    boundary: '----=_NextPart_4c2fbafd7ec4c8bf08034fe724b608d9',
    body: lines(
      '------=_NextPart_4c2fbafd7ec4c8bf08034fe724b608d9',
      CD('name="mail"'),
      'Content-Type: multipart/alternative; boundary="----=_NextPart_4c2fbafd7ec4c8bf08034fe724b608d9_alt"',
      '',
      '------=_NextPart_4c2fbafd7ec4c8bf08034fe724b608d9_alt',
      'Content-Type: text/plain; charset="utf-8"',
      '',
      'text',
      '------=_NextPart_4c2fbafd7ec4c8bf08034fe724b608d9_alt--',
      '------=_NextPart_4c2fbafd7ec4c8bf08034fe724b608d9--',
    ),
    parts: [
      {
        name: 'mail',
        contentType: 'multipart/alternative; boundary="----=_NextPart_4c2fbafd7ec4c8bf08034fe724b608d9_alt"',
        data: '------=_NextPart_4c2fbafd7ec4c8bf08034fe724b608d9_alt\r\nContent-Type: text/plain; charset="utf-8"\r\n\r\ntext\r\n------=_NextPart_4c2fbafd7ec4c8bf08034fe724b608d9_alt--',
      },
    ],
  },
  {
    what: 'Go "TestVariousTextLineEndings": bare LF, bare CR, trailing CR and control bytes inside data are data',
    boundary: 'BOUNDARY',
    body: buildBody('BOUNDARY', [field('a', 'Foo\nBar\n'), field('b', 'Foo\rBar\r'), field('c', '\x00\x01\x02\x09\x0a\x0b\x0c\x0d\x0e\x0f\x10')]),
    parts: [
      { name: 'a', data: 'Foo\nBar\n' },
      { name: 'b', data: 'Foo\rBar\r' },
      { name: 'c', data: '\x00\x01\x02\x09\x0a\x0b\x0c\x0d\x0e\x0f\x10' },
    ],
  },
  {
    what: 'Go "TestQuotedPrintableEncoding": a quoted-printable part is decoded (soft line breaks removed)',
    boundary: '0016e68ee29c5d515f04cedf6733',
    body: lines(
      '--0016e68ee29c5d515f04cedf6733',
      'Content-Type: text/plain; charset=ISO-8859-1',
      'Content-Disposition: form-data; name=text',
      'Content-Transfer-Encoding: quoted-printable',
      '',
      'words words wor=',
      'ds words =',
      'words',
      '--0016e68ee29c5d515f04cedf6733',
      'Content-Type: text/plain; charset=ISO-8859-1',
      'Content-Disposition: form-data; name=submit',
      '',
      'Submit',
      '--0016e68ee29c5d515f04cedf6733--',
    ),
    parts: [
      { name: 'text', contentType: 'text/plain; charset=ISO-8859-1', data: 'words words words words words' },
      { name: 'submit', contentType: 'text/plain; charset=ISO-8859-1', data: 'Submit' },
    ],
  },
  {
    what: 'Go "TestLineContinuation" (with CRLF): Content-Type folded over tab-indented lines',
    boundary: 'Apple-Mail-2-292336769',
    body: lines('--Apple-Mail-2-292336769', CD('name="m"'), 'Content-Type: text/plain;', '\tcharset=US-ASCII;', '\tdelsp=yes', '', 'body', '--Apple-Mail-2-292336769--'),
    parts: [{ name: 'm', contentType: 'text/plain;\tcharset=US-ASCII;\tdelsp=yes', data: 'body' }],
  },
];

const goErrors: ErrorCase[] = [
  {
    what: 'Go TestBoundaryLine (`--myBoundary bogus`): padding then anything but CRLF is a malformed delimiter line',
    boundary: 'myBoundary',
    body: Buffer.from(`--myBoundary\r\n${CD('name="a"')}\r\n\r\nv\r\n--myBoundary bogus\r\n${CD('name="b"')}\r\n\r\nw\r\n--myBoundary--`),
    code: 'MULTIPART_MALFORMED',
    status: 400,
  },
  {
    what: 'Go "TestMultipartTruncated": a preamble, one part, and the body ends',
    boundary: 'MyBoundary',
    body: Buffer.from(`This is a multi-part message.  This line is ignored.\r\n--MyBoundary\r\n${CD('name="a"')}\r\n\r\nOh no, premature EOF!\r\n`),
    code: 'MULTIPART_TRUNCATED',
    status: 400,
  },
];

// ---------------------------------------------------------------------------------------------
// Line endings (RFC 2046 5.1.1: CRLF). Go and Python take bare LF; busboy, @fastify/busboy,
// undici and formidable refuse it, and so do we, with a 400 that says why.

describe('a body framed with bare LFs is a 400 that says so', () => {
  const body = Buffer.from(`--${B}\n${CD('name="a"')}\n\nv\n--${B}--\n`);

  test('Python email default policy, Go "TestMultipartOnlyNewlines": MULTIPART_NO_DELIMITER, whatever the chunking', () =>
    runErrorCase({ what: 'bare LFs', body, code: 'MULTIPART_NO_DELIMITER', status: 400 }));

  test('the message names the bare LF, and only for such a body', async () => {
    const lf = await collect(newParser(B), [body]);
    assertSluiceError(lf.error, 'MULTIPART_NO_DELIMITER', 400, 'bare LF');
    assert.match((lf.error as Error).message, /bare LF.*CRLF/);
    const other = await collect(newParser(B), [Buffer.from('no delimiter here\n')]);
    assertSluiceError(other.error, 'MULTIPART_NO_DELIMITER', 400, 'no delimiter');
    assert.doesNotMatch((other.error as Error).message, /LF/);
  });

  test('a delimiter, padding, then a bare LF is MULTIPART_MALFORMED', () =>
    runErrorCase({ what: 'padding then LF', body: Buffer.from(`--${B}  \n${CD('name="a"')}\r\n\r\n1\r\n--${B}--\r\n`), code: 'MULTIPART_MALFORMED', status: 400 }));
});

// ---------------------------------------------------------------------------------------------
// Python's email package (policy.HTTP / policy.SMTP), as a urllib client would send it

const PY = '===============5833894746536139643==';

const pythonCases: ValidCase[] = [
  {
    what: 'Python email, policy.HTTP: MIME-Version headers, base64 parts (a UTF-8 text field and a binary file), quoted charset',
    boundary: PY,
    body: lines(
      `--${PY}`,
      'Content-Type: text/plain; charset="utf-8"',
      'MIME-Version: 1.0',
      'Content-Transfer-Encoding: base64',
      CD('name="note"'),
      '',
      'aMOpbGxvIHfDtnJsZA==',
      '',
      `--${PY}`,
      'Content-Type: application/octet-stream',
      'MIME-Version: 1.0',
      'Content-Transfer-Encoding: base64',
      CD("name=\"file\"; filename*=utf-8''%C3%BCn%C3%AFcode.bin"),
      '',
      ALL_BYTES.toString('base64').replace(/.{76}/g, '$&\r\n'),
      '',
      `--${PY}--`,
      '',
    ),
    parts: [
      { name: 'note', contentType: 'text/plain; charset="utf-8"', data: 'héllo wörld' },
      { name: 'file', filename: 'ünïcode.bin', contentType: 'application/octet-stream', data: ALL_BYTES },
    ],
    thorough: false,
  },
  {
    what: "Python email, policy.SMTP: a folded Content-Disposition with RFC 2231 continuations (filename*0*=utf-8''..., us-ascii'')",
    boundary: PY,
    body: lines(
      `--${PY}`,
      'Content-Type: application/octet-stream',
      'Content-Transfer-Encoding: base64',
      'Content-Disposition: form-data; name="file";',
      " filename*0*=utf-8''a%20very%20long%20file%20name%20that%20will%20surely%20ne;",
      ' filename*1*=ed%20folding%20%C3%BCn%C3%AFcode.bin',
      '',
      'aGVsbG8=',
      '',
      `--${PY}`,
      'Content-Type: application/octet-stream',
      'Content-Disposition: form-data; name="file2";',
      " filename*0*=us-ascii''a%20plain;",
      ' filename*1*=%20name.bin',
      '',
      'xy',
      `--${PY}--`,
    ),
    parts: [
      { name: 'file', filename: 'a very long file name that will surely need folding ünïcode.bin', contentType: 'application/octet-stream', data: 'hello' },
      { name: 'file2', filename: 'a plain name.bin', contentType: 'application/octet-stream', data: 'xy' },
    ],
  },
  {
    what: "Python email: a non-ASCII field name is sent as name*=utf-8''... (RFC 8187)",
    body: onePart(B, ["Content-Disposition: form-data; name*=utf-8''%E5%90%8D%E5%89%8D"], 'v'),
    parts: [{ name: '名前', data: 'v' }],
  },
];

// ---------------------------------------------------------------------------------------------
// formidable fixtures

const SLASHES = '\\/'.repeat(29);
const PNG = Buffer.concat([Buffer.from('89504e470d0a1a0a', 'hex'), ALL_BYTES]);

const formidableCases: ValidCase[] = [
  {
    what: 'formidable "base64/menu_seperator": a boundary of 29 `\\/` pairs and a base64 image on one long line',
    boundary: SLASHES,
    body: lines(`--${SLASHES}`, CD('name="image"; filename="menu_separator.png"'), 'Content-Type: image/png', 'Content-Transfer-Encoding: base64', '', PNG.toString('base64'), `--${SLASHES}--`, ''),
    parts: [{ name: 'image', filename: 'menu_separator.png', contentType: 'image/png', data: PNG }],
  },
  {
    what: 'formidable "filename/quotes": filename="foo \\"bar\\"" (RFC 9110 quoted-pairs)',
    body: onePart(B, [CD('name="upload"; filename="foo \\"bar\\""'), 'Content-Type: text/plain'], 'I am a plain text file\r\n'),
    parts: [{ name: 'upload', filename: 'foo "bar"', contentType: 'text/plain', data: 'I am a plain text file\r\n' }],
  },
  {
    what: 'formidable "special-chars-in-filename" (Chrome 13): %22 and a lone backslash, which cuts the path',
    body: onePart(B, [CD('name="upload"; filename=": \\ ? % * | %22 < > . ; \' @ # $ ^ & ( ) - _ = + { } [ ] ` ~.txt"')], 'x'),
    parts: [{ name: 'upload', filename: ' ? % * | " < > . ; \' @ # $ ^ & ( ) - _ = + { } [ ] ` ~.txt', data: 'x' }],
  },
];

const formidableErrors: ErrorCase[] = [
  {
    what: 'formidable "workarounds/missing-hyphens" (old IE, formidable accepts it): ending after a delimiter line, no close delimiter, is MULTIPART_TRUNCATED',
    boundary: '----TLV0SrKD4z1TRxRhAPUvZ',
    body: lines('------TLV0SrKD4z1TRxRhAPUvZ', CD('name="upload"; filename="plain.txt"'), 'Content-Type: text/plain', '', 'I am a simple plain text file!', '', '------TLV0SrKD4z1TRxRhAPUvZ', ''),
    code: 'MULTIPART_TRUNCATED',
    status: 400,
  },
];

// ---------------------------------------------------------------------------------------------
// Content-Transfer-Encoding (RFC 2045 6.7, 6.8), streamed

const transferCases: ValidCase[] = [
  {
    what: 'base64: line breaks, no padding at the end, and base64url letters are all decoded',
    body: buildBody(B, [
      { headers: [CD('name="a"; filename="a"'), 'Content-Transfer-Encoding: base64'], data: 'aGVs\r\nbG8gd29y\r\nbGQ' },
      { headers: [CD('name="b"; filename="b"'), 'Content-Transfer-Encoding: BASE64'], data: Buffer.from([0xfb, 0xff, 0xfe]).toString('base64url') },
      { headers: [CD('name="c"; filename="c"'), 'Content-Transfer-Encoding: base64'], data: '' },
    ]),
    parts: [
      { name: 'a', filename: 'a', data: 'hello world' },
      { name: 'b', filename: 'b', data: Buffer.from([0xfb, 0xff, 0xfe]) },
      { name: 'c', filename: 'c', data: '' },
    ],
  },
  {
    what: 'base64: `=` padding ends the data; what follows it in the part is ignored (RFC 2045 6.8), not read on as more letters',
    body: buildBody(B, [
      { headers: [CD('name="a"; filename="a"'), 'Content-Transfer-Encoding: base64'], data: 'QQ==\r\nQkM=' },
      { headers: [CD('name="b"; filename="b"'), 'Content-Transfer-Encoding: base64'], data: 'aGk=' },
    ]),
    parts: [
      { name: 'a', filename: 'a', data: 'A' },
      { name: 'b', filename: 'b', data: 'hi' },
    ],
  },
  {
    what: 'quoted-printable: =XY (either case), soft breaks (CRLF and bare LF), trailing whitespace dropped, a stray = kept',
    body: buildBody(B, [
      {
        headers: [CD('name="q"'), 'Content-Transfer-Encoding: Quoted-Printable'],
        data: 'caf=C3=a9 =\r\nnext \t\r\nline=\nend 1=2 =ZZ tail  ',
      },
    ]),
    parts: [{ name: 'q', data: 'café next\r\nlineend 1=2 =ZZ tail' }],
  },
  {
    what: '7bit, 8bit, binary and unknown encodings keep the bytes as sent (RFC 2045 6.4)',
    body: buildBody(B, [
      { headers: [CD('name="a"'), 'Content-Transfer-Encoding: 7bit'], data: 'aGVsbG8=' },
      { headers: [CD('name="b"'), 'Content-Transfer-Encoding: binary'], data: ALL_BYTES },
      { headers: [CD('name="c"'), 'Content-Transfer-Encoding: x-uuencode'], data: '=41' },
    ]),
    parts: [
      { name: 'a', data: 'aGVsbG8=' },
      { name: 'b', data: ALL_BYTES },
      { name: 'c', data: '=41' },
    ],
  },
  {
    what: 'maxFileBytes counts decoded bytes: a base64 file of exactly the limit passes though its encoding is longer',
    options: { maxFileBytes: 6 },
    body: buildBody(B, [{ headers: [CD('name="f"; filename="f"'), 'Content-Transfer-Encoding: base64'], data: 'c2l4Ynl0' }]),
    parts: [{ name: 'f', filename: 'f', data: 'sixbyt' }],
  },
];

const transferErrors: ErrorCase[] = [
  {
    what: 'maxFileBytes counts decoded bytes: one decoded byte over is FILE_TOO_LARGE',
    options: { maxFileBytes: 5 },
    body: buildBody(B, [{ headers: [CD('name="f"; filename="f"'), 'Content-Transfer-Encoding: base64'], data: 'c2l4Ynl0' }]),
    code: 'FILE_TOO_LARGE',
    status: 413,
  },
];

// ---------------------------------------------------------------------------------------------
// Browsers, curl and undici (the HTML standard's multipart/form-data encoding)

const whatwgCases: ValidCase[] = [
  {
    what: 'HTML standard: `"`, CR and LF arrive as %22, %0D, %0A and are decoded in name and filename',
    body: onePart(B, [CD('name="a%22b%0D%0Ac"; filename="q%22.txt"')], 'v'),
    parts: [{ name: 'a"b\r\nc', filename: 'q".txt', data: 'v' }],
  },
  {
    what: 'HTML standard (Chrome, curl -F \'a\\=1\'): a name ending in a backslash, sent as "a\\" unescaped, is read as undici reads it',
    body: buildBody(B, [
      { headers: [CD('name="a\\"')], data: '1' },
      { headers: [CD('name="x\\"; filename="dir\\"')], data: '2' },
    ]),
    parts: [
      { name: 'a\\', data: '1' },
      { name: 'x\\', filename: '', data: '2' },
    ],
  },
  {
    what: 'RFC 9110 quoted-pairs (Go, Python email) still win where both readings parse: `\\"` is a quote, `\\\\` a backslash',
    body: onePart(B, [CD('name="say \\"hi\\" \\\\o/"')], 'v'),
    parts: [{ name: 'say "hi" \\o/', data: 'v' }],
  },
  {
    what: 'HTML standard: an empty file input (filename="" and no data) is a file part with filename ""',
    body: buildBody(B, [file('f', '', 'application/octet-stream', ''), field('after', 'x')]),
    parts: [
      { name: 'f', filename: '', contentType: 'application/octet-stream', data: '' },
      { name: 'after', data: 'x' },
    ],
  },
];

// ---------------------------------------------------------------------------------------------
// Ambiguous headers: peers disagree on which copy counts, so none does

const ambiguityErrors: ErrorCase[] = [
  {
    what: 'a repeated name parameter (busboy and Python keep the first, sluice kept the last) is CONTENT_DISPOSITION_MALFORMED',
    body: onePart(B, [CD('name="a"; name="b"')], 'v'),
    code: 'CONTENT_DISPOSITION_MALFORMED',
    status: 400,
  },
  {
    what: 'a repeated filename parameter is CONTENT_DISPOSITION_MALFORMED',
    body: onePart(B, [CD('name="a"; filename="x.txt"; filename="y.php"')], 'v'),
    code: 'CONTENT_DISPOSITION_MALFORMED',
    status: 400,
  },
  {
    what: 'two Content-Disposition headers (busboy keeps the first, undici the last) are PART_HEADER_MALFORMED',
    body: onePart(B, [CD('name="a"'), CD('name="b"; filename="b.txt"')], 'v'),
    code: 'PART_HEADER_MALFORMED',
    status: 400,
  },
];

describe('peer vectors: busboy, @fastify/busboy', () => {
  for (const c of busboyCases) test(c.what, () => runValidCase(c));
  for (const c of busboyErrors) test(c.what, () => runErrorCase(c));
});

describe("peer vectors: Go's mime/multipart", () => {
  for (const c of goCases) test(c.what, () => runValidCase(c));
  for (const c of goErrors) test(c.what, () => runErrorCase(c));
});

describe('peer vectors: formidable fixtures', () => {
  for (const c of formidableCases) test(c.what, () => runValidCase(c));
  for (const c of formidableErrors) test(c.what, () => runErrorCase(c));
});

describe("real clients: Python's email package", () => {
  for (const c of pythonCases) test(c.what, () => runValidCase(c));
});

describe('Content-Transfer-Encoding (RFC 2045 6), decoded while streaming', () => {
  for (const c of transferCases) test(c.what, () => runValidCase(c));
  for (const c of transferErrors) test(c.what, () => runErrorCase(c));
});

describe('real clients: browsers, curl, undici (HTML standard encoding)', () => {
  for (const c of whatwgCases) test(c.what, () => runValidCase(c));
});

describe('ambiguous part headers are refused', () => {
  for (const c of ambiguityErrors) test(c.what, () => runErrorCase(c));
});
