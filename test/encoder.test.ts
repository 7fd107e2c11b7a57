import { strict as assert } from 'node:assert';
import { createHash, randomBytes } from 'node:crypto';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { describe, test } from 'node:test';
import busboy from 'busboy';
import { MultipartEncoder, randomBoundary } from '../multipart/encoder.js';
import type { MultipartEvent } from '../multipart/events.js';
import { escapeFormDataParameter, filenameAsSent, formatFormDataPartHeader } from '../multipart/form-data-header.js';
import { MultipartParser } from '../multipart/parser.js';

/** A part as a test describes it; `filename` null (or absent) makes it a field. */
interface TestPart {
  readonly name: string;
  readonly filename?: string | null;
  readonly contentType?: string | null;
  readonly body: Buffer | string;
  /**
   * How a parser reads the name or filename back when that is not the part itself. The WHATWG
   * parser undoes exactly what the HTML standard's encoding does, so it never needs one. busboy
   * and ours read quoted strings the RFC 9110 way (`\\` and `\"` are escapes) and keep
   * `%22`/`%0D`/`%0A` as they are: they read our body exactly as they read a browser's.
   */
  readonly reads?: Partial<Record<'busboy' | 'ours', Reading>>;
}

interface Reading {
  readonly name?: string;
  readonly filename?: string | null;
}

/** A part as a parser read it back. */
interface ReadPart {
  readonly name: string;
  readonly filename: string | null;
  /** null when the parser does not report it (busboy and WHATWG for fields). */
  readonly type: string | null;
  readonly size: number;
  readonly sha256: string;
}

type ParserName = 'busboy' | 'whatwg' | 'ours';

interface Case {
  readonly what: string;
  readonly parts: readonly TestPart[];
  /** Each part's data goes in events of at most this many bytes (default 64 KiB, like socket reads). */
  readonly chunkBytes?: number;
  /** Parsers that cannot read this case at all, with why (the test is skipped, the reason shown). */
  readonly unreadableBy?: Partial<Record<ParserName, string>>;
}

/** RFC-style readers keep the HTML standard's escapes as text. */
const KEEPS_ESCAPES = (name?: string, filename?: string): Partial<Record<'busboy' | 'ours', Reading>> => {
  const reading: Reading = { ...(name === undefined ? {} : { name }), ...(filename === undefined ? {} : { filename }) };
  // busboy keeps the HTML standard's %22/%0D/%0A escapes; ours decodes them, as the WHATWG parser does.
  return { busboy: reading };
};

const MiB = 1024 * 1024;
const bigFile = randomBytes(8 * MiB + 12345);
const allBytes = Buffer.from(Array.from({ length: 256 }, (_, i) => i));

