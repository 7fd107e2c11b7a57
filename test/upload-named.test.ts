/**
 * `PUT /upload/<name>` (issue #17, "the first minutes"): `curl -T weights.bin http://host/upload/`
 * sends `PUT /upload/weights.bin`. The body is stored as a raw upload named after the last path
 * segment, percent-decoded, metadata only, and answered as `POST /upload` answers.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startServer, type TestServer } from './helpers/server.js';
import { missing, runCommand } from './helpers/commands.js';
import { BOUNDARY, MULTIPART_TYPE, assertError, filePart, multipartBody, rawRequest, seededBytes, sha256 } from './helpers/http.js';
import { filenameFromPath } from '../handlers/upload-name.js';
import type { UploadedFile } from '../lib/upload-answer.js';

const noCurl = await missing('curl');

/** The answer's file entries, as handlers/upload.ts sends them. */
type Stored = UploadedFile;

function answer(status: number, text: string): { files: Stored[]; fields: unknown[] } {
  assert.equal(status, 201, text);
  const parsed = JSON.parse(text) as { files: Stored[]; fields: unknown[] };
  assert.deepEqual(Object.keys(parsed).sort(), ['fields', 'files']);
  assert.deepEqual(parsed.fields, []);
  assert.equal(parsed.files.length, 1);
  return parsed;
}

