/**
 * The server as a whole: routing answers (404, 405 + Allow, /healthz), and the built entry
 * point `node dist/server.js` as a user runs it: --help, invalid settings (exit 2, one line
 * naming the setting), size suffixes, env vs flag precedence, DATA_DIR creation, and a
 * graceful exit on SIGTERM (stop accepting, finish what is in flight, exit 0).
 *
 * The process tests need a build: `npx tsc -p tsconfig.json` (`npm test` does it first).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import { Agent, request as httpRequest } from 'node:http';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { mountOrSkip, unmount } from './helpers/mount.js';
import { freePort } from './helpers/ports.js';
import { startServer, spawnServer, type TestServer } from './helpers/server.js';
import { BOUNDARY, MULTIPART_TYPE, assertError, fieldPart, filePart, multipartBody, poll, rawRequest, seededBytes, sha256, type RawResponse } from './helpers/http.js';

const SERVER_JS = resolve('dist/server.js');

interface Exit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs `node dist/server.js args` to its exit (killed after 15 s: it was expected to exit by itself). */
async function runToExit(args: readonly string[], env: Record<string, string> = {}, cwd?: string): Promise<Exit> {
  const child = spawn(process.execPath, [SERVER_JS, ...args], {
    env: { ...withoutSettings(process.env), PORT: '0', LOG_LEVEL: 'silent', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
    cwd,
  });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
  const [code, signal] = (await once(child, 'close')) as [number | null, NodeJS.Signals | null];
  clearTimeout(timer);
  return { code, signal, stdout, stderr };
}

/** The environment minus any sluice setting the test runner itself may carry. */
function withoutSettings(env: NodeJS.ProcessEnv): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(env)) {
    if (v !== undefined && !/^(PORT|HOST|DATA_DIR|MAX_[A-Z_]+|LOG_LEVEL|LOG_FORMAT|AUTH_TOKEN|LINK_SECRET|PUBLIC_URL|TLS_CERT|TLS_KEY|FSYNC|DIRECT_IO|STORE|S3_[A-Z_]+)$/.test(k)) out[k] = v;
  }
  return out;
}

/** The effective configuration the process logged in its `listening` line. */
function loggedConfig(stdout: string): Record<string, unknown> {
  const line = stdout.split('\n').find((l) => l.includes('"msg":"listening"'));
  assert.ok(line !== undefined, `no listening line in ${stdout}`);
  const parsed = JSON.parse(line) as { config: Record<string, unknown> };
  return parsed.config;
}

/** Resolves true when a TCP connection to `port` is refused. */
function refused(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(false);
    });
    socket.once('error', (err: NodeJS.ErrnoException) => resolve(err.code === 'ECONNREFUSED'));
  });
}

/** Sends `bytes`, half-closes (FIN), and returns whatever comes back until the server closes. */
function halfCloseExchange(url: string, bytes: Buffer): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port: portOf(url) }, () => socket.end(bytes));
    const received: Buffer[] = [];
    socket.on('data', (d: Buffer) => received.push(d));
    socket.on('error', reject);
    socket.on('close', () => resolve(Buffer.concat(received).toString('latin1')));
  });
}

function portOf(url: string): number {
  return Number(new URL(url).port);
}

const twoFiles = (): Buffer => multipartBody(BOUNDARY, [filePart('a', 'a.txt', 'one'), filePart('b', 'b.txt', 'two')]);
const postTwoFiles = (url: string): Promise<RawResponse> =>
  rawRequest(url, '/upload', { method: 'POST', headers: { 'content-type': MULTIPART_TYPE }, body: twoFiles() });

let scratch: string;
before(async () => {
  assert.ok(existsSync(SERVER_JS), `${SERVER_JS} is missing: build first (npx tsc -p tsconfig.json)`);
  scratch = await mkdtemp(join(tmpdir(), 'sluice-server-e2e-'));
});
after(async () => {
  await rm(scratch, { recursive: true, force: true });
});

