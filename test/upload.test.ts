/**
 * POST /upload end to end, over real sockets with real clients (Node's fetch, curl, raw
 * http.request): what is answered, what lands in DATA_DIR, what GET /files/:id gives back,
 * and that every failure (malformed body, limit, digest mismatch, client abort) leaves
 * nothing behind, temporary files included, while the server keeps serving.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { request as httpRequest, type ClientRequest } from 'node:http';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FileRecord } from '../storage/store.js';
import { startServer, type TestServer } from './helpers/server.js';
import {
  BOUNDARY,
  MULTIPART_TYPE,
  assertError,
  assertHealthy,
  fieldPart,
  filePart,
  multipartBody,
  poll,
  rawRequest,
  seededBytes,
  sha256,
  type RawPart,
  type RawResponse,
} from './helpers/http.js';


interface UploadAnswer {
  readonly files: readonly FileRecord[];
  readonly fields: ReadonlyArray<{ readonly name: string; readonly value: string }>;
}

const FILE_KEYS = ['contentType', 'field', 'filename', 'id', 'sha256', 'size'];
const ID = /^[A-Za-z0-9_-]{22}$/;
const EMPTY_SHA256 = sha256(Buffer.alloc(0));

/** Parses a 201 answer and checks its exact shape: these keys, these types, nothing else. */
function uploadAnswer(status: number, text: string): UploadAnswer {
  assert.equal(status, 201, `expected 201, got ${status}: ${text}`);
  const value = JSON.parse(text) as unknown;
  assert.ok(typeof value === 'object' && value !== null);
  assert.deepEqual(Object.keys(value).sort(), ['fields', 'files']);
  const answer = value as UploadAnswer;
  assert.ok(Array.isArray(answer.files) && Array.isArray(answer.fields));
  for (const f of answer.files) {
    assert.deepEqual(Object.keys(f).sort(), FILE_KEYS);
    assert.match(f.id, ID);
    assert.ok(f.field === null || typeof f.field === 'string');
    assert.ok(f.filename === null || typeof f.filename === 'string');
    assert.equal(typeof f.contentType, 'string');
    assert.ok(Number.isSafeInteger(f.size) && f.size >= 0);
    assert.match(f.sha256, /^[0-9a-f]{64}$/);
  }
  for (const f of answer.fields) {
    assert.deepEqual(Object.keys(f).sort(), ['name', 'value']);
    assert.equal(typeof f.name, 'string');
    assert.equal(typeof f.value, 'string');
  }
  return answer;
}

function rawAnswer(res: RawResponse): UploadAnswer {
  return uploadAnswer(res.status, res.body.toString('utf8'));
}

async function fetchAnswer(res: Response): Promise<UploadAnswer> {
  return uploadAnswer(res.status, await res.text());
}

/**
 * The bytes sent, the bytes in DATA_DIR/<id>, and the bytes GET /files/:id answers are the
 * same, and so are their sha256 and the record's; the sidecar holds the same record; the id
 * is the only name the file has in DATA_DIR.
 */
async function assertStored(server: TestServer, file: FileRecord, sent: Buffer): Promise<void> {
  const expectedSha = sha256(sent);
  assert.equal(file.size, sent.length, `size of ${file.id}`);
  assert.equal(file.sha256, expectedSha, `sha256 of ${file.id}`);

  const onDisk = await readFile(join(server.dataDir, file.id));
  assert.ok(onDisk.equals(sent), `DATA_DIR/${file.id} differs from what was sent`);
  assert.equal(sha256(onDisk), expectedSha);

  const sidecar = JSON.parse(await readFile(join(server.dataDir, `${file.id}.json`), 'utf8')) as FileRecord;
  const { created, ...rest } = sidecar;
  assert.deepEqual(rest, file);
  assert.ok(!Number.isNaN(Date.parse(created)), `created ${created}`);

  const res = await fetch(`${server.url}/files/${file.id}`);
  assert.equal(res.status, 200);
  assert.equal(res.headers.get('content-length'), String(sent.length));
  assert.equal(res.headers.get('etag'), `"${expectedSha}"`);
  const served = Buffer.from(await res.arrayBuffer());
  assert.ok(served.equals(sent), `GET /files/${file.id} differs from what was sent`);
  assert.equal(sha256(served), expectedSha);
}

/** DATA_DIR ends up empty (no final, temporary or sidecar file), and the server still serves. */
async function assertNothingLeft(server: TestServer): Promise<void> {
  let names: string[] = [];
  await poll('DATA_DIR to be empty', async () => {
    names = await server.files();
    return names.length === 0;
  }).catch((err: unknown) => {
    throw new Error(`DATA_DIR still holds ${JSON.stringify(names)}`, { cause: err });
  });
  await assertHealthy(server.url);
}

/** DATA_DIR holds exactly these files and their sidecars. */
async function assertOnlyFiles(server: TestServer, ids: readonly string[]): Promise<void> {
  const expected = ids.flatMap((id) => [id, `${id}.json`]).sort();
  assert.deepEqual((await server.files()).sort(), expected);
}

function postMultipart(server: TestServer, parts: readonly RawPart[], options: { chunked?: boolean; close?: boolean } = {}): Promise<RawResponse> {
  return rawRequest(server.url, '/upload', {
    method: 'POST',
    headers: { 'content-type': MULTIPART_TYPE },
    body: multipartBody(BOUNDARY, parts, { close: options.close }),
    chunked: options.chunked,
  });
}

