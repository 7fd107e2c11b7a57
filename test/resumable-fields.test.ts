/**
 * The resumable room's parsers, table-driven, each case labelled with what it proves: the tus and
 * draft header fields (fields.ts), Upload-Metadata (metadata.ts), dialect detection (dialect.ts),
 * the request → operation mapping (operation.ts) and Upload-Limit rendering (render.ts).
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { IncomingMessage } from 'node:http';
import { claimedDialect } from '../resumable/dialect.js';
import { optionalChecksum, parseConcat, parseSfBoolean, parseSfNonNegativeInteger, parseTusInteger, uploadIdFromUrl } from '../resumable/fields.js';
import { fileMetadata, formatUploadMetadata, parseUploadMetadata } from '../resumable/metadata.js';
import { parseOperation, type Target } from '../resumable/operation.js';
import { uploadLimit, uploadExpires } from '../resumable/render.js';
import { loadConfig, type Config } from '../lib/config.js';
import type { UploadState } from '../storage/uploads.js';

/** Just enough of an IncomingMessage for the parsers: lower-case headers. */
function req(headers: Record<string, string>): IncomingMessage {
  const lower: Record<string, string> = {};
  for (const [k, v] of Object.entries(headers)) lower[k.toLowerCase()] = v;
  return { headers: lower } as unknown as IncomingMessage;
}

function config(env: Record<string, string> = {}): Config {
  const parsed = loadConfig([], { LOG_LEVEL: 'silent', ...env });
  if (parsed.help) throw new Error('unreachable');
  return parsed.config;
}

const b64 = (s: string): string => Buffer.from(s, 'utf8').toString('base64');