describe('routing', () => {
  let server: TestServer;
  before(async () => {
    server = await startServer();
  });
  after(() => server.close());

  test('GET /healthz → 200 {"status":"ok"} (HEAD too, without a body)', async () => {
    const res = await fetch(`${server.url}/healthz`);
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /^application\/json/);
    assert.deepEqual(await res.json(), { status: 'ok' });
    const head = await rawRequest(server.url, '/healthz', { method: 'HEAD' });
    assert.equal(head.status, 200);
    assert.equal(head.body.length, 0);
  });

  test('HEAD /files → 200 with the headers of GET /files and no body (RFC 9110 9.3.2)', async () => {
    const get = await rawRequest(server.url, '/files');
    const head = await rawRequest(server.url, '/files', { method: 'HEAD' });
    assert.equal(head.status, 200);
    assert.equal(head.headers['content-type'], get.headers['content-type']);
    assert.equal(head.headers['content-length'], String(get.body.length));
    assert.equal(head.body.length, 0);
  });

  test('a client that half-closes after its request (shutdown(SHUT_WR), nc -q) still gets its answer, and the file is stored', async () => {
    const body = multipartBody(BOUNDARY, [filePart('f', 'a.txt', 'hello')]);
    const head = `POST /upload HTTP/1.1\r\nHost: x\r\nContent-Type: ${MULTIPART_TYPE}\r\nContent-Length: ${body.length}\r\n\r\n`;
    const answer = await halfCloseExchange(server.url, Buffer.concat([Buffer.from(head, 'latin1'), body]));
    assert.match(answer, /^HTTP\/1\.1 201 /);
    const stored = JSON.parse(answer.slice(answer.indexOf('\r\n\r\n') + 4)) as { files: Array<{ id: string; size: number }> };
    assert.equal(stored.files[0]?.size, 5);
    assert.ok((await server.files()).includes(stored.files[0]?.id as string));
  });

  test('a client that half-closes in the middle of its body gets no file stored, and the server goes on', async () => {
    const body = multipartBody(BOUNDARY, [filePart('f', 'a.txt', 'x'.repeat(100_000))]);
    const head = `POST /upload HTTP/1.1\r\nHost: x\r\nContent-Type: ${MULTIPART_TYPE}\r\nContent-Length: ${body.length}\r\n\r\n`;
    const before = (await server.files()).sort();
    await halfCloseExchange(server.url, Buffer.concat([Buffer.from(head, 'latin1'), body.subarray(0, 50_000)]));
    await poll('the partial file to be removed', async () => JSON.stringify((await server.files()).sort()) === JSON.stringify(before), 5_000);
    assert.equal((await rawRequest(server.url, '/healthz')).status, 200);
  });

  for (const path of ['/nope', '/healthz/extra', '/files-x', '/ui/nope.js']) {
    test(`unknown route ${path} → 404 JSON`, async () => {
      assertError(await rawRequest(server.url, path), 404, 'NOT_FOUND');
    });
  }

  const wrongMethods: ReadonlyArray<{ method: string; path: string; allow: string[] }> = [
    { method: 'GET', path: '/upload', allow: ['POST', 'PUT'] },
    { method: 'DELETE', path: '/healthz', allow: ['GET', 'HEAD'] },
    { method: 'POST', path: '/files', allow: ['GET', 'HEAD'] },
    { method: 'PUT', path: `/files/${'A'.repeat(22)}`, allow: ['DELETE', 'GET', 'HEAD'] },
    { method: 'PATCH', path: '/upload', allow: ['POST', 'PUT'] },
    // PUT /upload/<name> is curl -T's upload (issue #17); it was a 404.
    { method: 'GET', path: '/upload/x', allow: ['PUT'] },
  ];
  for (const c of wrongMethods) {
    test(`${c.method} ${c.path} → 405 with Allow: ${c.allow.join(', ')}`, async () => {
      const res = await rawRequest(server.url, c.path, { method: c.method });
      assertError(res, 405, 'METHOD_NOT_ALLOWED');
      const allow = String(res.headers.allow).split(',').map((m) => m.trim()).sort();
      assert.deepEqual(allow, c.allow);
    });
  }
});

