/**
 * Shared plumbing of the hardening suite (issue 3): a real `dist/server.js` child process on
 * 127.0.0.1, what it holds open (/proc/<pid>/fd, sockets, RSS), and the checks every attack
 * ends with (`Invariants.check`): /healthz answers, nothing of a failed request is left in
 * DATA_DIR, descriptors and sockets are back at their baseline, and the canary files stored
 * before the attacks are byte-identical. Test data and the HTTP clients live in test-data.ts and
 * http-client.ts and are re-exported from here.
 *
 * Everything here is bounded: every wait has a deadline, every socket and child is closed by
 * whoever opened it, and `killAllSluices` (run on exit) kills any child a failing test left.
 */
import { strict as assert } from 'node:assert';
import { spawn, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { freePort } from '../helpers/ports.js';
import { HOST, request } from './http-client.js';
import { KiB, MULTIPART, MiB, fieldPart, filePart, generated, multipartBody, sha256, sha256OfFile } from './test-data.js';

export * from './http-client.js';
export * from './test-data.js';

/** What file ids look like (storage/file-id.ts): 128 random bits, base64url. */
export const FILE_ID = /^[A-Za-z0-9_-]{22}$/;

// ---------------------------------------------------------------------------------------------
// The server process

export interface Sluice {
  readonly url: string;
  readonly port: number;
  readonly pid: number;
  /** A private temporary root; DATA_DIR is `<root>/data` unless one was given. */
  readonly root: string;
  readonly dataDir: string;
  readonly child: ChildProcess;
  /** Lines printed on stdout so far (the most recent ones, bounded). */
  stdoutLines(): string[];
  stderr(): string;
  /** Resolves with the exit code and signal once the process has exited. */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** SIGTERM, then SIGKILL after `graceMs`; removes the root unless `keepRoot`. */
  stop(options?: { graceMs?: number; keepRoot?: boolean }): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

const running = new Set<ChildProcess>();
/** Last resort: a test that fails half-way must not leave a server running. */
export function killAllSluices(): void {
  for (const child of running) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
}
process.once('exit', killAllSluices);

const MAX_KEPT_LINES = 20_000;

/**
 * Starts `node dist/server.js` (run `npx tsc -p tsconfig.json` first) on 127.0.0.1, a free port,
 * and a fresh DATA_DIR under a private temporary root, and waits for its "listening" line.
 */
export async function startSluice(env: Record<string, string> = {}, options: { dataDir?: string; root?: string } = {}): Promise<Sluice> {
  const root = options.root ?? (await mkdtemp(join(tmpdir(), 'sluice-hardening-')));
  const dataDir = options.dataDir ?? join(root, 'data');
  // The "listening" line is an info line: below that level, pick a free port ourselves.
  const quiet = env.LOG_LEVEL !== undefined && !['debug', 'info'].includes(env.LOG_LEVEL);
  const fixedPort = quiet ? await freePort() : 0;
  const child = spawn(process.execPath, [resolve('dist/server.js')], {
    env: { ...process.env, HOST, PORT: String(fixedPort), DATA_DIR: dataDir, LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  running.add(child);
  const lines: string[] = [];
  let partial = '';
  let err = '';
  child.stdout?.setEncoding('utf8').on('data', (d: string) => {
    const pieces = (partial + d).split('\n');
    partial = pieces.pop() ?? '';
    for (const line of pieces) lines.push(line);
    if (lines.length > MAX_KEPT_LINES) lines.splice(0, lines.length - MAX_KEPT_LINES);
  });
  child.stderr?.setEncoding('utf8').on('data', (d: string) => {
    if (err.length < 1_000_000) err += d;
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) =>
    child.once('exit', (code, signal) => {
      running.delete(child);
      r({ code, signal });
    }),
  );
  const deadline = Date.now() + 15_000;
  let url: string | null = null;
  while (url === null) {
    if (quiet && (await canConnect(fixedPort))) url = `http://${HOST}:${fixedPort}`;
    for (const line of lines) {
      const m = /"msg":"listening","url":"([^"]+)"/.exec(line);
      if (m !== null) url = m[1] as string;
    }
    if (url !== null) break;
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`sluice exited at start (${child.exitCode}): ${err}`);
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`sluice did not start within 15 s: ${err}`);
    }
    await sleep(20);
  }
  const port = Number(new URL(url).port);
  const pid = child.pid as number;
  let stopped: Promise<{ code: number | null; signal: NodeJS.Signals | null }> | null = null;
  return {
    url,
    port,
    pid,
    root,
    dataDir,
    child,
    exited,
    stdoutLines: () => lines,
    stderr: () => err,
    stop: (o = {}) => {
      stopped ??= (async () => {
        if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), o.graceMs ?? 10_000);
        const result = await exited;
        clearTimeout(timer);
        if (o.keepRoot !== true && options.root === undefined) await rm(root, { recursive: true, force: true });
        return result;
      })();
      return stopped;
    },
  };
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((r) => {
    const s = connect({ host: HOST, port });
    s.once('connect', () => {
      s.destroy();
      r(true);
    });
    s.once('error', () => r(false));
  });
}