describe('header fields', () => {
  const integers: ReadonlyArray<{ what: string; text: string; tus: number | null; sf: number | null }> = [
    { what: 'zero', text: '0', tus: 0, sf: 0 },
    { what: 'a plain offset', text: '1048576', tus: 1048576, sf: 1048576 },
    { what: 'tus takes 16 digits (2^53 - 1)', text: '9007199254740991', tus: 9007199254740991, sf: null },
    { what: 'past 2^53 - 1 is refused, never rounded', text: '9007199254740993', tus: null, sf: null },
    { what: 'sf-integer: at most 15 digits (RFC 8941 3.3.1)', text: '999999999999999', tus: 999999999999999, sf: 999999999999999 },
    { what: 'negative is no offset', text: '-1', tus: null, sf: null },
    { what: 'a sign is not a digit', text: '+5', tus: null, sf: null },
    { what: 'a fraction is not an integer', text: '1.5', tus: null, sf: null },
    { what: 'two values joined by a repeated header', text: '5, 6', tus: null, sf: null },
    { what: 'sf parameters are ignored (RFC 8941 3.1.2), tus has none', text: '5;a=1', tus: null, sf: 5 },
    { what: 'empty', text: '', tus: null, sf: null },
    { what: 'hex is not decimal', text: '0x10', tus: null, sf: null },
  ];
  for (const c of integers) {
    test(`integers: ${c.what}`, () => {
      assert.equal(parseTusInteger(c.text), c.tus);
      assert.equal(parseSfNonNegativeInteger(c.text), c.sf);
    });
  }

  const booleans: ReadonlyArray<{ what: string; text: string; value: boolean | null }> = [
    { what: '?1 is true', text: '?1', value: true },
    { what: '?0 is false', text: '?0', value: false },
    { what: 'parameters are ignored', text: '?1;x', value: true },
    { what: 'a bare 1 is no sf-boolean', text: '1', value: null },
    { what: 'true is no sf-boolean', text: 'true', value: null },
    { what: '?2 is no sf-boolean', text: '?2', value: null },
  ];
  for (const c of booleans) test(`Upload-Complete: ${c.what}`, () => assert.equal(parseSfBoolean(c.text), c.value));

  test('Upload-Checksum: each supported algorithm with a digest of its size', () => {
    for (const [algorithm, size] of [['sha1', 20], ['md5', 16], ['sha256', 32], ['sha512', 64]] as const) {
      const digest = Buffer.alloc(size, 7);
      const parsed = optionalChecksum(req({ 'Upload-Checksum': `${algorithm} ${digest.toString('base64')}` }));
      assert.deepEqual(parsed, { algorithm, digest });
    }
    assert.equal(optionalChecksum(req({})), null);
  });

  const badChecksums: ReadonlyArray<{ what: string; text: string; code: string }> = [
    { what: 'an algorithm we do not support is 400 (protocol.md checksum)', text: `crc32 ${b64('abcd')}`, code: 'CHECKSUM_ALGORITHM_UNSUPPORTED' },
    { what: 'upper case is another name ("uppercase characters are excluded")', text: `SHA1 ${Buffer.alloc(20).toString('base64')}`, code: 'CHECKSUM_ALGORITHM_UNSUPPORTED' },
    { what: 'a digest of the wrong size', text: `sha1 ${Buffer.alloc(19).toString('base64')}`, code: 'UPLOAD_CHECKSUM_MALFORMED' },
    { what: 'no space between name and digest', text: 'sha1', code: 'UPLOAD_CHECKSUM_MALFORMED' },
    { what: 'not base64', text: 'sha1 !!!!', code: 'UPLOAD_CHECKSUM_MALFORMED' },
  ];
  for (const c of badChecksums) {
    test(`Upload-Checksum: ${c.what}`, () => assert.throws(() => optionalChecksum(req({ 'Upload-Checksum': c.text })), { code: c.code, status: 400 }));
  }

  test('Upload-Concat: partial, and final with relative and absolute URLs in order', () => {
    assert.deepEqual(parseConcat('partial'), { kind: 'partial' });
    assert.deepEqual(parseConcat('final;/uploads/a http://example.com/uploads/b?sig=x  /uploads/c%2Bd'), { kind: 'final', ids: ['a', 'b', 'c+d'] });
  });
  for (const text of ['final;', 'final', 'final;/files/a', 'final;/uploads/a/b', 'partial;x', 'Final;/uploads/a']) {
    test(`Upload-Concat: ${JSON.stringify(text)} is malformed`, () => assert.throws(() => parseConcat(text), { code: 'UPLOAD_CONCAT_MALFORMED' }));
  }
  test('upload URLs: only /uploads/<id> names an upload', () => {
    assert.equal(uploadIdFromUrl('/uploads/abc'), 'abc');
    assert.equal(uploadIdFromUrl('/uploads/'), null);
    assert.equal(uploadIdFromUrl('/uploads/%E0%A4%A'), null);
  });
});

