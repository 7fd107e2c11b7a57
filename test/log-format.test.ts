/**
 * Log lines for a person at a terminal (issue #17, "the first minutes"): when stdout is a
 * terminal sluice prints short text lines; LOG_FORMAT=json|text chooses explicitly; anywhere
 * else (a pipe, the journal under systemd) the lines stay JSON. The terminal is a real
 * pseudo-terminal: util-linux `script` runs `node dist/server.js` with its stdout on one.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { bytes, duration, formatTextLine } from '../lib/log-text.js';
import { createLogger, resolveLogFormat } from '../lib/log.js';
import { spawnServer } from './helpers/server.js';
import { poll } from './helpers/http.js';

const SERVER_JS = resolve('dist/server.js');
const noScript = spawnSync('script', ['--version'], { encoding: 'utf8' }).status === 0 ? false : 'util-linux script is not installed';
const TEXT_LINE = /^\d\d:\d\d:\d\d\.\d{3} (DEBUG|INFO |WARN |ERROR) \S/;

describe('the text line', () => {
  const at = new Date(2026, 10, 24, 14, 3, 7, 512);

  test('a request: time, level, message, method, path, status, bytes, duration', () => {
    const line = formatTextLine(at, 'info', 'request', { requestId: 'r1', method: 'POST', path: '/upload', status: 201, bytesIn: 1073742112, bytesOut: 311, durationMs: 8123 });
    assert.equal(line, '14:03:07.512 INFO  request POST /upload 201 in=1.0GiB out=311B 8.12s');
  });

  test('a failed request carries its error code', () => {
    const line = formatTextLine(at, 'info', 'request', { method: 'PUT', path: '/upload/w.bin', status: 413, bytesIn: 412, bytesOut: 129, durationMs: 3, error: 'FILE_TOO_LARGE' });
    assert.equal(line, '14:03:07.512 INFO  request PUT /upload/w.bin 413 in=412B out=129B 3ms error=FILE_TOO_LARGE');
  });

  test('a head cut short (no method, no path) still reads', () => {
    const line = formatTextLine(at, 'info', 'request', { requestId: null, method: null, path: null, status: 431, bytesIn: 20_000, bytesOut: 0, durationMs: null, error: 'HEADERS_TOO_LARGE' });
    assert.equal(line, '14:03:07.512 INFO  request - - 431 in=20KiB out=0B error=HEADERS_TOO_LARGE');
  });

  test('other events: plain fields as key=value, objects left out, errors by code and message', () => {
    const err = Object.assign(new Error('no space left'), { code: 'ENOSPC' });
    assert.equal(
      formatTextLine(at, 'warn', 'listening', { url: 'http://127.0.0.1:8080', pid: 42, config: { a: 1 } }),
      '14:03:07.512 WARN  listening url=http://127.0.0.1:8080 pid=42',
    );
    assert.equal(formatTextLine(at, 'error', 'request failed', { requestId: 'x', err }), '14:03:07.512 ERROR request failed requestId=x err="ENOSPC: no space left"');
  });

  test('control characters a client could send are escaped, never written raw', () => {
    const line = formatTextLine(at, 'info', 'request', { method: 'GET', path: '/files/\u001b[2J\r\nforged', status: 404 });
    assert.doesNotMatch(line, /[\u0000-\u001f\u007f]/);
    assert.match(line, /\\u001b/);
  });

  test('sizes and durations', () => {
    assert.deepEqual([0, 1023, 1024, 1536, 10 * 1024 * 1024, 5 * 1024 ** 4].map(bytes), ['0B', '1023B', '1.0KiB', '1.5KiB', '10MiB', '5.0TiB']);
    assert.deepEqual([0, 999, 1000, 59_994, 187_000].map(duration), ['0ms', '999ms', '1.00s', '59.99s', '3m07s']);
  });

  test('LOG_FORMAT=auto follows the terminal; json and text are taken as said', () => {
    assert.equal(resolveLogFormat('auto', true), 'text');
    assert.equal(resolveLogFormat('auto', false), 'json');
    assert.equal(resolveLogFormat('json', true), 'json');
    assert.equal(resolveLogFormat('text', false), 'text');
  });

  test('createLogger writes the chosen format, one line per event', () => {
    const lines: string[] = [];
    createLogger('info', (l) => lines.push(l), 'text').info('hello', { n: 1 });
    createLogger('info', (l) => lines.push(l), 'json').info('hello', { n: 1 });
    assert.match(lines[0] ?? '', /^\d\d:\d\d:\d\d\.\d{3} INFO  hello n=1\n$/);
    assert.deepEqual({ ...(JSON.parse(lines[1] ?? '') as object), time: 'x' }, { time: 'x', level: 'info', msg: 'hello', n: 1 });
  });
});

/** `node dist/server.js` under `script`: its stdout is a pseudo-terminal. Output is what the terminal showed. */
class OnTerminal {
  private out = '';
  private constructor(readonly child: ChildProcess, readonly dataDir: string) {
    child.stdout?.setEncoding('utf8').on('data', (d: string) => (this.out += d));
  }