const CASES: readonly Case[] = [
  { what: 'one field', parts: [{ name: 'greeting', body: 'hello' }] },
  {
    what: 'a field and a typed file, in that order',
    parts: [
      { name: 'title', body: 'holiday' },
      { name: 'photo', filename: 'beach.jpg', contentType: 'image/jpeg', body: randomBytes(70_000) },
    ],
  },
  { what: 'a file without a type goes out as application/octet-stream', parts: [{ name: 'blob', filename: 'data.bin', body: allBytes }] },
  {
    what: 'an empty file input: filename="" and no bytes',
    // busboy reports an empty filename as none (it still sees a file: the type is octet-stream).
    parts: [{ name: 'upload', filename: '', body: '', reads: { busboy: { filename: null } } }],
  },
  {
    what: 'empty field value and zero-byte named file',
    parts: [
      { name: 'empty', body: '' },
      { name: 'nothing', filename: 'empty.txt', contentType: 'text/plain', body: '' },
    ],
  },
  {
    what: 'non-ASCII names and filenames go out as raw UTF-8',
    parts: [
      { name: 'café ☕ 日本語', body: 'crème brûlée' },
      { name: 'fichier', filename: 'résumé 😀 файл.pdf', contentType: 'application/pdf', body: 'pdf' },
    ],
  },
  {
    what: 'quotes, CR and LF in names and filenames are sent as %22, %0D, %0A',
    parts: [
      { name: 'say "hi"', body: 'x', reads: KEEPS_ESCAPES('say %22hi%22') },
      { name: 'two\r\nlines', body: 'y', reads: KEEPS_ESCAPES('two%0D%0Alines') },
      { name: 'f', filename: 'a "quoted"\nname.txt', contentType: 'text/plain', body: 'z', reads: KEEPS_ESCAPES(undefined, 'a %22quoted%22%0Aname.txt') },
    ],
  },
  {
    what: 'a header-injection attempt stays inside the quoted string',
    parts: [
      {
        name: 'x"; filename="evil.sh"\r\nContent-Type: text/x-sh\r\n\r\n',
        body: 'v',
        reads: KEEPS_ESCAPES('x%22; filename=%22evil.sh%22%0D%0AContent-Type: text/x-sh%0D%0A%0D%0A'),
      },
    ],
  },
  {
    what: 'single backslashes in names and filenames are sent raw',
    parts: [
      { name: 'a\\b', body: 'v' },
      // Our parser keeps only the last path segment of a filename (RFC 7578 4.2); busboy is told not to here.
      { name: 'f', filename: 'back\\slash.txt', contentType: 'text/plain', body: 'w', reads: { ours: { filename: 'slash.txt' } } },
    ],
  },
  {
    what: 'a doubled backslash is sent as two backslashes',
    parts: [{ name: 'a\\\\b', body: 'v', reads: { busboy: { name: 'a\\b' }, ours: { name: 'a\\b' } } }],
  },
  {
    what: 'a name ending in a backslash',
    parts: [{ name: 'dir\\', body: 'v' }],
    unreadableBy: {
      busboy: 'busboy takes the final \\" as an escaped quote and drops the part, as it does for the same bytes from a browser',
      // Our parser reads it: a value that only the HTML standard's reading parses is read that way.
    },
  },
  {
    what: 'a percent sign that is not an escape stays as it is',
    parts: [{ name: '100% sure', filename: '50%.txt', contentType: 'text/plain', body: 'v' }],
  },
  {
    what: 'content types keep their parameters and case; a field keeps a type it was given',
    parts: [
      { name: 'note', contentType: 'text/plain; charset=utf-8', body: 'naïve' },
      { name: 'sheet', filename: 'a.csv', contentType: 'Text/CSV; charset=UTF-8', body: 'a,b\r\n1,2\r\n' },
    ],
  },
  {
    what: 'data that looks like a delimiter (CRLF, dashes, another boundary) passes through',
    parts: [
      { name: 'tricky', filename: 'tricky.txt', contentType: 'text/plain', body: '\r\n--\r\n------sluiceAAAA\r\n--XyZ--\r\n\r\n' },
      { name: 'field', body: 'line1\r\nline2\n\rline3\r\n' },
    ],
  },
  {
    what: 'a file of 8 MiB in 64 KiB events, byte-exact',
    parts: [
      { name: 'before', body: 'a' },
      { name: 'big', filename: 'big.bin', contentType: 'application/octet-stream', body: bigFile },
      { name: 'after', body: 'b' },
    ],
  },
  {
    what: 'a file fed one byte per event',
    parts: [{ name: 'tiny', filename: 'bytes.bin', body: allBytes }],
    chunkBytes: 1,
  },
  {
    what: '300 small parts keep their order',
    parts: Array.from({ length: 300 }, (_, i): TestPart =>
      i % 3 === 0 ? { name: `file${i}`, filename: `f${i}.txt`, contentType: 'text/plain', body: `content ${i}` } : { name: `field${i}`, body: `value ${i}` },
    ),
  },
  {
    what: 'the same name several times',
    parts: [
      { name: 'tag', body: 'one' },
      { name: 'tag', body: 'two' },
      { name: 'tag', filename: 'three.txt', contentType: 'text/plain', body: 'three' },
    ],
  },
  { what: 'no parts at all: only the close delimiter', parts: [] },
];

