/**
 * Limits that name what they limit (issue #17): the limit that fires is the one that was
 * exceeded. Exactly MAX_FILE_BYTES is stored in every upload form and one byte more is
 * 413 FILE_TOO_LARGE; too many files is TOO_MANY_FILES; MAX_REQUEST_BYTES has no limit of its
 * own by default, and a multipart body is refused up front only when no acceptable body could
 * be as long (the bound the README documents).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startServer, type TestServer } from './helpers/server.js';
import { missing, runCommand } from './helpers/commands.js';
import { BOUNDARY, MULTIPART_TYPE, assertError, fieldPart, filePart, multipartBody, rawRequest, seededBytes, sha256, type RawResponse } from './helpers/http.js';

const KiB = 1024;
const MiB = 1024 * KiB;

const noCurl = await missing('curl');

/** curl's status line and JSON answer; `-w` puts the status on the last line. */
async function curl(args: readonly string[]): Promise<{ status: number; json: Record<string, unknown> }> {
  const r = await runCommand('curl', ['-sS', '-w', '\n%{http_code}', ...args]);
  assert.equal(r.code, 0, r.stderr);
  const lines = r.stdout.trimEnd().split('\n');
  const status = Number(lines.pop());
  return { status, json: JSON.parse(lines.join('\n')) as Record<string, unknown> };
}

function errorOf(json: Record<string, unknown>): { code: string; message: string } {
  return json.error as { code: string; message: string };
}

/**
 * Sends a request head (with `Expect: 100-continue`) and no body; the server's first answer:
 * its status, and for a final answer its JSON body.
 */
function firstAnswer(base: string, head: string): Promise<{ status: number; text: string; json: Record<string, unknown> | null }> {
  const { hostname, port } = new URL(base);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), hostname, () => socket.write(head));
    let text = '';
    socket.setEncoding('latin1');
    socket.on('data', (d: string) => {
      text += d;
      const end = text.indexOf('\r\n\r\n');
      if (end === -1) return;
      const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1]);
      const length = Number(/\r\ncontent-length: (\d+)/i.exec(text.slice(0, end))?.[1] ?? 0);
      if (status >= 200 && text.length < end + 4 + length) return;
      socket.destroy();
      resolve({ status, text, json: status >= 200 && length > 0 ? (JSON.parse(text.slice(end + 4, end + 4 + length)) as Record<string, unknown>) : null });
    });
    socket.on('error', reject);
    setTimeout(() => {
      socket.destroy();
      reject(new Error(`no answer to the head; got ${JSON.stringify(text)}`));
    }, 10_000).unref();
  });
}

function multipartHead(length: number): string {
  return `POST /upload HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: ${MULTIPART_TYPE}\r\ncontent-length: ${length}\r\nexpect: 100-continue\r\n\r\n`;
}

async function assertNothingLeft(server: TestServer): Promise<void> {
  assert.deepEqual(await server.files(), []);
}

