/**
 * tus 1.0.0 end to end, step by step with curl against the real server and the real local store:
 * discovery, creation (with upload, deferred length, empty), offset retrieval, append, the rules
 * peers get wrong (409 changes nothing, 412 + Tus-Version, 415, 413 + Tus-Max-Size, 460 discards
 * the body, HEAD always with Upload-Offset and no-store, 404 without Upload-Offset, malformed
 * metadata 400), X-HTTP-Method-Override, termination, concatenation, expiry, metadata in the
 * stored file's record, AUTH_TOKEN, CORS and the metrics. Every stored file is checked byte for byte.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { curl, scratchFile, type CurlResult } from './helpers/curl.js';
import { poll, rawRequest, seededBytes, sha256 } from './helpers/http.js';
import { startServer, type TestServer } from './helpers/server.js';

const TUS = ['-H', 'Tus-Resumable: 1.0.0'];
const OCTETS = ['-H', 'Content-Type: application/offset+octet-stream'];
const b64 = (s: string): string => Buffer.from(s, 'utf8').toString('base64');
const MAX = 8 * 1024 * 1024;

let scratch = '';
before(async () => {
  scratch = await mkdtemp(join(tmpdir(), 'sluice-tus-'));
});
after(() => rm(scratch, { recursive: true, force: true }));

const file = (name: string, bytes: Buffer): Promise<string> => scratchFile(scratch, name, bytes);

function errorCodeOf(res: CurlResult): string {
  return (JSON.parse(res.body.toString('utf8')) as { error: { code: string } }).error.code;
}

async function create(server: TestServer, headers: string[]): Promise<string> {
  const res = await curl([...TUS, ...headers, '-X', 'POST', `${server.url}/uploads`]);
  assert.equal(res.status, 201, res.body.toString());
  assert.match(res.headers.location ?? '', /^\/uploads\/[A-Za-z0-9_-]{22}$/);
  return `${server.url}${res.headers.location}`;
}

async function head(url: string): Promise<CurlResult> {
  return curl([...TUS, '-I', url]);
}

async function storedBytes(server: TestServer, uploadUrl: string): Promise<Buffer> {
  const id = uploadUrl.slice(uploadUrl.lastIndexOf('/') + 1);
  const res = await rawRequest(server.url, `/files/${id}`);
  assert.equal(res.status, 200, `GET /files/${id}: ${res.status} ${res.body.toString()}`);
  return res.body;
}

describe('tus 1.0.0 with curl', () => {
  let server: TestServer;
  before(async () => {
    server = await startServer({ MAX_FILE_BYTES: String(MAX), UPLOAD_EXPIRY_MS: '3600000' });
  });
  after(() => server.close());

  test('OPTIONS: 204, Tus-Version, every extension, Tus-Max-Size, Tus-Checksum-Algorithm; a Tus-Resumable of another version is ignored', async () => {
    const res = await curl(['-X', 'OPTIONS', '-H', 'Tus-Resumable: 0.2.2', `${server.url}/uploads`]);
    assert.equal(res.status, 204);
    assert.equal(res.headers['tus-version'], '1.0.0');
    assert.equal(res.headers['tus-resumable'], '1.0.0');
    assert.deepEqual(res.headers['tus-extension']?.split(','), ['creation', 'creation-with-upload', 'creation-defer-length', 'termination', 'checksum', 'expiration', 'concatenation']);
    assert.equal(res.headers['tus-max-size'], String(MAX));
    assert.deepEqual(res.headers['tus-checksum-algorithm']?.split(',').sort(), ['md5', 'sha1', 'sha256', 'sha512']);
  });

  test('creation, HEAD, PATCH in two parts, a file with the same id, byte for byte, metadata in its record', async () => {
    const data = seededBytes(1, 300_000);
    const url = await create(server, ['-H', 'Upload-Length: 300000', '-H', `Upload-Metadata: filename ${b64('weights v1.bin')},filetype ${b64('application/x-npy')},run ${b64('42')},flag`]);
    const id = url.slice(url.lastIndexOf('/') + 1);

    const h0 = await head(url);
    assert.equal(h0.status, 200);
    assert.equal(h0.headers['upload-offset'], '0');
    assert.equal(h0.headers['upload-length'], '300000');
    assert.equal(h0.headers['cache-control'], 'no-store');
    assert.equal(h0.headers['tus-resumable'], '1.0.0');
    assert.match(h0.headers['upload-expires'] ?? '', /^[A-Z][a-z]{2}, \d{2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} GMT$/);
    const echoed = new Map((h0.headers['upload-metadata'] ?? '').split(',').map((p) => [p.split(' ')[0], Buffer.from(p.split(' ')[1] ?? '', 'base64').toString()]));
    assert.deepEqual(Object.fromEntries(echoed), { filename: 'weights v1.bin', filetype: 'application/x-npy', run: '42', flag: '' });
    assert.equal((await rawRequest(server.url, `/files/${id}`)).status, 404, 'not a file before it is complete');

    const first = await curl([...TUS, ...OCTETS, '-X', 'PATCH', '-H', 'Upload-Offset: 0', '--data-binary', `@${await file('p1', data.subarray(0, 100_000))}`, url]);
    assert.equal(first.status, 204);
    assert.equal(first.headers['upload-offset'], '100000');
    assert.ok(first.headers['upload-expires'], 'PATCH answers carry Upload-Expires while the upload may expire');

    const second = await curl([...TUS, ...OCTETS, '-X', 'PATCH', '-H', 'Upload-Offset: 100000', '--data-binary', `@${await file('p2', data.subarray(100_000))}`, url]);
    assert.equal(second.status, 204);
    assert.equal(second.headers['upload-offset'], '300000');

    assert.equal(sha256(await storedBytes(server, url)), sha256(data));
    const record = (JSON.parse((await rawRequest(server.url, '/files')).body.toString()) as { files: Array<Record<string, unknown>> }).files.find((f) => f.id === id);
    assert.ok(record !== undefined, 'GET /files lists it');
    assert.equal(record.filename, 'weights v1.bin');
    assert.equal(record.contentType, 'application/x-npy');
    assert.equal(record.size, 300_000);
    assert.equal(record.sha256, sha256(data));
    assert.deepEqual(record.metadata, { run: '42', flag: '' });

    const done = await head(url);
    assert.equal(done.status, 200);
    assert.equal(done.headers['upload-offset'], '300000');
    assert.equal(done.headers['upload-length'], '300000');
  });

  test('409: an Upload-Offset that is not the offset changes nothing and says the true one', async () => {
    const url = await create(server, ['-H', 'Upload-Length: 10']);
    await curl([...TUS, ...OCTETS, '-X', 'PATCH', '-H', 'Upload-Offset: 0', '--data-binary', 'abcd', url]);
    for (const wrong of ['0', '3', '5', '10']) {
      const res = await curl([...TUS, ...OCTETS, '-X', 'PATCH', '-H', `Upload-Offset: ${wrong}`, '--data-binary', 'XYZ', url]);
      assert.equal(res.status, 409, `offset ${wrong}`);
      assert.equal(errorCodeOf(res), 'OFFSET_MISMATCH');
      assert.equal(res.headers['upload-offset'], '4');
    }
    assert.equal((await head(url)).headers['upload-offset'], '4');
    const rest = await curl([...TUS, ...OCTETS, '-X', 'PATCH', '-H', 'Upload-Offset: 4', '--data-binary', 'efghij', url]);
    assert.equal(rest.headers['upload-offset'], '10');
    assert.equal((await storedBytes(server, url)).toString(), 'abcdefghij');
  });

  test('412 with Tus-Version on a version mismatch or none, and nothing processed', async () => {
    const url = await create(server, ['-H', 'Upload-Length: 3']);
    const wrong = await curl(['-H', 'Tus-Resumable: 0.2.2', ...OCTETS, '-X', 'PATCH', '-H', 'Upload-Offset: 0', '--data-binary', 'abc', url]);
    assert.equal(wrong.status, 412);
    assert.equal(wrong.headers['tus-version'], '1.0.0');
    assert.equal(errorCodeOf(wrong), 'TUS_VERSION_UNSUPPORTED');
    const none = await curl(['-X', 'POST', '-H', 'Upload-Length: 3', `${server.url}/uploads`]);
    assert.equal(none.status, 412);
    assert.equal(none.headers['tus-version'], '1.0.0');
    assert.equal((await head(url)).headers['upload-offset'], '0');
  });

  test('415 for a PATCH without application/offset+octet-stream', async () => {
    const url = await create(server, ['-H', 'Upload-Length: 3']);
    for (const type of [[], ['-H', 'Content-Type: application/octet-stream'], ['-H', 'Content-Type: application/partial-upload']]) {
      const res = await curl([...TUS, ...type, '-X', 'PATCH', '-H', 'Upload-Offset: 0', '--data-binary', 'abc', url]);
      assert.equal(res.status, 415, JSON.stringify(type));
      assert.equal(errorCodeOf(res), 'PATCH_MEDIA_TYPE_UNSUPPORTED');
    }
    assert.equal((await head(url)).headers['upload-offset'], '0');
  });

  test('checksum: a mismatch is 460 and its bytes are discarded; sha1, md5, sha256, sha512 that match are taken', async () => {
    const data = Buffer.from('0123456789abcdef');
    const url = await create(server, ['-H', `Upload-Length: ${data.length}`]);
    const bad = await curl([...TUS, ...OCTETS, '-X', 'PATCH', '-H', 'Upload-Offset: 0', '-H', `Upload-Checksum: sha1 ${createHash('sha1').update('other').digest('base64')}`, '--data-binary', '0123', url]);
    assert.equal(bad.status, 460);
    assert.equal(errorCodeOf(bad), 'CHECKSUM_MISMATCH');
    assert.equal((await head(url)).headers['upload-offset'], '0');
    let offset = 0;
    for (const algorithm of ['sha1', 'md5', 'sha256', 'sha512']) {
      const piece = data.subarray(offset, offset + 4);
      const digest = createHash(algorithm).update(piece).digest('base64');
      const res = await curl([...TUS, ...OCTETS, '-X', 'PATCH', '-H', `Upload-Offset: ${offset}`, '-H', `Upload-Checksum: ${algorithm} ${digest}`, '--data-binary', `@${await file(`c-${algorithm}`, piece)}`, url]);
      assert.equal(res.status, 204, `${algorithm}: ${res.body.toString()}`);
      offset += 4;
      assert.equal(res.headers['upload-offset'], String(offset));
    }
    assert.equal((await storedBytes(server, url)).toString(), data.toString());
    const unsupported = await curl([...TUS, ...OCTETS, '-X', 'PATCH', '-H', 'Upload-Offset: 0', '-H', `Upload-Checksum: crc32 ${b64('abcd')}`, '--data-binary', 'x', await create(server, ['-H', 'Upload-Length: 1'])]);
    assert.equal(unsupported.status, 400);
    assert.equal(errorCodeOf(unsupported), 'CHECKSUM_ALGORITHM_UNSUPPORTED');
  });

  test('413 with Tus-Max-Size for an Upload-Length over MAX_FILE_BYTES; 413 for a body past the length', async () => {
    const res = await curl([...TUS, '-X', 'POST', '-H', `Upload-Length: ${MAX + 1}`, `${server.url}/uploads`]);
    assert.equal(res.status, 413);
    assert.equal(res.headers['tus-max-size'], String(MAX));
    assert.equal(errorCodeOf(res), 'FILE_TOO_LARGE');
    const url = await create(server, ['-H', 'Upload-Length: 3']);
    const past = await curl([...TUS, ...OCTETS, '-X', 'PATCH', '-H', 'Upload-Offset: 0', '--data-binary', 'abcd', url]);
    assert.equal(past.status, 413);
    assert.equal(errorCodeOf(past), 'UPLOAD_LENGTH_EXCEEDED');
    assert.equal((await head(url)).headers['upload-offset'], '0');
  });

  test('malformed Upload-Metadata is 400 and creates nothing', async () => {
    for (const bad of ['filename not*base64', `a ${b64('1')},a ${b64('2')}`, `filename ${b64('x')},,x`]) {
      const res = await curl([...TUS, '-X', 'POST', '-H', 'Upload-Length: 1', '-H', `Upload-Metadata: ${bad}`, `${server.url}/uploads`]);
      assert.equal(res.status, 400, bad);
      assert.equal(errorCodeOf(res), 'UPLOAD_METADATA_MALFORMED');
      assert.equal(res.headers.location, undefined);
    }
  });

  test('HEAD of an unknown upload: 404 without Upload-Offset; never 5xx', async () => {
    for (const id of ['AAAAAAAAAAAAAAAAAAAAAA', '..%2F..%2Fetc', 'x']) {
      const res = await head(`${server.url}/uploads/${id}`);
      assert.equal(res.status, 404, id);
      assert.equal(res.headers['upload-offset'], undefined);
      assert.equal(res.headers['tus-resumable'], '1.0.0');
    }
  });

  test('X-HTTP-Method-Override: a POST that is a PATCH, a POST that is a DELETE', async () => {
    const url = await create(server, ['-H', 'Upload-Length: 5']);
    const patch = await curl([...TUS, ...OCTETS, '-X', 'POST', '-H', 'X-HTTP-Method-Override: PATCH', '-H', 'Upload-Offset: 0', '--data-binary', 'hello', url]);
    assert.equal(patch.status, 204);
    assert.equal(patch.headers['upload-offset'], '5');
    assert.equal((await storedBytes(server, url)).toString(), 'hello');
    const other = await create(server, ['-H', 'Upload-Length: 5']);
    const del = await curl([...TUS, '-X', 'POST', '-H', 'X-HTTP-Method-Override: DELETE', other]);
    assert.equal(del.status, 204);
    assert.equal((await head(other)).status, 404);
  });

  test('creation-with-upload: the first bytes in the POST, Upload-Offset in the 201', async () => {
    const res = await curl([...TUS, ...OCTETS, '-X', 'POST', '-H', 'Upload-Length: 11', '--data-binary', 'hello', `${server.url}/uploads`]);
    assert.equal(res.status, 201);
    assert.equal(res.headers['upload-offset'], '5');
    const url = `${server.url}${res.headers.location}`;
    await curl([...TUS, ...OCTETS, '-X', 'PATCH', '-H', 'Upload-Offset: 5', '--data-binary', ' world', url]);
    assert.equal((await storedBytes(server, url)).toString(), 'hello world');
  });

  test('creation-defer-length: Upload-Defer-Length: 1 on HEAD until a PATCH says the length', async () => {
    const url = await create(server, ['-H', 'Upload-Defer-Length: 1']);
    const h = await head(url);
    assert.equal(h.headers['upload-defer-length'], '1');
    assert.equal(h.headers['upload-length'], undefined);
    await curl([...TUS, ...OCTETS, '-X', 'PATCH', '-H', 'Upload-Offset: 0', '--data-binary', 'abc', url]);
    const last = await curl([...TUS, ...OCTETS, '-X', 'PATCH', '-H', 'Upload-Offset: 3', '-H', 'Upload-Length: 6', '--data-binary', 'def', url]);
    assert.equal(last.status, 204);
    assert.equal(last.headers['upload-offset'], '6');
    assert.equal((await storedBytes(server, url)).toString(), 'abcdef');
  });

  test('Upload-Length: 0 is complete at once: an empty file', async () => {
    const url = await create(server, ['-H', 'Upload-Length: 0']);
    assert.equal((await storedBytes(server, url)).length, 0);
    const h = await head(url);
    assert.equal(h.headers['upload-offset'], '0');
    assert.equal(h.headers['upload-length'], '0');
  });

  test('termination: 204, then 404 for HEAD, PATCH and DELETE, and no byte left', async () => {
    const url = await create(server, ['-H', 'Upload-Length: 100']);
    await curl([...TUS, ...OCTETS, '-X', 'PATCH', '-H', 'Upload-Offset: 0', '--data-binary', 'partial bytes', url]);
    const before = await server.files();
    const del = await curl([...TUS, '-X', 'DELETE', url]);
    assert.equal(del.status, 204);
    assert.equal((await head(url)).status, 404);
    assert.equal((await curl([...TUS, ...OCTETS, '-X', 'PATCH', '-H', 'Upload-Offset: 13', '--data-binary', 'x', url])).status, 404);
    assert.equal((await curl([...TUS, '-X', 'DELETE', url])).status, 404);
    const id = url.slice(url.lastIndexOf('/') + 1);
    assert.ok(before.some((n) => n.includes(id)), 'the upload had bytes on disk');
    assert.deepEqual((await server.files()).filter((n) => n.includes(id)), [], 'nothing of it is left');
  });

  test('concatenation: two partial uploads and a final one; HEAD echoes Upload-Concat; PATCH on the final is 403', async () => {
    const a = await create(server, ['-H', 'Upload-Length: 5', '-H', 'Upload-Concat: partial']);
    const b = await create(server, ['-H', 'Upload-Length: 6', '-H', 'Upload-Concat: partial']);
    await curl([...TUS, ...OCTETS, '-X', 'PATCH', '-H', 'Upload-Offset: 0', '--data-binary', 'hello', a]);
    await curl([...TUS, ...OCTETS, '-X', 'PATCH', '-H', 'Upload-Offset: 0', '--data-binary', ' world', b]);
    assert.equal((await head(a)).headers['upload-concat'], 'partial');
    const aPath = new URL(a).pathname;
    const res = await curl([...TUS, '-X', 'POST', '-H', `Upload-Concat: final;${aPath} ${b}`, '-H', `Upload-Metadata: filename ${b64('hw.txt')}`, `${server.url}/uploads`]);
    assert.equal(res.status, 201, res.body.toString());
    const final = `${server.url}${res.headers.location}`;
    assert.equal((await storedBytes(server, final)).toString(), 'hello world');
    const h = await head(final);
    assert.equal(h.headers['upload-offset'], '11');
    assert.equal(h.headers['upload-length'], '11');
    assert.equal(h.headers['upload-concat'], `final;${aPath} ${new URL(b).pathname}`);
    const patch = await curl([...TUS, ...OCTETS, '-X', 'PATCH', '-H', 'Upload-Offset: 11', '--data-binary', 'x', final]);
    assert.equal(patch.status, 403);
    const unfinished = await create(server, ['-H', 'Upload-Length: 5', '-H', 'Upload-Concat: partial']);
    const refused = await curl([...TUS, '-X', 'POST', '-H', `Upload-Concat: final;${new URL(unfinished).pathname}`, `${server.url}/uploads`]);
    assert.equal(refused.status, 400);
  });

  test('metrics: uploads created, completed, terminated and bytes received', async () => {
    const text = (await rawRequest(server.url, '/metrics')).body.toString();
    const value = (name: string): number => Number(new RegExp(`^${name} (\\d+)$`, 'm').exec(text)?.[1] ?? NaN);
    assert.ok(value('sluice_resumable_uploads_created_total') >= 10);
    assert.ok(value('sluice_resumable_uploads_completed_total') >= 6);
    assert.ok(value('sluice_resumable_uploads_terminated_total') >= 2);
    assert.ok(value('sluice_resumable_received_bytes_total') >= 300_000);
    assert.match(text, /sluice_http_requests_total\{route="upload-resource",method="PATCH",status="204"\} \d+/);
  });
});

describe('tus: expiry, AUTH_TOKEN, CORS', () => {
  test('an incomplete upload expires UPLOAD_EXPIRY_MS after its last byte: HEAD 404, its bytes removed, counted', async () => {
    const server = await startServer({ UPLOAD_EXPIRY_MS: '300' }, undefined, { expirySweepMs: 100 });
    try {
      const url = await create(server, ['-H', 'Upload-Length: 10']);
      const res = await curl([...TUS, ...OCTETS, '-X', 'PATCH', '-H', 'Upload-Offset: 0', '--data-binary', 'abc', url]);
      const expires = Date.parse(res.headers['upload-expires'] ?? '');
      assert.ok(expires > Date.now() - 2_000 && expires < Date.now() + 2_000, `Upload-Expires ${res.headers['upload-expires']}`);
      await poll('the upload to expire', async () => (await head(url)).status === 404, 10_000);
      const id = url.slice(url.lastIndexOf('/') + 1);
      assert.deepEqual((await server.files()).filter((n) => n.includes(id)), []);
      const metrics = (await rawRequest(server.url, '/metrics')).body.toString();
      assert.match(metrics, /^sluice_resumable_uploads_expired_total 1$/m);
    } finally {
      await server.close();
    }
  });

  test('AUTH_TOKEN: every resumable route needs it (401 keeps Tus-Resumable)', async () => {
    const server = await startServer({ AUTH_TOKEN: 'secret-token' });
    try {
      const denied = await curl([...TUS, '-X', 'POST', '-H', 'Upload-Length: 1', `${server.url}/uploads`]);
      assert.equal(denied.status, 401);
      assert.equal(denied.headers['tus-resumable'], '1.0.0');
      const url = await create(server, ['-H', 'Authorization: Bearer secret-token', '-H', 'Upload-Length: 1']);
      assert.equal((await head(url)).status, 401);
      assert.equal((await curl([...TUS, '-H', 'Authorization: Bearer secret-token', '-I', url])).status, 200);
    } finally {
      await server.close();
    }
  });

  test('CORS_ORIGINS: preflight answered before auth, tus headers exposed on answers and errors; other origins get nothing', async () => {
    const server = await startServer({ CORS_ORIGINS: 'https://app.example.com', AUTH_TOKEN: 't' });
    try {
      const preflight = await curl([
        '-X', 'OPTIONS',
        '-H', 'Origin: https://app.example.com',
        '-H', 'Access-Control-Request-Method: PATCH',
        '-H', 'Access-Control-Request-Headers: authorization, tus-resumable, upload-offset, content-type',
        `${server.url}/uploads/abc`,
      ]);
      assert.equal(preflight.status, 204);
      assert.equal(preflight.headers['access-control-allow-origin'], 'https://app.example.com');
      assert.match(preflight.headers['access-control-allow-methods'] ?? '', /PATCH/);
      assert.equal(preflight.headers['access-control-allow-headers'], 'authorization, tus-resumable, upload-offset, content-type');
      const created = await curl([...TUS, '-H', 'Origin: https://app.example.com', '-H', 'Authorization: Bearer t', '-X', 'POST', '-H', 'Upload-Length: 1', `${server.url}/uploads`]);
      assert.equal(created.status, 201);
      assert.equal(created.headers['access-control-allow-origin'], 'https://app.example.com');
      const exposed = (created.headers['access-control-expose-headers'] ?? '').split(', ');
      for (const name of ['Location', 'Upload-Offset', 'Upload-Length', 'Upload-Expires', 'Upload-Complete', 'Upload-Limit', 'Tus-Resumable', 'Tus-Version', 'Tus-Max-Size']) {
        assert.ok(exposed.includes(name), `${name} exposed`);
      }
      const denied = await curl([...TUS, '-H', 'Origin: https://app.example.com', '-I', `${server.url}${created.headers.location}`]);
      assert.equal(denied.status, 401);
      assert.equal(denied.headers['access-control-allow-origin'], 'https://app.example.com', 'an error answer keeps its CORS headers');
      const stranger = await curl(['-H', 'Origin: https://evil.example', `${server.url}/healthz`]);
      assert.equal(stranger.headers['access-control-allow-origin'], undefined);
    } finally {
      await server.close();
    }
    const plain = await startServer();
    try {
      const res = await curl(['-H', 'Origin: https://app.example.com', `${plain.url}/healthz`]);
      assert.equal(res.headers['access-control-allow-origin'], undefined, 'CORS_ORIGINS unset: no CORS headers');
    } finally {
      await plain.close();
    }
  });
});