// Each case is its own process: run them side by side, node's start-up time dominates.
describe('node dist/server.js: settings', { concurrency: 4 }, () => {
  test('--help lists every setting (env name and flag) with its default, and exits 0', async () => {
    const out = await runToExit(['--help']);
    assert.equal(out.code, 0, out.stderr);
    assert.equal(out.stderr, '');
    const lines = out.stdout.split('\n');
    // Issue #2's settings and defaults.
    const expected: ReadonlyArray<[string, string, RegExp]> = [
      ['PORT', '--port', /default 8080\b/],
      ['HOST', '--host', /default 127\.0\.0\.1\b/],
      ['DATA_DIR', '--data-dir', /default \.\/data\b/],
      ['MAX_FILE_BYTES', '--max-file-bytes', /default (unlimited|none|no limit)/],
      ['MAX_FILES', '--max-files', /default 100\b/],
      ['MAX_FIELDS', '--max-fields', /default 1000\b/],
      ['MAX_FIELD_BYTES', '--max-field-bytes', /default (1MiB|1 MiB|1048576)\b/],
      ['MAX_PART_HEADER_BYTES', '--max-part-header-bytes', /default (16KiB|16 KiB|16384)\b/],
    ];
    for (const [env, flag, def] of expected) {
      const line = lines.find((l) => new RegExp(`(^|\\s)${flag}\\s`).test(l) && new RegExp(`\\s${env}\\s`).test(l));
      assert.ok(line !== undefined, `--help has no line for ${flag} / ${env}`);
      assert.match(line, def, `default of ${env} in: ${line}`);
    }
    // And every other setting line names its default too.
    const settingLines = lines.filter((l) => /^\s+--[a-z-]+\s/.test(l));
    assert.ok(settingLines.length >= expected.length);
    for (const l of settingLines) assert.match(l, /default /, `no default in: ${l}`);
  });

  const invalid: ReadonlyArray<{ what: string; args?: string[]; env?: Record<string, string>; names: string }> = [
    { what: '--port abc', args: ['--port', 'abc'], names: 'PORT' },
    { what: 'MAX_FILES=-1', env: { MAX_FILES: '-1' }, names: 'MAX_FILES' },
    { what: 'MAX_FILE_BYTES=10XB', env: { MAX_FILE_BYTES: '10XB' }, names: 'MAX_FILE_BYTES' },
    { what: '--max-field-bytes=lots', args: ['--max-field-bytes=lots'], names: 'MAX_FIELD_BYTES' },
    { what: '--max-files with no value', args: ['--max-files'], names: 'MAX_FILES' },
    { what: 'an unknown flag --bogus', args: ['--bogus', '1'], names: '--bogus' },
  ];
  for (const c of invalid) {
    test(`${c.what} → exit 2, one line on stderr naming ${c.names}`, async () => {
      const dataDir = join(scratch, `never-${c.names.replace(/\W/g, '')}`);
      const out = await runToExit(c.args ?? [], { DATA_DIR: dataDir, ...c.env });
      assert.equal(out.signal, null, 'it exited by itself');
      assert.equal(out.code, 2, `exit code; stderr: ${out.stderr}`);
      const lines = out.stderr.split('\n').filter((l) => l !== '');
      assert.equal(lines.length, 1, `exactly one line on stderr, got ${JSON.stringify(out.stderr)}`);
      assert.ok(out.stderr.endsWith('\n'));
      assert.ok((lines[0] as string).includes(c.names), `${JSON.stringify(lines[0])} names ${c.names}`);
      assert.equal(existsSync(dataDir), false, 'nothing was started');
    });
  }

  test('a DATA_DIR that refuses O_DIRECT (ramfs): a warning at start-up, then uploads work through the page cache', async (t) => {
    const root = await mkdtemp(join(tmpdir(), 'sluice-ramfs-'));
    try {
      if (!mountOrSkip(t, 'ramfs', root)) return;
      try {
        const proc = await spawnServer({ DATA_DIR: root });
        try {
          const warning = proc.stdout().split('\n').find((l) => l.includes('O_DIRECT'));
          assert.ok(warning !== undefined, `no O_DIRECT warning in ${proc.stdout()}`);
          assert.equal(JSON.parse(warning).level, 'warn');
          const data = seededBytes(7, 3 * 1024 * 1024 + 5);
          const res = await rawRequest(proc.url, '/upload', {
            method: 'POST',
            headers: { 'content-type': MULTIPART_TYPE },
            body: multipartBody(BOUNDARY, [filePart('f', 'a.bin', data)]),
          });
          assert.equal(res.status, 201, res.body.toString('utf8'));
          assert.equal((JSON.parse(res.body.toString('utf8')) as { files: { sha256: string }[] }).files[0]?.sha256, sha256(data));
        } finally {
          assert.equal(await proc.stop(), 0);
        }
      } finally {
        unmount(root);
      }
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });

  test('size suffixes: --max-file-bytes 10GiB and MAX_FIELD_BYTES=512k are accepted and mean what they say', async () => {
    const proc = await spawnServer({ MAX_FIELD_BYTES: '512k' }, ['--max-file-bytes', '10GiB']);
    try {
      const config = loggedConfig(proc.stdout());
      assert.equal(config.maxFileBytes, 10 * 1024 ** 3);
      assert.equal(config.maxFieldBytes, 512 * 1024);
      const at = await rawRequest(proc.url, '/upload', {
        method: 'POST',
        headers: { 'content-type': MULTIPART_TYPE },
        body: multipartBody(BOUNDARY, [fieldPart('f', 'x'.repeat(512 * 1024))]),
      });
      assert.equal(at.status, 201, at.body.toString('utf8'));
      const over = await rawRequest(proc.url, '/upload', {
        method: 'POST',
        headers: { 'content-type': MULTIPART_TYPE },
        body: multipartBody(BOUNDARY, [fieldPart('f', 'x'.repeat(512 * 1024 + 1))]),
      });
      assertError(over, 413, 'FIELD_TOO_LARGE');
    } finally {
      assert.equal(await proc.stop(), 0);
    }
  });

  test('a setting works from the environment and from a flag; the flag wins', async () => {
    const envOnly = async (): Promise<void> => {
      const proc = await spawnServer({ MAX_FILES: '1' });
      try {
        assertError(await postTwoFiles(proc.url), 413, 'TOO_MANY_FILES');
      } finally {
        assert.equal(await proc.stop(), 0);
      }
    };
    const flagWins = async (args: string[]): Promise<void> => {
      const proc = await spawnServer({ MAX_FILES: '1' }, args);
      try {
        const res = await postTwoFiles(proc.url);
        assert.equal(res.status, 201, `${args.join(' ')}: ${res.body.toString('utf8')}`);
        assert.equal(loggedConfig(proc.stdout()).maxFiles, 2);
      } finally {
        assert.equal(await proc.stop(), 0);
      }
    };
    // PORT=0 in the environment, --port N on the command line: it listens on N.
    const portFlagWins = async (): Promise<void> => {
      const port = await freePort();
      const proc = await spawnServer({ PORT: '0' }, ['--port', String(port)]);
      try {
        assert.equal(portOf(proc.url), port);
        assert.equal((await rawRequest(proc.url, '/healthz')).status, 200);
      } finally {
        assert.equal(await proc.stop(), 0);
      }
    };
    await Promise.all([envOnly(), flagWins(['--max-files', '2']), flagWins(['--max-files=2']), portFlagWins()]);
  });

  test('DATA_DIR is created if missing: the default ./data under the working directory, and a nested path', async () => {
    const cwd = await mkdtemp(join(scratch, 'cwd-'));
    // As `npm start` runs it: no DATA_DIR at all (only the port is not 8080, to run anywhere).
    const child = spawn(process.execPath, [SERVER_JS, '--port', '0'], {
      cwd,
      env: { ...withoutSettings(process.env), LOG_LEVEL: 'info' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
    try {
      await poll('the server to listen', () => out.includes('"msg":"listening"'), 5_000);
      assert.ok((await stat(join(cwd, 'data'))).isDirectory(), './data was created');
      const url = /"url":"([^"]+)"/.exec(out)?.[1] as string;
      const res = await rawRequest(url, '/upload?filename=x.txt', { method: 'POST', body: Buffer.from('stored under ./data') });
      assert.equal(res.status, 201);
      const { files } = JSON.parse(res.body.toString('utf8')) as { files: Array<{ id: string }> };
      assert.deepEqual((await readdir(join(cwd, 'data'))).sort(), [files[0]?.id, `${files[0]?.id}.json`].sort());
    } finally {
      child.kill('SIGTERM');
      const [code] = (await once(child, 'exit')) as [number | null];
      assert.equal(code, 0);
    }

    const nested = join(scratch, 'a', 'b', 'c');
    const proc = await spawnServer({ DATA_DIR: nested });
    try {
      assert.ok((await stat(nested)).isDirectory());
    } finally {
      assert.equal(await proc.stop(), 0);
    }
  });
});

describe('graceful exit on SIGTERM', { concurrency: 4 }, () => {
  test('idle, with a keep-alive connection open: exits 0 promptly and the port stops accepting', async () => {
    const proc = await spawnServer();
    const port = portOf(proc.url);
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    try {
      const res = await new Promise<number>((resolve, reject) => {
        httpRequest({ host: '127.0.0.1', port, path: '/healthz', agent }, (r) => {
          r.resume();
          r.on('end', () => resolve(r.statusCode ?? 0));
        })
          .on('error', reject)
          .end();
      });
      assert.equal(res, 200);
      const started = Date.now();
      const code = await proc.stop('SIGTERM');
      const took = Date.now() - started;
      assert.equal(code, 0);
      // Well under the 5 s keep-alive timeout and the 30 s grace: the idle connection did not hold it.
      assert.ok(took < 4_000, `took ${took} ms`);
      assert.equal(await refused(port), true, 'connections are refused after exit');
    } finally {
      agent.destroy();
      if (proc.child.exitCode === null) proc.child.kill('SIGKILL');
    }
  });

  test('with an upload in flight: stops accepting at once, lets the upload finish (201), then exits 0', async () => {
    const dataDir = await mkdtemp(join(scratch, 'inflight-'));
    const proc = await spawnServer({ DATA_DIR: dataDir });
    const port = portOf(proc.url);
    const body = seededBytes(41, 2 * 1024 * 1024);
    const answer = new Promise<RawResponse>((resolve, reject) => {
      const req = httpRequest(
        { host: '127.0.0.1', port, method: 'POST', path: '/upload?filename=late.bin', agent: false, headers: { 'content-length': String(body.length) } },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, rawHeaders: res.rawHeaders, body: Buffer.concat(chunks) }));
        },
      );
      req.on('error', reject);
      req.write(body.subarray(0, body.length / 2));
      void (async () => {
        try {
          await poll('the upload to be writing', async () => (await readdir(dataDir)).some((n) => n.endsWith('.partial')));
          proc.child.kill('SIGTERM');
          await poll('the port to refuse new connections', () => refused(port));
          assert.equal(proc.child.exitCode, null, 'still running while the upload is in flight');
          req.end(body.subarray(body.length / 2));
        } catch (err) {
          req.destroy();
          reject(err);
        }
      })();
    });
    try {
      const res = await answer;
      assert.equal(res.status, 201, res.body.toString('utf8'));
      const { files } = JSON.parse(res.body.toString('utf8')) as { files: Array<{ id: string; sha256: string; size: number }> };
      assert.equal(files[0]?.sha256, sha256(body));
      assert.equal(files[0]?.size, body.length);
      const code = await proc.stop();
      assert.equal(code, 0);
      const names = (await readdir(dataDir)).sort();
      assert.deepEqual(names, [files[0]?.id, `${files[0]?.id}.json`].sort(), 'the finished upload is kept');
    } finally {
      if (proc.child.exitCode === null) proc.child.kill('SIGKILL');
    }
  });
});