// ---------------------------------------------------------------------------------------------
// What a process holds

/** Entries of /proc/<pid>/fd. */
export function fdCount(pid: number): number {
  return readdirSync(`/proc/${pid}/fd`).length;
}

/** Descriptors of the process that are sockets (TCP, and the Unix sockets of its stdio). */
export function socketCount(pid: number): number {
  let n = 0;
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    try {
      if (readlinkSync(`/proc/${pid}/fd/${fd}`).startsWith('socket:')) n += 1;
    } catch {
      // closed between readdir and readlink
    }
  }
  return n;
}

/** TCP sockets of the process's network namespace on `port` (either end), from /proc/<pid>/net/tcp. */
export function tcpEntriesOnPort(pid: number, port: number): number {
  const hex = port.toString(16).toUpperCase().padStart(4, '0');
  let n = 0;
  for (const line of readFileSync(`/proc/${pid}/net/tcp`, 'utf8').split('\n').slice(1)) {
    const cols = line.trim().split(/\s+/);
    const local = cols[1] ?? '';
    const remote = cols[2] ?? '';
    const state = cols[3] ?? '';
    // 0A = LISTEN, 06 = TIME_WAIT (no descriptor behind it any more)
    if (state === '0A' || state === '06') continue;
    if (local.endsWith(`:${hex}`) || remote.endsWith(`:${hex}`)) n += 1;
  }
  return n;
}

export interface Memory {
  readonly rssKiB: number;
  readonly hwmKiB: number;
}

/** VmRSS and VmHWM (peak RSS) from /proc/<pid>/status. */
export function memory(pid: number): Memory {
  const text = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kib = (name: string): number => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(text)?.[1] ?? NaN);
  return { rssKiB: kib('VmRSS'), hwmKiB: kib('VmHWM') };
}

// ---------------------------------------------------------------------------------------------
// ---------------------------------------------------------------------------------------------
// Waiting

/** Calls `check` until it returns true (every 25 ms), or fails with `what()` after `timeoutMs`. */
export async function until(what: string | (() => string), check: () => Promise<boolean> | boolean, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return;
    if (Date.now() > deadline) assert.fail(`timed out after ${timeoutMs} ms waiting for: ${typeof what === 'string' ? what : what()}`);
    await sleep(25);
  }
}