describe('MultipartEncoder round trip', () => {
  for (const c of CASES) {
    describe(c.what, () => {
      for (const parser of ['busboy', 'whatwg', 'ours'] as const) {
        const reason = c.unreadableBy?.[parser];
        const options = reason === undefined ? {} : { skip: reason };
        test(`read back by ${parser}`, options, async () => {
          const encoder = new MultipartEncoder();
          const body = await encode(c.parts, encoder, c.chunkBytes);
          const read = await READERS[parser](body, encoder.contentType);
          assert.deepEqual(read, c.parts.map((p) => expectedReading(p, parser)));
        });
      }
    });
  }
});

describe('form-data part header (HTML standard encoding)', () => {
  const HEADERS: ReadonlyArray<{ what: string; part: Parameters<typeof formatFormDataPartHeader>[0]; header: string }> = [
    { what: 'a field has no Content-Type', part: { name: 'a', filename: null, contentType: null }, header: 'Content-Disposition: form-data; name="a"\r\n\r\n' },
    {
      what: 'a file without a type gets application/octet-stream',
      part: { name: 'f', filename: 'x.bin', contentType: null },
      header: 'Content-Disposition: form-data; name="f"; filename="x.bin"\r\nContent-Type: application/octet-stream\r\n\r\n',
    },
    {
      what: 'an empty file input keeps filename=""',
      part: { name: 'f', filename: '', contentType: null },
      header: 'Content-Disposition: form-data; name="f"; filename=""\r\nContent-Type: application/octet-stream\r\n\r\n',
    },
    {
      what: 'only ", CR and LF are escaped; UTF-8, backslash, % and ; stay raw; no filename*',
      part: { name: 'a"b\rc\nd\\e%f;g', filename: 'é"\\.txt', contentType: 'text/plain' },
      header: 'Content-Disposition: form-data; name="a%22b%0Dc%0Ad\\e%f;g"; filename="é%22\\.txt"\r\nContent-Type: text/plain\r\n\r\n',
    },
  ];
  for (const h of HEADERS) {
    test(h.what, () => assert.equal(formatFormDataPartHeader(h.part), h.header));
  }

  test('escapeFormDataParameter escapes `"`, CR and LF (HTML standard) and the other control bytes, nothing else', () => {
    for (let c = 0; c < 0x80; c += 1) {
      const ch = String.fromCharCode(c);
      const control = (c < 0x20 && c !== 0x09) || c === 0x7f; // HTAB may stand in a header value
      const want = ch === '"' || control ? `%${c.toString(16).toUpperCase().padStart(2, '0')}` : ch;
      assert.equal(escapeFormDataParameter(ch), want, `char ${c}`);
    }
  });

  for (const type of ['text/plain\r\nX-Evil: 1', 'text/plain\n', 'a\0b', '', '  ']) {
    test(`a content type that cannot be a header value is refused: ${JSON.stringify(type)}`, () => {
      assert.throws(() => formatFormDataPartHeader({ name: 'f', filename: 'x', contentType: type }), { code: 'MULTIPART_ENCODE_HEADER' });
    });
  }
});

