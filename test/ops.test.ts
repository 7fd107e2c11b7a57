/**
 * Operating sluice (issue 4): auth, Expect: 100-continue, limits answered before the body,
 * idle and header timeouts, keep-alive, graceful shutdown, request ids, the access log and
 * the Prometheus metrics. Real sockets on 127.0.0.1 only.
 *
 * In-process servers (startServer) for most; a child process (spawnServer, needs `dist/`) where
 * a real signal or the real stdout is the point: shutdown and the log lines.
 */
import { execFile } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, readdir, rm, statfs, writeFile } from 'node:fs/promises';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { saveStream } from '../storage/save-stream.js';
import { LocalStore } from '../storage/local-store.js';
import type { FileWriter, NewFileMeta, WriterOptions } from '../storage/store.js';
import { spawnServer, startServer, type ServerProcess, type TestServer } from './helpers/server.js';

const TOKEN = 'test-token-0123456789abcdef';
const AUTH = { authorization: `Bearer ${TOKEN}` } as const;
const AUTH_INIT = { headers: AUTH };

// ---------------------------------------------------------------------------------------------
// A raw HTTP/1.1 client: the only way to send headers without a body, read a 100 Continue,
// stall mid-body, and see exactly when the server answers or closes.
// ---------------------------------------------------------------------------------------------

interface RawHead {
  readonly status: number;
  readonly reason: string;
  /** Lower-case names; repeated headers joined with ", ". */
  readonly headers: ReadonlyMap<string, string>;
}

interface RawResponse extends RawHead {
  readonly body: Buffer;
}

class RawClient {
  readonly socket: Socket;
  // Received, not yet consumed. Chunks are joined only when a reader looks at them: joining on
  // every 'data' event would copy a large download over and over.
  private chunks: Buffer[] = [];
  private length = 0;
  private wake: () => void = () => {};
  /** The server sent FIN. */
  ended = false;
  closed = false;
  error: NodeJS.ErrnoException | null = null;

  private constructor(socket: Socket) {
    this.socket = socket;
    const notify = (): void => this.wake();
    socket.on('data', (d: Buffer) => {
      this.chunks.push(d);
      this.length += d.length;
      notify();
    });
    socket.on('end', () => {
      this.ended = true;
      notify();
    });
    socket.on('error', (e: NodeJS.ErrnoException) => {
      this.error = e;
      notify();
    });
    socket.on('close', () => {
      this.closed = true;
      notify();
    });
  }

  static async open(url: string): Promise<RawClient> {
    const u = new URL(url);
    const socket = connect(Number(u.port), u.hostname);
    await once(socket, 'connect');
    return new RawClient(socket);
  }

  /** Resolves once the bytes are handed to the kernel; rejects if the connection broke. */
  write(data: string | Buffer): Promise<void> {
    return new Promise((resolve, reject) => this.socket.write(data, (err) => (err ? reject(err) : resolve())));
  }

  /** Bytes received and not yet consumed. */
  get pending(): number {
    return this.length;
  }

  private get buffer(): Buffer {
    if (this.chunks.length !== 1) this.chunks = [Buffer.concat(this.chunks, this.length)];
    return this.chunks[0] as Buffer;
  }

  private set buffer(rest: Buffer) {
    this.chunks = [rest];
    this.length = rest.length;
  }

