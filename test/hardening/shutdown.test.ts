/**
 * Faults: SIGTERM during 10 concurrent uploads. With a grace long enough, every upload finishes
 * (10 × 201, the bytes on disk match) and the process exits 0; with a short grace, they are
 * aborted, nothing of them stays in DATA_DIR, and the process still exits 0. The canaries stored
 * before survive both. The uploads are throttled so that SIGTERM surely lands mid-transfer: it
 * is sent only once every upload has a temporary file on disk.
 */
import { strict as assert } from 'node:assert';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  HOST,
  Invariants,
  KiB,
  MULTIPART,
  MiB,
  parseResponses,
  rawExchange,
  requestHead,
  sha256OfChunks,
  sha256OfFile,
  startSluice,
  streamedFileBody,
  until,
  within,
  type RawExchange,
} from './helpers.js';
import { connect } from 'node:net';

const UPLOADS = 10;
const SIZE = 4 * MiB;
const roots: string[] = [];

after(async () => {
  for (const r of roots) await rm(r, { recursive: true, force: true });
});

/** An upload that sends its first half at once, then waits for `go` before sending the rest slowly. */
function throttledUpload(port: number, seed: string, go: Promise<void>, pauseMs: number): Promise<RawExchange> {
  const body = streamedFileBody(seed, SIZE);
  return rawExchange(port, {
    timeoutMs: 30_000,
    send: async (io) => {
      if (!(await io.write(requestHead('POST', '/upload', { 'content-type': MULTIPART, 'content-length': body.length })))) return;
      let sent = 0;
      for (const chunk of body.chunks()) {
        for (let i = 0; i < chunk.length; i += 64 * KiB) {
          const piece = chunk.subarray(i, i + 64 * KiB);
          if (sent >= body.length / 2) {
            await go;
            await sleep(pauseMs); // 15 ms: ~4 MiB/s, the second half takes about half a second
          }
          if (!(await io.write(piece))) return;
          sent += piece.length;
        }
      }
    },
  });
}

async function partials(dir: string): Promise<number> {
  return (await readdir(dir)).filter((n) => n.endsWith('.partial')).length;
}

function refusesConnections(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ host: HOST, port });
    s.once('connect', () => {
      s.destroy();
      resolve(false);
    });
    s.once('error', () => resolve(true));
  });
}

async function scenario(graceMs: number): Promise<{ exchanges: RawExchange[]; exit: { code: number | null; signal: NodeJS.Signals | null }; inv: Invariants; elapsedMs: number }> {
  const root = await mkdtemp(join(tmpdir(), 'sluice-hardening-shutdown-'));
  roots.push(root);
  const server = await startSluice({ SHUTDOWN_GRACE_MS: String(graceMs), FSYNC: 'false' }, { root });
  try {
    const inv = await Invariants.create(server);
    let release: () => void = () => {};
    const go = new Promise<void>((r) => (release = r));
    const uploads = Array.from({ length: UPLOADS }, (_, i) => throttledUpload(server.port, `shutdown-${graceMs}-${i}`, go, graceMs < 1_000 ? 60 : 15));
    await until(`all ${UPLOADS} uploads have a temporary file`, async () => (await partials(server.dataDir)) === UPLOADS, 10_000);
    const started = Date.now();
    server.child.kill('SIGTERM');
    // Stops accepting at once (before the in-flight uploads are done).
    await until('the listener is closed after SIGTERM', () => refusesConnections(server.port), 2_000);
    release();
    const exchanges = await within(30_000, 'uploads after SIGTERM', Promise.all(uploads));
    const exit = await within(graceMs + 10_000, 'exit after SIGTERM', server.exited);
    return { exchanges, exit, inv, elapsedMs: Date.now() - started };
  } finally {
    await server.stop({ keepRoot: true });
  }
}

test('SIGTERM with a long grace: the 10 uploads in flight finish, exit 0', { timeout: 90_000 }, async () => {
  const { exchanges, exit, inv, elapsedMs } = await scenario(30_000);
  console.log(`long grace: exit ${JSON.stringify(exit)} ${elapsedMs} ms after SIGTERM`);
  assert.deepEqual(exit, { code: 0, signal: null });
  for (const [i, ex] of exchanges.entries()) {
    const last = parseResponses(ex.received).at(-1);
    assert.equal(last?.status, 201, `upload ${i}: ${ex.received.toString('latin1').slice(0, 300)}`);
    const file = (JSON.parse(last.body?.toString('utf8') ?? '') as { files: Array<{ id: string; sha256: string }> }).files[0];
    assert.ok(file !== undefined);
    const expected = sha256OfChunks(`shutdown-30000-${i}`, SIZE);
    assert.equal(file.sha256, expected);
    assert.equal(await sha256OfFile(join(inv.server.dataDir, file.id)), expected, `upload ${i}: bytes on disk`);
    inv.keep(file.id);
  }
  await inv.check('after a graceful shutdown', { processGone: true });
});

test('SIGTERM with a short grace: the 10 uploads are aborted and removed, exit 0', { timeout: 90_000 }, async () => {
  const { exchanges, exit, inv, elapsedMs } = await scenario(300);
  console.log(`short grace: exit ${JSON.stringify(exit)} ${elapsedMs} ms after SIGTERM`);
  assert.deepEqual(exit, { code: 0, signal: null });
  const seen = new Map<string, number>();
  for (const [i, ex] of exchanges.entries()) {
    const status = parseResponses(ex.received).at(-1)?.status ?? null;
    seen.set(`${status}/${ex.ended}`, (seen.get(`${status}/${ex.ended}`) ?? 0) + 1);
    assert.ok(status === null || status === 503, `upload ${i} answered ${status}: ${ex.received.toString('latin1').slice(0, 300)}`);
  }
  console.log(`short grace: answers/endings ${JSON.stringify(Object.fromEntries(seen))}`);
  await inv.check('after an impatient shutdown', { processGone: true });
});
