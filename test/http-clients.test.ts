/**
 * Real clients against GET/HEAD /files/:id and GET /fetch over real sockets: curl (ranges,
 * multi-range, resume with -C -, -z, -O -J, --compressed, -I), wget (-c resume,
 * --content-disposition) and Python's urllib. A client that is not installed skips its tests.
 */
import { strict as assert } from 'node:assert';
import { execFile } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test, type TestContext } from 'node:test';
import { startServer, type TestServer } from './helpers/server.js';
import { rawRequest, seededBytes } from './helpers/http.js';

interface Run {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

function run(cmd: string, args: readonly string[], cwd: string): Promise<Run> {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { cwd, timeout: 30_000, maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
      if (err !== null && typeof err.code !== 'number') return reject(err);
      resolve({ code: err === null ? 0 : (err.code as number), stdout, stderr });
    });
  });
}

async function have(cmd: string): Promise<boolean> {
  try {
    return (await run(cmd, ['--version'], tmpdir())).code === 0;
  } catch {
    return false;
  }
}

const data = seededBytes(77, 3 * 1024 * 1024 + 5);
let server: TestServer;
let work: string;
let id: string;
let created: string;
let namedId: string;
let hasCurl = false;
let hasWget = false;
let hasPython = false;
/** An origin whose Content-Length promises more than it sends. */
let liar: Server;
let liarUrl: string;

async function store(body: Buffer, filename: string, contentType = 'application/octet-stream'): Promise<{ id: string; created: string }> {
  const res = await rawRequest(server.url, `/upload?filename=${encodeURIComponent(filename)}`, { method: 'POST', headers: { 'content-type': contentType }, body });
  assert.equal(res.status, 201);
  const file = (JSON.parse(res.body.toString('utf8')) as { files: Array<{ id: string }> }).files[0] as { id: string };
  const list = JSON.parse((await rawRequest(server.url, '/files')).body.toString('utf8')) as { files: Array<{ id: string; created: string }> };
  return list.files.find((f) => f.id === file.id) as { id: string; created: string };
}

before(async () => {
  [hasCurl, hasWget, hasPython] = await Promise.all([have('curl'), have('wget'), have('python3')]);
  server = await startServer({ FETCH_ALLOW: '127.0.0.1', FETCH_TIMEOUT_MS: '2000' });
  work = await mkdtemp(join(tmpdir(), 'sluice-clients-'));
  ({ id, created } = await store(data, 'weights.bin'));
  namedId = (await store(Buffer.from('bonjour\n'), 'naïve "quoted" résumé.txt', 'text/plain')).id;
  liar = createServer((socket) => {
    socket.on('error', () => {});
    socket.once('data', () => {
      socket.write('HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: 100000\r\nConnection: close\r\n\r\n');
      socket.end(Buffer.alloc(5000, 0x61));
    });
  });
  liar.listen(0, '127.0.0.1');
  await once(liar, 'listening');
  const address = liar.address();
  liarUrl = `http://127.0.0.1:${typeof address === 'object' && address !== null ? address.port : 0}/short.bin`;
});
after(async () => {
  await server.close();
  liar.close();
  await rm(work, { recursive: true, force: true });
});

function fileUrl(fileId = id): string {
  return `${server.url}/files/${fileId}`;
}

function fetchUrl(target: string): string {
  return `${server.url}/fetch?url=${encodeURIComponent(target)}`;
}

/** A fresh directory under the test's temp dir. */
async function dir(): Promise<string> {
  return mkdtemp(join(work, 'run-'));
}

function need(t: TestContext, ok: boolean, what: string): boolean {
  if (!ok) t.skip(`${what} is not installed`);
  return ok;
}

