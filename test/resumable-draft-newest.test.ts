/**
 * draft-ietf-httpbis-resumable-upload at interop 9 (draft -12) and 10 (draft -13 on), over real
 * sockets with curl, fetch and node:http: OPTIONS, creation with and without a 104, offset
 * retrieval (HEAD and GET), append, completion, the 409 with its problem details, the final answer
 * replayed to a repeated completion and the 400 with `Upload-Complete: ?0` for any other append to
 * a completed upload (no completed-upload problem type since -12), cancellation, a cut creation
 * resumed, and a refusal for a limit carrying `Upload-Limit`. Interop 8 beside it keeps its answers.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { curl, scratchFile, jsonBody as json, type CurlResult } from './helpers/curl.js';
import { appendRest, createThenCut, offsetAfterCut } from './helpers/draft-resume.js';
import { rawRequest, seededBytes, sha256 } from './helpers/http.js';
import { startServer, type TestServer } from './helpers/server.js';

const MAX = 8 * 1024 * 1024;
const PARTIAL = ['-H', 'Content-Type: application/partial-upload'];
const PROBLEM_TYPES = 'https://iana.org/assignments/http-problem-types#';

let scratch = '';
let server: TestServer;
before(async () => {
  scratch = await mkdtemp(join(tmpdir(), 'sluice-draft-newest-'));
  server = await startServer({ MAX_FILE_BYTES: String(MAX), UPLOAD_EXPIRY_MS: '3600000' });
});
after(async () => {
  await server.close();
  await rm(scratch, { recursive: true, force: true });
});

const file = (name: string, bytes: Buffer): Promise<string> => scratchFile(scratch, name, bytes);

function idOf(location: string): string {
  return location.slice(location.lastIndexOf('/') + 1);
}

for (const version of ['9', '10'] as const) {
  const V = ['-H', `Upload-Draft-Interop-Version: ${version}`];

  describe(`interop ${version}`, () => {
    test('OPTIONS: 204 with Upload-Limit (max-size, max-age)', async () => {
      const res = await curl([...V, '-X', 'OPTIONS', `${server.url}/uploads`]);
      assert.equal(res.status, 204);
      assert.equal(res.headers['upload-limit'], `max-size=${MAX}, max-age=3600`);
    });

    test('creation in one go: a 104 with the interop version, Location and Upload-Limit, then 201 ?1 with the stored file', async () => {
      const data = seededBytes(70 + Number(version), 300_000);
      const res = await curl(['-v', ...V, '-X', 'POST', '-H', 'Upload-Complete: ?1', '-H', 'Content-Type: text/plain', '-H', 'Content-Disposition: inline; filename="notes.txt"', '--data-binary', `@${await file(`one-${version}`, data)}`, `${server.url}/uploads`]);
      assert.equal(res.status, 201, res.body.toString());
      const interim = res.interim.filter((r) => r.status === 104);
      assert.equal(interim.length, 1, `one 104 among ${JSON.stringify(res.interim)}`);
      const announced = interim[0];
      assert.ok(announced !== undefined);
      assert.equal(announced.headers['upload-draft-interop-version'], version, 'the 104 names the version the request asked for');
      assert.match(announced.headers.location ?? '', /^\/uploads\/[A-Za-z0-9_-]{22}$/);
      assert.match(announced.headers['upload-limit'] ?? '', new RegExp(`^max-size=${MAX}, max-age=\\d+$`));
      assert.equal(res.headers['upload-complete'], '?1');
      const stored = (json(res) as { files: Array<{ id: string; filename: string; contentType: string; size: number; sha256: string }> }).files[0];
      assert.deepEqual(stored, { id: idOf(announced.headers.location ?? ''), field: null, filename: 'notes.txt', contentType: 'text/plain', size: 300_000, sha256: sha256(data) });
      assert.equal(sha256((await rawRequest(server.url, `/files/${stored?.id}`)).body), sha256(data));
    });

    test('creation without a 104: an HTTP/1.0 client gets none (RFC 9110 15.2), only the 201 ?0 with Location', async () => {
      const res = await curl(['--http1.0', ...V, '-X', 'POST', '-H', 'Upload-Complete: ?0', '-H', 'Upload-Length: 10', '--data-binary', 'hello', `${server.url}/uploads`]);
      assert.equal(res.status, 201);
      assert.deepEqual(res.interim, []);
      assert.equal(res.headers['upload-complete'], '?0');
      assert.equal(res.headers['upload-offset'], '5');
      assert.match(res.headers.location ?? '', /^\/uploads\//);
      assert.match(res.headers['upload-limit'] ?? '', /max-age=\d+/);
    });

    test('in parts: HEAD and GET tell the offset; 409 with problem details; PATCH ?0 is 204; PATCH ?1 is 201 with the file', async () => {
      const data = seededBytes(80 + Number(version), 90_000);
      const created = await curl([...V, '-X', 'POST', '-H', 'Upload-Complete: ?0', '-H', 'Upload-Length: 90000', '--data-binary', `@${await file(`a-${version}`, data.subarray(0, 30_000))}`, `${server.url}/uploads`]);
      assert.equal(created.status, 201);
      assert.equal(created.headers['upload-complete'], '?0');
      assert.equal(created.headers['upload-offset'], '30000');
      const url = `${server.url}${created.headers.location}`;

      for (const method of ['HEAD', 'GET']) {
        const h = await curl([...V, '-X', method, ...(method === 'HEAD' ? ['-I'] : []), url]);
        assert.equal(h.status, 204, method);
        assert.equal(h.headers['upload-offset'], '30000', method);
        assert.equal(h.headers['upload-complete'], '?0', method);
        assert.equal(h.headers['upload-length'], '90000', method);
        assert.match(h.headers['upload-limit'] ?? '', new RegExp(`^max-size=${MAX}, max-age=\\d+$`), method);
        assert.equal(h.headers['cache-control'], 'no-store', method);
      }

      const conflict = await curl([...V, ...PARTIAL, '-X', 'PATCH', '-H', 'Upload-Offset: 40000', '-H', 'Upload-Complete: ?0', '--data-binary', 'xyz', url]);
      assert.equal(conflict.status, 409);
      assert.equal(conflict.headers['content-type'], 'application/problem+json');
      assert.equal(conflict.headers['upload-offset'], '30000', '"MUST include the correct offset"');
      assert.equal(conflict.headers['upload-complete'], '?0', '"and the Upload-Complete header field set to false"');
      const problem = json(conflict);
      assert.equal(problem.type, `${PROBLEM_TYPES}mismatching-upload-offset`);
      assert.equal(problem['expected-offset'], 30000);
      assert.equal(problem['provided-offset'], 40000);

      const middle = await curl([...V, ...PARTIAL, '-X', 'PATCH', '-H', 'Upload-Offset: 30000', '-H', 'Upload-Complete: ?0', '--data-binary', `@${await file(`b-${version}`, data.subarray(30_000, 60_000))}`, url]);
      assert.equal(middle.status, 204);
      assert.equal(middle.headers['upload-complete'], '?0');
      assert.equal(middle.headers['upload-offset'], '60000');

      const last = await curl([...V, ...PARTIAL, '-X', 'PATCH', '-H', 'Upload-Offset: 60000', '-H', 'Upload-Complete: ?1', '--data-binary', `@${await file(`c-${version}`, data.subarray(60_000))}`, url]);
      assert.equal(last.status, 201);
      assert.equal(last.headers['upload-complete'], '?1');
      assert.equal((json(last) as { files: Array<{ sha256: string }> }).files[0]?.sha256, sha256(data));

      const done = await curl([...V, '-I', url]);
      assert.equal(done.status, 204);
      assert.equal(done.headers['upload-complete'], '?1', 'a final answer was produced');
      assert.equal(done.headers['upload-offset'], '90000');
      assert.equal(done.headers['upload-length'], '90000');
    });

    test('a completed upload: the final answer replayed to an empty ?1 append at its offset (fetch); any other append is 400 with Upload-Complete: ?0', async () => {
      const data = seededBytes(90 + Number(version), 50_000);
      const created = await curl([...V, '-X', 'POST', '-H', 'Upload-Complete: ?1', '-H', 'Content-Type: application/octet-stream', '--data-binary', `@${await file(`d-${version}`, data)}`, `${server.url}/uploads`]);
      assert.equal(created.status, 201);
      const location = created.interim.find((r) => r.status === 104)?.headers.location ?? '';
      const first = json(created);

      const headers = { 'upload-draft-interop-version': version, 'content-type': 'application/partial-upload' };
      const replay = await fetch(`${server.url}${location}`, { method: 'PATCH', headers: { ...headers, 'upload-offset': '50000', 'upload-complete': '?1' } });
      assert.equal(replay.status, 201);
      assert.equal(replay.headers.get('upload-complete'), '?1');
      assert.equal(replay.headers.get('upload-offset'), '50000');
      assert.deepEqual(await replay.json(), first, 'the same answer as the request that completed the upload');

      const more = await fetch(`${server.url}${location}`, { method: 'PATCH', headers: { ...headers, 'upload-offset': '50000', 'upload-complete': '?1' }, body: 'x' });
      assert.equal(more.status, 400);
      assert.equal(more.headers.get('upload-complete'), '?0', 'the answer is the protocol\'s, not the resource\'s');
      const refused = (await more.json()) as { type?: string; error: { code: string } };
      assert.equal(refused.error.code, 'UPLOAD_COMPLETE');
      assert.equal(refused.type, undefined, 'the completed-upload problem type is gone since -12');
      const notLast = await fetch(`${server.url}${location}`, { method: 'PATCH', headers: { ...headers, 'upload-offset': '50000', 'upload-complete': '?0' } });
      assert.equal(notLast.status, 400);
      assert.equal(notLast.headers.get('upload-complete'), '?0');
      await notLast.body?.cancel();
      const behind = await fetch(`${server.url}${location}`, { method: 'PATCH', headers: { ...headers, 'upload-offset': '10', 'upload-complete': '?1' } });
      assert.equal(behind.status, 409);
      assert.equal(behind.headers.get('upload-offset'), '50000');
      await behind.body?.cancel();
      assert.equal(sha256((await rawRequest(server.url, `/files/${idOf(location)}`)).body), sha256(data), 'the file is untouched');
    });

    test('cancellation: DELETE is 204, then the upload is 404', async () => {
      const created = await curl([...V, '-X', 'POST', '-H', 'Upload-Complete: ?0', '--data-binary', 'some', `${server.url}/uploads`]);
      const url = `${server.url}${created.headers.location}`;
      assert.equal((await curl([...V, '-X', 'DELETE', url])).status, 204);
      assert.equal((await curl([...V, '-I', url])).status, 404);
      const append = await curl([...V, ...PARTIAL, '-X', 'PATCH', '-H', 'Upload-Offset: 4', '-H', 'Upload-Complete: ?1', '--data-binary', 'more', url]);
      assert.equal(append.status, 404);
    });

    test('limits: a refusal for max-size is 413 with Upload-Limit (at creation, and for the upload appended to)', async () => {
      const tooLong = await curl([...V, '-X', 'POST', '-H', 'Upload-Complete: ?0', '-H', `Upload-Length: ${MAX + 1}`, `${server.url}/uploads`]);
      assert.equal(tooLong.status, 413);
      assert.equal(tooLong.headers['upload-complete'], '?0');
      assert.equal(tooLong.headers['upload-limit'], `max-size=${MAX}, max-age=3600`);
      assert.equal((json(tooLong).error as { code: string }).code, 'FILE_TOO_LARGE');

      const created = await curl([...V, '-X', 'POST', '-H', 'Upload-Complete: ?0', `${server.url}/uploads`]);
      const url = `${server.url}${created.headers.location}`;
      const grown = await curl([...V, ...PARTIAL, '-X', 'PATCH', '-H', 'Upload-Offset: 0', '-H', 'Upload-Complete: ?0', '-H', `Upload-Length: ${MAX + 1}`, '--data-binary', 'abc', url]);
      assert.equal(grown.status, 413);
      assert.equal(grown.headers['upload-complete'], '?0');
      assert.match(grown.headers['upload-limit'] ?? '', new RegExp(`^max-size=${MAX}, max-age=\\d+$`));
      const h = await curl([...V, '-I', url]);
      assert.equal(h.headers['upload-offset'], '0', 'nothing was appended');
    });
  });
}

describe('interop 10 with node:http: a creation cut after its 104 is resumed', () => {
  test('HEAD the Location, PATCH the rest with ?1: the same bytes', async () => {
    const data = seededBytes(100, 3 * 1024 * 1024);
    const cut = 1_000_000;
    const announced = await createThenCut(server.url, '/uploads', '10', data, cut);
    assert.equal(announced['upload-draft-interop-version'], '10');
    const location = announced.location ?? '';
    assert.match(location, /^\/uploads\//);
    const offset = await offsetAfterCut(server.url, location, '10');
    assert.ok(offset >= 0 && offset <= cut, `offset ${offset}`);
    const rest = await appendRest(server.url, location, '10', data, offset);
    assert.equal(rest.status, 201, rest.body.toString());
    assert.equal(rest.headers['upload-complete'], '?1');
    assert.equal(sha256((await rawRequest(server.url, `/files/${idOf(location)}`)).body), sha256(data));
  });
});

describe('the versions side by side', () => {
  test('interop 8 keeps its answers: completed-upload problem details and no Upload-Limit on a 413', async () => {
    const V8 = ['-H', 'Upload-Draft-Interop-Version: 8'];
    const created = await curl([...V8, '-X', 'POST', '-H', 'Upload-Complete: ?1', '--data-binary', 'done', `${server.url}/uploads`]);
    const url = `${server.url}${created.interim.find((r) => r.status === 104)?.headers.location ?? ''}`;
    const again = await curl([...V8, ...PARTIAL, '-X', 'PATCH', '-H', 'Upload-Offset: 4', '-H', 'Upload-Complete: ?1', '-H', 'Content-Length: 0', url]);
    assert.equal(again.status, 400);
    assert.equal(json(again).type, `${PROBLEM_TYPES}completed-upload`);
    assert.equal(again.headers['upload-complete'], undefined);
    const tooLong = await curl([...V8, '-X', 'POST', '-H', 'Upload-Complete: ?0', '-H', `Upload-Length: ${MAX + 1}`, `${server.url}/uploads`]);
    assert.equal(tooLong.status, 413);
    assert.equal(tooLong.headers['upload-limit'], undefined);
  });

  test('an interop version not implemented here (11): 400 naming 10, 9, 8, 7, 6; POST /upload stays an ordinary upload without 104', async () => {
    const refused = await curl(['-H', 'Upload-Draft-Interop-Version: 11', '-X', 'POST', '-H', 'Upload-Complete: ?1', '--data-binary', 'x', `${server.url}/uploads`]);
    assert.equal(refused.status, 400);
    const error = json(refused).error as { code: string; message: string };
    assert.equal(error.code, 'INTEROP_VERSION_UNSUPPORTED');
    assert.match(error.message, /10, 9, 8, 7, 6/);
    const plain = await curl(['-H', 'Upload-Draft-Interop-Version: 11', '-H', 'Upload-Complete: ?1', '--data-binary', 'abc', `${server.url}/upload`]);
    assert.equal(plain.status, 201);
    assert.equal(plain.interim.filter((r) => r.status === 104).length, 0);
  });

  test('POST /upload upgraded at interop 10 (URLSession\'s way): 104 names 10, and the ordinary 201 answer', async () => {
    const data = seededBytes(101, 64_000);
    const res = await curl(['-H', 'Upload-Draft-Interop-Version: 10', '-H', 'Upload-Complete: ?1', '--data-binary', `@${await file('up', data)}`, `${server.url}/upload?filename=up.bin`]);
    assert.equal(res.status, 201);
    const interim = res.interim.filter((r) => r.status === 104);
    assert.equal(interim.length, 1);
    assert.equal(interim[0]?.headers['upload-draft-interop-version'], '10');
    assert.equal((json(res) as { files: Array<{ sha256: string }> }).files[0]?.sha256, sha256(data));
  });
});
