/**
 * The local store's resumable uploads, measured at the store (no HTTP): what a state update
 * costs (the two-slot in-place write against temp + fsync + rename + directory sync), 1 MiB
 * appends against one append and against a plain `createWriter` file of the same bytes, the
 * cost of checkpoints in a long append, how fast the sha256 is rebuilt from the disk after a
 * restart, and how long a takeover of a stuck append takes. Every figure is measured side by
 * side with its baseline in the same run, rounds interleaved.
 *
 *   npm run bench:upload-store                         # 1 GiB, 3 rounds
 *   npm run bench:upload-store -- --size 256MiB --rounds 1
 *   strace -f -c node --import tsx bench/upload-store.ts --only small-appends --count 64 --rounds 1
 *                                                      # system calls of 64 appends (and --count 0 to subtract)
 *
 * Options: --size (the long append, default 1GiB), --rounds (default 3), --dir (default the
 * temp dir; must be the disk you care about), --only state|appends|checkpoints|rehash|takeover|small-appends,
 * --count (1 MiB appends per round, default 256), --direct-io true|false (default true).
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { open, rename } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { parseSize } from '../lib/size.js';
import { fsyncDirectory } from '../storage/directory-sync.js';
import { LocalStore } from '../storage/local-store.js';
import { hashFilePrefix } from '../storage/upload-hashing.js';
import { createStateFile, writeProgress, type StoredUpload } from '../storage/upload-state-file.js';

const MiB = 1024 * 1024;
const args = new Map<string, string>();
for (let i = 2; i < process.argv.length; i += 2) args.set((process.argv[i] as string).replace(/^--/, ''), process.argv[i + 1] ?? '');
const size = parseSize(args.get('size') ?? '1GiB') ?? 1024 * 1024 * 1024;
const rounds = Number(args.get('rounds') ?? 3);
const count = Number(args.get('count') ?? 256);
const only = args.get('only') ?? null;
const directIo = (args.get('direct-io') ?? 'true') === 'true';
const root = mkdtempSync(join(args.get('dir') ?? tmpdir(), 'sluice-bench-upload-store-'));
const meta = { field: null, filename: 'bench.bin', contentType: 'application/octet-stream' };
/** One 64 KiB socket read's worth, again and again (content does not matter to the disk). */
const chunk = randomBytes(64 * 1024);

function* chunks(bytes: number): Generator<Buffer> {
  for (let left = bytes; left > 0; left -= chunk.length) yield left >= chunk.length ? chunk : chunk.subarray(0, left);
}

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] as number;
}

async function freshStore(options: { checkpointBytes?: number } = {}): Promise<LocalStore> {
  const dir = mkdtempSync(join(root, 'store-'));
  const store = new LocalStore(dir, { fsync: true, directIo, ...options });
  await store.open();
  return store;
}

const newUpload = (length: number) => ({ length, meta, metadata: {}, partial: false });

/** ms per state update: in place (pwrite + fdatasync) against temp + fdatasync + rename + directory fsync. */
async function stateUpdates(): Promise<void> {
  const dir = mkdtempSync(join(root, 'state-'));
  const n = 200;
  const stored: StoredUpload = {
    header: { id: 'AAAAAAAAAAAAAAAAAAAAAA', meta, metadata: { a: 'b' }, partial: false, completesOnLast: false, created: new Date().toISOString(), parts: null, dataFrom: null },
    progress: { seq: 0, offset: 0, length: 1e12, expires: new Date().toISOString(), complete: false, sha256: null, completed: null },
  };
  const path = join(dir, '.state');
  await createStateFile(path, stored, true);
  const inPlace: number[] = [];
  const renamed: number[] = [];
  for (let r = 0; r < rounds; r += 1) {
    let t = performance.now();
    for (let i = 1; i <= n; i += 1) await writeProgress(path, { ...stored.progress, seq: r * n + i, offset: i * MiB }, true);
    inPlace.push((performance.now() - t) / n);
    t = performance.now();
    for (let i = 1; i <= n; i += 1) {
      const temp = join(dir, '.state.json.partial');
      const handle = await open(temp, 'w');
      await handle.writeFile(JSON.stringify({ ...stored, progress: { ...stored.progress, offset: i * MiB } }));
      await handle.datasync();
      await handle.close();
      await rename(temp, join(dir, 'state.json'));
      await fsyncDirectory(dir);
    }
    renamed.push((performance.now() - t) / n);
  }
  console.log(`| state update, in place (pwrite + fdatasync; open/close each) | ${median(inPlace).toFixed(2)} ms |`);
  console.log(`| state update, temp + fdatasync + rename + directory fsync     | ${median(renamed).toFixed(2)} ms |`);
}

