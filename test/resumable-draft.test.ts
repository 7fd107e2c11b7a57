/**
 * draft-ietf-httpbis-resumable-upload end to end with curl (which prints interim responses) and
 * raw node:http: creation answered first with `104 Upload Resumption Supported` (Location,
 * Upload-Limit, the interop version) before the body, offset retrieval, append with
 * application/partial-upload, 409 with problem details, 415, completion only with
 * `Upload-Complete: ?1`, cancellation, OPTIONS with Upload-Limit, interop 6 against 8, progress 104s (8 and 10), and
 * `POST /upload` upgraded to a resumable upload (URLSession's way) with today's 201 answer.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { curl, scratchFile, jsonBody as json, type CurlResult } from './helpers/curl.js';
import { appendRest, createThenCut, offsetAfterCut } from './helpers/draft-resume.js';
import { rawRequest, seededBytes, sha256 } from './helpers/http.js';
import { startServer, type TestServer } from './helpers/server.js';
import { LocalStore } from '../storage/local-store.js';

const V8 = ['-H', 'Upload-Draft-Interop-Version: 8'];
const V6 = ['-H', 'Upload-Draft-Interop-Version: 6'];
const PARTIAL = ['-H', 'Content-Type: application/partial-upload'];

let scratch = '';
before(async () => {
  scratch = await mkdtemp(join(tmpdir(), 'sluice-draft-'));
});
after(() => rm(scratch, { recursive: true, force: true }));

const file = (name: string, bytes: Buffer): Promise<string> => scratchFile(scratch, name, bytes);

async function fileBytes(server: TestServer, id: string): Promise<Buffer> {
  const res = await rawRequest(server.url, `/files/${id}`);
  assert.equal(res.status, 200, `GET /files/${id} → ${res.status}`);
  return res.body;
}

describe('draft-ietf-httpbis-resumable-upload with curl', () => {
  let server: TestServer;
  before(async () => {
    server = await startServer({ MAX_FILE_BYTES: '64MiB', UPLOAD_EXPIRY_MS: '3600000' });
  });
  after(() => server.close());

  test('OPTIONS: Upload-Limit (max-size, max-age) and Accept-Patch: application/partial-upload', async () => {
    const res = await curl([...V8, '-X', 'OPTIONS', `${server.url}/uploads`]);
    assert.equal(res.status, 204);
    assert.equal(res.headers['upload-limit'], `max-size=${64 * 1024 * 1024}, max-age=3600`);
    assert.equal(res.headers['accept-patch'], 'application/partial-upload');
    const v6 = await curl([...V6, '-X', 'OPTIONS', `${server.url}/uploads`]);
    assert.equal(v6.headers['upload-limit'], `max-size=${64 * 1024 * 1024}, expires=3600`, 'interop 6 (draft -05) names the lifetime expires');
  });

  test('creation in one go: 104 with Location, Upload-Limit and the interop version before the final 201 with the stored file', async () => {
    const data = seededBytes(7, 200_000);
    const res = await curl(['-v', ...V8, '-X', 'POST', '-H', 'Upload-Complete: ?1', '-H', 'Content-Type: image/png', '-H', 'Content-Disposition: inline; filename="cat.png"', '--data-binary', `@${await file('one', data)}`, `${server.url}/uploads`]);
    assert.equal(res.status, 201);
    const interim = res.interim.find((r) => r.status === 104);
    assert.ok(interim !== undefined, `a 104 among ${JSON.stringify(res.interim)}; curl said:\n${res.stderr}`);
    assert.match(res.stderr, /< HTTP\/1\.1 104 Upload Resumption Supported/);
    assert.equal(interim.headers['upload-draft-interop-version'], '8');
    assert.match(interim.headers.location ?? '', /^\/uploads\/[A-Za-z0-9_-]{22}$/);
    assert.match(interim.headers['upload-limit'] ?? '', /max-size=67108864/);
    assert.equal(res.headers['upload-complete'], '?1');
    const body = json(res) as { files: Array<{ id: string; filename: string; contentType: string; size: number; sha256: string }> };
    const stored = body.files[0];
    assert.ok(stored !== undefined);
    assert.equal(`/uploads/${stored.id}`, interim.headers.location, 'the file has the upload id');
    assert.deepEqual({ filename: stored.filename, contentType: stored.contentType, size: stored.size, sha256: stored.sha256 }, { filename: 'cat.png', contentType: 'image/png', size: 200_000, sha256: sha256(data) });
    assert.equal(sha256(await fileBytes(server, stored.id)), sha256(data));
  });

  test('in parts: 201 ?0 with Location; HEAD 204; 409 problem details; 415; PATCH ?1 completes with 201 and the file; appending again is 400 completed-upload', async () => {
    const data = seededBytes(8, 90_000);
    const created = await curl([...V8, '-X', 'POST', '-H', 'Upload-Complete: ?0', '-H', 'Upload-Length: 90000', '--data-binary', `@${await file('a', data.subarray(0, 30_000))}`, `${server.url}/uploads`]);
    assert.equal(created.status, 201);
    assert.equal(created.headers['upload-complete'], '?0');
    assert.equal(created.headers['upload-offset'], '30000');
    assert.match(created.headers['upload-limit'] ?? '', /max-age=\d+/);
    const url = `${server.url}${created.headers.location}`;
    const id = url.slice(url.lastIndexOf('/') + 1);

    const h = await curl([...V8, '-I', url]);
    assert.equal(h.status, 204);
    assert.equal(h.headers['upload-offset'], '30000');
    assert.equal(h.headers['upload-complete'], '?0');
    assert.equal(h.headers['upload-length'], '90000');
    assert.equal(h.headers['cache-control'], 'no-store');
    assert.match(h.headers['upload-limit'] ?? '', /max-age=\d+/);
    assert.equal((await rawRequest(server.url, `/files/${id}`)).status, 404);

    const conflict = await curl([...V8, ...PARTIAL, '-X', 'PATCH', '-H', 'Upload-Offset: 12', '-H', 'Upload-Complete: ?0', '--data-binary', 'xyz', url]);
    assert.equal(conflict.status, 409);
    assert.equal(conflict.headers['content-type'], 'application/problem+json');
    assert.equal(conflict.headers['upload-offset'], '30000');
    assert.equal(conflict.headers['upload-complete'], '?0');
    const problem = json(conflict);
    assert.equal(problem.type, 'https://iana.org/assignments/http-problem-types#mismatching-upload-offset');
    assert.equal(problem['expected-offset'], 30000);
    assert.equal(problem['provided-offset'], 12);
    assert.equal((problem.error as { code: string }).code, 'OFFSET_MISMATCH');

    const wrongType = await curl([...V8, '-H', 'Content-Type: application/offset+octet-stream', '-X', 'PATCH', '-H', 'Upload-Offset: 30000', '-H', 'Upload-Complete: ?0', '--data-binary', 'xyz', url]);
    assert.equal(wrongType.status, 415);

    const middle = await curl([...V8, ...PARTIAL, '-X', 'PATCH', '-H', 'Upload-Offset: 30000', '-H', 'Upload-Complete: ?0', '--data-binary', `@${await file('b', data.subarray(30_000, 60_000))}`, url]);
    assert.equal(middle.status, 204);
    assert.equal(middle.headers['upload-complete'], '?0');
    assert.equal(middle.headers['upload-offset'], '60000');

    const last = await curl([...V8, ...PARTIAL, '-X', 'PATCH', '-H', 'Upload-Offset: 60000', '-H', 'Upload-Complete: ?1', '--data-binary', `@${await file('c', data.subarray(60_000))}`, url]);
    assert.equal(last.status, 201);
    assert.equal(last.headers['upload-complete'], '?1');
    assert.equal((json(last) as { files: Array<{ sha256: string }> }).files[0]?.sha256, sha256(data));
    assert.equal(sha256(await fileBytes(server, id)), sha256(data));

    const done = await curl([...V8, '-I', url]);
    assert.equal(done.headers['upload-complete'], '?1');
    assert.equal(done.headers['upload-offset'], '90000');
    const again = await curl([...V8, ...PARTIAL, '-X', 'PATCH', '-H', 'Upload-Offset: 90000', '-H', 'Upload-Complete: ?1', '--data-binary', 'x', url]);
    assert.equal(again.status, 400);
    assert.equal(json(again).type, 'https://iana.org/assignments/http-problem-types#completed-upload');
  });

  test('reaching the length with Upload-Complete: ?0 does not complete; an empty PATCH with ?1 does', async () => {
    const created = await curl([...V8, '-X', 'POST', '-H', 'Upload-Complete: ?0', '-H', 'Upload-Length: 5', '--data-binary', 'hello', `${server.url}/uploads`]);
    const url = `${server.url}${created.headers.location}`;
    const id = url.slice(url.lastIndexOf('/') + 1);
    assert.equal(created.headers['upload-offset'], '5');
    assert.equal(created.headers['upload-complete'], '?0');
    assert.equal((await rawRequest(server.url, `/files/${id}`)).status, 404, 'not complete: no file yet');
    const finish = await curl([...V8, '-X', 'PATCH', '-H', 'Upload-Offset: 5', '-H', 'Upload-Complete: ?1', '-H', 'Content-Length: 0', url]);
    assert.equal(finish.status, 201, finish.body.toString());
    assert.equal((await fileBytes(server, id)).toString(), 'hello');
  });

  test('interop 6 (draft -05): an append that does not complete is 201 with Upload-Complete: ?0 and Upload-Offset', async () => {
    const created = await curl([...V6, '-X', 'POST', '-H', 'Upload-Complete: ?0', '-H', 'Upload-Length: 6', `${server.url}/uploads`]);
    assert.equal(created.status, 201);
    const url = `${server.url}${created.headers.location}`;
    const part = await curl([...V6, ...PARTIAL, '-X', 'PATCH', '-H', 'Upload-Offset: 0', '-H', 'Upload-Complete: ?0', '--data-binary', 'abc', url]);
    assert.equal(part.status, 201);
    assert.equal(part.headers['upload-complete'], '?0');
    assert.equal(part.headers['upload-offset'], '3');
    const offsetWithFields = await curl([...V6, '-I', '-H', 'Upload-Offset: 3', url]);
    assert.equal(offsetWithFields.status, 400, 'draft-05: an offset retrieval must not carry Upload-Offset');
    const rest = await curl([...V6, ...PARTIAL, '-X', 'PATCH', '-H', 'Upload-Offset: 3', '-H', 'Upload-Complete: ?1', '--data-binary', 'def', url]);
    assert.equal(rest.status, 201);
    assert.equal(rest.headers['upload-complete'], '?1');
  });

  test('cancellation: 204, then 404', async () => {
    const created = await curl([...V8, '-X', 'POST', '-H', 'Upload-Complete: ?0', '--data-binary', 'some', `${server.url}/uploads`]);
    const url = `${server.url}${created.headers.location}`;
    assert.equal((await curl([...V8, '-X', 'DELETE', url])).status, 204);
    assert.equal((await curl([...V8, '-I', url])).status, 404);
  });

  test('an interop version not implemented here: 400 on /uploads; POST /upload stays an ordinary upload without 104', async () => {
    const refused = await curl(['-H', 'Upload-Draft-Interop-Version: 5', '-X', 'POST', '-H', 'Upload-Complete: ?1', '--data-binary', 'x', `${server.url}/uploads`]);
    assert.equal(refused.status, 400);
    assert.equal((json(refused).error as { code: string }).code, 'INTEROP_VERSION_UNSUPPORTED');
    const plain = await curl(['-H', 'Upload-Draft-Interop-Version: 5', '-H', 'Upload-Complete: ?1', '--data-binary', 'abc', `${server.url}/upload`]);
    assert.equal(plain.status, 201);
    assert.equal(plain.interim.filter((r) => r.status === 104).length, 0);
  });
});

describe('POST /upload upgraded to a resumable upload (URLSession)', () => {
  let server: TestServer;
  before(async () => {
    server = await startServer();
  });
  after(() => server.close());

  test('in one go: 104 with the upload URL, then the same 201 answer as an ordinary raw upload', async () => {
    const data = seededBytes(11, 100_000);
    const res = await curl(['-H', 'Upload-Draft-Interop-Version: 6', '-H', 'Upload-Complete: ?1', '-H', 'Content-Type: text/csv', '--data-binary', `@${await file('u', data)}`, `${server.url}/upload?filename=data.csv`]);
    assert.equal(res.status, 201);
    assert.equal(res.interim.filter((r) => r.status === 104).length, 1);
    const body = json(res) as { files: Array<Record<string, unknown>>; fields: unknown[] };
    assert.deepEqual(Object.keys(body), ['files', 'fields']);
    assert.deepEqual(body.files[0], { id: body.files[0]?.id, field: null, filename: 'data.csv', contentType: 'text/csv', size: 100_000, sha256: sha256(data) });
    assert.deepEqual(body.fields, []);
  });

  test('cut mid-body after the 104: HEAD the Location, PATCH the rest with ?1, the same file byte for byte', async () => {
    const data = seededBytes(12, 4 * 1024 * 1024);
    const cut = 1_500_000;
    const location = (await createThenCut(server.url, '/upload', '8', data, cut)).location ?? '';
    assert.match(location, /^\/uploads\//);
    const offset = await offsetAfterCut(server.url, location, '8');
    assert.ok(offset >= 0 && offset <= cut, `offset ${offset}`);
    const rest = await appendRest(server.url, location, '8', data, offset);
    assert.equal(rest.status, 201, rest.body.toString());
    const id = location.slice('/uploads/'.length);
    assert.equal(sha256((await rawRequest(server.url, `/files/${id}`)).body), sha256(data));
  });

  test('Repr-Digest that does not match: 400 DIGEST_MISMATCH and no file', async () => {
    const res = await curl(['-H', 'Upload-Draft-Interop-Version: 8', '-H', 'Upload-Complete: ?1', '-H', `Repr-Digest: sha-256=:${Buffer.alloc(32).toString('base64')}:`, '--data-binary', 'abc', `${server.url}/upload`]);
    assert.equal(res.status, 400);
    const location = res.interim.find((r) => r.status === 104)?.headers.location ?? '';
    assert.equal((await rawRequest(server.url, `/files/${location.slice('/uploads/'.length)}`)).status, 404);
  });
});

describe('progress: 104 with Upload-Offset while an append streams', () => {
  for (const version of ['8', '10']) test(`a slow draft PATCH (interop ${version}) gets 104s with growing durable offsets (no Location), then its final answer`, async () => {
    const dir = await mkdtemp(join(tmpdir(), 'sluice-progress-'));
    // Checkpoints every MiB, so a few MiB show progress (the default is every 64 MiB).
    const server = await startServer({}, new LocalStore(dir, { checkpointBytes: 1024 * 1024 }));
    try {
      const created = await rawRequest(server.url, '/uploads', { method: 'POST', headers: { 'upload-draft-interop-version': version, 'upload-complete': '?0' } });
      const location = String(created.headers.location);
      const data = seededBytes(40, 6 * 1024 * 1024);
      const interim: Array<{ status: number; headers: Record<string, unknown> }> = [];
      const { port } = new URL(server.url);
      const status = await new Promise<number>((resolve, reject) => {
        const req = request({
          host: '127.0.0.1',
          port,
          method: 'PATCH',
          path: location,
          headers: { 'upload-draft-interop-version': version, 'upload-offset': '0', 'upload-complete': '?1', 'content-type': 'application/partial-upload', 'content-length': String(data.length) },
        });
        req.on('information', (info) => interim.push({ status: info.statusCode, headers: info.headers }));
        req.on('response', (res) => (res.resume(), resolve(res.statusCode ?? 0)));
        req.on('error', reject);
        void (async () => {
          for (let at = 0; at < data.length; at += 512 * 1024) {
            req.write(data.subarray(at, at + 512 * 1024));
            await new Promise((r) => setTimeout(r, 250));
          }
          req.end();
        })();
      });
      assert.equal(status, 201);
      const offsets = interim.filter((i) => i.status === 104).map((i) => Number(i.headers['upload-offset']));
      assert.ok(offsets.length >= 1, `progress 104s: ${JSON.stringify(interim)}`);
      assert.ok(offsets.every((o, i) => o > 0 && o < data.length && (i === 0 || o > (offsets[i - 1] as number))), `offsets grow: ${offsets.join(', ')}`);
      assert.ok(interim.every((i) => i.headers.location === undefined && i.headers['upload-draft-interop-version'] === version));
    } finally {
      await server.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});
