/** The rules for resuming an origin's body: which validator goes in If-Range, which answer may be spliced. */
import { strict as assert } from 'node:assert';
import { describe, test } from 'node:test';
import { checkResumeAnswer, ifRangeValidator, parseContentRange, resumePointOf, UpstreamChangedError, type ResumePoint } from '../net/resume-point.js';
import { retryDelayMs } from '../net/resuming-body.js';

const DATE = 'Wed, 02 Jul 2025 00:00:00 GMT';
const EARLIER = 'Tue, 01 Jul 2025 23:59:59 GMT';

describe('ifRangeValidator (RFC 9110 13.1.4, 8.8.2.2)', () => {
  const cases: { what: string; headers: Record<string, string>; validator: string | null }[] = [
    { what: 'a strong ETag', headers: { etag: '"abc"', 'last-modified': EARLIER, date: DATE }, validator: '"abc"' },
    { what: 'an empty strong ETag', headers: { etag: '""' }, validator: '""' },
    { what: 'a weak ETag: never, and no date either (the client has an entity tag)', headers: { etag: 'W/"abc"', 'last-modified': EARLIER, date: DATE }, validator: null },
    { what: 'a malformed ETag (unquoted)', headers: { etag: 'abc', 'last-modified': EARLIER, date: DATE }, validator: null },
    { what: 'an ETag with a space', headers: { etag: '"a b"' }, validator: null },
    { what: 'no ETag, Last-Modified one second before Date', headers: { 'last-modified': EARLIER, date: DATE }, validator: EARLIER },
    { what: 'no ETag, Last-Modified equal to Date (may change again within that second)', headers: { 'last-modified': DATE, date: DATE }, validator: null },
    { what: 'no ETag, Last-Modified without a Date', headers: { 'last-modified': EARLIER }, validator: null },
    { what: 'no ETag, a Last-Modified that is no HTTP-date', headers: { 'last-modified': '2025-07-01', date: DATE }, validator: null },
    { what: 'nothing', headers: {}, validator: null },
  ];
  for (const c of cases) {
    test(c.what, () => assert.equal(ifRangeValidator(c.headers), c.validator));
  }
});

describe('parseContentRange (RFC 9110 14.4)', () => {
  const cases: [string, ReturnType<typeof parseContentRange>][] = [
    ['bytes 0-99/100', { first: 0, last: 99, complete: 100 }],
    ['BYTES 5-9/*', { first: 5, last: 9, complete: null }],
    ['bytes 9-5/100', null],
    ['bytes 0-100/100', null],
    ['bytes */100', null],
    ['items 0-1/2', null],
    ['bytes 0-1/2, 4-5/6', null],
  ];
  for (const [text, want] of cases) test(text, () => assert.deepEqual(parseContentRange(text), want));
});

describe('resumePointOf and checkResumeAnswer', () => {
  const url = new URL('http://origin.example/file');
  const base = { etag: '"v1"', 'accept-ranges': 'bytes', 'content-length': '1000', date: DATE };

  test('a 200 with ranges, a strong ETag and a length resumes over the whole body', () => {
    const r = resumePointOf(url, 200, base);
    assert.deepEqual(r?.span, { start: 0, end: 999 });
    assert.equal(r?.point.total, 1000);
    assert.equal(r?.point.validator, '"v1"');
  });
  test('no resume point without Accept-Ranges: bytes, without a length, or chunked', () => {
    assert.equal(resumePointOf(url, 200, { ...base, 'accept-ranges': 'none' }), null);
    assert.equal(resumePointOf(url, 200, { etag: '"v1"', 'accept-ranges': 'bytes' }), null);
    assert.equal(resumePointOf(url, 200, { ...base, 'transfer-encoding': 'chunked' }), null);
  });
  test("a 206 (the client's Range) resumes within its range", () => {
    const r = resumePointOf(url, 206, { etag: '"v1"', 'content-range': 'bytes 10-19/1000' });
    assert.deepEqual(r?.span, { start: 10, end: 19 });
    assert.equal(r?.point.total, 1000);
  });

  const point: ResumePoint = { url, validator: '"v1"', etag: '"v1"', lastModified: null, total: 1000, reprDigest: null };
  const span = { start: 400, end: 999 };
  const good = { 'content-range': 'bytes 400-999/1000', etag: '"v1"' };
  test('the right 206 passes', () => assert.doesNotThrow(() => checkResumeAnswer(point, span, 206, good)));
  const changed: [string, number, Record<string, string>][] = [
    ['a 200, even with the same ETag', 200, { etag: '"v1"' }],
    ['a 206 starting elsewhere', 206, { ...good, 'content-range': 'bytes 401-999/1000' }],
    ['a 206 ending elsewhere', 206, { ...good, 'content-range': 'bytes 400-998/1000' }],
    ['a 206 with another total', 206, { ...good, 'content-range': 'bytes 400-999/1001' }],
    ['a 206 with an unknown total', 206, { ...good, 'content-range': 'bytes 400-999/*' }],
    ['a 206 without Content-Range (multipart/byteranges)', 206, { etag: '"v1"', 'content-type': 'multipart/byteranges; boundary=x' }],
    ['a 206 with another ETag', 206, { ...good, etag: '"v2"' }],
    ['a 206 with another Repr-Digest', 206, { ...good, 'repr-digest': `sha-256=:${Buffer.alloc(32, 1).toString('base64')}:` }],
  ];
  for (const [what, status, headers] of changed) {
    test(`${what} is a changed resource`, () => {
      const withDigest = { ...point, reprDigest: Buffer.alloc(32, 2).toString('hex') };
      assert.throws(() => checkResumeAnswer(withDigest, span, status, headers), UpstreamChangedError);
    });
  }
});

test('backoff: about 0.5 s, doubling, at most 8 s', () => {
  assert.deepEqual([1, 2, 3, 4, 5, 6, 7].map(retryDelayMs), [500, 1000, 2000, 4000, 8000, 8000, 8000]);
});