/** `count` appends of 1 MiB against one append of the same bytes and a plain file written by createWriter. */
async function appends(): Promise<void> {
  const total = count * MiB;
  const rows: Record<string, number[]> = { 'createWriter (POST /upload path), one file': [], 'one append of all of it': [], [`${count} appends of 1 MiB`]: [] };
  for (let r = 0; r < rounds; r += 1) {
    const store = await freshStore();
    let t = performance.now();
    const writer = store.createWriter(meta);
    await pipeline(Readable.from(chunks(total)), writer);
    await writer.commit();
    rows['createWriter (POST /upload path), one file']?.push(performance.now() - t);
    const one = await store.createUpload(newUpload(total));
    t = performance.now();
    await store.appendUpload(one.id, Readable.from(chunks(total)), { offset: 0 });
    rows['one append of all of it']?.push(performance.now() - t);
    const many = await store.createUpload(newUpload(total));
    t = performance.now();
    for (let i = 0; i < count; i += 1) await store.appendUpload(many.id, Readable.from(chunks(MiB)), { offset: i * MiB });
    rows[`${count} appends of 1 MiB`]?.push(performance.now() - t);
    rmSync(store.dir, { recursive: true, force: true });
  }
  for (const [name, ms] of Object.entries(rows)) {
    const m = median(ms);
    console.log(`| ${name} (${count} MiB) | ${((total / m) * 1000 / 1e6).toFixed(0)} MB/s | ${(m / count).toFixed(2)} ms per MiB |`);
  }
}

/** Only `count` appends of 1 MiB, for `strace -f -c` (subtract a run with --count 0 for the per-append calls). */
async function smallAppends(): Promise<void> {
  const store = await freshStore();
  const up = await store.createUpload(newUpload((count + 1) * MiB));
  const t = performance.now();
  for (let i = 0; i < count; i += 1) await store.appendUpload(up.id, Readable.from(chunks(MiB)), { offset: i * MiB });
  if (count > 0) console.log(`| ${count} appends of 1 MiB, alone | ${((performance.now() - t) / count).toFixed(2)} ms per append |`);
  rmSync(store.dir, { recursive: true, force: true });
}

/** One long append with checkpoints every 64 MiB against none (checkpointBytes = Infinity). */
async function checkpoints(): Promise<void> {
  const rows: Record<string, number[]> = { 'no checkpoints': [], 'checkpoint every 64 MiB': [], 'checkpoint every 8 MiB': [] };
  const every: Record<string, number> = { 'no checkpoints': Infinity, 'checkpoint every 64 MiB': 64 * MiB, 'checkpoint every 8 MiB': 8 * MiB };
  for (let r = 0; r < rounds; r += 1) {
    for (const name of Object.keys(rows)) {
      const store = await freshStore({ checkpointBytes: every[name] as number });
      const up = await store.createUpload(newUpload(size));
      const t = performance.now();
      await store.appendUpload(up.id, Readable.from(chunks(size)), { offset: 0 });
      rows[name]?.push(performance.now() - t);
      rmSync(store.dir, { recursive: true, force: true });
    }
  }
  const none = rows['no checkpoints'] as number[];
  for (const [name, ms] of Object.entries(rows)) {
    const m = median(ms);
    // Per round against that round's run without checkpoints: the machine drifts between rounds.
    const ratios = ms.map((x, i) => x / (none[i] as number));
    console.log(`| one ${size / MiB} MiB append, ${name} | ${((size / m) * 1000 / 1e6).toFixed(0)} MB/s | ${median(ratios).toFixed(3)}× the time of none (rounds: ${ratios.map((r) => r.toFixed(2)).join(', ')}) |`);
  }
}