describe('MultipartEncoder boundary', () => {
  test('a fresh random boundary per encoder, RFC 2046 bchars only, at least 24 random chars', () => {
    const seen = new Set<string>();
    for (let i = 0; i < 100; i += 1) {
      const e = new MultipartEncoder();
      assert.match(e.boundary, /^----sluice[A-Za-z0-9_-]{24,}$/);
      assert.ok(e.boundary.length <= 70, 'RFC 2046 5.1.1: at most 70 characters');
      assert.equal(e.contentType, `multipart/form-data; boundary=${e.boundary}`);
      seen.add(e.boundary);
    }
    assert.equal(seen.size, 100);
    assert.notEqual(randomBoundary(), randomBoundary());
  });

  test('a caller-chosen boundary that needs quotes is quoted in the content type', () => {
    assert.equal(new MultipartEncoder({ boundary: 'a b:c' }).contentType, 'multipart/form-data; boundary="a b:c"');
  });

  for (const boundary of ['', 'ends in space ', 'x'.repeat(71), 'semi;colon', 'quote"', 'é']) {
    test(`an invalid caller-chosen boundary is refused: ${JSON.stringify(boundary)}`, () => {
      assert.throws(() => new MultipartEncoder({ boundary }), { code: 'MULTIPART_ENCODE_HEADER' });
    });
  }

  test('a part header containing a caller-chosen boundary fails the stream', async () => {
    const encoder = new MultipartEncoder({ boundary: 'abc' });
    await assert.rejects(encode([{ name: 'x--abc', body: '' }], encoder), { code: 'MULTIPART_ENCODE_HEADER' });
  });

  test('the exact bytes of a small body', async () => {
    const body = await encode(
      [
        { name: 'a', body: '1' },
        { name: 'f', filename: 'f.txt', contentType: 'text/plain', body: 'xy' },
      ],
      new MultipartEncoder({ boundary: 'B' }),
    );
    assert.equal(
      body.toString('latin1'),
      '--B\r\nContent-Disposition: form-data; name="a"\r\n\r\n1\r\n' +
        '--B\r\nContent-Disposition: form-data; name="f"; filename="f.txt"\r\nContent-Type: text/plain\r\n\r\nxy\r\n' +
        '--B--\r\n',
    );
  });

  test('output does not depend on how the data is split into events, or the events into batches', async () => {
    const parts: TestPart[] = [
      { name: 'a', body: allBytes },
      { name: 'b', filename: 'b', body: randomBytes(5000) },
    ];
    const whole = await encode(parts, new MultipartEncoder({ boundary: 'same' }), Infinity);
    for (const chunkBytes of [1, 2, 3, 7, 255, 4096]) {
      assert.deepEqual(await encode(parts, new MultipartEncoder({ boundary: 'same' }), chunkBytes), whole, `chunks of ${chunkBytes}`);
      for (const batchSize of [2, 5, 1000]) {
        const out: Buffer[] = [];
        await pipeline(Readable.from(batches(eventsOf(parts, chunkBytes), batchSize)), new MultipartEncoder({ boundary: 'same' }), sink(out));
        assert.deepEqual(Buffer.concat(out), whole, `chunks of ${chunkBytes} in batches of ${batchSize}`);
      }
    }
  });

  test('pipes straight from our parser: parser batches in, the same parts out', async () => {
    const parts: TestPart[] = [
      { name: 'x', body: 'field' },
      { name: 'f', filename: 'f.bin', contentType: 'image/png', body: randomBytes(300_000) },
    ];
    const first = new MultipartEncoder();
    const body = await encode(parts, first);
    const second = new MultipartEncoder();
    const out: Buffer[] = [];
    await pipeline(Readable.from([body]), new MultipartParser({ boundary: first.boundary }), second, sink(out));
    assert.deepEqual(await readWithBusboy(Buffer.concat(out), second.contentType), parts.map((p) => expectedReading(p, 'busboy')));
  });
});