/** Runs curl with `-sS`; resolves with its exit code and output. */
function curl(args: readonly string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn('curl', ['-sS', '--max-time', '20', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

/** Returns a request whose body is sent by hand, and its (ignored) failure once destroyed. */
function openUpload(server: TestServer, headers: Record<string, string>): ClientRequest {
  const { port } = new URL(server.url);
  const req = httpRequest({ host: '127.0.0.1', port: Number(port), method: 'POST', path: '/upload', headers, agent: false });
  // Destroying it mid-body makes it fail with ECONNRESET / socket hang up: that is the point.
  req.on('error', () => {});
  return req;
}

const partialNames = (names: readonly string[]): string[] => names.filter((n) => n.endsWith('.partial'));

let scratch: string;
before(async () => {
  scratch = await mkdtemp(join(tmpdir(), 'sluice-upload-e2e-'));
});
after(async () => {
  await rm(scratch, { recursive: true, force: true });
});

describe('multipart uploads that succeed', () => {
  let server: TestServer;
  before(async () => {
    server = await startServer();
  });
  after(() => server.close());

  test('fetch + FormData: files and fields in order, exact answer shape, bytes identical on disk and via GET', async () => {
    const big = seededBytes(1, 3 * 1024 * 1024 + 17); // a few MiB, not a multiple of any chunk size
    const jp = seededBytes(2, 4099);
    const quoted = Buffer.from('quotes in the name\n');
    const form = new FormData();
    form.append('title', 'Hello, wörld ✓');
    form.append('doc', new Blob([big], { type: 'text/plain' }), 'naïve résumé.txt');
    form.append('note', 'line one\r\nline two');
    form.append('jp', new Blob([jp]), '日本語.bin');
    form.append('q', new Blob([quoted], { type: 'text/plain' }), 'say "hi".txt');
    form.append('last', '');

    const answer = await fetchAnswer(await fetch(`${server.url}/upload`, { method: 'POST', body: form }));

    assert.deepEqual(answer.fields, [
      { name: 'title', value: 'Hello, wörld ✓' },
      { name: 'note', value: 'line one\r\nline two' },
      { name: 'last', value: '' },
    ]);
    assert.equal(answer.files.length, 3);
    const [doc, jpFile, q] = answer.files as [FileRecord, FileRecord, FileRecord];
    assert.deepEqual({ ...doc, id: '' }, { id: '', field: 'doc', filename: 'naïve résumé.txt', contentType: 'text/plain', size: big.length, sha256: sha256(big) });
    assert.deepEqual({ ...jpFile, id: '' }, { id: '', field: 'jp', filename: '日本語.bin', contentType: 'application/octet-stream', size: jp.length, sha256: sha256(jp) });
    // Node's fetch (like browsers, WHATWG HTML "multipart/form-data encoding algorithm") sends a `"`
    // in a filename as `%22`; the server undoes that, as the WHATWG parser does.
    assert.deepEqual({ ...q, id: '' }, { id: '', field: 'q', filename: 'say "hi".txt', contentType: 'text/plain', size: quoted.length, sha256: sha256(quoted) });
    assert.equal(new Set(answer.files.map((f) => f.id)).size, 3, 'ids are distinct');

    await assertStored(server, doc, big);
    await assertStored(server, jpFile, jp);
    await assertStored(server, q, quoted);
  });

  test('a quoted-string filename with backslash escapes (RFC 9110 5.6.4) keeps its quotes', async () => {
    const data = Buffer.from('escaped');
    const res2 = await postMultipart(server, [
      { headers: ['Content-Disposition: form-data; name="f"; filename="say \\"hi\\".txt"', 'Content-Type: text/plain'], data },
    ]);
    const [file2] = rawAnswer(res2).files;
    assert.ok(file2 !== undefined);
    assert.equal(file2.filename, 'say "hi".txt');
    await assertStored(server, file2, data);
  });

  test('curl -F with two files (one of 1.5 MiB, sent after Expect: 100-continue) and a field', async () => {
    const a = seededBytes(3, 1536 * 1024);
    const b = Buffer.from('second file, plain text\n');
    const aPath = join(scratch, 'a.bin');
    const bPath = join(scratch, 'b.txt');
    await writeFile(aPath, a);
    await writeFile(bPath, b);
    const out = await curl([
      '-H', 'Expect: 100-continue',
      '-F', 'comment=made by curl',
      '-F', `first=@${aPath};type=application/x-first;filename=naïve.bin`,
      '-F', `second=@${bPath};type=text/plain`,
      `${server.url}/upload`,
    ]);
    assert.equal(out.code, 0, out.stderr);
    const answer = uploadAnswer(201, out.stdout);
    assert.deepEqual(answer.fields, [{ name: 'comment', value: 'made by curl' }]);
    assert.deepEqual(
      answer.files.map(({ field, filename, contentType }) => ({ field, filename, contentType })),
      [
        { field: 'first', filename: 'naïve.bin', contentType: 'application/x-first' },
        { field: 'second', filename: 'b.txt', contentType: 'text/plain' },
      ],
    );
    await assertStored(server, answer.files[0] as FileRecord, a);
    await assertStored(server, answer.files[1] as FileRecord, b);
  });

  test('an empty file input (filename="" and no data) is skipped, not stored; with data it is stored without a name', async () => {
    const server2 = await startServer();
    try {
      const data = Buffer.from('data under an empty filename');
      const res = await postMultipart(server2, [
        fieldPart('a', '1'),
        { headers: ['Content-Disposition: form-data; name="upload"; filename=""', 'Content-Type: application/octet-stream'], data: '' },
        fieldPart('b', '2'),
      ]);
      const answer = rawAnswer(res);
      assert.deepEqual(answer.files, []);
      assert.deepEqual(answer.fields, [
        { name: 'a', value: '1' },
        { name: 'b', value: '2' },
      ]);
      assert.deepEqual(await server2.files(), [], 'nothing stored for an empty file input');

      const withData = rawAnswer(
        await postMultipart(server2, [{ headers: ['Content-Disposition: form-data; name="upload"; filename=""'], data }]),
      );
      assert.equal(withData.files.length, 1);
      const [file] = withData.files as [FileRecord];
      assert.equal(file.field, 'upload');
      assert.equal(file.filename, null);
      assert.equal(file.contentType, 'application/octet-stream', 'a part without Content-Type is application/octet-stream');
      await assertStored(server2, file, data);
    } finally {
      await server2.close();
    }
  });

  test('a named empty file (zero bytes) is stored with size 0 and the sha256 of nothing', async () => {
    const res = await postMultipart(server, [filePart('f', 'empty.txt', '', 'text/plain')]);
    const [file] = rawAnswer(res).files;
    assert.ok(file !== undefined);
    assert.equal(file.filename, 'empty.txt');
    assert.equal(file.sha256, EMPTY_SHA256);
    await assertStored(server, file, Buffer.alloc(0));
  });

  test('client filenames never become paths: ../../etc/passwd, /abs/path, C:\\dir\\x, filename*=..%2F are stored under the id', async () => {
    const server2 = await startServer();
    try {
      const parts = [
        filePart('a', '../../etc/passwd', 'not really'),
        filePart('b', '/abs/path', 'absolute'),
        // Backslashes escaped as a quoted-string needs (RFC 9110 5.6.4): the name is C:\Users\me\evil.txt.
        filePart('c', 'C:\\\\Users\\\\me\\\\evil.txt', 'windows'),
        filePart('d', '..', 'dot dot'),
        { headers: [`Content-Disposition: form-data; name="e"; filename*=UTF-8''..%2F..%2F${encodeURIComponent('sécret.txt')}`], data: 'ext' },
      ];
      const answer = rawAnswer(await postMultipart(server2, parts));
      assert.deepEqual(
        answer.files.map((f) => f.filename),
        ['passwd', 'path', 'evil.txt', null, 'sécret.txt'],
      );
      // Only <id> and <id>.json exist in DATA_DIR; nothing named after the client's filename.
      await assertOnlyFiles(server2, answer.files.map((f) => f.id));
      for (const [i, f] of answer.files.entries()) await assertStored(server2, f, Buffer.from((parts[i] as RawPart).data));
      // A raw upload's ?filename= too.
      const raw = rawAnswer(
        await rawRequest(server2.url, `/upload?filename=${encodeURIComponent('../../../tmp/x.sh')}`, { method: 'POST', body: Buffer.from('#!') }),
      );
      assert.equal(raw.files[0]?.filename, 'x.sh');
      await assertOnlyFiles(server2, [...answer.files, ...raw.files].map((f) => f.id));
    } finally {
      await server2.close();
    }
  });
});

describe('raw uploads', () => {
  let server: TestServer;
  before(async () => {
    server = await startServer();
  });
  after(() => server.close());

  test('curl --data-binary @file with ?filename= stores the body as one file (field null)', async () => {
    const data = seededBytes(4, 700 * 1024 + 3);
    const path = join(scratch, 'raw.foo');
    await writeFile(path, data);
    const out = await curl([
      '--data-binary', `@${path}`,
      '-H', 'Content-Type: application/x-foo',
      `${server.url}/upload?filename=${encodeURIComponent('rapport été.foo')}`,
    ]);
    assert.equal(out.code, 0, out.stderr);
    const answer = uploadAnswer(201, out.stdout);
    assert.deepEqual(answer.fields, []);
    assert.equal(answer.files.length, 1);
    const [file] = answer.files as [FileRecord];
    assert.deepEqual({ ...file, id: '' }, { id: '', field: null, filename: 'rapport été.foo', contentType: 'application/x-foo', size: data.length, sha256: sha256(data) });
    await assertStored(server, file, data);
  });

  test('fetch with a body and Content-Disposition: attachment; filename*=UTF-8\'\'... names the file', async () => {
    const data = seededBytes(5, 1024 * 1024);
    const res = await fetch(`${server.url}/upload`, {
      method: 'POST',
      headers: {
        'content-type': 'application/x-foo',
        'content-disposition': `attachment; filename="fallback.bin"; filename*=UTF-8''${encodeURIComponent('日本語.bin')}`,
      },
      body: data,
    });
    const [file] = (await fetchAnswer(res)).files;
    assert.ok(file !== undefined);
    assert.deepEqual({ ...file, id: '' }, { id: '', field: null, filename: '日本語.bin', contentType: 'application/x-foo', size: data.length, sha256: sha256(data) });
    await assertStored(server, file, data);
  });

  test('?filename= wins over Content-Disposition; neither gives filename null; no Content-Type gives application/octet-stream', async () => {
    const both = rawAnswer(
      await rawRequest(server.url, '/upload?filename=query.txt', {
        method: 'POST',
        headers: { 'content-type': 'text/plain', 'content-disposition': 'attachment; filename="header.txt"' },
        body: Buffer.from('both'),
      }),
    );
    assert.equal(both.files[0]?.filename, 'query.txt');
    const none = rawAnswer(await rawRequest(server.url, '/upload', { method: 'POST', body: Buffer.from('anonymous') }));
    assert.equal(none.files[0]?.filename, null);
    assert.equal(none.files[0]?.contentType, 'application/octet-stream');
    await assertStored(server, none.files[0] as FileRecord, Buffer.from('anonymous'));
  });

  test('a malformed Content-Disposition request header is 400 CONTENT_DISPOSITION_MALFORMED and stores nothing', async () => {
    const before = (await server.files()).sort();
    const res = await rawRequest(server.url, '/upload', {
      method: 'POST',
      headers: { 'content-type': 'text/plain', 'content-disposition': 'attachment; filename="unterminated' },
      body: Buffer.from('x'),
    });
    assertError(res, 400, 'CONTENT_DISPOSITION_MALFORMED');
    await assertHealthy(server.url);
    assert.deepEqual((await server.files()).sort(), before);
  });

  test('chunked raw body (no Content-Length) is stored whole', async () => {
    const pieces = [seededBytes(6, 100_000), seededBytes(7, 1), seededBytes(8, 65_536)];
    const answer = rawAnswer(await rawRequest(server.url, '/upload?filename=chunked.bin', { method: 'POST', body: pieces, chunked: true }));
    await assertStored(server, answer.files[0] as FileRecord, Buffer.concat(pieces));
  });
});

describe('Content-Digest (RFC 9530) on raw uploads', () => {
  const data = seededBytes(9, 2 * 1024 * 1024 + 5);
  const digest = (body: Buffer): string => `sha-256=:${Buffer.from(sha256(body), 'hex').toString('base64')}:`;

  test('a matching sha-256 digest is accepted (201), via fetch and via curl', async () => {
    const server = await startServer();
    try {
      const res = await fetch(`${server.url}/upload?filename=checked.bin`, {
        method: 'POST',
        headers: { 'content-type': 'application/octet-stream', 'content-digest': digest(data) },
        body: data,
      });
      const [file] = (await fetchAnswer(res)).files;
      assert.ok(file !== undefined);
      await assertStored(server, file, data);

      const path = join(scratch, 'digest.bin');
      await writeFile(path, data);
      const out = await curl(['--data-binary', `@${path}`, '-H', 'Content-Type: application/x-foo', '-H', `Content-Digest: sha-512=:${Buffer.alloc(64).toString('base64')}:, ${digest(data)}`, `${server.url}/upload`]);
      assert.equal(out.code, 0, out.stderr);
      await assertStored(server, uploadAnswer(201, out.stdout).files[0] as FileRecord, data);
    } finally {
      await server.close();
    }
  });

  test('a wrong sha-256 digest is 400 DIGEST_MISMATCH and nothing stays in DATA_DIR, temporary included', async () => {
    const server = await startServer();
    try {
      const other = Buffer.from(data);
      other[other.length - 1] = (other[other.length - 1] as number) ^ 1;
      const res = await rawRequest(server.url, '/upload?filename=bad.bin', {
        method: 'POST',
        headers: { 'content-type': 'application/octet-stream', 'content-digest': digest(other) },
        body: data,
      });
      assertError(res, 400, 'DIGEST_MISMATCH');
      await assertNothingLeft(server);
      const list = await rawRequest(server.url, '/files');
      assert.deepEqual(JSON.parse(list.body.toString('utf8')), { files: [] });
    } finally {
      await server.close();
    }
  });

  test('Repr-Digest is checked like Content-Digest: a match is stored, a mismatch is 400 DIGEST_MISMATCH', async () => {
    const server = await startServer();
    try {
      const ok = await rawRequest(server.url, '/upload?filename=r.bin', { method: 'POST', headers: { 'repr-digest': digest(data) }, body: data });
      assert.equal(ok.status, 201, ok.body.toString('utf8'));
      const wrong = await rawRequest(server.url, '/upload?filename=r.bin', {
        method: 'POST',
        headers: { 'content-digest': digest(data), 'repr-digest': digest(Buffer.from('something else')) },
        body: data,
      });
      assertError(wrong, 400, 'DIGEST_MISMATCH');
      assert.equal((JSON.parse((await rawRequest(server.url, '/files')).body.toString('utf8')) as { files: unknown[] }).files.length, 1);
    } finally {
      await server.close();
    }
  });

  test('a malformed Content-Digest is 400 CONTENT_DIGEST_MALFORMED and nothing is stored', async () => {
    const server = await startServer();
    try {
      for (const header of ['sha-256=abc', `sha-256=:${Buffer.alloc(16).toString('base64')}:`]) {
        const res = await rawRequest(server.url, '/upload', { method: 'POST', headers: { 'content-digest': header }, body: Buffer.from('x') });
        assertError(res, 400, 'CONTENT_DIGEST_MALFORMED');
      }
      await assertNothingLeft(server);
    } finally {
      await server.close();
    }
  });
});

describe('clients that abort mid-upload leave no file at all', () => {
  test('raw: http.request writes half the body, then destroys the socket', async () => {
    const server = await startServer();
    try {
      const body = seededBytes(10, 4 * 1024 * 1024);
      const req = openUpload(server, { 'content-type': 'application/octet-stream', 'content-length': String(body.length) });
      req.write(body.subarray(0, body.length / 2));
      // Abort only once the server is writing the file, so cleanup (not luck) is what is tested.
      await poll('a temporary file in DATA_DIR', async () => partialNames(await server.files()).length === 1);
      req.destroy();
      await assertNothingLeft(server);
    } finally {
      await server.close();
    }
  });

  test('multipart: one file complete and a second half sent, then the socket is destroyed', async () => {
    const server = await startServer();
    try {
      const first = seededBytes(11, 256 * 1024);
      const second = seededBytes(12, 2 * 1024 * 1024);
      const full = multipartBody(BOUNDARY, [fieldPart('x', 'y'), filePart('a', 'a.bin', first), filePart('b', 'b.bin', second)]);
      const cut = full.length - second.length / 2;
      const req = openUpload(server, { 'content-type': MULTIPART_TYPE, 'content-length': String(full.length) });
      req.write(full.subarray(0, cut));
      await poll('two temporary files in DATA_DIR', async () => partialNames(await server.files()).length === 2);
      req.destroy();
      await assertNothingLeft(server);
    } finally {
      await server.close();
    }
  });

  test('multipart via fetch: a streamed FormData-like body aborted with AbortController', async () => {
    const server = await startServer();
    try {
      const file = seededBytes(13, 1024 * 1024);
      const head = multipartBody(BOUNDARY, [filePart('a', 'streamed.bin', file)], { close: false });
      const ac = new AbortController();
      const body = new ReadableStream<Uint8Array>({
        start(controller) {
          controller.enqueue(head.subarray(0, head.length - 1000));
          // …and never more: the client stalls mid-file until it aborts.
        },
      });
      const pending = fetch(`${server.url}/upload`, {
        method: 'POST',
        headers: { 'content-type': MULTIPART_TYPE },
        body,
        duplex: 'half',
        signal: ac.signal,
      });
      await poll('a temporary file in DATA_DIR', async () => partialNames(await server.files()).length === 1);
      ac.abort();
      await assert.rejects(pending, { name: 'AbortError' });
      await assertNothingLeft(server);
    } finally {
      await server.close();
    }
  });
});

describe('malformed multipart bodies are 400 with a JSON error and leave nothing', () => {
  let server: TestServer;
  before(async () => {
    server = await startServer();
  });
  after(() => server.close());

  const cases: ReadonlyArray<{ what: string; body: () => Buffer; code: string; contentType?: string }> = [
    { what: 'no delimiter at all', body: () => Buffer.from('just some bytes, no boundary in here\r\n'), code: 'MULTIPART_NO_DELIMITER' },
    { what: 'an empty body', body: () => Buffer.alloc(0), code: 'MULTIPART_NO_DELIMITER' },
    {
      what: 'truncated inside a file, before the close delimiter',
      body: () => multipartBody(BOUNDARY, [fieldPart('f', 'v'), filePart('a', 'a.bin', seededBytes(14, 200_000))], { close: false }),
      code: 'MULTIPART_TRUNCATED',
    },
    {
      what: 'truncated after a complete file, inside the next delimiter',
      body: () => Buffer.concat([multipartBody(BOUNDARY, [filePart('a', 'a.bin', seededBytes(15, 100_000))], { close: false }), Buffer.from(`\r\n--${BOUNDARY}`)]),
      code: 'MULTIPART_TRUNCATED',
    },
    {
      what: 'a header block that starts with a folded line, after a complete file (CVE-2022-24434)',
      body: () => multipartBody(BOUNDARY, [filePart('a', 'a.bin', seededBytes(16, 50_000)), { headers: [' Content-Disposition: form-data; name="b"'], data: 'x' }]),
      code: 'PART_HEADER_MALFORMED',
    },
    {
      what: 'a part header line without a colon',
      body: () => multipartBody(BOUNDARY, [{ headers: ['Content-Disposition form-data; name="a"'], data: 'x' }]),
      code: 'PART_HEADER_MALFORMED',
    },
    {
      what: 'a part without Content-Disposition after a file',
      body: () => multipartBody(BOUNDARY, [filePart('a', 'a.bin', 'aaa'), { headers: ['Content-Type: text/plain'], data: 'x' }]),
      code: 'CONTENT_DISPOSITION_MISSING',
    },
    {
      what: 'a Content-Disposition without a name',
      body: () => multipartBody(BOUNDARY, [{ headers: ['Content-Disposition: form-data; filename="a.txt"'], data: 'x' }]),
      code: 'CONTENT_DISPOSITION_MALFORMED',
    },
    { what: 'no boundary parameter', contentType: 'multipart/form-data', body: () => multipartBody(BOUNDARY, [fieldPart('a', 'b')]), code: 'BOUNDARY_MISSING' },
    { what: 'an empty quoted boundary', contentType: 'multipart/form-data; boundary=""', body: () => multipartBody(BOUNDARY, [fieldPart('a', 'b')]), code: 'BOUNDARY_INVALID' },
    {
      what: 'a boundary of 71 characters',
      contentType: `multipart/form-data; boundary=${'b'.repeat(71)}`,
      body: () => multipartBody('b'.repeat(71), [fieldPart('a', 'b')]),
      code: 'BOUNDARY_INVALID',
    },
    {
      what: 'a boundary with a control character (a tab)',
      contentType: 'multipart/form-data; boundary="abc\tdef"',
      body: () => multipartBody('abc\tdef', [fieldPart('a', 'b')]),
      code: 'BOUNDARY_INVALID',
    },
    {
      what: 'a boundary that differs only in case from the one in the body',
      contentType: `multipart/form-data; boundary=${BOUNDARY.toUpperCase()}`,
      body: () => multipartBody(BOUNDARY, [filePart('a', 'a.bin', 'data')]),
      code: 'MULTIPART_NO_DELIMITER',
    },
  ];

  for (const c of cases) {
    test(c.what, async () => {
      const res = await rawRequest(server.url, '/upload', {
        method: 'POST',
        headers: { 'content-type': c.contentType ?? MULTIPART_TYPE },
        body: c.body(),
      });
      assertError(res, 400, c.code);
      await assertNothingLeft(server);
    });
  }

  test('a 70-character boundary (the RFC 2046 maximum) is accepted', async () => {
    const boundary = `${'x'.repeat(69)}Z`;
    const res = await rawRequest(server.url, '/upload', {
      method: 'POST',
      headers: { 'content-type': `multipart/form-data; boundary="${boundary}"` },
      body: multipartBody(boundary, [filePart('a', 'a.bin', 'seventy')]),
    });
    const [file] = rawAnswer(res).files;
    assert.ok(file !== undefined);
    await assertStored(server, file, Buffer.from('seventy'));
    const del = await rawRequest(server.url, `/files/${file.id}`, { method: 'DELETE' });
    assert.equal(del.status, 204);
  });
});

describe('limits from the environment are 413 with the right code, and leave nothing behind', () => {
  interface LimitCase {
    readonly what: string;
    readonly env: Record<string, string>;
    readonly parts: readonly RawPart[];
    readonly code: string;
    /** Chunked: no Content-Length, so the limit must be enforced while streaming. */
    readonly chunked?: boolean;
  }
  const B_DISPOSITION = 'Content-Disposition: form-data; name="b"; filename="b.bin"';
  const file = (i: number, size = 10_000): RawPart => filePart(`f${i}`, `f${i}.bin`, seededBytes(100 + i, size));
  const cases: readonly LimitCase[] = [
    { what: 'MAX_FILES=2: a third file (after two stored ones)', env: { MAX_FILES: '2' }, parts: [file(1), file(2), file(3)], code: 'TOO_MANY_FILES' },
    { what: 'MAX_FIELDS=1: a second field after a file', env: { MAX_FIELDS: '1' }, parts: [fieldPart('a', '1'), file(1), fieldPart('b', '2')], code: 'TOO_MANY_FIELDS' },
    { what: 'MAX_FIELD_BYTES=16: a 17-byte field after a file', env: { MAX_FIELD_BYTES: '16' }, parts: [file(1), fieldPart('a', 'x'.repeat(17))], code: 'FIELD_TOO_LARGE' },
    {
      what: 'MAX_FILE_BYTES=64KiB: a later file of 64 KiB + 1, streamed chunked',
      env: { MAX_FILE_BYTES: '64KiB' },
      parts: [file(1, 64 * 1024), file(2, 64 * 1024 + 1)],
      code: 'FILE_TOO_LARGE',
      chunked: true,
    },
    {
      what: 'MAX_PART_HEADER_BYTES=256: a later part whose header block is 257 bytes',
      env: { MAX_PART_HEADER_BYTES: '256' },
      parts: [file(1), { headers: [B_DISPOSITION, `X-Pad: ${'p'.repeat(257 - Buffer.byteLength(`${B_DISPOSITION}\r\nX-Pad: \r\n\r\n`))}`], data: 'x' }],
      code: 'PART_HEADER_TOO_LARGE',
    },
  ];

  for (const c of cases) {
    test(c.what, async () => {
      const server = await startServer(c.env);
      try {
        const res = await postMultipart(server, c.parts, { chunked: c.chunked });
        assertError(res, 413, c.code);
        await assertNothingLeft(server);
      } finally {
        await server.close();
      }
    });
  }

  test('a limit hit after a large earlier file (still being written) removes that file too', async () => {
    const server = await startServer({ MAX_FILES: '1' });
    try {
      const res = await postMultipart(server, [filePart('big', 'big.bin', seededBytes(20, 3 * 1024 * 1024)), file(2, 10)], { chunked: true });
      assertError(res, 413, 'TOO_MANY_FILES');
      await assertNothingLeft(server);
    } finally {
      await server.close();
    }
  });

  test('exactly at each limit is accepted (the header block counted with its CRLFs and the empty line)', async () => {
    const server = await startServer({ MAX_FILES: '2', MAX_FIELDS: '1', MAX_FIELD_BYTES: '16', MAX_FILE_BYTES: '64KiB', MAX_PART_HEADER_BYTES: '256' });
    try {
      const a = seededBytes(21, 64 * 1024);
      const b = seededBytes(22, 10);
      const res = await postMultipart(
        server,
        [
          filePart('a', 'a.bin', a),
          fieldPart('only', 'x'.repeat(16)),
          { headers: [B_DISPOSITION, `X-Pad: ${'p'.repeat(256 - Buffer.byteLength(`${B_DISPOSITION}\r\nX-Pad: \r\n\r\n`))}`], data: b },
        ],
        { chunked: true },
      );
      const answer = rawAnswer(res);
      assert.deepEqual(answer.fields, [{ name: 'only', value: 'x'.repeat(16) }]);
      await assertStored(server, answer.files[0] as FileRecord, a);
      await assertStored(server, answer.files[1] as FileRecord, b);
    } finally {
      await server.close();
    }
  });

  test('MAX_FILE_BYTES on a raw upload: declared too large (Content-Length) and streamed too large (chunked) are both 413', async () => {
    const server = await startServer({ MAX_FILE_BYTES: '1KiB' });
    try {
      const body = seededBytes(23, 1025);
      assertError(await rawRequest(server.url, '/upload', { method: 'POST', body }), 413, 'FILE_TOO_LARGE');
      await assertNothingLeft(server);
      assertError(await rawRequest(server.url, '/upload', { method: 'POST', body: [body.subarray(0, 1000), body.subarray(1000)], chunked: true }), 413, 'FILE_TOO_LARGE');
      await assertNothingLeft(server);
      const ok = rawAnswer(await rawRequest(server.url, '/upload', { method: 'POST', body: body.subarray(0, 1024) }));
      await assertStored(server, ok.files[0] as FileRecord, body.subarray(0, 1024));
    } finally {
      await server.close();
    }
  });

  test('MAX_FILE_BYTES limits each file, not the request: two files each under it are stored (issue #17; MAX_REQUEST_BYTES no longer defaults to it)', async () => {
    const server = await startServer({ MAX_FILE_BYTES: '64KiB' });
    try {
      const form = new FormData();
      form.append('a', new Blob([seededBytes(26, 60 * 1024)]), 'a.bin');
      form.append('b', new Blob([seededBytes(27, 60 * 1024)]), 'b.bin');
      const res = await fetch(`${server.url}/upload`, { method: 'POST', body: form });
      const answer = await fetchAnswer(res);
      assert.deepEqual(answer.files.map((f) => f.size), [60 * 1024, 60 * 1024]);
    } finally {
      await server.close();
    }
  });

  test('two files each under MAX_FILE_BYTES, with MAX_REQUEST_BYTES set above their sum, are stored', async () => {
    const server = await startServer({ MAX_FILE_BYTES: '64KiB', MAX_REQUEST_BYTES: '1MiB' });
    try {
      const a = seededBytes(24, 60 * 1024);
      const b = seededBytes(25, 60 * 1024);
      // With a Content-Length (as fetch, curl and browsers send), so the up-front check is involved.
      const res = await postMultipart(server, [filePart('a', 'a.bin', a), filePart('b', 'b.bin', b)]);
      const answer = rawAnswer(res);
      await assertStored(server, answer.files[0] as FileRecord, a);
      await assertStored(server, answer.files[1] as FileRecord, b);
    } finally {
      await server.close();
    }
  });
});

/** Runs `python3 -c script` with `args`; null when there is no python3 (the test then skips, saying so). */
function python(script: string, args: readonly string[]): Promise<{ code: number | null; stdout: string; stderr: string } | null> {
  return new Promise((resolve) => {
    const child = spawn('python3', ['-c', script, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.on('error', () => resolve(null));
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

/**
 * Python's standard library as a client: a multipart/form-data body built with the email
 * package (base64 parts, a folded Content-Disposition with RFC 2231 continuations under
 * policy.SMTP, `name*=` for a non-ASCII name), posted with urllib. Prints the answer.
 */
const PYTHON_CLIENT = `
import sys, urllib.request, urllib.error
from email import policy
from email.mime.multipart import MIMEMultipart
from email.mime.application import MIMEApplication
from email.mime.text import MIMEText
url, path, pol = sys.argv[1], sys.argv[2], getattr(policy, sys.argv[3])
data = open(path, 'rb').read()
m = MIMEMultipart('form-data', policy=pol)
note = MIMEText('h\\u00e9llo w\\u00f6rld \\u20ac', 'plain', 'utf-8', policy=pol)
note.add_header('Content-Disposition', 'form-data', name='note')
m.attach(note)
f = MIMEApplication(data, policy=pol)
f.add_header('Content-Disposition', 'form-data', name='\\u540d\\u524d', filename='a long file name \\u00fcn\\u00efcode that the email package folds over lines.bin')
m.attach(f)
raw = m.as_bytes(policy=pol)
body = raw.split(b'\\r\\n\\r\\n', 1)[1]
req = urllib.request.Request(url, data=body, method='POST', headers={'Content-Type': m['Content-Type']})
try:
    with urllib.request.urlopen(req) as r:
        sys.stdout.write(str(r.status) + ' ' + r.read().decode())
except urllib.error.HTTPError as e:
    sys.stdout.write(str(e.code) + ' ' + e.read().decode())
`;

describe("what other clients and parsers' test bodies send is read as they meant it", () => {
  let server: TestServer;
  before(async () => {
    server = await startServer();
  });
  after(() => server.close());

  test('curl writes names the HTML way: a field name ending in a backslash, a filename with a quote (%22) and non-ASCII', async () => {
    const data = seededBytes(40, 50_000);
    const path = join(scratch, 'curl-names.bin');
    await writeFile(path, data);
    const out = await curl(['-F', 'a\\=1', '-F', `f=@${path};filename=we"ird ü.txt;type=text/plain`, `${server.url}/upload`]);
    assert.equal(out.code, 0, out.stderr);
    const answer = uploadAnswer(201, out.stdout);
    assert.deepEqual(answer.fields, [{ name: 'a\\', value: '1' }]);
    const [file] = answer.files as [FileRecord];
    assert.deepEqual({ field: file.field, filename: file.filename, contentType: file.contentType }, { field: 'f', filename: 'we"ird ü.txt', contentType: 'text/plain' });
    await assertStored(server, file, data);
  });

  for (const pol of ['HTTP', 'SMTP']) {
    test(`Python's email package (policy.${pol}) and urllib: base64 parts are stored decoded, folded RFC 2231 names read whole`, async (t) => {
      const data = Buffer.concat([seededBytes(41, 200_000), Buffer.from(`\r\n--${'='.repeat(15)}`)]);
      const path = join(scratch, `python-${pol}.bin`);
      await writeFile(path, data);
      const out = await python(PYTHON_CLIENT, [`${server.url}/upload`, path, pol]);
      if (out === null) return t.skip('python3 is not installed');
      assert.equal(out.code, 0, out.stderr);
      const space = out.stdout.indexOf(' ');
      const answer = uploadAnswer(Number(out.stdout.slice(0, space)), out.stdout.slice(space + 1));
      assert.deepEqual(answer.fields, [{ name: 'note', value: 'héllo wörld €' }]);
      const [file] = answer.files as [FileRecord];
      assert.equal(file.field, '名前');
      assert.equal(file.filename, 'a long file name ünïcode that the email package folds over lines.bin');
      assert.equal(file.contentType, 'application/octet-stream');
      await assertStored(server, file, data);
    });
  }

  test('field values are decoded in the charset of their part, else that of a _charset_ field (RFC 7578 4.4, 4.6), else UTF-8', async () => {
    const part = (name: string, value: Buffer, type?: string): RawPart => ({
      headers: [`Content-Disposition: form-data; name="${name}"`, ...(type === undefined ? [] : [`Content-Type: ${type}`])],
      data: value,
    });
    const latin = (text: string): Buffer => Buffer.from(text, 'latin1');
    const answer = rawAnswer(
      await postMultipart(server, [
        part('iso', latin('caf\xe9'), 'text/plain; charset=ISO-8859-1'),
        part('cp1252', Buffer.from([0x80, 0x20, 0x93, 0x71, 0x94]), 'text/plain; charset="windows-1252"'),
        part('utf8', Buffer.from('\ufeffcafé €', 'utf8'), 'text/plain; charset=utf-8'),
        part('unknown', Buffer.from('café', 'utf8'), 'text/plain; charset=x-no-such-charset'),
        part('default', Buffer.from([0x80, 0xe9])),
        part('_charset_', Buffer.from('windows-1252')),
      ]),
    );
    assert.deepEqual(answer.fields, [
      { name: 'iso', value: 'café' },
      { name: 'cp1252', value: '€ “q”' },
      { name: 'utf8', value: '\ufeffcafé €' },
      { name: 'unknown', value: 'café' },
      { name: 'default', value: '€é' },
      { name: '_charset_', value: 'windows-1252' },
    ]);
    // The _charset_ field is not decoded in the charset it names (here one where ASCII is not ASCII).
    const utf16 = rawAnswer(await postMultipart(server, [part('_charset_', Buffer.from('utf-16le')), part('a', Buffer.from('hi', 'utf16le'))]));
    assert.deepEqual(utf16.fields, [
      { name: '_charset_', value: 'utf-16le' },
      { name: 'a', value: 'hi' },
    ]);
    // Without a _charset_ field the default is UTF-8, and bytes that are not UTF-8 become U+FFFD.
    const utf8 = rawAnswer(await postMultipart(server, [part('default', Buffer.from([0x61, 0xe9]))]));
    assert.deepEqual(utf8.fields, [{ name: 'default', value: 'a\ufffd' }]);
  });

  test('a base64 (Content-Transfer-Encoding) file is stored decoded; an empty Content-Type part is application/octet-stream', async () => {
    const data = seededBytes(42, 100_003);
    const answer = rawAnswer(
      await postMultipart(server, [
        {
          headers: ['Content-Disposition: form-data; name="b"; filename="b.bin"', 'Content-Type: image/png', 'Content-Transfer-Encoding: base64'],
          data: data.toString('base64').replace(/.{76}/g, '$&\r\n'),
        },
        { headers: ['Content-Disposition: form-data; name="e"; filename="e.bin"', 'Content-Type: '], data: 'x' },
      ]),
    );
    const [b, e] = answer.files as [FileRecord, FileRecord];
    assert.equal(b.contentType, 'image/png');
    await assertStored(server, b, data);
    assert.equal(e.contentType, 'application/octet-stream');
    await assertStored(server, e, Buffer.from('x'));
  });

  for (const boundary of ['*****', '\\/\\/\\/\\/\\/\\/']) {
    test(`a boundary outside RFC 2046 bchars that clients send (${boundary}: Android samples, a formidable fixture) is accepted`, async () => {
      const res = await rawRequest(server.url, '/upload', {
        method: 'POST',
        headers: { 'content-type': `multipart/form-data;boundary=${boundary}` },
        body: multipartBody(boundary, [filePart('f', 'f.bin', 'stars'), fieldPart('n', 'v')]),
      });
      const answer = rawAnswer(res);
      assert.deepEqual(answer.fields, [{ name: 'n', value: 'v' }]);
      await assertStored(server, answer.files[0] as FileRecord, Buffer.from('stars'));
    });
  }

  test('a raw upload with an empty name (?filename=, filename="") has filename null, as a multipart one does', async () => {
    const a = rawAnswer(await rawRequest(server.url, '/upload?filename=', { method: 'POST', body: Buffer.from('a') }));
    assert.equal(a.files[0]?.filename, null);
    const b = rawAnswer(
      await rawRequest(server.url, '/upload', { method: 'POST', headers: { 'content-disposition': 'attachment; filename=""' }, body: Buffer.from('b') }),
    );
    assert.equal(b.files[0]?.filename, null);
  });
});

describe('bodies that peers read differently are a clear 400 and leave nothing', () => {
  let server: TestServer;
  before(async () => {
    server = await startServer();
  });
  after(() => server.close());

  const big = (seed: number): RawPart => filePart('big', 'big.bin', seededBytes(seed, 80_000));
  const cases: ReadonlyArray<{ what: string; body: Buffer; code: string; contentType?: string }> = [
    {
      what: 'a body framed with bare LFs (what Python email writes by default)',
      body: Buffer.from(`--${BOUNDARY}\nContent-Disposition: form-data; name="a"\n\nv\n--${BOUNDARY}--\n`),
      code: 'MULTIPART_NO_DELIMITER',
    },
    {
      what: 'two Content-Disposition headers in a part after a complete file',
      body: multipartBody(BOUNDARY, [big(44), { headers: ['Content-Disposition: form-data; name="a"', 'Content-Disposition: form-data; name="b"; filename="b.php"'], data: 'x' }]),
      code: 'PART_HEADER_MALFORMED',
    },
    {
      what: 'a repeated filename parameter',
      body: multipartBody(BOUNDARY, [{ headers: ['Content-Disposition: form-data; name="a"; filename="a.txt"; filename="a.php"'], data: 'x' }]),
      code: 'CONTENT_DISPOSITION_MALFORMED',
    },
    {
      what: 'a multipart Content-Type whose parameters do not parse (not stored whole as a raw upload)',
      contentType: `multipart/form-data; boundary="${BOUNDARY}`,
      body: multipartBody(BOUNDARY, [fieldPart('a', 'b')]),
      code: 'BOUNDARY_INVALID',
    },
    {
      what: 'a repeated boundary parameter',
      contentType: `multipart/form-data; boundary=${BOUNDARY}; boundary=other`,
      body: multipartBody(BOUNDARY, [fieldPart('a', 'b')]),
      code: 'BOUNDARY_INVALID',
    },
  ];

  for (const c of cases) {
    test(c.what, async () => {
      const res = await rawRequest(server.url, '/upload', { method: 'POST', headers: { 'content-type': c.contentType ?? MULTIPART_TYPE }, body: c.body });
      assertError(res, 400, c.code);
      await assertNothingLeft(server);
    });
  }
});
