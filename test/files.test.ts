/**
 * GET/HEAD/DELETE /files/:id and GET /files end to end: headers (validators, RFC 6266
 * Content-Disposition, nosniff), single ranges and their edge cases, conditional requests,
 * deletion, listing, and that unknown or malformed ids are 404 JSON, never a path.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { access, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { FileRecord } from '../storage/store.js';
import { startServer, type TestServer } from './helpers/server.js';
import { BOUNDARY, MULTIPART_TYPE, assertError, assertHealthy, multipartBody, rawExchange, rawRequest, seededBytes, sha256, type RawResponse } from './helpers/http.js';


let server: TestServer;

/** Stores `data` with a raw upload; returns its record as GET /files lists it. */
async function storeRaw(data: Buffer, contentType: string, filename: string | null): Promise<FileRecord> {
  const query = filename === null ? '' : `?filename=${encodeURIComponent(filename)}`;
  const res = await rawRequest(server.url, `/upload${query}`, { method: 'POST', headers: { 'content-type': contentType }, body: data });
  assert.equal(res.status, 201, res.body.toString('utf8'));
  const { files } = JSON.parse(res.body.toString('utf8')) as { files: Array<{ id: string }> };
  return recordOf((files[0] as { id: string }).id);
}

/** Stores one file through multipart, with a raw part Content-Type header (anything goes there). */
async function storeMultipart(data: Buffer, partContentType: string, filename: string): Promise<FileRecord> {
  const body = multipartBody(BOUNDARY, [{ headers: [`Content-Disposition: form-data; name="f"; filename="${filename}"`, `Content-Type: ${partContentType}`], data }]);
  const res = await rawRequest(server.url, '/upload', { method: 'POST', headers: { 'content-type': MULTIPART_TYPE }, body });
  assert.equal(res.status, 201, res.body.toString('utf8'));
  const { files } = JSON.parse(res.body.toString('utf8')) as { files: Array<{ id: string }> };
  return recordOf((files[0] as { id: string }).id);
}

async function listFiles(): Promise<FileRecord[]> {
  const res = await rawRequest(server.url, '/files');
  assert.equal(res.status, 200);
  assert.match(String(res.headers['content-type']), /^application\/json/);
  const value = JSON.parse(res.body.toString('utf8')) as { files: FileRecord[] };
  assert.deepEqual(Object.keys(value), ['files']);
  return value.files;
}

async function recordOf(id: string): Promise<FileRecord> {
  const record = (await listFiles()).find((r) => r.id === id);
  assert.ok(record !== undefined, `${id} is not listed`);
  return record;
}

const get = (id: string, headers: Record<string, string> = {}, method = 'GET'): Promise<RawResponse> =>
  rawRequest(server.url, `/files/${id}`, { method, headers });

/**
 * Reads a Content-Disposition the way RFC 6266 lets a client: the type, the quoted ASCII
 * `filename` (no quote, backslash or control inside) and the optional `filename*=UTF-8''...`.
 */