describe('filenames as the client sent them (the encoder passes parts on, it does not store them)', () => {
  const disposition = (params: string): Readonly<Record<string, string>> => ({ 'content-disposition': `form-data; name="f"; ${params}` });
  const CASES: ReadonlyArray<{ what: string; filename: string | null; headers?: Readonly<Record<string, string>>; sent: string | null }> = [
    { what: 'a directory upload keeps its relative path', filename: 'a.jpg', headers: disposition('filename="photos/2024/a.jpg"'), sent: 'photos/2024/a.jpg' },
    { what: 'a Windows path keeps its backslashes', filename: 'x.txt', headers: disposition('filename="C:\\fakepath\\x.txt"'), sent: 'C:\\fakepath\\x.txt' },
    { what: '`..`, which the parser makes ""', filename: '', headers: disposition('filename=".."'), sent: '..' },
    { what: '`dir/`, which the parser makes ""', filename: '', headers: disposition('filename="dir/"'), sent: 'dir/' },
    { what: 'the HTML standard escapes are undone, as the parser does', filename: 'a"b.txt', headers: disposition('filename="d%0Ar/a%22b.txt"'), sent: 'd\nr/a"b.txt' },
    { what: 'filename* is decoded and preferred, as the parser does', filename: 'é.txt', headers: disposition("filename=\"x.txt\"; filename*=UTF-8''d%2F%C3%A9.txt"), sent: 'd/é.txt' },
    { what: 'an empty file input stays ""', filename: '', headers: disposition('filename=""'), sent: '' },
    { what: 'a field has none', filename: null, headers: { 'content-disposition': 'form-data; name="f"' }, sent: null },
    { what: 'no headers (events not from a parser): the part\'s own filename', filename: 'x.txt', sent: 'x.txt' },
    { what: 'a header that names another file: the part\'s own filename', filename: 'mine.txt', headers: disposition('filename="dir/other.txt"'), sent: 'mine.txt' },
    { what: 'a header that does not parse: the part\'s own filename', filename: 'mine.txt', headers: disposition('filename="unterminated'), sent: 'mine.txt' },
  ];
  for (const c of CASES) {
    test(c.what, () => assert.equal(filenameAsSent({ name: 'f', filename: c.filename, contentType: null, ...(c.headers === undefined ? {} : { headers: c.headers }) }), c.sent));
  }

  test('parser to encoder: busboy at the far end reads the paths the client sent, and the bytes of a file named ..', async () => {
    const client = new MultipartEncoder({ boundary: 'client-boundary' });
    const body = Buffer.from(
      '--client-boundary\r\nContent-Disposition: form-data; name="files[]"; filename="photos/2024/a.jpg"\r\nContent-Type: image/jpeg\r\n\r\njpeg bytes\r\n' +
        '--client-boundary\r\nContent-Disposition: form-data; name="dots"; filename=".."\r\nContent-Type: text/plain\r\n\r\ndot dot\r\n' +
        '--client-boundary--\r\n',
    );
    const encoder = new MultipartEncoder();
    const out: Buffer[] = [];
    await pipeline(Readable.from([body]), new MultipartParser({ boundary: client.boundary }), encoder, sink(out));
    const read = await readWithBusboy(Buffer.concat(out), encoder.contentType);
    assert.deepEqual(
      read.map((p) => [p.name, p.filename, p.type, p.size]),
      [
        ['files[]', 'photos/2024/a.jpg', 'image/jpeg', 10],
        ['dots', '..', 'text/plain', 7],
      ],
    );
  });
});

describe('MultipartEncoder event order', () => {
  const part: MultipartEvent = { type: 'part', part: { name: 'a', filename: null, contentType: null, headers: {} } };
  const data: MultipartEvent = { type: 'data', data: Buffer.from('x') };
  const end: MultipartEvent = { type: 'part-end' };
  const ORDERS: ReadonlyArray<{ what: string; events: readonly unknown[] }> = [
    { what: 'data before any part', events: [data] },
    { what: 'part-end without a part', events: [end] },
    { what: 'a part inside a part', events: [part, part] },
    { what: 'data after part-end', events: [part, end, data] },
    { what: 'the input ends inside a part', events: [part, data] },
    { what: 'an unknown event', events: [{ type: 'bogus' }] },
    { what: 'a data event without a Buffer', events: [part, { type: 'data', data: 'text' }] },
    { what: 'a bad event inside a batch', events: [[part, data, end, data]] },
  ];
  for (const o of ORDERS) {
    test(`${o.what} fails the stream with MULTIPART_ENCODE_ORDER`, async () => {
      const encoder = new MultipartEncoder();
      await assert.rejects(pipeline(Readable.from(o.events), encoder, sink()), { code: 'MULTIPART_ENCODE_ORDER' });
    });
  }
});