  /** Waits until `take` returns something (it may consume from the buffer), or fails after timeoutMs. */
  private async until<T>(take: () => T | undefined, timeoutMs: number, what: string): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const got = take();
      if (got !== undefined) return got;
      if (this.ended || this.closed) throw new Error(`connection ${this.error?.code ?? 'closed'} while waiting for ${what}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
  }

  /** Reads one response head (interim or final). */
  readHead(timeoutMs = 5_000): Promise<RawHead> {
    return this.until(
      () => {
        const end = this.buffer.indexOf('\r\n\r\n');
        if (end === -1) return undefined;
        const lines = this.buffer.subarray(0, end).toString('latin1').split('\r\n');
        this.buffer = this.buffer.subarray(end + 4);
        const m = /^HTTP\/1\.1 (\d{3}) ?(.*)$/.exec(lines[0] ?? '');
        assert.ok(m, `not a status line: ${lines[0]}`);
        const headers = new Map<string, string>();
        for (const line of lines.slice(1)) {
          const colon = line.indexOf(':');
          const name = line.slice(0, colon).trim().toLowerCase();
          const value = line.slice(colon + 1).trim();
          headers.set(name, headers.has(name) ? `${headers.get(name)}, ${value}` : value);
        }
        return { status: Number(m[1]), reason: m[2] ?? '', headers };
      },
      timeoutMs,
      'a response head',
    );
  }

  /** Reads a whole final response (Content-Length bodies only, which is all sluice sends here). */
  async readResponse(timeoutMs = 5_000): Promise<RawResponse> {
    let head = await this.readHead(timeoutMs);
    while (head.status === 100) head = await this.readHead(timeoutMs);
    const length = Number(head.headers.get('content-length') ?? '0');
    const body = await this.until(
      () => {
        if (this.buffer.length < length) return undefined;
        const b = this.buffer.subarray(0, length);
        this.buffer = this.buffer.subarray(length);
        return b;
      },
      timeoutMs,
      `${length} body bytes`,
    );
    return { ...head, body };
  }

  /** Resolves when the server has closed its side (FIN or reset); fails after timeoutMs. */
  async waitClosed(timeoutMs = 5_000): Promise<void> {
    await this.until(() => (this.ended || this.closed ? true : undefined), timeoutMs, 'the server to close').catch((err: Error) => {
      if (!(this.ended || this.closed)) throw err;
    });
  }

  destroy(): void {
    this.socket.destroy();
  }
}

/** The head of a raw upload: `Content-Length` bodies unless `extra` says otherwise. */
function uploadHead(length: number, extra: Record<string, string> = {}, path = '/upload'): string {
  const headers: Record<string, string> = { host: '127.0.0.1', 'content-type': 'application/octet-stream', 'content-length': String(length), ...extra };
  return `POST ${path} HTTP/1.1\r\n${Object.entries(headers)
    .map(([k, v]) => `${k}: ${v}\r\n`)
    .join('')}\r\n`;
}

// ---------------------------------------------------------------------------------------------
// Prometheus text exposition format 0.0.4, parsed strictly enough to catch malformed output.
// ---------------------------------------------------------------------------------------------

interface Sample {
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly value: number;
}

interface Exposition {
  /** Family name -> TYPE. */
  readonly types: ReadonlyMap<string, string>;
  readonly samples: readonly Sample[];
  /** The value of the one sample with exactly these labels (undefined: no such sample). */
  value(name: string, labels?: Record<string, string>): number | undefined;
  /** Every sample of `name` whose labels include `labels`. */
  select(name: string, labels?: Record<string, string>): Sample[];
}

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;

function parseLabels(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  let i = 0;
  while (i < text.length) {
    const eq = text.indexOf('=', i);
    assert.ok(eq !== -1 && text[eq + 1] === '"', `bad label set {${text}}`);
    const name = text.slice(i, eq);
    assert.match(name, /^[a-zA-Z_][a-zA-Z0-9_]*$/, `bad label name in {${text}}`);
    let value = '';
    let j = eq + 2;
    for (; j < text.length && text[j] !== '"'; j += 1) {
      if (text[j] === '\\') {
        j += 1;
        const escaped = text[j];
        assert.ok(escaped === '\\' || escaped === '"' || escaped === 'n', `bad escape in {${text}}`);
        value += escaped === 'n' ? '\n' : escaped;
      } else value += text[j];
    }
    assert.equal(text[j], '"', `unterminated label value in {${text}}`);
    assert.equal(Object.hasOwn(out, name), false, `label ${name} repeated`);
    out[name] = value;
    i = j + 1;
    if (text[i] === ',') i += 1;
  }
  return out;
}

function parseExposition(text: string): Exposition {
  assert.ok(text.endsWith('\n'), 'exposition ends with a newline');
  const types = new Map<string, string>();
  const samples: Sample[] = [];
  for (const line of text.slice(0, -1).split('\n')) {
    if (line.startsWith('# TYPE ')) {
      const [name, type] = line.slice(7).split(' ');
      assert.ok(name !== undefined && METRIC_NAME.test(name), line);
      assert.ok(['counter', 'gauge', 'histogram', 'summary', 'untyped'].includes(type ?? ''), line);
      assert.equal(types.has(name), false, `TYPE of ${name} given twice`);
      types.set(name, type as string);
      continue;
    }
    if (line.startsWith('#')) continue;
    assert.notEqual(line, '', 'no blank lines');
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    assert.ok(m, `malformed sample line: ${line}`);
    const value = m[3] === '+Inf' ? Infinity : m[3] === '-Inf' ? -Infinity : Number(m[3]);
    assert.ok(!Number.isNaN(value) || m[3] === 'NaN', `bad value: ${line}`);
    samples.push({ name: m[1] as string, labels: parseLabels(m[2] ?? ''), value });
  }
  // Every sample belongs to a declared family (histograms own _bucket, _sum and _count).
  for (const s of samples) {
    const family = types.has(s.name) ? s.name : s.name.replace(/_(bucket|sum|count)$/, '');
    assert.ok(types.has(family), `sample ${s.name} has no # TYPE`);
    if (types.get(family) === 'counter') assert.ok(s.name.endsWith('_total'), `counter ${s.name} ends in _total`);
  }
  const matches = (s: Sample, labels: Record<string, string>): boolean => Object.entries(labels).every(([k, v]) => s.labels[k] === v);
  return {
    types,
    samples,
    select: (name, labels = {}) => samples.filter((s) => s.name === name && matches(s, labels)),
    value(name, labels = {}) {
      const exact = samples.filter((s) => s.name === name && matches(s, labels) && Object.keys(s.labels).length === Object.keys(labels).length);
      assert.ok(exact.length <= 1, `${name} ${JSON.stringify(labels)} appears ${exact.length} times`);
      return exact[0]?.value;
    },
  };
}

async function scrape(url: string, headers: Record<string, string> = {}): Promise<Exposition> {
  const res = await fetch(`${url}/metrics`, { headers });
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
  return parseExposition(await res.text());
}

// ---------------------------------------------------------------------------------------------
// Small helpers
// ---------------------------------------------------------------------------------------------

/** Polls until `check` returns true (or fails after timeoutMs). */
async function waitFor(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

/** Stored files (records and bytes) and temporaries alike. */
async function namesIn(dir: string): Promise<string[]> {
  return (await readdir(dir)).sort();
}

interface UploadAnswer {
  readonly files: Array<{ id: string; size: number }>;
}

async function uploadRaw(url: string, body: Buffer, headers: Record<string, string> = {}): Promise<Response> {
  return fetch(`${url}/upload`, { method: 'POST', body, headers: { 'content-type': 'application/octet-stream', ...headers } });
}

function run(cmd: string, args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(cmd, args, { encoding: 'utf8' }, (err, stdout, stderr) => {
      const code = err === null ? 0 : typeof err.code === 'number' ? err.code : null;
      resolve({ code, stdout, stderr });
    });
  });
}

const hasCurl = (await run('curl', ['--version'])).code === 0 ? false : 'curl is not installed';