describe('PUT /upload/<name>', () => {
  let server: TestServer;
  let dir: string;
  before(async () => {
    server = await startServer({ MAX_FILE_BYTES: '1MiB' });
    dir = await mkdtemp(join(tmpdir(), 'sluice-put-'));
  });
  after(async () => {
    await server.close();
    await rm(dir, { recursive: true, force: true });
  });

  test('curl -T weights.bin http://host/upload/ stores the body as weights.bin, byte-exact, answered like POST /upload', { skip: noCurl }, async () => {
    const data = seededBytes(1, 300_000);
    await writeFile(join(dir, 'weights.bin'), data);
    const r = await runCommand('curl', ['-sS', '-w', '\n%{http_code}', '-T', join(dir, 'weights.bin'), `${server.url}/upload/`]);
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stdout.trimEnd().split('\n');
    const status = Number(lines.pop());
    const [file] = answer(status, lines.join('\n')).files;
    assert.ok(file !== undefined);
    assert.deepEqual(
      { field: file.field, filename: file.filename, size: file.size, sha256: file.sha256 },
      { field: null, filename: 'weights.bin', size: data.length, sha256: sha256(data) },
    );
    const back = await fetch(`${server.url}/files/${file.id}`);
    assert.equal(back.status, 200);
    assert.ok(Buffer.from(await back.arrayBuffer()).equals(data));
    assert.match(back.headers.get('content-disposition') ?? '', /filename="weights\.bin"/);
    // The name is metadata: DATA_DIR holds the id and its record, nothing named weights.bin.
    assert.ok(!(await readdir(server.dataDir)).some((n) => n.includes('weights')));
  });

  test('a name with spaces and UTF-8, as curl percent-encodes it, is decoded', { skip: noCurl }, async () => {
    const name = 'my weights é.bin';
    await writeFile(join(dir, name), 'x');
    const r = await runCommand('curl', ['-sS', '-T', join(dir, name), `${server.url}/upload/`]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal((JSON.parse(r.stdout) as { files: Stored[] }).files[0]?.filename, name);
  });

  test('exactly MAX_FILE_BYTES is stored; one byte more is 413 FILE_TOO_LARGE before the body', async () => {
    const data = seededBytes(2, 1024 * 1024 + 1);
    const ok = await rawRequest(server.url, '/upload/exact.bin', { method: 'PUT', body: data.subarray(0, 1024 * 1024) });
    assert.equal(answer(ok.status, ok.body.toString()).files[0]?.size, 1024 * 1024);
    const files = await server.files();
    const no = await rawRequest(server.url, '/upload/over.bin', { method: 'PUT', body: data, headers: { expect: '100-continue' } });
    assertError(no, 413, 'FILE_TOO_LARGE');
    const chunked = await rawRequest(server.url, '/upload/over.bin', { method: 'PUT', body: [data.subarray(0, 1000), data.subarray(1000)], chunked: true });
    assertError(chunked, 413, 'FILE_TOO_LARGE');
    assert.deepEqual(await server.files(), files);
  });

  test('the body is one file whatever its Content-Type: a multipart body is stored as sent, not parsed', async () => {
    const body = multipartBody(BOUNDARY, [filePart('a', 'a.bin', 'aaa')]);
    const res = await rawRequest(server.url, '/upload/form.txt', { method: 'PUT', headers: { 'content-type': MULTIPART_TYPE }, body });
    const [file] = answer(res.status, res.body.toString()).files;
    assert.equal(file?.filename, 'form.txt');
    assert.equal(file?.sha256, sha256(body));
    assert.equal(file?.contentType, MULTIPART_TYPE);
  });

  test('the path wins over ?filename= and Content-Disposition', async () => {
    const res = await rawRequest(server.url, '/upload/path.bin?filename=query.bin', { method: 'PUT', headers: { 'content-disposition': 'attachment; filename="cd.bin"' }, body: Buffer.from('p') });
    assert.equal(answer(res.status, res.body.toString()).files[0]?.filename, 'path.bin');
  });

  test('POST /upload/<name> is 405 with Allow: PUT', async () => {
    const res = await rawRequest(server.url, '/upload/x.bin', { method: 'POST', body: Buffer.from('x') });
    assertError(res, 405, 'METHOD_NOT_ALLOWED');
    assert.equal(res.headers.allow, 'PUT');
  });

  describe('hostile names never become paths', () => {
    const cases: ReadonlyArray<{ what: string; path: string; filename?: string | null; status?: number; code?: string }> = [
      { what: '%2F in the name: only its last segment', path: '/upload/..%2F..%2Fetc%2Fpasswd', filename: 'passwd' },
      { what: 'a backslash path', path: '/upload/..%5C..%5Cwin.ini', filename: 'win.ini' },
      { what: '`..` encoded after a slash: no name', path: '/upload/a%2F..', filename: null },
      { what: 'several segments: the last one', path: '/upload/a/b/c.bin', filename: 'c.bin' },
      { what: 'control bytes removed', path: '/upload/a%0D%0AX-Injected%3A%20yes', filename: 'aX-Injected: yes' },
      { what: 'overlong: cut to 255 characters', path: `/upload/${'A'.repeat(4000)}`, filename: 'A'.repeat(255) },
      { what: '`/upload/` alone: no name', path: '/upload/', filename: null },
      { what: 'NUL: 400', path: '/upload/a%00b', status: 400, code: 'BAD_FILENAME' },
      { what: 'malformed percent-encoding: 400', path: '/upload/a%ZZ', status: 400, code: 'BAD_FILENAME' },
      { what: 'a truncated escape: 400', path: '/upload/a%E', status: 400, code: 'BAD_FILENAME' },
      { what: 'invalid UTF-8: 400', path: '/upload/a%FF%FE', status: 400, code: 'BAD_FILENAME' },
      { what: '`..` as the whole segment is resolved by the URL parser to `/` (the web page), where PUT is not allowed', path: '/upload/%2e%2e', status: 405, code: 'METHOD_NOT_ALLOWED' },
    ];
    for (const c of cases) {
      test(c.what, async () => {
        const before = await server.files();
        const res = await rawRequest(server.url, c.path, { method: 'PUT', body: Buffer.from('hostile') });
        if (c.status !== undefined) {
          assertError(res, c.status, c.code as string);
          assert.deepEqual(await server.files(), before);
          return;
        }
        assert.equal(answer(res.status, res.body.toString()).files[0]?.filename, c.filename);
        const added = (await server.files()).filter((n) => !before.includes(n));
        assert.equal(added.length, 2, `the file and its record: ${added.join(', ')}`);
        for (const n of added) assert.match(n, /^[A-Za-z0-9_-]{22}(\.json)?$/);
      });
    }
  });
});

test('filenameFromPath: the unit rules', () => {
  assert.equal(filenameFromPath('/upload/weights.bin'), 'weights.bin');
  assert.equal(filenameFromPath('/upload/caf%C3%A9.txt'), 'café.txt');
  assert.equal(filenameFromPath('/upload/'), null);
  assert.equal(filenameFromPath('/upload/%20'), null);
  assert.equal(filenameFromPath('/upload/..%2F'), null);
  assert.throws(() => filenameFromPath('/upload/%'), { code: 'BAD_FILENAME' });
});