describe('Upload-Metadata', () => {
  test('pairs decode in order; a key alone has an empty value; spaces around commas are tolerated', () => {
    const pairs = parseUploadMetadata(`filename ${b64('report 2026.pdf')},is_confidential, note ${b64('ünïcödé')}`);
    assert.deepEqual([...pairs], [['filename', 'report 2026.pdf'], ['is_confidential', ''], ['note', 'ünïcödé']]);
  });

  const malformed: ReadonlyArray<{ what: string; text: string }> = [
    { what: 'a repeated key ("All keys MUST be unique")', text: `a ${b64('1')},a ${b64('2')}` },
    { what: 'a trailing comma (an empty key)', text: `a ${b64('1')},` },
    { what: 'an empty pair between commas', text: `a ${b64('1')},,b ${b64('2')}` },
    { what: 'a value that is not base64', text: 'a not*base64' },
    { what: 'a value of impossible base64 length', text: 'a QUJDR' },
    { what: 'two spaces between key and value', text: `a  ${b64('1')}` },
    { what: 'a key with a control character', text: `a\u0001b ${b64('1')}` },
    { what: 'a key outside ASCII', text: `ключ ${b64('1')}` },
    { what: 'a value that is not UTF-8', text: `a ${Buffer.from([0xff, 0xfe]).toString('base64')}` },
    { what: 'more than 64 pairs', text: Array.from({ length: 65 }, (_, i) => `k${i}`).join(',') },
  ];
  for (const c of malformed) {
    test(`malformed: ${c.what} → 400 UPLOAD_METADATA_MALFORMED`, () => {
      assert.throws(() => parseUploadMetadata(c.text), { code: 'UPLOAD_METADATA_MALFORMED', status: 400 });
    });
  }

  test('filename, else name, is the name; filetype, else type, else contentType, the type; the rest is kept', () => {
    const a = fileMetadata(new Map([['filename', 'a.bin'], ['name', 'b.bin'], ['filetype', 'image/png'], ['x', '1']]));
    assert.deepEqual(a.meta, { field: null, filename: 'a.bin', contentType: 'image/png' });
    assert.deepEqual(a.metadata, { name: 'b.bin', x: '1' });
    const b = fileMetadata(new Map([['name', 'b.bin'], ['contentType', 'text/plain']]));
    assert.deepEqual(b.meta, { field: null, filename: 'b.bin', contentType: 'text/plain' });
    assert.deepEqual(b.metadata, {});
    const c = fileMetadata(new Map([['type', 'application/pdf']]), { filename: 'from-disposition.pdf', contentType: 'text/plain' });
    assert.deepEqual(c.meta, { field: null, filename: 'from-disposition.pdf', contentType: 'application/pdf' });
  });

  test('hostile values never become a path or header text: the name is its last segment, a type with CR LF is not a type', () => {
    const m = fileMetadata(new Map([['filename', '../../etc/passwd'], ['filetype', 'text/html\r\nSet-Cookie: a=b']]));
    assert.equal(m.meta.filename, 'passwd');
    assert.equal(m.meta.contentType, 'application/octet-stream');
    // The type that was refused stays data, under its key, and is sent back only as base64.
    assert.equal(m.metadata.filetype, 'text/html\r\nSet-Cookie: a=b');
    const echoed = formatUploadMetadata(m.meta, m.metadata) ?? '';
    assert.doesNotMatch(echoed, /[\r\n]/);
    assert.deepEqual(parseUploadMetadata(echoed).get('filetype'), 'text/html\r\nSet-Cookie: a=b');
  });

  test('HEAD echo: name and type as filename/filetype, other pairs as sent, empty values as bare keys', () => {
    const text = formatUploadMetadata({ field: null, filename: 'w.bin', contentType: 'application/x-npy' }, { run: '7', flag: '' });
    assert.deepEqual([...parseUploadMetadata(text ?? '')], [['filename', 'w.bin'], ['filetype', 'application/x-npy'], ['run', '7'], ['flag', '']]);
    assert.equal(formatUploadMetadata({ field: null, filename: null, contentType: 'application/octet-stream' }, {}), null);
  });
});

describe('dialect', () => {
  const cases: ReadonlyArray<{ what: string; headers: Record<string, string>; claim: unknown }> = [
    { what: 'Tus-Resumable: 1.0.0 is tus', headers: { 'Tus-Resumable': '1.0.0' }, claim: { kind: 'dialect', dialect: { kind: 'tus' } } },
    { what: 'another tus version is refused later (412)', headers: { 'Tus-Resumable': '0.2.2' }, claim: { kind: 'unknown-tus', value: '0.2.2' } },
    { what: 'interop 6 (draft -05, tus-js-client ietf-draft-05)', headers: { 'Upload-Draft-Interop-Version': '6' }, claim: { kind: 'dialect', dialect: { kind: 'ietf', interop: 6 } } },
    { what: 'interop 7 (drafts -06 to -08)', headers: { 'Upload-Draft-Interop-Version': '7' }, claim: { kind: 'dialect', dialect: { kind: 'ietf', interop: 7 } } },
    { what: 'interop 8 (drafts -09 on)', headers: { 'Upload-Draft-Interop-Version': '8' }, claim: { kind: 'dialect', dialect: { kind: 'ietf', interop: 8 } } },
    { what: 'interop 5 (draft -03) is not implemented', headers: { 'Upload-Draft-Interop-Version': '5' }, claim: { kind: 'unknown-interop', value: '5' } },
    { what: 'the draft wins when both are sent', headers: { 'Upload-Draft-Interop-Version': '8', 'Tus-Resumable': '1.0.0' }, claim: { kind: 'dialect', dialect: { kind: 'ietf', interop: 8 } } },
    { what: 'neither', headers: {}, claim: { kind: 'none' } },
  ];
  for (const c of cases) test(c.what, () => assert.deepEqual(claimedDialect(req(c.headers)), c.claim));
});