/** The sha256 rebuilt from the disk after a restart (bytes written with O_DIRECT: not in the page cache), against hashing in memory. */
async function rehash(): Promise<void> {
  const store = await freshStore();
  const up = await store.createUpload(newUpload(size + 1));
  await store.appendUpload(up.id, Readable.from(chunks(size)), { offset: 0 });
  const path = join(store.dir, `.${up.id}.upload`);
  const cold: number[] = [];
  const warm: number[] = [];
  const memory: number[] = [];
  for (let r = 0; r < rounds; r += 1) {
    // Cold: the page cache dropped for this file by rewriting it through O_DIRECT is not
    // possible from Node, so the first round is the cold one when the bytes were written direct.
    let t = performance.now();
    await hashFilePrefix(path, size);
    (r === 0 && store.writesDirect ? cold : warm).push(performance.now() - t);
    const h = createHash('sha256');
    t = performance.now();
    for (const c of chunks(size)) h.update(c);
    h.digest();
    memory.push(performance.now() - t);
  }
  const mbps = (ms: number): string => ((size / ms) * 1000 / 1e6).toFixed(0);
  if (cold.length > 0) console.log(`| re-hash ${size / MiB} MiB from the disk, cold (written with O_DIRECT) | ${mbps(median(cold))} MB/s |`);
  if (warm.length > 0) console.log(`| re-hash ${size / MiB} MiB from the page cache | ${mbps(median(warm))} MB/s |`);
  console.log(`| sha256 of ${size / MiB} MiB in memory (the CPU bound) | ${mbps(median(memory))} MB/s |`);
  rmSync(store.dir, { recursive: true, force: true });
}

/** From interruptUpload to its answer, with an append whose body is stuck after 1 MiB. */
async function takeover(): Promise<void> {
  const ms: number[] = [];
  const store = await freshStore();
  for (let r = 0; r < Math.max(rounds, 5); r += 1) {
    const up = await store.createUpload(newUpload(100 * MiB));
    async function* stuck(): AsyncGenerator<Buffer> {
      yield* chunks(MiB);
      await new Promise(() => {});
    }
    const running = store.appendUpload(up.id, stuck(), { offset: 0 }).catch(() => {});
    await new Promise((r) => setTimeout(r, 100));
    const t = performance.now();
    const state = await store.interruptUpload(up.id);
    ms.push(performance.now() - t);
    await running;
    if (state?.offset !== MiB) throw new Error(`takeover found offset ${state?.offset}`);
  }
  console.log(`| takeover of a stuck append holding 1 MiB (interruptUpload → answer) | ${median(ms).toFixed(1)} ms median, ${Math.max(...ms).toFixed(1)} ms max |`);
  rmSync(store.dir, { recursive: true, force: true });
}

const scenarios: Record<string, () => Promise<void>> = { state: stateUpdates, appends, checkpoints, rehash, takeover };
// Not in the default run: only for counting system calls.
const byName: Record<string, () => Promise<void>> = { ...scenarios, 'small-appends': smallAppends };
console.log(`Local store, ${directIo ? 'O_DIRECT' : 'page-cache'} writes, FSYNC on, in ${root}; ${rounds} round(s), medians\n`);
console.log('| what | figure | |\n|---|---|---|');
try {
  if (only !== null) await (byName[only] ?? (() => Promise.reject(new Error(`no scenario ${only}`))))();
  else for (const run of Object.values(scenarios)) await run();
} finally {
  rmSync(root, { recursive: true, force: true });
}