describe('MultipartEncoder streaming', () => {
  test('data buffers come out as the very same objects (no copy)', async () => {
    const chunks = [randomBytes(1000), randomBytes(2000), randomBytes(3000)];
    const encoder = new MultipartEncoder();
    const out: Buffer[] = [];
    await pipeline(
      Readable.from([{ type: 'part', part: { name: 'f', filename: 'f', contentType: null, headers: {} } }, ...chunks.map((d) => ({ type: 'data', data: d })), { type: 'part-end' }]),
      encoder,
      new Writable({
        write(chunk: Buffer, _enc, cb) {
          out.push(chunk);
          cb();
        },
      }),
    );
    for (const c of chunks) assert.ok(out.includes(c), 'a data buffer was copied');
  });

  test('a reader that does not read stops the writer after a bounded amount', async () => {
    const encoder = new MultipartEncoder();
    const chunk = Buffer.alloc(64 * 1024);
    assert.equal(encoder.write({ type: 'part', part: { name: 'f', filename: 'f', contentType: null, headers: {} } }), true);
    let accepted = 0;
    // A well-behaved writer stops at the first false, as pipeline does.
    while (encoder.write({ type: 'data', data: chunk })) accepted += 1;
    await new Promise((r) => setImmediate(r));
    const held = encoder.readableLength + encoder.writableLength * chunk.length;
    assert.ok(accepted < 16, `accepted ${accepted} chunks before asking to wait`);
    assert.ok(held < 2 * MiB, `held ${held} bytes`);
    encoder.destroy();
  });
});

// ---- helpers ---------------------------------------------------------------------------------

/** The events the parser would produce for `parts`, data cut into `chunkBytes` slices (no copy). */
function* eventsOf(parts: readonly TestPart[], chunkBytes: number): Generator<MultipartEvent> {
  for (const p of parts) {
    yield { type: 'part', part: { name: p.name, filename: p.filename ?? null, contentType: p.contentType ?? null, headers: {} } };
    const bytes = Buffer.from(p.body);
    for (let at = 0; at < bytes.length; at += chunkBytes) yield { type: 'data', data: bytes.subarray(at, at + chunkBytes) };
    yield { type: 'part-end' };
  }
}

/** Groups events into arrays of `size`, as the parser hands them over. */
function* batches(events: Iterable<MultipartEvent>, size: number): Generator<MultipartEvent[]> {
  let batch: MultipartEvent[] = [];
  for (const e of events) {
    batch.push(e);
    if (batch.length === size) {
      yield batch;
      batch = [];
    }
  }
  if (batch.length > 0) yield batch;
}

/** Standalone use of the encoder: parts in, the whole body out. */
async function encode(parts: readonly TestPart[], encoder: MultipartEncoder, chunkBytes = 64 * 1024): Promise<Buffer> {
  const out: Buffer[] = [];
  await pipeline(Readable.from(eventsOf(parts, chunkBytes)), encoder, sink(out));
  return Buffer.concat(out);
}

function sink(out: Buffer[] = []): Writable {
  return new Writable({
    write(chunk: Buffer, _enc, cb) {
      out.push(chunk);
      cb();
    },
  });
}