describe('request → operation', () => {
  const url = new URL('http://sluice.invalid/uploads');
  const collection: Target = { kind: 'collection' };
  const resource: Target = { kind: 'resource', id: 'abc' };
  const tus = { kind: 'tus' } as const;
  const draft = (interop: 6 | 7 | 8) => ({ kind: 'ietf', interop }) as const;

  test('tus creation: length, metadata, no body', () => {
    const op = parseOperation(req({ 'Upload-Length': '100', 'Upload-Metadata': `filename ${b64('a.bin')}` }), url, 'POST', tus, collection);
    assert.equal(op.kind, 'create');
    assert.ok(op.kind === 'create');
    assert.equal(op.length, 100);
    assert.equal(op.file.meta.filename, 'a.bin');
    assert.equal(op.body, false);
    assert.equal(op.completesOnLast, false);
  });
  test('tus creation-defer-length and creation-with-upload', () => {
    const op = parseOperation(req({ 'Upload-Defer-Length': '1', 'Content-Type': 'application/offset+octet-stream', 'Content-Length': '5' }), url, 'POST', tus, collection);
    assert.ok(op.kind === 'create');
    assert.equal(op.length, null);
    assert.equal(op.body, true);
  });
  test('tus partial and final uploads', () => {
    const partial = parseOperation(req({ 'Upload-Length': '5', 'Upload-Concat': 'partial' }), url, 'POST', tus, collection);
    assert.ok(partial.kind === 'create' && partial.partial);
    const final = parseOperation(req({ 'Upload-Concat': 'final;/uploads/a /uploads/b' }), url, 'POST', tus, collection);
    assert.ok(final.kind === 'concatenate');
    assert.deepEqual(final.parts, ['a', 'b']);
  });

  const refusals: ReadonlyArray<{ what: string; headers: Record<string, string>; method: string; target: Target; dialect: ReturnType<typeof draft> | typeof tus; code: string; status: number }> = [
    { what: 'tus creation without a length', headers: {}, method: 'POST', target: collection, dialect: tus, code: 'UPLOAD_LENGTH_INVALID', status: 400 },
    { what: 'tus creation with both length headers', headers: { 'Upload-Length': '1', 'Upload-Defer-Length': '1' }, method: 'POST', target: collection, dialect: tus, code: 'UPLOAD_LENGTH_INVALID', status: 400 },
    { what: 'Upload-Defer-Length other than 1', headers: { 'Upload-Defer-Length': '2' }, method: 'POST', target: collection, dialect: tus, code: 'UPLOAD_LENGTH_INVALID', status: 400 },
    { what: 'a negative Upload-Length', headers: { 'Upload-Length': '-1' }, method: 'POST', target: collection, dialect: tus, code: 'UPLOAD_LENGTH_INVALID', status: 400 },
    { what: 'a creation body of another type (415)', headers: { 'Upload-Length': '5', 'Content-Type': 'text/plain', 'Content-Length': '5' }, method: 'POST', target: collection, dialect: tus, code: 'PATCH_MEDIA_TYPE_UNSUPPORTED', status: 415 },
    { what: 'a final upload with a body (403)', headers: { 'Upload-Concat': 'final;/uploads/a', 'Content-Type': 'application/offset+octet-stream', 'Content-Length': '1' }, method: 'POST', target: collection, dialect: tus, code: 'FINAL_UPLOAD_IMMUTABLE', status: 403 },
    { what: 'a final upload with Upload-Length', headers: { 'Upload-Concat': 'final;/uploads/a', 'Upload-Length': '1' }, method: 'POST', target: collection, dialect: tus, code: 'UPLOAD_LENGTH_INVALID', status: 400 },
    { what: 'malformed metadata', headers: { 'Upload-Length': '1', 'Upload-Metadata': 'a b c' }, method: 'POST', target: collection, dialect: tus, code: 'UPLOAD_METADATA_MALFORMED', status: 400 },
    { what: 'a tus PATCH without Content-Type, even empty (415)', headers: { 'Upload-Offset': '0' }, method: 'PATCH', target: resource, dialect: tus, code: 'PATCH_MEDIA_TYPE_UNSUPPORTED', status: 415 },
    { what: 'a tus PATCH as application/octet-stream (415)', headers: { 'Upload-Offset': '0', 'Content-Type': 'application/octet-stream' }, method: 'PATCH', target: resource, dialect: tus, code: 'PATCH_MEDIA_TYPE_UNSUPPORTED', status: 415 },
    { what: 'a tus PATCH without Upload-Offset', headers: { 'Content-Type': 'application/offset+octet-stream' }, method: 'PATCH', target: resource, dialect: tus, code: 'UPLOAD_OFFSET_INVALID', status: 400 },
    { what: 'a tus PATCH with Upload-Offset: -1', headers: { 'Content-Type': 'application/offset+octet-stream', 'Upload-Offset': '-1' }, method: 'PATCH', target: resource, dialect: tus, code: 'UPLOAD_OFFSET_INVALID', status: 400 },
    { what: 'a draft PATCH as offset+octet-stream (415)', headers: { 'Upload-Offset': '0', 'Upload-Complete': '?0', 'Content-Type': 'application/offset+octet-stream', 'Content-Length': '1' }, method: 'PATCH', target: resource, dialect: draft(8), code: 'PATCH_MEDIA_TYPE_UNSUPPORTED', status: 415 },
    { what: 'a draft PATCH without Upload-Complete', headers: { 'Upload-Offset': '0', 'Content-Type': 'application/partial-upload' }, method: 'PATCH', target: resource, dialect: draft(8), code: 'UPLOAD_COMPLETE_INVALID', status: 400 },
    { what: 'a draft creation without Upload-Complete', headers: {}, method: 'POST', target: collection, dialect: draft(6), code: 'UPLOAD_COMPLETE_INVALID', status: 400 },
    { what: 'draft-05: a creation with Upload-Offset', headers: { 'Upload-Complete': '?1', 'Upload-Offset': '0' }, method: 'POST', target: collection, dialect: draft(6), code: 'UPLOAD_FIELD_NOT_ALLOWED', status: 400 },
    { what: 'draft-05: an offset retrieval with Upload-Offset', headers: { 'Upload-Offset': '0' }, method: 'HEAD', target: resource, dialect: draft(6), code: 'UPLOAD_FIELD_NOT_ALLOWED', status: 400 },
    { what: 'draft-05: a cancellation with Upload-Complete', headers: { 'Upload-Complete': '?1' }, method: 'DELETE', target: resource, dialect: draft(6), code: 'UPLOAD_FIELD_NOT_ALLOWED', status: 400 },
    {
      what: 'draft: Upload-Length and Upload-Complete: ?1 + Content-Length disagree (inconsistent length)',
      headers: { 'Upload-Complete': '?1', 'Upload-Length': '10', 'Content-Length': '9' },
      method: 'POST',
      target: collection,
      dialect: draft(8),
      code: 'UPLOAD_LENGTH_MISMATCH',
      status: 400,
    },
  ];
  for (const c of refusals) {
    test(`refused: ${c.what}`, () => {
      assert.throws(() => parseOperation(req(c.headers), url, c.method, c.dialect, c.target), { code: c.code, status: c.status });
    });
  }

  test('draft creation: Upload-Complete: ?1 + Content-Length is the length; the name from Content-Disposition, the type from Content-Type', () => {
    const op = parseOperation(
      req({ 'Upload-Complete': '?1', 'Content-Length': '42', 'Content-Type': 'image/png', 'Content-Disposition': 'inline; filename="cat.png"' }),
      url,
      'POST',
      draft(8),
      collection,
    );
    assert.ok(op.kind === 'create');
    assert.equal(op.length, 42);
    assert.equal(op.last, true);
    assert.equal(op.completesOnLast, true);
    assert.deepEqual(op.file.meta, { field: null, filename: 'cat.png', contentType: 'image/png' });
  });
  test('draft creation labelled application/partial-upload (tus-js-client) says nothing of the file type', () => {
    const op = parseOperation(req({ 'Upload-Complete': '?0', 'Upload-Length': '9', 'Content-Type': 'application/partial-upload', 'Content-Length': '3' }), url, 'POST', draft(6), collection);
    assert.ok(op.kind === 'create');
    assert.equal(op.length, 9);
    assert.equal(op.file.meta.contentType, 'application/octet-stream');
  });
  test('draft append: an empty PATCH with Upload-Complete: ?1 completes (no Content-Type needed)', () => {
    const op = parseOperation(req({ 'Upload-Offset': '10', 'Upload-Complete': '?1', 'Content-Length': '0' }), url, 'PATCH', draft(7), resource);
    assert.deepEqual(op, { kind: 'append', id: 'abc', offset: 10, length: 10, last: true, body: false, checksum: null });
  });
  test('OPTIONS is discovery, whatever else is sent', () => {
    assert.deepEqual(parseOperation(req({ 'Upload-Offset': 'junk' }), url, 'OPTIONS', tus, collection), { kind: 'options' });
  });
});