/** Parses every JSON line a spawned server printed. */
function logLines(proc: ServerProcess): Array<Record<string, unknown>> {
  return proc
    .stdout()
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

function exitCode(proc: ServerProcess, timeoutMs: number): Promise<number | null> {
  if (proc.child.exitCode !== null) return Promise.resolve(proc.child.exitCode);
  return Promise.race([
    once(proc.child, 'exit').then(([code]) => code as number | null),
    sleep(timeoutMs).then(() => {
      throw new Error(`server still running ${timeoutMs} ms later`);
    }),
  ]);
}

// =============================================================================================

describe('AUTH_TOKEN', () => {
  let s: TestServer;
  before(async () => (s = await startServer({ AUTH_TOKEN: TOKEN })));
  after(() => s.close());

  test('a route without the token answers 401 with WWW-Authenticate: Bearer', async () => {
    const res = await fetch(`${s.url}/metrics`);
    assert.equal(res.status, 401);
    assert.match(res.headers.get('www-authenticate') ?? '', /^Bearer\b/);
    assert.equal(((await res.json()) as { error: { code: string } }).error.code, 'UNAUTHORIZED');
  });

  test('/healthz needs no token', async () => {
    const res = await fetch(`${s.url}/healthz`);
    assert.equal(res.status, 200);
  });

  test('the right token passes (the scheme is case-insensitive, RFC 7235 2.1)', async () => {
    for (const scheme of ['Bearer', 'bearer', 'BEARER']) {
      const res = await fetch(`${s.url}/metrics`, { headers: { authorization: `${scheme} ${TOKEN}` } });
      assert.equal(res.status, 200, scheme);
      await res.arrayBuffer();
    }
  });

  test('wrong tokens fail: same length, shorter, longer, empty, other schemes', async () => {
    const wrong = [
      `Bearer ${TOKEN.slice(0, -1)}X`,
      `Bearer ${TOKEN.slice(0, -1)}`,
      `Bearer ${TOKEN}0`,
      `Bearer x`,
      'Bearer ',
      `Basic ${Buffer.from(`user:${TOKEN}`).toString('base64')}`,
      TOKEN,
      `Bearer ${TOKEN} extra`,
    ];
    for (const authorization of wrong) {
      const res = await fetch(`${s.url}/metrics`, { headers: { authorization } });
      assert.equal(res.status, 401, authorization);
      assert.match(res.headers.get('www-authenticate') ?? '', /^Bearer\b/);
      await res.arrayBuffer();
    }
  });

  test('an upload without the token is refused and stores nothing', async () => {
    const res = await uploadRaw(s.url, Buffer.alloc(1024, 1));
    assert.equal(res.status, 401);
    await res.arrayBuffer();
    assert.deepEqual(await s.files(), []);
  });
});

describe('Expect: 100-continue is answered before the body', () => {
  let s: TestServer;
  const MAX = 1024 * 1024;
  before(async () => (s = await startServer({ AUTH_TOKEN: TOKEN, MAX_FILE_BYTES: String(MAX) })));
  after(() => s.close());

  /** Sends only the head and returns what the server says first, without sending a body byte. */
  async function firstAnswer(head: string): Promise<{ client: RawClient; head: RawHead }> {
    const client = await RawClient.open(s.url);
    await client.write(head);
    return { client, head: await client.readHead(2_000) };
  }

  test('a good request gets 100 Continue and nothing else until the body comes', async () => {
    const { client, head } = await firstAnswer(uploadHead(100, { expect: '100-continue', ...AUTH }));
    assert.equal(head.status, 100);
    await sleep(100);
    assert.equal(client.pending, 0, 'no final answer before the body');
    assert.equal(client.ended, false);
    client.destroy();
  });

  test('after 100 Continue the body is stored (201)', async () => {
    const { client, head } = await firstAnswer(uploadHead(100, { expect: '100-continue', ...AUTH }));
    assert.equal(head.status, 100);
    await client.write(Buffer.alloc(100, 7));
    const res = await client.readResponse();
    assert.equal(res.status, 201, res.body.toString());
    const answer = JSON.parse(res.body.toString()) as UploadAnswer;
    assert.equal(answer.files.length, 1);
    assert.equal(answer.files[0]?.size, 100);
    client.destroy();
  });

  test('no token: 401 instead of 100, and the connection is closed', async () => {
    const { client, head } = await firstAnswer(uploadHead(100, { expect: '100-continue' }));
    assert.equal(head.status, 401);
    assert.match(head.headers.get('www-authenticate') ?? '', /^Bearer\b/);
    assert.equal(head.headers.get('connection'), 'close');
    await client.waitClosed();
    client.destroy();
  });

  test('Content-Length over MAX_FILE_BYTES: 413 FILE_TOO_LARGE instead of 100', async () => {
    const { client, head } = await firstAnswer(uploadHead(MAX + 1, { expect: '100-continue', ...AUTH }));
    assert.equal(head.status, 413);
    const length = Number(head.headers.get('content-length'));
    await waitFor('the error body', () => client.pending >= length);
    client.destroy();
  });

  test('exactly MAX_FILE_BYTES is allowed', async () => {
    const { client, head } = await firstAnswer(uploadHead(MAX, { expect: '100-continue', ...AUTH }));
    assert.equal(head.status, 100);
    client.destroy();
  });

  test('Content-Length over the free space minus MIN_FREE_BYTES: 413 NOT_ENOUGH_SPACE instead of 100', async () => {
    const probe = await mkdtemp(join(tmpdir(), 'sluice-free-'));
    const st = await statfs(probe);
    await rm(probe, { recursive: true });
    const free = st.bavail * st.bsize;
    // Keep a quarter of the free space back, and test 1/8 of it either side of the line: far
    // more than other processes will write to this disk during the test.
    const minFree = Math.floor(free / 4);
    const margin = Math.floor(free / 8);
    const usable = free - minFree;
    const t = await startServer({ AUTH_TOKEN: TOKEN, MIN_FREE_BYTES: String(minFree) });
    try {
      const over = await RawClient.open(t.url);
      await over.write(uploadHead(usable + margin, { expect: '100-continue', ...AUTH }));
      const res = await over.readResponse();
      assert.equal(res.status, 413);
      assert.equal((JSON.parse(res.body.toString()) as { error: { code: string } }).error.code, 'NOT_ENOUGH_SPACE');
      over.destroy();

      const under = await RawClient.open(t.url);
      await under.write(uploadHead(usable - margin, { expect: '100-continue', ...AUTH }));
      assert.equal((await under.readHead()).status, 100);
      under.destroy();
    } finally {
      await t.close();
    }
  });

  test('an expectation other than 100-continue: 417', async () => {
    const client = await RawClient.open(s.url);
    await client.write(uploadHead(10, { expect: 'something-else', ...AUTH }));
    assert.equal((await client.readResponse()).status, 417);
    client.destroy();
  });

  test('the limits hold without Expect too: 413 before the body is read', async () => {
    const client = await RawClient.open(s.url);
    await client.write(uploadHead(MAX + 1, AUTH));
    const res = await client.readResponse();
    assert.equal(res.status, 413);
    assert.equal(res.headers.get('connection'), 'close');
    client.destroy();
  });
});

describe('answers sent while the body is still arriving reach the client', () => {
  let s: TestServer;
  const MAX = 1024 * 1024;
  const BIG = 16 * 1024 * 1024;
  let bigFile = '';
  let dir = '';
  before(async () => {
    s = await startServer({ AUTH_TOKEN: TOKEN, MAX_FILE_BYTES: String(MAX) });
    dir = await mkdtemp(join(tmpdir(), 'sluice-big-'));
    bigFile = join(dir, 'big.bin');
    await writeFile(bigFile, Buffer.alloc(BIG, 1));
  });
  after(async () => {
    await s.close();
    await rm(dir, { recursive: true, force: true });
  });

  // curl sends "Expect: 100-continue" for large bodies; `-H Expect:` turns it off, so the
  // body is already streaming when the answer comes. Either way curl must print the status.
  for (const expect of [true, false]) {
    for (const [what, headers, status] of [
      ['413 (Content-Length over MAX_FILE_BYTES)', [`Authorization: Bearer ${TOKEN}`], 413],
      ['401 (no token)', [], 401],
    ] as const) {
      test(`curl sees ${what}${expect ? '' : ' without Expect'}`, { skip: hasCurl }, async () => {
        for (let i = 0; i < 3; i += 1) {
          const args = ['-sS', '-o', '/dev/null', '-w', '%{http_code}', '--data-binary', `@${bigFile}`, ...headers.flatMap((h) => ['-H', h])];
          if (!expect) args.push('-H', 'Expect:');
          const r = await run('curl', [...args, `${s.url}/upload`]);
          assert.equal(`${r.code} ${r.stdout}`, `0 ${status}`, `try ${i}: ${r.stderr}`);
        }
      });
    }
  }

  test('fetch sees 413 and 401 for a large Content-Length body', async () => {
    const body = Buffer.alloc(BIG, 1);
    for (let i = 0; i < 3; i += 1) {
      const big = await uploadRaw(s.url, body, AUTH);
      assert.equal(big.status, 413);
      await big.arrayBuffer();
      const anon = await uploadRaw(s.url, body);
      assert.equal(anon.status, 401);
      await anon.arrayBuffer();
    }
  });

  test('fetch sees 413 when a streamed (chunked) body grows past MAX_FILE_BYTES', async () => {
    let sent = 0;
    const stream = new ReadableStream<Uint8Array>({
      pull(controller) {
        // Stop by itself well past the limit, so a server that never answers fails the test.
        if (sent >= BIG) return controller.close();
        sent += 64 * 1024;
        controller.enqueue(new Uint8Array(64 * 1024));
      },
    });
    const init = { method: 'POST', body: stream, duplex: 'half', headers: { 'content-type': 'application/octet-stream', ...AUTH } };
    const res = await fetch(`${s.url}/upload`, init as RequestInit);
    assert.equal(res.status, 413);
    await res.arrayBuffer();
    await waitFor('the partial file to be removed', async () => (await s.files()).length === 0);
  });

  test('a chunked body that breaks mid-way: 400 BAD_HTTP_BODY reaches the client, nothing is stored', async () => {
    const client = await RawClient.open(s.url);
    await client.write(uploadHead(0, { 'transfer-encoding': 'chunked', ...AUTH }).replace('content-length: 0\r\n', ''));
    await client.write(`${(64 * 1024).toString(16)}\r\n${'a'.repeat(64 * 1024)}\r\n`);
    await waitFor('the temporary file', async () => (await s.files()).length > 0);
    await client.write('not-hex\r\n');
    const res = await client.readResponse();
    assert.equal(res.status, 400);
    assert.equal((JSON.parse(res.body.toString()) as { error: { code: string } }).error.code, 'BAD_HTTP_BODY');
    client.destroy();
    await waitFor('the partial file to be removed', async () => (await s.files()).length === 0);
  });

  test('a raw client that keeps sending after the answer still reads all of it', async () => {
    const client = await RawClient.open(s.url);
    await client.write(uploadHead(BIG, AUTH));
    const chunk = Buffer.alloc(64 * 1024, 2);
    // Keep sending, like a client that does not look for an early answer, until it arrives.
    let writeError: unknown = null;
    const pump = (async () => {
      for (let sent = 0; sent < BIG && client.pending === 0 && !client.ended; sent += chunk.length) {
        await client.write(chunk);
      }
    })().catch((err: unknown) => (writeError = err));
    const res = await client.readResponse();
    assert.equal(res.status, 413);
    assert.equal(res.headers.get('connection'), 'close');
    await pump;
    assert.equal(writeError, null, 'the server must not reset the connection under the client');
    client.destroy();
  });
});

describe('timeouts', () => {
  test('IDLE_TIMEOUT_MS: a stalled upload gets 408 and leaves no file, temporary included', async () => {
    const s = await startServer({ IDLE_TIMEOUT_MS: '300' });
    try {
      const client = await RawClient.open(s.url);
      await client.write(uploadHead(1024 * 1024));
      await client.write(Buffer.alloc(64 * 1024, 3));
      // The upload is under way: its temporary file exists.
      await waitFor('the temporary file', async () => (await s.files()).length > 0);
      const started = Date.now();
      const res = await client.readResponse(5_000);
      assert.equal(res.status, 408);
      assert.equal((JSON.parse(res.body.toString()) as { error: { code: string } }).error.code, 'IDLE_TIMEOUT');
      // About IDLE_TIMEOUT_MS after the last byte; generous, as CI machines can be busy.
      assert.ok(Date.now() - started < 4_000, `answered after ${Date.now() - started} ms`);
      await waitFor('DATA_DIR to be empty', async () => (await s.files()).length === 0);
      const m = await scrape(s.url);
      assert.equal(m.value('sluice_upload_aborted_total'), 1);
      assert.equal(m.value('sluice_uploads_in_flight'), 0);
      assert.equal(m.value('sluice_http_requests_total', { route: 'upload', method: 'POST', status: '408' }), 1);
      client.destroy();
    } finally {
      await s.close();
    }
  });

  test('IDLE_TIMEOUT_MS does not cut an upload that keeps moving, however long it takes', async () => {
    const s = await startServer({ IDLE_TIMEOUT_MS: '500' });
    try {
      const client = await RawClient.open(s.url);
      const chunks = 15;
      await client.write(uploadHead(chunks * 1000));
      // 15 chunks 100 ms apart: 1.5 s in all, three times the idle timeout.
      for (let i = 0; i < chunks; i += 1) {
        await client.write(Buffer.alloc(1000, i));
        await sleep(100);
      }
      const res = await client.readResponse();
      assert.equal(res.status, 201, res.body.toString());
      client.destroy();
    } finally {
      await s.close();
    }
  });

  test('IDLE_TIMEOUT_MS does not count the server\'s own wait after the body is in (a slow commit answers 201, not 408)', async () => {
    // Regression: the final sync of an upload took longer than IDLE_TIMEOUT_MS on a loaded
    // machine, and the client, which had sent everything and was waiting for its answer, got 408.
    const dir = await mkdtemp(join(tmpdir(), 'sluice-slow-commit-'));
    const s = await startServer({ IDLE_TIMEOUT_MS: '300' }, new SlowCommitStore(dir, 1_200));
    try {
      const res = await fetch(`${s.url}/upload`, { method: 'POST', body: Buffer.alloc(100_000, 7) });
      assert.equal(res.status, 201, await res.clone().text());
      const { files } = (await res.json()) as { files: Array<{ size: number }> };
      assert.equal(files[0]?.size, 100_000);
    } finally {
      await s.close();
      await rm(dir, { recursive: true, force: true });
    }
  });

  test('IDLE_TIMEOUT_MS does not cut a download to a slow but steady reader', async () => {
    const s = await startServer({ IDLE_TIMEOUT_MS: '500' });
    try {
      // Larger than what loopback socket buffers absorb, so the server must wait on the reader.
      const size = 24 * 1024 * 1024;
      const record = await saveStream(s.store, Readable.from([Buffer.alloc(size, 4)]), { field: null, filename: null, contentType: 'application/octet-stream' });
      const client = await RawClient.open(s.url);
      await client.write(`GET /files/${record.id} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`);
      // Read at 12 MiB/s: about 2 s in all, four times the idle timeout, never idle for long.
      const rate = 12 * 1024 * 1024;
      const started = Date.now();
      let received = 0;
      client.socket.on('data', (d: Buffer) => {
        received += d.length;
        const ahead = received / rate - (Date.now() - started) / 1000;
        if (ahead > 0) {
          client.socket.pause();
          setTimeout(() => client.socket.resume(), Math.min(100, ahead * 1000));
        }
      });
      const head = await client.readHead(5_000);
      assert.equal(head.status, 200);
      assert.equal(Number(head.headers.get('content-length')), size);
      await waitFor('the whole file', () => client.pending >= size || client.closed, 15_000);
      assert.equal(client.pending, size, `got ${client.pending} of ${size} bytes`);
      assert.ok(Date.now() - started > 1_000, 'the reader was slow');
      client.destroy();
    } finally {
      await s.close();
    }
  });

  test('HEADERS_TIMEOUT_MS cuts a client that trickles its headers (slowloris), even though it moves', async () => {
    const s = await startServer({ HEADERS_TIMEOUT_MS: '500', IDLE_TIMEOUT_MS: '60000' });
    try {
      // Node's absolute requestTimeout would cut long uploads: off; the idle timeout replaces it.
      assert.equal(s.app.server.requestTimeout, 0);
      assert.equal(s.app.server.headersTimeout, 500);
      const client = await RawClient.open(s.url);
      const started = Date.now();
      await client.write('GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n');
      let trickling = true;
      const trickle = (async () => {
        for (let i = 0; trickling && i < 40; i += 1) {
          await client.write(`x-slow-${i}: 1\r\n`).catch(() => (trickling = false));
          await sleep(100);
        }
      })();
      const head = await client.readHead(4_000);
      trickling = false;
      await trickle;
      assert.equal(head.status, 408);
      // Checked every second (connectionsCheckingInterval), so within ~1.5 s of the start
      // (with slack for busy machines); without the limit it would trickle on for 4 s.
      assert.ok(Date.now() - started < 3_500, `cut after ${Date.now() - started} ms`);
      await client.waitClosed();
      client.destroy();
    } finally {
      await s.close();
    }
  });

  test('keep-alive: several requests on one connection, an error answer without a body included', async () => {
    const s = await startServer({ AUTH_TOKEN: TOKEN });
    try {
      const client = await RawClient.open(s.url);
      for (const path of ['/healthz', '/metrics', '/healthz', '/nope']) {
        await client.write(`GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`);
        const res = await client.readResponse();
        assert.equal(res.status, path === '/healthz' ? 200 : path === '/metrics' ? 401 : 404, path);
        assert.notEqual(res.headers.get('connection'), 'close', path);
        // Longer than a load balancer's idle timeout (AWS ALB: 60 s), so it never reuses a
        // connection that sluice is closing.
        const timeout = Number(/timeout=(\d+)/.exec(res.headers.get('keep-alive') ?? '')?.[1]);
        assert.ok(timeout > 60, `Keep-Alive: ${res.headers.get('keep-alive')}`);
      }
      assert.equal(client.ended, false);
      client.destroy();
    } finally {
      await s.close();
    }
  });

  test('keep-alive after an upload', async () => {
    const s = await startServer({});
    try {
      const client = await RawClient.open(s.url);
      for (let i = 0; i < 3; i += 1) {
        await client.write(uploadHead(10));
        await client.write(Buffer.alloc(10, i));
        const res = await client.readResponse();
        assert.equal(res.status, 201, res.body.toString());
        assert.notEqual(res.headers.get('connection'), 'close');
      }
      client.destroy();
    } finally {
      await s.close();
    }
  });
});

describe('MAX_CONCURRENT_UPLOADS', () => {
  test('past the limit: 503 with Retry-After; the slot frees when the upload ends', async () => {
    const s = await startServer({ MAX_CONCURRENT_UPLOADS: '1' });
    try {
      const first = await RawClient.open(s.url);
      await first.write(uploadHead(2000));
      await first.write(Buffer.alloc(1000, 1));
      await waitFor('the first upload to be in flight', async () => (await scrape(s.url)).value('sluice_uploads_in_flight') === 1);

      const second = await uploadRaw(s.url, Buffer.alloc(10));
      assert.equal(second.status, 503);
      assert.match(second.headers.get('retry-after') ?? '', /^\d+$/);
      assert.equal(((await second.json()) as { error: { code: string } }).error.code, 'TOO_MANY_UPLOADS');

      // With Expect: 100-continue the refusal comes before the body too.
      const third = await RawClient.open(s.url);
      await third.write(uploadHead(10, { expect: '100-continue' }));
      const head = await third.readHead();
      assert.equal(head.status, 503);
      assert.match(head.headers.get('retry-after') ?? '', /^\d+$/);
      third.destroy();

      // Other routes are not limited.
      assert.equal((await fetch(`${s.url}/healthz`)).status, 200);

      await first.write(Buffer.alloc(1000, 1));
      assert.equal((await first.readResponse()).status, 201);
      first.destroy();
      const fourth = await uploadRaw(s.url, Buffer.alloc(10));
      assert.equal(fourth.status, 201);
      await fourth.arrayBuffer();
    } finally {
      await s.close();
    }
  });
});

describe('X-Request-Id', () => {
  let s: TestServer;
  before(async () => (s = await startServer({})));
  after(() => s.close());

  test('a sane id is echoed, on success and on errors', async () => {
    for (const [path, id] of [
      ['/healthz', 'abc-123'],
      ['/nope', 'req.42:retry/1+x=y@z_'],
      ['/healthz', 'a'.repeat(128)],
    ] as const) {
      const res = await fetch(`${s.url}${path}`, { headers: { 'x-request-id': id } });
      assert.equal(res.headers.get('x-request-id'), id, path);
      await res.arrayBuffer();
    }
  });

  test('an insane id is replaced, and a missing one is made', async () => {
    const seen = new Set<string>();
    for (const id of [undefined, 'has space', 'a'.repeat(129), 'semi;colon', '"quoted"', 'é', '']) {
      const res = await fetch(`${s.url}/healthz`, { headers: id === undefined ? {} : { 'x-request-id': id } });
      const got = res.headers.get('x-request-id') ?? '';
      await res.arrayBuffer();
      assert.notEqual(got, id);
      assert.match(got, /^[A-Za-z0-9_-]{16,}$/, `made id for ${JSON.stringify(id)}`);
      seen.add(got);
    }
    assert.equal(seen.size, 7, 'made ids are unique');
  });
});

describe('metrics', () => {
  let s: TestServer;
  before(async () => (s = await startServer({ AUTH_TOKEN: TOKEN })));
  after(() => s.close());

  const requests = (m: Exposition, route: string, method: string, status: string): number =>
    m.value('sluice_http_requests_total', { route, method, status }) ?? 0;
  const byRoute = (m: Exposition, name: string, route: string): number => m.value(name, { route }) ?? 0;

  test('the exposition parses and has every series the issue names', async () => {
    await (await fetch(`${s.url}/healthz`)).arrayBuffer();
    const m = await scrape(s.url, AUTH);
    for (const [name, type] of [
      ['sluice_http_requests_total', 'counter'],
      ['sluice_http_request_duration_seconds', 'histogram'],
      ['sluice_received_bytes_total', 'counter'],
      ['sluice_sent_bytes_total', 'counter'],
      ['sluice_uploads_in_flight', 'gauge'],
      ['sluice_upload_files_total', 'counter'],
      ['sluice_upload_aborted_total', 'counter'],
      ['process_resident_memory_bytes', 'gauge'],
      ['process_cpu_seconds_total', 'counter'],
      ['process_open_fds', 'gauge'],
      ['process_start_time_seconds', 'gauge'],
    ] as const) {
      assert.equal(m.types.get(name), type, name);
    }
    assert.ok((m.value('process_resident_memory_bytes') ?? 0) > 1024 * 1024);
    assert.ok((m.value('process_cpu_seconds_total') ?? 0) > 0);
    assert.ok((m.value('process_open_fds') ?? 0) > 2);
    const start = m.value('process_start_time_seconds') ?? 0;
    const expected = Date.now() / 1000 - process.uptime();
    assert.ok(Math.abs(start - expected) < 5, `process_start_time_seconds ${start}, expected about ${expected}`);
  });

  test('requests_total and bytes move by route, method and status', async () => {
    const before = await scrape(s.url, AUTH);
    for (let i = 0; i < 3; i += 1) await (await fetch(`${s.url}/healthz`)).arrayBuffer();
    await (await fetch(`${s.url}/healthz`, { method: 'HEAD' })).arrayBuffer();
    await (await fetch(`${s.url}/metrics`)).arrayBuffer(); // 401
    await (await fetch(`${s.url}/nope`, AUTH_INIT)).arrayBuffer(); // 404
    await (await fetch(`${s.url}/healthz`, { method: 'DELETE' })).arrayBuffer(); // 405
    const after = await scrape(s.url, AUTH);
    const moved = (route: string, method: string, status: string): number => requests(after, route, method, status) - requests(before, route, method, status);
    assert.equal(moved('healthz', 'GET', '200'), 3);
    assert.equal(moved('healthz', 'HEAD', '200'), 1);
    assert.equal(moved('metrics', 'GET', '401'), 1);
    assert.equal(moved('unknown', 'GET', '404'), 1);
    assert.equal(moved('healthz', 'DELETE', '405'), 1);
    // The scrape before this one is counted by now; the one being answered is not yet.
    assert.equal(moved('metrics', 'GET', '200'), 1);
    // Bytes in count request heads (each at least "GET /healthz HTTP/1.1\r\n"); bytes out count
    // at least the 200 status line of each of the four answers.
    const inHealthz = byRoute(after, 'sluice_received_bytes_total', 'healthz') - byRoute(before, 'sluice_received_bytes_total', 'healthz');
    const outHealthz = byRoute(after, 'sluice_sent_bytes_total', 'healthz') - byRoute(before, 'sluice_sent_bytes_total', 'healthz');
    assert.ok(inHealthz >= 5 * 'GET /healthz HTTP/1.1\r\n'.length, `received ${inHealthz}`);
    assert.ok(outHealthz >= 5 * 'HTTP/1.1 200 OK\r\n'.length, `sent ${outHealthz}`);
  });

  test('the duration histogram is cumulative and agrees with requests_total', async () => {
    await (await fetch(`${s.url}/healthz`)).arrayBuffer();
    const m = await scrape(s.url, AUTH);
    const routes = new Set(m.select('sluice_http_requests_total').map((x) => x.labels.route as string));
    assert.ok(routes.size >= 2);
    for (const route of routes) {
      const buckets = m
        .select('sluice_http_request_duration_seconds_bucket', { route })
        .map((b) => ({ le: b.labels.le === '+Inf' ? Infinity : Number(b.labels.le), value: b.value }));
      assert.ok(buckets.length > 2, route);
      const sorted = [...buckets].sort((a, b) => a.le - b.le);
      assert.deepEqual(buckets, sorted, 'buckets in increasing le order');
      assert.equal(sorted.at(-1)?.le, Infinity, 'has +Inf');
      for (let i = 1; i < sorted.length; i += 1) {
        assert.ok((sorted[i]?.value ?? 0) >= (sorted[i - 1]?.value ?? 0), `${route}: cumulative at le=${sorted[i]?.le}`);
      }
      const count = m.value('sluice_http_request_duration_seconds_count', { route });
      assert.equal(sorted.at(-1)?.value, count, `${route}: +Inf bucket equals _count`);
      const total = m.select('sluice_http_requests_total', { route }).reduce((n, x) => n + x.value, 0);
      assert.equal(count, total, `${route}: _count equals requests_total summed over method and status`);
      const sum = m.value('sluice_http_request_duration_seconds_sum', { route }) ?? -1;
      assert.ok(sum >= 0 && sum < (count ?? 0) * 60, `${route}: plausible _sum ${sum}`);
    }
  });

  test('uploads: files_total, received bytes, in-flight gauge and aborted_total move', async () => {
    const before = await scrape(s.url, AUTH);
    const body = Buffer.alloc(200_000, 5);
    const ok = await uploadRaw(s.url, body, AUTH);
    assert.equal(ok.status, 201);
    await ok.arrayBuffer();

    // One stalled upload in flight...
    const client = await RawClient.open(s.url);
    await client.write(uploadHead(100_000, AUTH));
    await client.write(Buffer.alloc(50_000, 6));
    await waitFor('the gauge to show it', async () => (await scrape(s.url, AUTH)).value('sluice_uploads_in_flight') === 1);
    // ...that the client then abandons: counted as aborted, its file removed.
    client.destroy();
    await waitFor('the gauge to drop', async () => (await scrape(s.url, AUTH)).value('sluice_uploads_in_flight') === 0);
    await waitFor('DATA_DIR to hold only the stored file', async () => (await s.files()).filter((n) => n.startsWith('.')).length === 0);

    const after = await scrape(s.url, AUTH);
    const diff = (name: string, labels?: Record<string, string>): number => (after.value(name, labels) ?? 0) - (before.value(name, labels) ?? 0);
    assert.equal(diff('sluice_upload_files_total'), 1);
    assert.equal(diff('sluice_upload_aborted_total'), 1);
    assert.equal(diff('sluice_http_requests_total', { route: 'upload', method: 'POST', status: '201' }), 1);
    assert.equal(diff('sluice_http_requests_total', { route: 'upload', method: 'POST', status: '499' }), 1);
    assert.ok(diff('sluice_received_bytes_total', { route: 'upload' }) >= body.length + 50_000);
    assert.ok(diff('sluice_sent_bytes_total', { route: 'upload' }) > 0);
  });
});

// ---------------------------------------------------------------------------------------------
// Child-process tests: real signals, real stdout. They need `dist/` (npx tsc -p tsconfig.json).
// ---------------------------------------------------------------------------------------------

describe('start-up and access log (child process)', () => {
  let proc: ServerProcess;
  const S3_SECRET = 's3-secret-value-xyz';
  before(async () => (proc = await spawnServer({ AUTH_TOKEN: TOKEN, S3_SECRET_KEY: S3_SECRET })));
  after(() => proc.stop());

  test('the start-up line carries the effective configuration with secrets redacted', () => {
    const first = logLines(proc)[0] ?? {};
    assert.equal(first.msg, 'listening');
    assert.equal(first.level, 'info');
    assert.match(String(first.time), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    const config = first.config as Record<string, unknown>;
    assert.equal(config.authToken, '<redacted>');
    assert.equal((config.s3 as Record<string, unknown>).secretKey, '<redacted>');
    assert.equal(config.dataDir, proc.dataDir);
    assert.equal(config.idleTimeoutMs, 60_000);
    assert.equal(config.shutdownGraceMs, 30_000);
    assert.equal(config.maxConcurrentUploads, 64);
    assert.ok(!proc.stdout().includes(TOKEN), 'the token never reaches the log');
    assert.ok(!proc.stdout().includes(S3_SECRET), 'the S3 secret never reaches the log');
  });

  test('one JSON line per request with the fields operators need, no query string', async () => {
    const ok = await fetch(`${proc.url}/healthz?token=${TOKEN}&sig=abc`, { headers: { 'x-request-id': 'log-ok-1' } });
    await ok.arrayBuffer();
    const denied = await fetch(`${proc.url}/metrics?x=1`, { headers: { 'x-request-id': 'log-401-1' } });
    await denied.arrayBuffer();
    const find = (id: string): Record<string, unknown> | undefined => logLines(proc).find((l) => l.msg === 'request' && l.requestId === id);
    await waitFor('both access lines', () => find('log-ok-1') !== undefined && find('log-401-1') !== undefined);

    const line = find('log-ok-1') as Record<string, unknown>;
    assert.match(String(line.time), /^\d{4}-\d\d-\d\dT/);
    assert.equal(line.method, 'GET');
    assert.equal(line.path, '/healthz');
    assert.equal(line.status, 200);
    assert.ok(typeof line.bytesIn === 'number' && line.bytesIn > 0, 'bytesIn');
    assert.ok(typeof line.bytesOut === 'number' && line.bytesOut > 0, 'bytesOut');
    assert.ok(typeof line.durationMs === 'number' && line.durationMs >= 0, 'durationMs');
    assert.equal(line.error, undefined);

    const err = find('log-401-1') as Record<string, unknown>;
    assert.equal(err.status, 401);
    assert.equal(err.path, '/metrics');
    assert.equal(err.error, 'UNAUTHORIZED');
    assert.ok(!proc.stdout().includes(TOKEN), 'the token in a query string never reaches the log');
    assert.ok(!proc.stdout().includes('sig=abc'));
  });

  test('a request cut before its head completes still gets an access line (431)', async () => {
    const client = await RawClient.open(proc.url);
    // Node's parser refuses heads over 16 KiB (its maxHeaderSize default).
    await client.write(`GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nx-big: ${'a'.repeat(20_000)}\r\n\r\n`).catch(() => {});
    const head = await client.readHead();
    assert.equal(head.status, 431);
    client.destroy();
    await waitFor('the access line', () => logLines(proc).some((l) => l.msg === 'request' && l.status === 431));
    const line = logLines(proc).find((l) => l.msg === 'request' && l.status === 431) as Record<string, unknown>;
    assert.equal(line.error, 'HEADERS_TOO_LARGE');
  });

  test('an upload is logged with its bytes in', async () => {
    const body = Buffer.alloc(123_456, 1);
    const res = await uploadRaw(proc.url, body, { ...AUTH, 'x-request-id': 'log-upload-1' });
    assert.equal(res.status, 201);
    await res.arrayBuffer();
    const find = (): Record<string, unknown> | undefined => logLines(proc).find((l) => l.requestId === 'log-upload-1');
    await waitFor('the access line', () => find() !== undefined);
    const line = find() as Record<string, unknown>;
    assert.equal(line.status, 201);
    assert.equal(line.method, 'POST');
    assert.ok(Number(line.bytesIn) >= body.length, `bytesIn ${line.bytesIn}`);
  });
});

test('a broken stdout (its reader gone) does not take the server down', async () => {
  const proc = await spawnServer({});
  try {
    // As when journald's stream or a `| head` goes away: the next log line meets EPIPE.
    proc.child.stdout?.destroy();
    for (let i = 0; i < 3; i += 1) {
      const res = await fetch(`${proc.url}/healthz`);
      assert.equal(res.status, 200);
      await res.arrayBuffer();
      await sleep(50);
    }
    assert.equal(proc.child.exitCode, null, 'still running');
  } finally {
    assert.equal(await proc.stop(), 0);
  }
});

describe('graceful shutdown (child process, real signals)', () => {
  /** Starts a server, begins a raw upload of `total` bytes and sends the first half. */
  async function uploadInFlight(env: Record<string, string>, total = 200_000): Promise<{ proc: ServerProcess; dataDir: string; client: RawClient; rest: Buffer }> {
    const dataDir = await mkdtemp(join(tmpdir(), 'sluice-stop-'));
    const proc = await spawnServer({ DATA_DIR: dataDir, ...env });
    const client = await RawClient.open(proc.url);
    const body = Buffer.alloc(total, 9);
    await client.write(uploadHead(total));
    await client.write(body.subarray(0, total / 2));
    await waitFor('the temporary file', async () => (await namesIn(dataDir)).length > 0);
    return { proc, dataDir, client, rest: body.subarray(total / 2) };
  }

  test('SIGTERM with nothing in flight exits 0 at once', async () => {
    const proc = await spawnServer({ SHUTDOWN_GRACE_MS: '10000' });
    const started = Date.now();
    assert.equal(await proc.stop('SIGTERM'), 0);
    assert.ok(Date.now() - started < 5_000, `took ${Date.now() - started} ms (the grace is 10 s)`);
    const last = logLines(proc).at(-1) ?? {};
    assert.equal(last.msg, 'stopped');
  });

  test('an upload in flight finishes within the grace period: stored, then exit 0', async () => {
    const { proc, dataDir, client, rest } = await uploadInFlight({ SHUTDOWN_GRACE_MS: '10000' });
    try {
      proc.child.kill('SIGTERM');
      await waitFor('the shutdown to start', () => logLines(proc).some((l) => l.msg === 'shutting down'));
      // Stopped accepting: a new connection is refused.
      await assert.rejects(fetch(`${proc.url}/healthz`));
      await client.write(rest);
      const res = await client.readResponse();
      assert.equal(res.status, 201, res.body.toString());
      const id = (JSON.parse(res.body.toString()) as UploadAnswer).files[0]?.id as string;
      assert.equal(await exitCode(proc, 5_000), 0);
      assert.deepEqual(await namesIn(dataDir), [id, `${id}.json`].sort());
      const stopped = logLines(proc).find((l) => l.msg === 'stopped');
      assert.equal(stopped?.aborted, 0);
    } finally {
      client.destroy();
      await proc.stop();
      await rm(dataDir, { recursive: true, force: true });
    }
  });

  test('an upload still in flight after the grace period is aborted: file removed, exit 0', async () => {
    const { proc, dataDir, client } = await uploadInFlight({ SHUTDOWN_GRACE_MS: '500' });
    try {
      const started = Date.now();
      proc.child.kill('SIGTERM');
      assert.equal(await exitCode(proc, 5_000), 0);
      assert.ok(Date.now() - started >= 450, 'waited for the grace period');
      assert.deepEqual(await namesIn(dataDir), [], 'partial file removed');
      // The client learns the upload failed: a 503 if it could still be told, else a closed connection.
      const answer = await client.readResponse(2_000).catch(() => null);
      if (answer !== null) assert.equal(answer.status, 503);
      await client.waitClosed();
      const lines = logLines(proc);
      assert.equal(lines.find((l) => l.msg === 'stopped')?.aborted, 1);
      const access = lines.find((l) => l.msg === 'request' && l.path === '/upload');
      assert.equal(access?.error, 'SHUTTING_DOWN');
    } finally {
      client.destroy();
      await proc.stop();
      await rm(dataDir, { recursive: true, force: true });
    }
  });

  test('a second signal exits at once, without waiting for the grace period', async () => {
    const { proc, dataDir, client } = await uploadInFlight({ SHUTDOWN_GRACE_MS: '30000' });
    try {
      proc.child.kill('SIGTERM');
      await waitFor('the shutdown to start', () => logLines(proc).some((l) => l.msg === 'shutting down'));
      const started = Date.now();
      proc.child.kill('SIGINT');
      const code = await exitCode(proc, 5_000);
      assert.ok(Date.now() - started < 5_000, 'far sooner than the 30 s grace');
      assert.notEqual(code, 0, 'an interrupted shutdown is not a clean exit');
    } finally {
      client.destroy();
      await proc.stop();
      await rm(dataDir, { recursive: true, force: true });
    }
  });
});

/** A local store whose commits take `delayMs` first: the server busy after the body is in. */
class SlowCommitStore extends LocalStore {
  private readonly delayMs: number;
  constructor(dir: string, delayMs: number) {
    super(dir);
    this.delayMs = delayMs;
  }

  override createWriter(meta: NewFileMeta, options?: WriterOptions): FileWriter {
    const writer = super.createWriter(meta, options);
    const commit = writer.commit.bind(writer);
    writer.commit = async () => {
      await sleep(this.delayMs);
      return commit();
    };
    return writer;
  }
}