/** Rejects after `ms` with `what`; the timer is cleared when `work` settles. */
export async function within<T>(ms: number, what: string, work: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([work, new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what}: not done within ${ms} ms`)), ms)))]);
  } finally {
    clearTimeout(timer);
  }
}

/** Every path under `dir` (relative), directories marked with a trailing `/`. Bounded. */
export async function listTree(dir: string, limit = 100_000): Promise<string[]> {
  const out: string[] = [];
  const walk = async (rel: string): Promise<void> => {
    for (const entry of await readdir(join(dir, rel), { withFileTypes: true })) {
      if (out.length >= limit) return;
      const path = rel === '' ? entry.name : `${rel}/${entry.name}`;
      if (entry.isDirectory()) {
        out.push(`${path}/`);
        await walk(path);
      } else out.push(path);
    }
  };
  await walk('');
  return out.sort();
}

// ---------------------------------------------------------------------------------------------
// The checks after every attack

interface Canary {
  readonly id: string;
  readonly sha256: string;
  readonly size: number;
  readonly record: string;
}

export interface Baseline {
  readonly fds: number;
  readonly sockets: number;
  readonly rssKiB: number;
}

/**
 * What must hold after every attack. Create it on a fresh server: it stores a few canary files
 * (never touched by any attack), warms the server up and measures the baseline.
 */
export class Invariants {
  readonly server: Sluice;
  readonly canaries: Canary[] = [];
  /** Ids that may be in DATA_DIR (canaries, and files a test stored on purpose). */
  readonly expected = new Set<string>();
  baseline: Baseline = { fds: 0, sockets: 0, rssKiB: 0 };
  /** Check canaries over HTTP too (costs a download each). */
  private readonly viaHttp: boolean;

  private constructor(server: Sluice, viaHttp: boolean) {
    this.server = server;
    this.viaHttp = viaHttp;
  }

  static async create(server: Sluice, options: { canarySizes?: readonly number[]; viaHttp?: boolean } = {}): Promise<Invariants> {
    const inv = new Invariants(server, options.viaHttp ?? true);
    const sizes = options.canarySizes ?? [0, 1, 100 * KiB, 1 * MiB + 7];
    for (const [i, size] of sizes.entries()) {
      const data = generated(`canary-${i}`, size);
      const { body } = multipartBody([fieldPart('kind', 'canary'), filePart('file', `canary-${i}.bin`, data)]);
      const res = await request(server.url, '/upload', { method: 'POST', headers: { 'content-type': MULTIPART }, body });
      assert.equal(res.status, 201, `canary upload: ${res.body.toString()}`);
      const files = (JSON.parse(res.body.toString('utf8')) as { files: Array<{ id: string; sha256: string; size: number }> }).files;
      const file = files[0];
      assert.ok(file !== undefined && FILE_ID.test(file.id));
      assert.equal(file.sha256, sha256(data));
      const record = await readFile(join(server.dataDir, `${file.id}.json`), 'utf8');
      inv.canaries.push({ id: file.id, sha256: file.sha256, size, record });
      inv.expected.add(file.id);
    }
    // Warm up what a server opens lazily (first download, listing, an error answer), then measure.
    for (const c of inv.canaries) await request(server.url, `/files/${c.id}`);
    await request(server.url, '/files');
    await request(server.url, '/files/not-an-id');
    await request(server.url, '/upload', { method: 'POST', headers: { 'content-type': MULTIPART }, body: Buffer.from('junk') });
    await inv.measureBaseline();
    return inv;
  }

  /** Takes the descriptor/socket baseline once the counts are steady. */
  async measureBaseline(): Promise<Baseline> {
    const { pid } = this.server;
    let last = -1;
    let steady = 0;
    for (let i = 0; i < 100 && steady < 4; i += 1) {
      const n = fdCount(pid);
      steady = n === last ? steady + 1 : 0;
      last = n;
      await sleep(25);
    }
    this.baseline = { fds: fdCount(pid), sockets: socketCount(pid), rssKiB: memory(pid).rssKiB };
    return this.baseline;
  }

  /** A file a test stored on purpose: it may stay in DATA_DIR. */
  keep(id: string): void {
    assert.match(id, FILE_ID);
    this.expected.add(id);
  }

  /** Leftovers already reported by a failed check (see `acknowledge`). */
  private readonly acknowledged = new Set<string>();

  /**
   * After a failed check: take what is left over now as known (already reported) and the
   * current descriptors as the new baseline, so that later checks report only new problems.
   */
  async acknowledge(): Promise<void> {
    for (const n of await readdir(this.server.dataDir)) this.acknowledged.add(n);
    this.baseline = { ...this.baseline, fds: Math.max(this.baseline.fds, fdCount(this.server.pid)), sockets: Math.max(this.baseline.sockets, socketCount(this.server.pid)) };
  }

  /** Every name in DATA_DIR that should not be there (and every expected file missing). */
  async strayFiles(): Promise<string[]> {
    const names = await readdir(this.server.dataDir);
    const stray = names.filter((n) => {
      const id = n.endsWith('.json') ? n.slice(0, -5) : n;
      return !this.expected.has(id) && !this.acknowledged.has(n);
    });
    for (const id of this.expected) {
      if (!names.includes(id)) stray.push(`missing:${id}`);
      if (!names.includes(`${id}.json`)) stray.push(`missing:${id}.json`);
    }
    return stray;
  }

  /**
   * The whole list of checks; `label` names the attack in failure messages. Every check runs
   * (each polled up to its deadline) and all that fail are reported together.
   */
  async check(label: string, options: { deadlineMs?: number; processGone?: boolean } = {}): Promise<void> {
    const deadlineMs = options.deadlineMs ?? 8_000;
    const { pid } = this.server;
    const failures: string[] = [];
    const attempt = async (what: string, work: () => Promise<void>): Promise<void> => {
      try {
        await work();
      } catch (err) {
        failures.push(`${what}: ${(err as Error).message}`);
      }
    };
    if (options.processGone !== true) {
      await attempt('healthz', async () => {
        const health = await within(3_000, '/healthz', request(this.server.url, '/healthz', { timeoutMs: 3_000 }));
        assert.equal(health.status, 200, `/healthz answered ${health.status}`);
        assert.deepEqual(JSON.parse(health.body.toString('utf8')), { status: 'ok' });
      });
    }
    let stray: string[] = [];
    await attempt('DATA_DIR', () =>
      until(
        () => `files of failed requests removed from DATA_DIR; still there (${stray.length}): ${stray.slice(0, 12).join(', ')}`,
        async () => (stray = await this.strayFiles()).length === 0,
        deadlineMs,
      ),
    );
    if (options.processGone !== true) {
      let fds = 0;
      let sockets = 0;
      await attempt('descriptors', () =>
        until(
          () => `back to baseline (${this.baseline.fds} fds, ${this.baseline.sockets} sockets), now ${fds} fds, ${sockets} sockets: ${describeFds(pid)}`,
          () => {
            fds = fdCount(pid);
            sockets = socketCount(pid);
            return fds <= this.baseline.fds && sockets <= this.baseline.sockets;
          },
          failures.length > 0 ? 2_000 : deadlineMs,
        ),
      );
    }
    await attempt('canaries', async () => {
      for (const c of this.canaries) {
        const path = join(this.server.dataDir, c.id);
        assert.equal((await stat(path)).size, c.size, `canary ${c.id} size`);
        assert.equal(await sha256OfFile(path), c.sha256, `canary ${c.id} bytes changed on disk`);
        assert.equal(await readFile(join(this.server.dataDir, `${c.id}.json`), 'utf8'), c.record, `canary ${c.id} record changed`);
        if (this.viaHttp && options.processGone !== true) {
          const got = await request(this.server.url, `/files/${c.id}`, { hashOnly: true, timeoutMs: 10_000 });
          assert.equal(got.status, 200);
          assert.equal(got.sha256, c.sha256, `canary ${c.id} served bytes differ`);
        }
      }
    });
    if (failures.length > 0) assert.fail(`${label}:\n  ${failures.join('\n  ')}`);
  }
}

/** A short description of what a process holds open, for failure messages. */
export function describeFds(pid: number): string {
  const kinds = new Map<string, number>();
  try {
    for (const fd of readdirSync(`/proc/${pid}/fd`)) {
      let target = '?';
      try {
        target = readlinkSync(`/proc/${pid}/fd/${fd}`);
      } catch {
        continue;
      }
      const kind = target.startsWith('socket:') ? 'socket' : target.startsWith('pipe:') ? 'pipe' : target.startsWith('anon_inode:') ? target : target.startsWith('/') ? `file ${target}` : target;
      kinds.set(kind, (kinds.get(kind) ?? 0) + 1);
    }
  } catch {
    return '(process gone)';
  }
  return [...kinds].map(([k, n]) => `${n}× ${k}`).join('; ');
}

/** The JSON log lines of the server with this msg. */
export function logLines(server: Sluice, msg: string): Array<Record<string, unknown>> {
  const out: Array<Record<string, unknown>> = [];
  for (const line of server.stdoutLines()) {
    if (!line.includes(`"msg":"${msg}"`)) continue;
    try {
      out.push(JSON.parse(line) as Record<string, unknown>);
    } catch {
      // a line cut by the bound
    }
  }
  return out;
}