describe('curl', () => {
  for (const [range, start, end] of [
    ['0-99', 0, 99],
    ['-100', data.length - 100, data.length - 1],
    ['100-', 100, data.length - 1],
  ] as const) {
    test(`-r ${range} → 206 with exactly bytes ${start}-${end}`, async (t) => {
      if (!need(t, hasCurl, 'curl')) return;
      const cwd = await dir();
      const r = await run('curl', ['-sS', '-r', range, '-o', 'out', '-w', '%{http_code} %{content_type}', fileUrl()], cwd);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout, '206 application/octet-stream');
      assert.ok((await readFile(join(cwd, 'out'))).equals(data.subarray(start, end + 1)));
    });
  }

  test('-r 0-1,5-6 → 206 multipart/byteranges holding both ranges', async (t) => {
    if (!need(t, hasCurl, 'curl')) return;
    const cwd = await dir();
    const r = await run('curl', ['-sS', '-r', '0-1,5-6', '-o', 'out', '-w', '%{http_code}|%{content_type}|%{size_download}', fileUrl()], cwd);
    assert.equal(r.code, 0, r.stderr);
    const [status, type, size] = r.stdout.split('|');
    assert.equal(status, '206');
    assert.match(type ?? '', /^multipart\/byteranges; boundary=[0-9a-f]+$/);
    const body = await readFile(join(cwd, 'out'));
    assert.equal(String(body.length), size);
    assert.ok(body.includes(`content-range: bytes 0-1/${data.length}`));
    assert.ok(body.includes(`content-range: bytes 5-6/${data.length}`));
    assert.ok(body.includes(Buffer.concat([Buffer.from('\r\n\r\n'), data.subarray(0, 2), Buffer.from('\r\n--')])));
    assert.ok(body.includes(Buffer.concat([Buffer.from('\r\n\r\n'), data.subarray(5, 7), Buffer.from('\r\n--')])));
  });

  test('-C - resumes a partial file to the exact bytes; on a complete file it is a no-op (416 understood)', async (t) => {
    if (!need(t, hasCurl, 'curl')) return;
    const cwd = await dir();
    await writeFile(join(cwd, 'w.bin'), data.subarray(0, 1_234_567));
    const r = await run('curl', ['-sS', '-C', '-', '-o', 'w.bin', '-w', '%{http_code}', fileUrl()], cwd);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, '206');
    assert.ok((await readFile(join(cwd, 'w.bin'))).equals(data));
    const again = await run('curl', ['-sS', '-C', '-', '-o', 'w.bin', '-w', '%{http_code}', fileUrl()], cwd);
    assert.equal(again.code, 0, again.stderr);
    assert.equal(again.stdout, '416');
    assert.ok((await readFile(join(cwd, 'w.bin'))).equals(data));
  });

  test('-z with Last-Modified → 304 and nothing written; -z a day earlier → 200', async (t) => {
    if (!need(t, hasCurl, 'curl')) return;
    const cwd = await dir();
    const r = await run('curl', ['-sS', '-z', new Date(created).toUTCString(), '-o', 'z.bin', '-w', '%{http_code}', fileUrl()], cwd);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, '304');
    assert.ok(!(await readdir(cwd)).includes('z.bin'));
    const older = await run('curl', ['-sS', '-z', new Date(Date.parse(created) - 86_400_000).toUTCString(), '-o', 'z.bin', '-w', '%{http_code}', fileUrl()], cwd);
    assert.equal(older.stdout, '200');
    assert.ok((await readFile(join(cwd, 'z.bin'))).equals(data));
  });

  test('-O -J saves under the Content-Disposition name (the ASCII fallback: curl does not read filename*), never a path', async (t) => {
    if (!need(t, hasCurl, 'curl')) return;
    const cwd = await dir();
    const r = await run('curl', ['-sS', '-O', '-J', fileUrl(namedId)], cwd);
    assert.equal(r.code, 0, r.stderr);
    const names = await readdir(cwd);
    assert.deepEqual(names, ['na_ve _quoted_ r_sum_.txt']);
    assert.equal(await readFile(join(cwd, names[0] as string), 'utf8'), 'bonjour\n');
  });

  test('--compressed: sluice sends the stored bytes, identity, and curl takes them as they are', async (t) => {
    if (!need(t, hasCurl, 'curl')) return;
    const cwd = await dir();
    const r = await run('curl', ['-sS', '--compressed', '-D', 'headers', '-o', 'c.bin', fileUrl()], cwd);
    assert.equal(r.code, 0, r.stderr);
    assert.doesNotMatch(await readFile(join(cwd, 'headers'), 'latin1'), /content-encoding/i);
    assert.ok((await readFile(join(cwd, 'c.bin'))).equals(data));
  });

  test('-I (HEAD): the GET headers, Content-Length the file size', async (t) => {
    if (!need(t, hasCurl, 'curl')) return;
    const r = await run('curl', ['-sS', '-I', fileUrl()], work);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^HTTP\/1\.1 200 /);
    assert.match(r.stdout, new RegExp(`\\r\\ncontent-length: ${data.length}\\r\\n`, 'i'));
    assert.match(r.stdout, /\r\naccept-ranges: bytes\r\n/i);
  });

  test('through /fetch: -C - resumes from a range-capable origin (sluice itself); a complete file is a no-op', async (t) => {
    if (!need(t, hasCurl, 'curl')) return;
    const cwd = await dir();
    await writeFile(join(cwd, 'f.bin'), data.subarray(0, 777_777));
    const r = await run('curl', ['-sS', '-C', '-', '-o', 'f.bin', '-w', '%{http_code}', fetchUrl(fileUrl())], cwd);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, '206');
    assert.ok((await readFile(join(cwd, 'f.bin'))).equals(data));
    const again = await run('curl', ['-sS', '-C', '-', '-o', 'f.bin', '-w', '%{http_code}', fetchUrl(fileUrl())], cwd);
    assert.equal(again.code, 0, again.stderr);
    assert.equal(again.stdout, '416', "the origin's 416 is relayed, not turned into a 502");
  });

  test('through /fetch: -O -J names the file after the origin, not "fetch"', async (t) => {
    if (!need(t, hasCurl, 'curl')) return;
    const cwd = await dir();
    const r = await run('curl', ['-sS', '-O', '-J', fetchUrl(fileUrl())], cwd);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(await readdir(cwd), ['weights.bin']);
  });

  test('through /fetch: an origin that sends less than its Content-Length breaks the transfer (curl exit 18), never a clean short file', async (t) => {
    if (!need(t, hasCurl, 'curl')) return;
    const cwd = await dir();
    const r = await run('curl', ['-sS', '-o', 'short.bin', fetchUrl(liarUrl)], cwd);
    assert.equal(r.code, 18, `curl exit ${r.code}: ${r.stderr}`);
  });
});