describe('the issue, tried as a new user would: MAX_FILE_BYTES=4KiB', () => {
  let server: TestServer;
  let dir: string;
  before(async () => {
    server = await startServer({ MAX_FILE_BYTES: '4KiB' });
    dir = await mkdtemp(join(tmpdir(), 'sluice-limits-'));
  });
  after(async () => {
    await server.close();
    await rm(dir, { recursive: true, force: true });
  });

  async function fileOf(name: string, size: number): Promise<{ path: string; data: Buffer }> {
    const data = seededBytes(size, size);
    const path = join(dir, name);
    await writeFile(path, data);
    return { path, data };
  }

  test('curl -F with a file of exactly 4096 bytes is stored (it was 413 REQUEST_TOO_LARGE)', { skip: noCurl }, async () => {
    const f = await fileOf('exact.bin', 4096);
    const { status, json } = await curl(['-F', `file=@${f.path}`, '-F', 'note=v1', `${server.url}/upload`]);
    assert.equal(status, 201, JSON.stringify(json));
    const files = json.files as Array<{ size: number; sha256: string; filename: string }>;
    assert.equal(files.length, 1);
    assert.equal(files[0]?.size, 4096);
    assert.equal(files[0]?.sha256, sha256(f.data));
    assert.equal(files[0]?.filename, 'exact.bin');
  });

  test('curl -F with 4097 bytes: 413 FILE_TOO_LARGE naming MAX_FILE_BYTES, nothing stored', { skip: noCurl }, async () => {
    const before = await server.files();
    const f = await fileOf('over.bin', 4097);
    const { status, json } = await curl(['-F', `file=@${f.path}`, `${server.url}/upload`]);
    assert.equal(status, 413);
    assert.equal(errorOf(json).code, 'FILE_TOO_LARGE');
    assert.deepEqual(await server.files(), before);
  });

  test('raw body (curl --data-binary): 4096 bytes stored, 4097 refused with FILE_TOO_LARGE', { skip: noCurl }, async () => {
    const exact = await fileOf('raw-exact.bin', 4096);
    const ok = await curl(['--data-binary', `@${exact.path}`, '-H', 'content-type: application/octet-stream', `${server.url}/upload`]);
    assert.equal(ok.status, 201);
    assert.equal((ok.json.files as Array<{ size: number }>)[0]?.size, 4096);
    const over = await fileOf('raw-over.bin', 4097);
    const no = await curl(['--data-binary', `@${over.path}`, '-H', 'content-type: application/octet-stream', `${server.url}/upload`]);
    assert.equal(no.status, 413);
    assert.equal(errorOf(no.json).code, 'FILE_TOO_LARGE');
    assert.match(errorOf(no.json).message, /MAX_FILE_BYTES/);
  });

  test('raw body streamed chunked: 4096 bytes stored, 4097 cut with FILE_TOO_LARGE', async () => {
    const data = seededBytes(3, 4097);
    const ok = await rawRequest(server.url, '/upload', { method: 'POST', body: [data.subarray(0, 2000), data.subarray(2000, 4096)], chunked: true });
    assert.equal(ok.status, 201, ok.body.toString());
    const before = await server.files();
    const no = await rawRequest(server.url, '/upload', { method: 'POST', body: [data.subarray(0, 2000), data.subarray(2000)], chunked: true });
    assertError(no, 413, 'FILE_TOO_LARGE');
    assert.deepEqual(await server.files(), before);
  });

  test('a multipart file of 4097 bytes sent chunked (no length to check up front): FILE_TOO_LARGE', async () => {
    const body = multipartBody(BOUNDARY, [filePart('f', 'f.bin', seededBytes(4, 4097))]);
    const res = await rawRequest(server.url, '/upload', { method: 'POST', headers: { 'content-type': MULTIPART_TYPE }, body: [body], chunked: true });
    assertError(res, 413, 'FILE_TOO_LARGE');
  });
});

describe('several files, each within MAX_FILE_BYTES, are one request', () => {
  test('three files whose sum is over MAX_FILE_BYTES: stored (MAX_REQUEST_BYTES no longer defaults to MAX_FILE_BYTES)', async () => {
    const server = await startServer({ MAX_FILE_BYTES: '64KiB', MAX_FILES: '10' });
    try {
      const files = [1, 2, 3].map((i) => seededBytes(10 + i, 64 * KiB));
      const res = await rawRequest(server.url, '/upload', {
        method: 'POST',
        headers: { 'content-type': MULTIPART_TYPE },
        body: multipartBody(BOUNDARY, files.map((data, i) => filePart(`f${i}`, `f${i}.bin`, data))),
      });
      assert.equal(res.status, 201, res.body.toString());
      const answer = JSON.parse(res.body.toString()) as { files: Array<{ sha256: string; size: number }> };
      assert.deepEqual(
        answer.files.map((f) => f.sha256),
        files.map((d) => sha256(d)),
      );
    } finally {
      await server.close();
    }
  });

  test('three 500 MiB files under MAX_FILE_BYTES=1GiB, MAX_FILES=10: the declared length gets 100 Continue, not 413', async () => {
    const server = await startServer({ MAX_FILE_BYTES: '1GiB', MAX_FILES: '10' });
    try {
      const declared = 3 * 500 * MiB + 3 * 200 + 100; // three files and their part headers
      const { status, text } = await firstAnswer(server.url, multipartHead(declared));
      assert.equal(status, 100, text);
    } finally {
      await server.close();
    }
  });
});