describe('Upload-Limit and Upload-Expires', () => {
  const upload = (expires: string | null, complete = false): UploadState => ({
    id: 'x',
    offset: 0,
    length: 10,
    meta: { field: null, filename: null, contentType: 'application/octet-stream' },
    metadata: {},
    partial: false,
    created: new Date().toISOString(),
    expires,
    complete,
    completesOnLast: false,
    parts: null,
  });
  test('OPTIONS: max-size from MAX_FILE_BYTES and the whole lifetime; interop 6 calls it expires, later max-age', () => {
    const c = config({ MAX_FILE_BYTES: '1GiB', UPLOAD_EXPIRY_MS: '3600000' });
    assert.equal(uploadLimit(c, null, 8), 'max-size=1073741824, max-age=3600');
    assert.equal(uploadLimit(c, null, 6), 'max-size=1073741824, expires=3600');
  });
  test('an upload: the seconds left; none once complete, and then min-size=0 rather than an empty value', () => {
    const c = config();
    const soon = new Date(Date.now() + 90_500).toISOString();
    assert.match(uploadLimit(c, upload(soon), 8), /^max-age=(89|90)$/);
    assert.equal(uploadLimit(c, upload(null, true), 8), 'min-size=0');
  });
  test('tus Upload-Expires is an RFC 9110 IMF-fixdate while incomplete', () => {
    assert.equal(uploadExpires(upload('2026-12-25T16:00:00.000Z')), 'Fri, 25 Dec 2026 16:00:00 GMT');
    assert.equal(uploadExpires(upload('2026-12-25T16:00:00.000Z', true)), null);
  });
});