describe('wget', () => {
  test('-c resumes a partial file to the exact bytes; on a complete file: "already fully retrieved", exit 0', async (t) => {
    if (!need(t, hasWget, 'wget')) return;
    const cwd = await dir();
    await writeFile(join(cwd, 'w.bin'), data.subarray(0, 2_345_678));
    const r = await run('wget', ['-c', '-O', 'w.bin', fileUrl()], cwd);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /206 Partial Content/);
    assert.ok((await readFile(join(cwd, 'w.bin'))).equals(data));
    const again = await run('wget', ['-c', '-O', 'w.bin', fileUrl()], cwd);
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stderr, /already fully retrieved/);
    // The same through /fetch: the origin's 416 must reach wget as a 416.
    const via = await run('wget', ['-c', '-O', 'w.bin', fetchUrl(fileUrl())], cwd);
    assert.equal(via.code, 0, via.stderr);
    assert.match(via.stderr, /already fully retrieved/);
  });

  test('--content-disposition saves under the exact UTF-8 name (from filename*)', async (t) => {
    if (!need(t, hasWget, 'wget')) return;
    const cwd = await dir();
    const r = await run('wget', ['-q', '--content-disposition', fileUrl(namedId)], cwd);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(await readdir(cwd), ['naïve "quoted" résumé.txt']);
  });
});

describe('Python urllib', () => {
  test('Range: bytes=10-19 → 206 with Content-Range and 10 bytes; If-None-Match → 304 (HTTPError)', async (t) => {
    if (!need(t, hasPython, 'python3')) return;
    const script = [
      'import sys, urllib.request, urllib.error',
      'r = urllib.request.urlopen(urllib.request.Request(sys.argv[1], headers={"Range": "bytes=10-19"}))',
      'body = r.read()',
      'print(r.status, r.headers["Content-Range"], body.hex())',
      'try:',
      '    urllib.request.urlopen(urllib.request.Request(sys.argv[1], headers={"If-None-Match": r.headers["ETag"]}))',
      'except urllib.error.HTTPError as e:',
      '    print(e.code)',
    ].join('\n');
    const r = await run('python3', ['-c', script, fileUrl()], work);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, `206 bytes 10-19/${data.length} ${data.subarray(10, 20).toString('hex')}\n304\n`);
  });
});