describe('too many files is TOO_MANY_FILES, not "too large"', () => {
  test('MAX_FILE_BYTES=4KiB, MAX_FILES=2: three files of 4 KiB (curl -F) are TOO_MANY_FILES', { skip: noCurl }, async () => {
    const server = await startServer({ MAX_FILE_BYTES: '4KiB', MAX_FILES: '2' });
    const dir = await mkdtemp(join(tmpdir(), 'sluice-limits-'));
    try {
      const args: string[] = [];
      for (const i of [1, 2, 3]) {
        const path = join(dir, `f${i}.bin`);
        await writeFile(path, seededBytes(i, 4096));
        args.push('-F', `f${i}=@${path}`);
      }
      const { status, json } = await curl([...args, `${server.url}/upload`]);
      assert.equal(status, 413);
      assert.equal(errorOf(json).code, 'TOO_MANY_FILES');
      assert.match(errorOf(json).message, /2 files/);
      await assertNothingLeft(server);
    } finally {
      await server.close();
      await rm(dir, { recursive: true, force: true });
    }
  });

  test('regression: a file after MAX_FILES files and MAX_FIELDS fields is TOO_MANY_FILES (was TOO_MANY_PARTS)', async () => {
    const server = await startServer({ MAX_FILES: '2', MAX_FIELDS: '1' });
    try {
      const parts = [filePart('a', 'a.bin', 'a'), filePart('b', 'b.bin', 'b'), fieldPart('note', 'x'), filePart('c', 'c.bin', 'c')];
      const res = await rawRequest(server.url, '/upload', { method: 'POST', headers: { 'content-type': MULTIPART_TYPE }, body: multipartBody(BOUNDARY, parts) });
      assertError(res, 413, 'TOO_MANY_FILES');
      const fields = [filePart('a', 'a.bin', 'a'), fieldPart('n1', 'x'), filePart('b', 'b.bin', 'b'), fieldPart('n2', 'y')];
      const res2 = await rawRequest(server.url, '/upload', { method: 'POST', headers: { 'content-type': MULTIPART_TYPE }, body: multipartBody(BOUNDARY, fields) });
      assertError(res2, 413, 'TOO_MANY_FIELDS');
      await assertNothingLeft(server);
    } finally {
      await server.close();
    }
  });
});

describe('the declared-length bound of a multipart body (README: how it is computed)', () => {
  const env = { MAX_FILE_BYTES: '1MiB', MAX_FILES: '3', MAX_FIELDS: '5', MAX_FIELD_BYTES: '1KiB', MAX_TOTAL_FIELD_BYTES: '8MiB', MAX_PART_HEADER_BYTES: '2KiB' };
  // Written out from the README, not taken from the code: MAX_FILES × MAX_FILE_BYTES, field
  // values (the lesser of MAX_TOTAL_FIELD_BYTES and MAX_FIELDS × MAX_FIELD_BYTES), per part a
  // delimiter line (CRLF -- 70-char boundary, 256 bytes of padding, CRLF) and a header block,
  // the close delimiter line, 64 KiB of preamble and 64 KiB of epilogue.
  const delimiterLine = 2 + 2 + 70 + 256 + 2;
  const bound = 3 * MiB + Math.min(8 * MiB, 5 * KiB) + (3 + 5) * (delimiterLine + 2 * KiB) + delimiterLine + 64 * KiB + 64 * KiB;
  let server: TestServer;
  before(async () => (server = await startServer(env)));
  after(() => server.close());

  test('declared exactly at the bound: 100 Continue', async () => {
    const { status, text } = await firstAnswer(server.url, multipartHead(bound));
    assert.equal(status, 100, text);
  });

  test('one byte over: 413 REQUEST_TOO_LARGE before the body (no 100 Continue), saying why', async () => {
    const { status, text, json } = await firstAnswer(server.url, multipartHead(bound + 1));
    assert.equal(status, 413, text);
    assert.equal(errorOf(json ?? {}).code, 'REQUEST_TOO_LARGE');
    assert.match(errorOf(json ?? {}).message, new RegExp(`over ${bound} bytes.*MAX_FILES 3`));
    await assertNothingLeft(server);
  });
});

describe('MAX_REQUEST_BYTES, when set, limits the whole body and names itself', () => {
  let server: TestServer;
  before(async () => (server = await startServer({ MAX_REQUEST_BYTES: '100KiB' })));
  after(() => server.close());

  test('declared over it: 413 REQUEST_TOO_LARGE naming MAX_REQUEST_BYTES, before the body', async () => {
    const { status, json } = await firstAnswer(server.url, multipartHead(100 * KiB + 1));
    assert.equal(status, 413);
    assert.equal(errorOf(json ?? {}).code, 'REQUEST_TOO_LARGE');
    assert.match(errorOf(json ?? {}).message, /MAX_REQUEST_BYTES/);
  });

  test('streamed past it (chunked multipart, two files of 60 KiB): REQUEST_TOO_LARGE, nothing left', async () => {
    const body = multipartBody(BOUNDARY, [filePart('a', 'a.bin', seededBytes(1, 60 * KiB)), filePart('b', 'b.bin', seededBytes(2, 60 * KiB))]);
    const res = await rawRequest(server.url, '/upload', { method: 'POST', headers: { 'content-type': MULTIPART_TYPE }, body: [body.subarray(0, 50 * KiB), body.subarray(50 * KiB)], chunked: true });
    assertError(res, 413, 'REQUEST_TOO_LARGE');
    assert.match(JSON.parse(res.body.toString()).error.message, /MAX_REQUEST_BYTES/);
    await assertNothingLeft(server);
  });

  test('a raw body under it is stored', async () => {
    const res: RawResponse = await rawRequest(server.url, '/upload', { method: 'POST', body: seededBytes(5, 100 * KiB) });
    assert.equal(res.status, 201);
  });
});