  static async start(env: Record<string, string>): Promise<OnTerminal> {
    const dataDir = await mkdtemp(join(tmpdir(), 'sluice-tty-'));
    const child = spawn('script', ['-qfec', `${JSON.stringify(process.execPath)} ${JSON.stringify(SERVER_JS)}`, '/dev/null'], {
      env: { ...process.env, PORT: '0', DATA_DIR: dataDir, LOG_LEVEL: 'info', LOG_FORMAT: '', ...env },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    return new OnTerminal(child, dataDir);
  }

  lines(): string[] {
    return this.out.split(/\r?\n/).filter((l) => l.trim() !== '');
  }

  async waitFor(what: string, match: RegExp): Promise<RegExpExecArray> {
    let found: RegExpExecArray | null = null;
    await poll(what, () => (found = match.exec(this.out)) !== null, 15_000);
    return found as unknown as RegExpExecArray;
  }

  /** Stops the server by the pid it logged, then waits for `script` to end. */
  async stop(pid: number): Promise<void> {
    if (this.child.exitCode === null) {
      const exited = new Promise((r) => this.child.once('exit', r));
      try {
        process.kill(pid, 'SIGTERM');
      } catch {
        this.child.kill('SIGTERM');
      }
      await exited;
    }
    await rm(this.dataDir, { recursive: true, force: true });
  }
}

describe('node dist/server.js on a real terminal', { skip: noScript }, () => {
  before(() => assert.ok(existsSync(SERVER_JS), 'build first (npm run build)'));

  test('without LOG_FORMAT: short text lines, the start-up line and one per request', async () => {
    const term = await OnTerminal.start({});
    let pid = 0;
    try {
      const m = await term.waitFor('the listening line', /listening url=(http:\/\/\S+) pid=(\d+)/);
      pid = Number(m[2]);
      const res = await fetch(`${m[1]}/upload/hello.txt?secret=abc`, { method: 'PUT', body: 'hello' });
      assert.equal(res.status, 201);
      await term.waitFor('the request line', /request PUT \/upload\/hello\.txt 201 in=\d+B out=\d+B \d+ms/);
      const missing = await fetch(`${m[1]}/nope`);
      assert.equal(missing.status, 404);
      await term.waitFor('the 404 line', /request GET \/nope 404 .* error=NOT_FOUND/);
      for (const line of term.lines()) assert.match(line, TEXT_LINE, `not a text line: ${JSON.stringify(line)}`);
      assert.ok(!term.lines().some((l) => l.startsWith('{')), 'no JSON on the terminal');
      assert.ok(!term.lines().some((l) => l.includes('secret=abc')), 'the query string stays out of the log');
    } finally {
      await term.stop(pid);
    }
  });

  test('LOG_FORMAT=json on a terminal: JSON lines', async () => {
    const term = await OnTerminal.start({ LOG_FORMAT: 'json' });
    let pid = 0;
    try {
      const m = await term.waitFor('the listening line', /"msg":"listening","url":"(http:\/\/[^"]+)","pid":(\d+)/);
      pid = Number(m[2]);
      for (const line of term.lines()) assert.equal(typeof (JSON.parse(line) as { msg: string }).msg, 'string');
    } finally {
      await term.stop(pid);
    }
  });
});

describe('node dist/server.js with stdout on a pipe (as under systemd)', () => {
  let dir: string;
  before(async () => (dir = await mkdtemp(join(tmpdir(), 'sluice-logfmt-'))));
  after(() => rm(dir, { recursive: true, force: true }));

  test('without LOG_FORMAT: JSON', async () => {
    const proc = await spawnServer({});
    try {
      const first = proc.stdout().split('\n')[0] ?? '';
      assert.equal((JSON.parse(first) as { msg: string }).msg, 'listening');
    } finally {
      await proc.stop();
    }
  });

  test('LOG_FORMAT=text: text lines even on a pipe', async () => {
    const child = spawn(process.execPath, [SERVER_JS], { env: { ...process.env, PORT: '0', DATA_DIR: join(dir, 'data'), LOG_FORMAT: 'text', LOG_LEVEL: 'info' }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
    try {
      await poll('the listening line', () => /listening url=http:\/\/\S+ pid=\d+\n/.test(out), 15_000);
      const url = (/listening url=(http:\/\/\S+)/.exec(out) as RegExpExecArray)[1] as string;
      const res = await fetch(`${url}/healthz`);
      assert.equal(res.status, 200);
      await poll('the request line', () => /request GET \/healthz 200 /.test(out), 5_000);
      for (const line of out.trim().split('\n')) assert.match(line, TEXT_LINE);
    } finally {
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await exited;
    }
  });

  test('LOG_FORMAT=xml: exit 2 naming LOG_FORMAT', () => {
    const r = spawnSync(process.execPath, [SERVER_JS], { env: { ...process.env, PORT: '0', DATA_DIR: join(dir, 'x'), LOG_FORMAT: 'xml' }, encoding: 'utf8' });
    assert.equal(r.status, 2);
    assert.match(r.stderr, /^sluice: invalid configuration: LOG_FORMAT: /);
    assert.equal(r.stderr.trim().split('\n').length, 1);
  });
});