function parseDisposition(value: string): { type: string; filename: string | null; filenameStar: string | null } {
  assert.doesNotMatch(value, /[\r\n\0]/, 'no control characters in the header');
  const m = /^(attachment|inline)(?:; filename="([\x20\x21\x23-\x5b\x5d-\x7e]*)")?(?:; filename\*=UTF-8''((?:[A-Za-z0-9!#$&+.^_`|~-]|%[0-9A-F]{2})+))?$/.exec(value);
  assert.ok(m !== null, `not a well-formed RFC 6266 value: ${value}`);
  return { type: m[1] as string, filename: m[2] ?? null, filenameStar: m[3] === undefined ? null : decodeURIComponent(m[3]) };
}

const data = seededBytes(31, 1000);
const big = seededBytes(32, 3 * 1024 * 1024 + 11);
let bin: FileRecord;
let bigFile: FileRecord;
let text: FileRecord;
let html: FileRecord;
let empty: FileRecord;

before(async () => {
  server = await startServer();
  bin = await storeRaw(data, 'application/octet-stream', 'data.bin');
  bigFile = await storeRaw(big, 'application/x-big', 'big.bin');
  text = await storeRaw(Buffer.from('bonjour\n'), 'text/plain; charset=utf-8', 'naïve résumé.txt');
  html = await storeRaw(Buffer.from('<script>alert(1)</script>'), 'text/html', 'page.html');
  empty = await storeRaw(Buffer.alloc(0), 'application/octet-stream', 'empty.bin');
});
after(() => server.close());

describe('GET /files/:id: headers', () => {
  test('Content-Type, Content-Length, ETag, Last-Modified, Accept-Ranges, nosniff, and the exact bytes', async () => {
    const res = await get(bin.id);
    assert.equal(res.status, 200);
    assert.equal(res.headers['content-type'], 'application/octet-stream');
    assert.equal(res.headers['content-length'], '1000');
    assert.equal(res.headers.etag, `"${sha256(data)}"`);
    assert.equal(res.headers.etag, `"${bin.sha256}"`);
    assert.equal(res.headers['last-modified'], new Date(bin.created).toUTCString());
    assert.equal(res.headers['accept-ranges'], 'bytes');
    assert.equal(res.headers['x-content-type-options'], 'nosniff');
    assert.equal(res.headers['content-disposition'], 'attachment; filename="data.bin"');
    assert.ok(res.body.equals(data));
  });

  test('RFC 9530 digests: Repr-Digest (the whole file) on every answer, Content-Digest only where the answer is the whole file', async () => {
    const digest = `sha-256=:${createHash('sha256').update(big).digest('base64')}:`;
    const whole = await get(bigFile.id);
    assert.equal(whole.headers['repr-digest'], digest);
    assert.equal(whole.headers['content-digest'], digest);
    const part = await get(bigFile.id, { range: 'bytes=10-20' });
    assert.equal(part.status, 206);
    assert.equal(part.headers['repr-digest'], digest);
    assert.equal(part.headers['content-digest'], undefined, 'a range is not the whole file: its content digest would differ');
    const head = await get(bigFile.id, {}, 'HEAD');
    assert.equal(head.headers['repr-digest'], digest);
  });

  test('a few MiB come back byte for byte with their sha256', async () => {
    const res = await get(bigFile.id);
    assert.equal(res.status, 200);
    assert.equal(res.headers['content-type'], 'application/x-big');
    assert.equal(res.headers['content-length'], String(big.length));
    assert.equal(sha256(res.body), sha256(big));
    assert.ok(res.body.equals(big));
  });

  test('a non-ASCII filename gets an ASCII fallback and filename*=UTF-8 (RFC 6266 / RFC 8187); text/plain is inline', async () => {
    const res = await get(text.id);
    assert.equal(res.status, 200);
    assert.equal(res.headers['content-type'], 'text/plain; charset=utf-8');
    const d = parseDisposition(String(res.headers['content-disposition']));
    assert.equal(d.type, 'inline');
    assert.ok(d.filename !== null && /^[\x20-\x7e]*$/.test(d.filename));
    assert.equal(d.filenameStar, 'naïve résumé.txt');
  });

  test('names with CR/LF, quotes, NUL, tabs and % cannot inject headers or break out of the value', async () => {
    const names = ['evil"\r\nSet-Cookie: stolen=1.txt', 'a"b"c.txt', '100% "sure".txt', 'tab\there\u0000nul.txt', '日本語\r\nX-Injected: 1'];
    for (const name of names) {
      const record = await storeRaw(Buffer.from('x'), 'application/octet-stream', name);
      assert.equal(record.filename, name, 'the name is kept as metadata, whatever it holds');
      const res = await get(record.id);
      assert.equal(res.status, 200);
      assert.equal(res.headers['set-cookie'], undefined);
      assert.equal(res.headers['x-injected'], undefined);
      // Exactly one Content-Disposition line came off the wire.
      const lines = res.rawHeaders.filter((_, i) => i % 2 === 0 && res.rawHeaders[i]?.toLowerCase() === 'content-disposition');
      assert.equal(lines.length, 1);
      const d = parseDisposition(String(res.headers['content-disposition']));
      assert.equal(d.type, 'attachment');
      assert.equal(d.filenameStar, name, `filename* carries the exact name ${JSON.stringify(name)}`);
    }
  });

  test('text/html (any case, with parameters), SVG and junk types are served as attachments, never inline', async () => {
    const res = await get(html.id);
    assert.equal(res.headers['content-type'], 'text/html');
    assert.equal(res.headers['x-content-type-options'], 'nosniff');
    assert.equal(parseDisposition(String(res.headers['content-disposition'])).type, 'attachment');

    for (const type of ['TEXT/HTML; charset=utf-8', 'image/svg+xml', 'application/xhtml+xml']) {
      const r = await get((await storeRaw(Buffer.from('<svg/>'), type, 'x.svg')).id);
      assert.equal(r.headers['content-type'], type);
      assert.equal(parseDisposition(String(r.headers['content-disposition'])).type, 'attachment', type);
    }
    // A part Content-Type that is not a media type is never echoed back.
    const junk = await storeMultipart(Buffer.from('<b>hi</b>'), 'text/html<script>', 'junk.html');
    const r = await get(junk.id);
    assert.equal(r.headers['content-type'], 'application/octet-stream');
    assert.equal(parseDisposition(String(r.headers['content-disposition'])).type, 'attachment');
  });

  test('a file without a filename has a bare disposition; a zero-byte file is 200 with Content-Length 0', async () => {
    const anon = await storeRaw(Buffer.from('anon'), 'application/pdf', null);
    const res = await get(anon.id);
    assert.equal(res.headers['content-disposition'], 'inline');
    const e = await get(empty.id);
    assert.equal(e.status, 200);
    assert.equal(e.headers['content-length'], '0');
    assert.equal(e.headers.etag, `"${sha256(Buffer.alloc(0))}"`);
    assert.equal(e.body.length, 0);
  });
});

describe('GET /files/:id: Range (RFC 9110 14)', () => {
  const ranges: ReadonlyArray<{ range: string; start: number; end: number }> = [
    { range: 'bytes=0-9', start: 0, end: 9 },
    { range: 'bytes=-10', start: 990, end: 999 },
    { range: 'bytes=5-', start: 5, end: 999 },
    { range: 'bytes=999-999', start: 999, end: 999 },
    { range: 'bytes=990-5000', start: 990, end: 999 },
    { range: 'bytes=-5000', start: 0, end: 999 },
  ];
  for (const r of ranges) {
    test(`${r.range} → 206 bytes ${r.start}-${r.end}/1000 with exactly those bytes`, async () => {
      const res = await get(bin.id, { range: r.range });
      assert.equal(res.status, 206);
      assert.equal(res.headers['content-range'], `bytes ${r.start}-${r.end}/1000`);
      assert.equal(res.headers['content-length'], String(r.end - r.start + 1));
      assert.equal(res.headers.etag, `"${bin.sha256}"`);
      assert.ok(res.body.equals(data.subarray(r.start, r.end + 1)));
    });
  }

  test('a range across read-chunk edges of a multi-MiB file', async () => {
    const start = 1024 * 1024 - 7;
    const end = 2 * 1024 * 1024 + 70_000;
    const res = await get(bigFile.id, { range: `bytes=${start}-${end}` });
    assert.equal(res.status, 206);
    assert.equal(res.headers['content-range'], `bytes ${start}-${end}/${big.length}`);
    assert.ok(res.body.equals(big.subarray(start, end + 1)));
  });

  for (const range of ['bytes=1000-', 'bytes=1000-2000', 'bytes=5000-6000', 'bytes=-0']) {
    test(`${range} → 416 with Content-Range: bytes */1000 and a JSON error`, async () => {
      const res = await get(bin.id, { range });
      assertError(res, 416, 'RANGE_NOT_SATISFIABLE');
      // The JSON error is not the file: no name to save it under, no digest of the file.
      assert.equal(res.headers['content-disposition'], undefined);
      assert.equal(res.headers['repr-digest'], undefined);
      assert.equal(res.headers['content-range'], 'bytes */1000');
    });
  }

  test('any range of a zero-byte file → 416 bytes */0', async () => {
    const res = await get(empty.id, { range: 'bytes=0-0' });
    assertError(res, 416, 'RANGE_NOT_SATISFIABLE');
    assert.equal(res.headers['content-range'], 'bytes */0');
  });

  // RFC 9110 14.2: a Range that is not a valid ranges-specifier (or not in bytes) is ignored.
  for (const range of ['bytes=9-5', 'items=0-5', 'bytes=abc', 'bytes=', 'bytes=-', 'bytes=0-1,9-5', 'bytes 0-5', 'bytes=0x10-20', 'bytes=1.5-3']) {
    test(`${JSON.stringify(range)} (a Range we ignore) → 200 with the whole file`, async () => {
      const res = await get(bin.id, { range });
      assert.equal(res.status, 200);
      assert.equal(res.headers['content-range'], undefined);
      assert.equal(res.headers['content-length'], '1000');
      assert.ok(res.body.equals(data));
    });
  }

  test('If-Range: matching ETag or Last-Modified → 206; another ETag → 200 with the whole file', async () => {
    const byEtag = await get(bin.id, { range: 'bytes=0-9', 'if-range': `"${bin.sha256}"` });
    assert.equal(byEtag.status, 206);
    assert.ok(byEtag.body.equals(data.subarray(0, 10)));
    const byDate = await get(bin.id, { range: 'bytes=0-9', 'if-range': new Date(bin.created).toUTCString() });
    assert.equal(byDate.status, 206);
    const mismatch = await get(bin.id, { range: 'bytes=0-9', 'if-range': `"${sha256('something else')}"` });
    assert.equal(mismatch.status, 200);
    assert.equal(mismatch.headers['content-range'], undefined);
    assert.ok(mismatch.body.equals(data));
  });
});

describe('GET /files/:id: Range, the edges (RFC 9110 14.1, 14.2)', () => {
  const single: ReadonlyArray<{ range: string; start: number; end: number }> = [
    { range: 'bytes=0-0', start: 0, end: 0 },
    { range: 'Bytes=10-19', start: 10, end: 19 }, // the unit is case-insensitive
    { range: 'bytes = 10-19', start: 10, end: 19 },
    { range: 'bytes=0-4,5-9', start: 0, end: 9 }, // adjacent: coalesced into one part
    { range: 'bytes=0-9,5-14,12-20', start: 0, end: 20 }, // overlapping: coalesced
    { range: 'bytes=0-1,1000-2000', start: 0, end: 1 }, // the unsatisfiable one is dropped
    { range: 'bytes=-0,0-0', start: 0, end: 0 },
    { range: 'bytes=0-99999999999999999999999', start: 0, end: 999 },
    { range: 'bytes=0-1,0-1,0-1', start: 0, end: 1 },
  ];
  for (const r of single) {
    test(`${r.range} → one part, 206 bytes ${r.start}-${r.end}/1000`, async () => {
      const res = await get(bin.id, { range: r.range });
      assert.equal(res.status, 206);
      assert.equal(res.headers['content-range'], `bytes ${r.start}-${r.end}/1000`);
      assert.equal(res.headers['content-type'], 'application/octet-stream');
      assert.ok(res.body.equals(data.subarray(r.start, r.end + 1)));
    });
  }

  for (const range of ['bytes=1000-,2000-3000', 'bytes=-0,5000-', 'bytes=99999999999999999999999-']) {
    test(`${range} (no range overlaps the file) → 416 bytes */1000`, async () => {
      const res = await get(bin.id, { range });
      assertError(res, 416, 'RANGE_NOT_SATISFIABLE');
      assert.equal(res.headers['content-range'], 'bytes */1000');
    });
  }

  test('a suffix longer than the file, or any range of a zero-byte file', async () => {
    assert.equal((await get(bin.id, { range: 'bytes=-1000' })).headers['content-range'], 'bytes 0-999/1000');
    for (const range of ['bytes=-1', 'bytes=0-', 'bytes=0-1,-5']) {
      const res = await get(empty.id, { range });
      assertError(res, 416, 'RANGE_NOT_SATISFIABLE');
      assert.equal(res.headers['content-range'], 'bytes */0', range);
    }
  });

  test('several ranges → 206 multipart/byteranges, parts in the order asked, each with its Content-Range', async () => {
    const res = await get(bin.id, { range: 'bytes=500-509, 0-1,,-3' });
    assert.equal(res.status, 206);
    assert.equal(res.headers['content-range'], undefined, 'a multipart answer has no top-level Content-Range');
    assert.equal(res.headers['content-length'], String(res.body.length));
    assert.equal(res.headers.etag, `"${bin.sha256}"`);
    const parts = parseByteRanges(String(res.headers['content-type']), res.body);
    assert.deepEqual(
      parts.map((p) => p.contentRange),
      ['bytes 500-509/1000', 'bytes 0-1/1000', 'bytes 997-999/1000'],
    );
    for (const p of parts) {
      assert.equal(p.contentType, 'application/octet-stream');
      assert.ok(p.body.equals(data.subarray(p.start, p.end + 1)), p.contentRange);
    }
  });

  test('multipart/byteranges over read-chunk edges of a multi-MiB file, and HEAD says the same length', async () => {
    const ranges: Array<[number, number]> = [
      [big.length - 100_000, big.length - 1],
      [7, 64 * 1024 + 9],
      [1024 * 1024 - 3, 2 * 1024 * 1024 + 3],
    ];
    const header = `bytes=${ranges.map(([a, b]) => `${a}-${b}`).join(',')}`;
    const res = await get(bigFile.id, { range: header });
    assert.equal(res.status, 206);
    const parts = parseByteRanges(String(res.headers['content-type']), res.body);
    assert.deepEqual(parts.map((p) => [p.start, p.end]), ranges);
    for (const p of parts) assert.equal(sha256(p.body), sha256(big.subarray(p.start, p.end + 1)));
    const head = await get(bigFile.id, { range: header }, 'HEAD');
    assert.equal(head.status, 206);
    assert.equal(head.headers['content-length'], String(res.body.length));
    assert.match(String(head.headers['content-type']), /^multipart\/byteranges; boundary=/);
    assert.equal(head.body.length, 0);
  });

  test('more parts than MAX_PARTS (after coalescing) → the whole file, 200', async () => {
    const many = Array.from({ length: 40 }, (_, i) => `${i * 10}-${i * 10 + 1}`).join(',');
    const res = await get(bin.id, { range: `bytes=${many}` });
    assert.equal(res.status, 200);
    assert.ok(res.body.equals(data));
    // The same number of overlapping ranges is one part (CVE-2011-3192 style): 206, not 40 copies.
    const overlapping = Array.from({ length: 40 }, () => '0-999').join(',');
    const one = await get(bin.id, { range: `bytes=${overlapping}` });
    assert.equal(one.status, 206);
    assert.equal(one.headers['content-range'], 'bytes 0-999/1000');
    assert.equal(one.body.length, 1000);
  });

  test('If-Range applies to several ranges too; a weak tag, a later date or junk → 200 whole file', async () => {
    const ok = await get(bin.id, { range: 'bytes=0-1,5-6', 'if-range': `"${bin.sha256}"` });
    assert.equal(ok.status, 206);
    assert.match(String(ok.headers['content-type']), /^multipart\/byteranges/);
    const lastModified = Date.parse(bin.created);
    for (const ifRange of [`W/"${bin.sha256}"`, new Date(lastModified + 1000).toUTCString(), new Date(lastModified - 1000).toUTCString(), 'junk', `"${bin.sha256}`]) {
      const res = await get(bin.id, { range: 'bytes=0-9', 'if-range': ifRange });
      assert.equal(res.status, 200, ifRange);
      assert.ok(res.body.equals(data));
    }
  });

  test('If-Range with the date in an obsolete HTTP-date form (asctime, RFC 850) still matches', async () => {
    const d = new Date(bin.created);
    const days = ['Sunday', 'Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday', 'Saturday'];
    const months = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
    const hms = d.toISOString().slice(11, 19);
    const asctime = `${days[d.getUTCDay()]?.slice(0, 3)} ${months[d.getUTCMonth()]} ${String(d.getUTCDate()).padStart(2, ' ')} ${hms} ${d.getUTCFullYear()}`;
    const rfc850 = `${days[d.getUTCDay()]}, ${String(d.getUTCDate()).padStart(2, '0')}-${months[d.getUTCMonth()]}-${String(d.getUTCFullYear()).slice(2)} ${hms} GMT`;
    for (const ifRange of [asctime, rfc850]) {
      const res = await get(bin.id, { range: 'bytes=0-9', 'if-range': ifRange });
      assert.equal(res.status, 206, ifRange);
    }
  });
});

/** A multipart/byteranges body split by hand (RFC 9110 14.6, RFC 2046 5.1.1), strictly. */
function parseByteRanges(contentType: string, body: Buffer): Array<{ contentType: string; contentRange: string; start: number; end: number; body: Buffer }> {
  const m = /^multipart\/byteranges; boundary=([0-9A-Za-z'()+_,./:=?-]{1,70})$/.exec(contentType);
  assert.ok(m !== null, `not multipart/byteranges: ${contentType}`);
  const delimiter = Buffer.from(`\r\n--${m[1]}`);
  const parts = [];
  let at = body.indexOf(delimiter);
  assert.equal(at, 0, 'the body starts with the first delimiter');
  for (;;) {
    at += delimiter.length;
    if (body.subarray(at, at + 4).toString('latin1') === '--\r\n') {
      assert.equal(at + 4, body.length, 'nothing after the close delimiter');
      return parts;
    }
    assert.equal(body.subarray(at, at + 2).toString('latin1'), '\r\n');
    const headEnd = body.indexOf('\r\n\r\n', at);
    const lines = body.subarray(at + 2, headEnd).toString('latin1').split('\r\n');
    const headers = new Map(lines.map((l) => [l.slice(0, l.indexOf(':')).toLowerCase(), l.slice(l.indexOf(':') + 1).trim()]));
    const contentRange = headers.get('content-range') ?? '';
    const r = /^bytes (\d+)-(\d+)\/(\d+)$/.exec(contentRange);
    assert.ok(r !== null, `bad part Content-Range ${contentRange}`);
    const start = Number(r[1]);
    const end = Number(r[2]);
    const dataStart = headEnd + 4;
    const next = dataStart + (end - start + 1);
    assert.ok(body.subarray(next, next + delimiter.length).equals(delimiter), 'each part is exactly its range long');
    parts.push({ contentType: headers.get('content-type') ?? '', contentRange, start, end, body: body.subarray(dataStart, next) });
    at = next;
  }
}

describe('conditional requests', () => {

  test('If-None-Match with the ETag (strong, weak, in a list, or *) → 304, no body, ETag kept', async () => {
    for (const value of [`"${bin.sha256}"`, `W/"${bin.sha256}"`, `"nope", "${bin.sha256}"`, '*']) {
      const res = await get(bin.id, { 'if-none-match': value });
      assert.equal(res.status, 304, value);
      assert.equal(res.body.length, 0);
      assert.equal(res.headers.etag, `"${bin.sha256}"`);
    }
  });

  test('If-None-Match with another ETag → 200 with the body', async () => {
    const res = await get(bin.id, { 'if-none-match': `"${sha256('other')}"` });
    assert.equal(res.status, 200);
    assert.ok(res.body.equals(data));
  });

  test('If-Modified-Since: at Last-Modified → 304, a day earlier → 200', async () => {
    const lastModified = new Date(bin.created).toUTCString();
    assert.equal((await get(bin.id, { 'if-modified-since': lastModified })).status, 304);
    const earlier = new Date(Date.parse(bin.created) - 86_400_000).toUTCString();
    assert.equal((await get(bin.id, { 'if-modified-since': earlier })).status, 200);
  });

  test('a 304 carries the validators, not the representation metadata (RFC 9110 15.4.5)', async () => {
    const res = await get(text.id, { 'if-none-match': `"${text.sha256}"` });
    assert.equal(res.status, 304);
    assert.equal(res.headers.etag, `"${text.sha256}"`);
    assert.equal(res.headers['last-modified'], new Date(text.created).toUTCString());
    for (const name of ['content-disposition', 'content-type', 'content-length', 'content-range', 'transfer-encoding']) {
      assert.equal(res.headers[name], undefined, name);
    }
  });

  test('If-None-Match wins over If-Modified-Since (RFC 9110 13.1.3): another tag → 200 even at Last-Modified', async () => {
    const res = await get(bin.id, { 'if-none-match': '"other"', 'if-modified-since': new Date(Date.parse(bin.created) + 86_400_000).toUTCString() });
    assert.equal(res.status, 200);
  });

  test('If-Modified-Since that is not an HTTP-date is ignored; obsolete forms are read', async () => {
    const later = new Date(Date.parse(bin.created) + 86_400_000);
    for (const junk of [later.toISOString(), String(later.getTime()), '1', `${later.toUTCString()} extra`]) {
      assert.equal((await get(bin.id, { 'if-modified-since': junk })).status, 200, junk);
    }
    const days = ['Sunday', 'Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday', 'Saturday'];
    const months = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
    const hms = later.toISOString().slice(11, 19);
    const asctime = `${days[later.getUTCDay()]?.slice(0, 3)} ${months[later.getUTCMonth()]} ${String(later.getUTCDate()).padStart(2, ' ')} ${hms} ${later.getUTCFullYear()}`;
    assert.equal((await get(bin.id, { 'if-modified-since': asctime })).status, 304, asctime);
  });

  test('If-Match: the strong ETag or * → 200; another tag, or the weak form of ours → 412 PRECONDITION_FAILED', async () => {
    for (const value of [`"${bin.sha256}"`, `"nope", "${bin.sha256}"`, '*']) {
      const res = await get(bin.id, { 'if-match': value });
      assert.equal(res.status, 200, value);
      assert.ok(res.body.equals(data));
    }
    for (const value of ['"nope"', `W/"${bin.sha256}"`, bin.sha256]) {
      const res = await get(bin.id, { 'if-match': value });
      assertError(res, 412, 'PRECONDITION_FAILED');
    }
    // A precondition that holds leaves the Range alone.
    const ranged = await get(bin.id, { 'if-match': `"${bin.sha256}"`, range: 'bytes=0-9' });
    assert.equal(ranged.status, 206);
    // 412 comes before 304 (RFC 9110 13.2.2).
    assertError(await get(bin.id, { 'if-match': '"nope"', 'if-none-match': `"${bin.sha256}"` }), 412, 'PRECONDITION_FAILED');
  });

  test('If-Unmodified-Since: at Last-Modified → 200, a second earlier → 412; ignored beside If-Match or when not a date', async () => {
    const at = Date.parse(bin.created);
    assert.equal((await get(bin.id, { 'if-unmodified-since': new Date(at).toUTCString() })).status, 200);
    assertError(await get(bin.id, { 'if-unmodified-since': new Date(at - 1000).toUTCString() }), 412, 'PRECONDITION_FAILED');
    assert.equal((await get(bin.id, { 'if-unmodified-since': 'yesterday' })).status, 200);
    assert.equal((await get(bin.id, { 'if-unmodified-since': new Date(at - 1000).toUTCString(), 'if-match': '*' })).status, 200);
  });

  test('HEAD answers conditionals as GET does, without a body', async () => {
    const notModified = await get(bin.id, { 'if-none-match': `"${bin.sha256}"` }, 'HEAD');
    assert.equal(notModified.status, 304);
    const failed = await get(bin.id, { 'if-match': '"nope"' }, 'HEAD');
    assert.equal(failed.status, 412);
    assert.equal(failed.body.length, 0);
  });

  test('DELETE with If-Match/If-None-Match/If-Unmodified-Since that fail → 412 and the file stays; one that holds → 204', async () => {
    const record = await storeRaw(Buffer.from('guarded'), 'text/plain', 'guarded.txt');
    const cases: Array<Record<string, string>> = [
      { 'if-match': '"nope"' },
      { 'if-match': `W/"${record.sha256}"` },
      { 'if-none-match': '*' },
      { 'if-none-match': `W/"${record.sha256}"` },
      { 'if-unmodified-since': new Date(Date.parse(record.created) - 60_000).toUTCString() },
    ];
    for (const headers of cases) {
      const res = await rawRequest(server.url, `/files/${record.id}`, { method: 'DELETE', headers });
      assertError(res, 412, 'PRECONDITION_FAILED');
      assert.equal((await get(record.id)).status, 200, `still there after ${JSON.stringify(headers)}`);
    }
    const del = await rawRequest(server.url, `/files/${record.id}`, { method: 'DELETE', headers: { 'if-match': `"${record.sha256}"` } });
    assert.equal(del.status, 204);
    assertError(await rawRequest(server.url, `/files/${record.id}`, { method: 'DELETE', headers: { 'if-match': '*' } }), 404, 'NOT_FOUND');
  });
});

describe('HEAD /files/:id', () => {
  const compared = ['content-type', 'content-length', 'etag', 'last-modified', 'content-disposition', 'accept-ranges', 'x-content-type-options', 'content-range'];

  test('same headers as GET, and not one body byte on the wire', async () => {
    for (const [record, headers] of [
      [text, {}],
      [bin, { range: 'bytes=0-9' }],
    ] as const) {
      const g = await get(record.id, headers);
      const h = await get(record.id, headers, 'HEAD');
      assert.equal(h.status, g.status);
      for (const name of compared) assert.equal(h.headers[name], g.headers[name], name);
      assert.equal(h.body.length, 0);
    }
    const wire = await rawExchange(server.url, `HEAD /files/${bin.id} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n`);
    const answer = wire.toString('latin1');
    assert.match(answer, /^HTTP\/1\.1 200 /);
    assert.match(answer, /\r\ncontent-length: 1000\r\n/i);
    assert.ok(answer.endsWith('\r\n\r\n'), 'nothing after the header block');
  });

  test('HEAD of an unknown id → 404', async () => {
    const res = await get('A'.repeat(22), {}, 'HEAD');
    assert.equal(res.status, 404);
  });
});

describe('DELETE /files/:id and GET /files', () => {
  test('GET /files lists every record, oldest first, with the full record shape', async () => {
    const list = await listFiles();
    for (const r of list) assert.deepEqual(Object.keys(r).sort(), ['contentType', 'created', 'field', 'filename', 'id', 'sha256', 'size']);
    const ids = list.map((r) => r.id);
    for (const r of [bin, bigFile, text, html, empty]) assert.ok(ids.includes(r.id), `${r.id} listed`);
    // bigFile was committed after 3 MiB more were received than bin: certainly a later millisecond.
    assert.ok(ids.indexOf(bin.id) < ids.indexOf(bigFile.id));
    const created = list.map((r) => Date.parse(r.created));
    assert.deepEqual(created, [...created].sort((a, b) => a - b));
    assert.deepEqual(list.find((r) => r.id === bin.id), {
      id: bin.id,
      field: null,
      filename: 'data.bin',
      contentType: 'application/octet-stream',
      size: 1000,
      sha256: sha256(data),
      created: bin.created,
    });
  });

  test('DELETE → 204, then GET and HEAD are 404, the file and its sidecar are gone, it is no longer listed', async () => {
    const record = await storeRaw(Buffer.from('short-lived'), 'text/plain', 'bye.txt');
    await access(join(server.dataDir, record.id));
    const del = await rawRequest(server.url, `/files/${record.id}`, { method: 'DELETE' });
    assert.equal(del.status, 204);
    assert.equal(del.body.length, 0);
    assertError(await get(record.id), 404, 'NOT_FOUND');
    assert.equal((await get(record.id, {}, 'HEAD')).status, 404);
    const names = await server.files();
    assert.ok(!names.some((n) => n.includes(record.id)), `DATA_DIR still has ${JSON.stringify(names.filter((n) => n.includes(record.id)))}`);
    assert.ok(!(await listFiles()).some((r) => r.id === record.id));
    assertError(await rawRequest(server.url, `/files/${record.id}`, { method: 'DELETE' }), 404, 'NOT_FOUND');
    // Other files are untouched.
    assert.ok((await readFile(join(server.dataDir, bin.id))).equals(data));
  });
});

describe('unknown and malformed ids are 404 JSON, never a path', () => {
  const targets = [
    ['an unknown well-formed id', () => `/files/${'A'.repeat(22)}`],
    ['..%2F..%2Fetc', () => '/files/..%2F..%2Fetc'],
    ['..%2F..%2Fetc%2Fpasswd', () => '/files/..%2F..%2Fetc%2Fpasswd'],
    ['23 characters', () => `/files/${'A'.repeat(23)}`],
    ['21 characters', () => `/files/${'A'.repeat(21)}`],
    ['%00', () => '/files/%00'],
    ['a real id followed by %00', () => `/files/${bin.id}%00`],
    ['a real id followed by a slash', () => `/files/${bin.id}/`],
    ["a real id's sidecar (<id>.json)", () => `/files/${bin.id}.json`],
    ['a real id percent-encoded (%41 for A) when it is not that id', () => `/files/%41${'A'.repeat(21)}`],
    ['bad percent-encoding', () => '/files/%zz'],
    ['an absolute path after /files/', () => '/files//etc/passwd'],
    ['backslash traversal', () => '/files/..%5C..%5Cetc%5Cpasswd'],
    ['a dot-dot path sent verbatim', () => '/files/../../etc/passwd'],
  ] as const;
  for (const [what, target] of targets) {
    test(`${what} → 404`, async () => {
      for (const method of ['GET', 'DELETE']) {
        const res = await rawRequest(server.url, target(), { method });
        assertError(res, 404, 'NOT_FOUND');
      }
    });
  }

  test('after all of it, every stored file is still there and the server serves', async () => {
    for (const [record, bytes] of [
      [bin, data],
      [bigFile, big],
    ] as const) {
      assert.ok((await readFile(join(server.dataDir, record.id))).equals(bytes));
    }
    await assertHealthy(server.url);
  });
});