function sha256(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

const FILE_DEFAULT_TYPE = 'application/octet-stream';

function expectedReading(p: TestPart, parser: ParserName): ReadPart {
  const bytes = Buffer.from(p.body);
  const filename = p.filename ?? null;
  const isFile = filename !== null;
  const typeSent = p.contentType ?? (isFile ? FILE_DEFAULT_TYPE : null);
  let type: string | null;
  if (parser === 'ours') type = typeSent;
  // busboy reports only type/subtype, lower-cased; WHATWG the whole value, lower-cased (Blob
  // type rules). Neither reports a field's type.
  else if (!isFile) type = null;
  else if (parser === 'busboy') type = (typeSent as string).split(';')[0]?.trim().toLowerCase() ?? null;
  else type = (typeSent as string).toLowerCase();
  const reads = parser === 'whatwg' ? undefined : p.reads?.[parser];
  const readFilename = reads !== undefined && 'filename' in reads ? (reads.filename as string | null) : filename;
  return { name: reads?.name ?? p.name, filename: isFile ? readFilename : null, type, size: bytes.length, sha256: sha256(bytes) };
}

const READERS: Readonly<Record<ParserName, (body: Buffer, contentType: string) => Promise<ReadPart[]>>> = {
  busboy: readWithBusboy,
  whatwg: readWithWhatwg,
  ours: readWithOurs,
};

/** busboy: the parser behind multer and fastify, independent of ours. */
function readWithBusboy(body: Buffer, contentType: string): Promise<ReadPart[]> {
  return new Promise((resolve, reject) => {
    const parts: ReadPart[] = [];
    const pending: Array<Promise<void>> = [];
    const bb = busboy({
      headers: { 'content-type': contentType },
      // Names and filenames are raw UTF-8 (HTML standard); busboy reads latin1 unless told.
      defParamCharset: 'utf8',
      // Keep backslashes and slashes, so that what we sent is what we compare.
      preservePath: true,
      limits: { fieldNameSize: MiB, fieldSize: 64 * MiB },
    });
    bb.on('field', (name, value, info) => {
      const bytes = Buffer.from(value, 'utf8');
      assert.equal(info.valueTruncated, false);
      parts.push({ name, filename: null, type: null, size: bytes.length, sha256: sha256(bytes) });
    });
    bb.on('file', (name, stream, info) => {
      const index = parts.length;
      parts.push({ name, filename: info.filename ?? null, type: info.mimeType, size: -1, sha256: '' });
      pending.push(
        (async () => {
          const hash = createHash('sha256');
          let size = 0;
          for await (const chunk of stream as AsyncIterable<Buffer>) {
            hash.update(chunk);
            size += chunk.length;
          }
          parts[index] = { ...(parts[index] as ReadPart), size, sha256: hash.digest('hex') };
        })(),
      );
    });
    bb.on('error', reject);
    bb.on('close', () => void Promise.all(pending).then(() => resolve(parts), reject));
    bb.end(body);
  });
}

/** The WHATWG multipart/form-data parser (Node's built-in `Response#formData`, undici's own code). */
async function readWithWhatwg(body: Buffer, contentType: string): Promise<ReadPart[]> {
  const form = await new Response(body, { headers: { 'content-type': contentType } }).formData();
  const parts: ReadPart[] = [];
  for (const [name, value] of form) {
    if (typeof value === 'string') {
      const bytes = Buffer.from(value, 'utf8');
      parts.push({ name, filename: null, type: null, size: bytes.length, sha256: sha256(bytes) });
    } else {
      const bytes = Buffer.from(await value.arrayBuffer());
      parts.push({ name, filename: value.name, type: value.type, size: bytes.length, sha256: sha256(bytes) });
    }
  }
  return parts;
}

/** Our own parser, fed the body in uneven chunks. */
async function readWithOurs(body: Buffer, contentType: string): Promise<ReadPart[]> {
  const boundary = /boundary=(?:"([^"]+)"|([^;\s]+))/.exec(contentType);
  const parser = new MultipartParser({ boundary: (boundary?.[1] ?? boundary?.[2]) as string, maxFieldBytes: 64 * MiB });
  const chunks = [body.subarray(0, 1), body.subarray(1, 77), body.subarray(77, 70_000), body.subarray(70_000)];
  void pipeline(Readable.from(chunks), parser).catch(() => {}); // its error surfaces in the loop below
  const parts: ReadPart[] = [];
  let current: { name: string; filename: string | null; type: string | null; size: number; hash: ReturnType<typeof createHash> } | null = null;
  for await (const batch of parser as AsyncIterable<MultipartEvent[]>) for (const event of batch) {
    if (event.type === 'part') {
      current = { name: event.part.name, filename: event.part.filename, type: event.part.contentType, size: 0, hash: createHash('sha256') };
    } else if (event.type === 'data') {
      assert.ok(current !== null, 'data outside a part');
      current.size += event.data.length;
      current.hash.update(event.data);
    } else {
      assert.ok(current !== null, 'part-end outside a part');
      parts.push({ name: current.name, filename: current.filename, type: current.type, size: current.size, sha256: current.hash.digest('hex') });
      current = null;
    }
  }
  return parts;
}
