/**
 * Scenario `upload-s3`: one big multipart/form-data upload through sluice into an S3 bucket
 * (Ceph RGW), next to the same upload through sluice onto the local disk (peak RSS), a plain
 * signed multipart upload of the same bytes straight into RGW (throughput), and the same bytes as
 * a resumable upload (tus: creation, then one PATCH of every byte) into the same bucket. Then, in
 * this process through S3Store, an upload in 1 MiB appends (S3 requests per GiB, by operation),
 * once on one store and once alternating between two stores, as behind a load balancer (what the
 * sha256 read-back at completion costs).
 *
 *   npm run build && node --import tsx bench/s3/upload-s3.ts [--size 2GiB] [--part 8MiB] [--rounds 1] [--small-appends 256MiB]
 *
 * Uses the S3_* variables when S3_ENDPOINT is set (the bucket is created if missing), else
 * starts a throwaway RGW with test/ceph/start-rgw.sh. The data is an AES-CTR keystream,
 * generated 1 MiB at a time: never whole in memory, identical in every run.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { request } from 'node:http';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Readable } from 'node:stream';
import { parseArgs } from 'node:util';
import type { S3Config } from '../../lib/config.js';
import { parseSize } from '../../lib/size.js';
import { S3Store } from '../../storage/s3-store.js';
import { S3Client } from '../../storage/s3/client.js';
import { startRgw, type Rgw } from '../../test/helpers/ceph.js';
import { pseudoRandomBlocks, pseudoRandomSha256 } from './pseudo-random.js';
import { cpuSecondsOf, sampleRss, type RssReport } from './rss.js';

const SEED = 'sluice upload-s3 bench';
const LOCAL = 'sluice → local disk (STORE=local)';
const VIA_S3 = 'sluice → RGW (STORE=s3)';
const DIRECT = 'direct signed multipart → RGW (no sluice)';
const RESUMABLE = 'sluice → RGW resumable (tus, one PATCH)';
const BOUNDARY = 'sluice-bench-upload-s3';
/** radosgw's and ceph-osd's pids when this run started the gateway (their CPU time is reported), else empty. */
let cephPids: number[] = [];

/** CPU seconds of the gateway's processes (radosgw + the OSD that stores the bytes), or null when they are not ours. */
function rgwCpu(): number | null {
  return cephPids.length === 0 ? null : cephPids.reduce((n, pid) => n + cpuSecondsOf(pid), 0);
}

interface S3Target {
  readonly endpoint: string;
  readonly region: string;
  readonly bucket: string;
  readonly accessKey: string;
  readonly secretKey: string;
  readonly pathStyle: boolean;
}

interface Run {
  readonly name: string;
  readonly seconds: number;
  readonly bytes: number;
  readonly rss: RssReport | null;
  /** CPU seconds of the uploading side: the sluice server, or this process for the direct upload. */
  readonly cpuSeconds: number;
  /** CPU seconds radosgw used meanwhile (null: not our gateway). */
  readonly rgwCpuSeconds: number | null;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      size: { type: 'string', default: '2GiB' },
      part: { type: 'string', default: '8MiB' },
      rounds: { type: 'string', default: '1' },
      'small-appends': { type: 'string', default: '256MiB' },
    },
  });
  const rounds = Number(values.rounds);
  if (!Number.isInteger(rounds) || rounds < 1) throw new Error('--rounds takes a whole number above 0');
  const size = parseSize(values.size ?? '');
  const partBytes = parseSize(values.part ?? '');
  const smallAppends = parseSize(values['small-appends'] ?? '');
  if (size === null || partBytes === null || smallAppends === null) throw new Error('--size, --part and --small-appends take sizes such as 512MiB, 2GiB (0: skip)');
  if (!existsSync('dist/server.js')) throw new Error('dist/server.js is missing: run `npm run build` first');

  let rgw: Rgw | null = null;
  let target: S3Target;
  if (process.env.S3_ENDPOINT) {
    target = {
      endpoint: process.env.S3_ENDPOINT,
      region: process.env.S3_REGION ?? 'us-east-1',
      bucket: process.env.S3_BUCKET ?? `sluice-bench-${randomBytes(3).toString('hex')}`,
      accessKey: process.env.S3_ACCESS_KEY ?? '',
      secretKey: process.env.S3_SECRET_KEY ?? '',
      pathStyle: /^(1|true|yes|on)$/i.test(process.env.S3_FORCE_PATH_STYLE ?? 'false'),
    };
  } else {
    log('starting a throwaway Ceph RGW (test/ceph/start-rgw.sh)');
    const started = await startRgw();
    if (!started.ok) throw new Error(started.reason);
    rgw = started.rgw;
    const e = rgw.env;
    target = {
      endpoint: e.S3_ENDPOINT as string,
      region: e.S3_REGION as string,
      bucket: `sluice-bench-${randomBytes(3).toString('hex')}`,
      accessKey: e.S3_ACCESS_KEY as string,
      secretKey: e.S3_SECRET_KEY as string,
      pathStyle: true,
    };
  }
  const client = new S3Client({ ...target, endpoint: new URL(target.endpoint) });
  try {
    if (!(await client.bucketExists())) await client.createBucket(target.region);
    log(`hashing ${fmtMiB(size)} of generated data (not timed)`);
    const expected = pseudoRandomSha256(size, SEED);
    // A fresh RGW is slower at first (pools, memstore allocation): warm it up, untimed.
    await runDirect(client, Math.min(size, 64 * 2 ** 20), partBytes);

    const s3Env = {
      STORE: 's3',
      S3_ENDPOINT: target.endpoint,
      S3_REGION: target.region,
      S3_BUCKET: target.bucket,
      S3_ACCESS_KEY: target.accessKey,
      S3_SECRET_KEY: target.secretKey,
      S3_FORCE_PATH_STYLE: String(target.pathStyle),
      S3_PREFIX: 'bench/',
      S3_PART_BYTES: String(partBytes),
    };
    cephPids = rgw === null ? [] : ['client.rgw', 'osd.0'].map((name) => Number(readFileSync(join((rgw as Rgw).dir, 'run', `${name}.pid`), 'utf8').trim()));
    const contenders: Array<() => Promise<Run>> = [
      () => runSluice(LOCAL, { STORE: 'local' }, size, expected, uploadMultipart),
      () => runSluice(VIA_S3, s3Env, size, expected, uploadMultipart),
      () => runSluice(RESUMABLE, s3Env, size, expected, uploadResumable),
      () => runDirect(client, size, partBytes),
    ];
    const runs: Run[] = [];
    for (let round = 0; round < rounds; round += 1) {
      // Rotate the order each round so no contender always runs first (or right after a big delete).
      for (let i = 0; i < contenders.length; i += 1) runs.push(await (contenders[(i + round) % contenders.length] as () => Promise<Run>)());
    }
    printTable(runs, size, partBytes, rounds);
    if (smallAppends > 0) {
      const s3Config = { endpoint: target.endpoint, region: target.region, bucket: target.bucket, accessKey: target.accessKey, secretKey: target.secretKey, forcePathStyle: target.pathStyle, partBytes };
      printSmallAppends(await runSmallAppends(s3Config, smallAppends), partBytes);
    }
  } finally {
    client.close();
    if (rgw !== null) await rgw.stop();
  }
}

type Uploader = (url: string, size: number) => Promise<{ id: string; size: number; sha256: string }>;

/** Starts `node dist/server.js`, uploads once with `send`, samples the server's RSS. */
async function runSluice(name: string, env: Record<string, string>, size: number, expectedSha: string, send: Uploader): Promise<Run> {
  const dataDir = await mkdtemp(join(tmpdir(), 'sluice-bench-'));
  const child = spawn(process.execPath, [resolve('dist/server.js')], {
    env: { ...process.env, PORT: '0', HOST: '127.0.0.1', DATA_DIR: dataDir, LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  try {
    const url = await listeningUrl(child);
    log(`${name}: uploading ${fmtMiB(size)}`);
    const rss = sampleRss(child.pid as number);
    const rgw0 = rgwCpu();
    const t0 = process.hrtime.bigint();
    const stored = await send(url, size);
    const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
    const report = rss.stop();
    const rgwCpuSeconds = rgw0 === null ? null : (rgwCpu() as number) - rgw0;
    if (stored.size !== size || stored.sha256 !== expectedSha) throw new Error(`${name}: stored ${stored.size} bytes, sha256 ${stored.sha256}; expected ${expectedSha}`);
    // Free the space (RGW's memstore keeps objects in RAM).
    await new Promise<void>((res, rej) => request(`${url}/files/${stored.id}`, { method: 'DELETE' }, (r) => (r.resume(), res())).on('error', rej).end());
    return { name, seconds, bytes: size, rss: report, cpuSeconds: report.cpuSeconds, rgwCpuSeconds };
  } finally {
    child.kill('SIGTERM');
    if (child.exitCode === null) await once(child, 'exit');
    await rm(dataDir, { recursive: true, force: true });
  }
}

/** The same bytes straight into RGW: one part buffered, parts sent one after another, as sluice does. */
async function runDirect(client: S3Client, size: number, partBytes: number): Promise<Run> {
  const key = `bench/direct-${randomBytes(4).toString('hex')}`;
  log(`direct signed multipart upload: ${fmtMiB(size)}`);
  const rgw0 = rgwCpu();
  const cpu0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  const uploadId = await client.createMultipartUpload(key);
  const parts: Array<{ partNumber: number; etag: string }> = [];
  const part = Buffer.allocUnsafe(partBytes);
  let filled = 0;
  const flush = async (): Promise<void> => {
    const partNumber = parts.length + 1;
    parts.push({ partNumber, etag: await client.uploadPart(key, uploadId, partNumber, part.subarray(0, filled)) });
    filled = 0;
  };
  for (const block of pseudoRandomBlocks(size, SEED)) {
    for (let offset = 0; offset < block.length; ) {
      const n = block.copy(part, filled, offset);
      filled += n;
      offset += n;
      if (filled === partBytes) await flush();
    }
  }
  if (filled > 0 || parts.length === 0) await flush();
  await client.completeMultipartUpload(key, uploadId, parts);
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  const cpu = process.cpuUsage(cpu0);
  const head = await client.headObject(key);
  if (head?.size !== size) throw new Error(`direct upload: stored ${head?.size} bytes, expected ${size}`);
  await client.deleteObject(key);
  const rgwCpuSeconds = rgw0 === null ? null : (rgwCpu() as number) - rgw0;
  return { name: DIRECT, seconds, bytes: size, rss: null, cpuSeconds: (cpu.user + cpu.system) / 1e6, rgwCpuSeconds };
}

/** POST /upload with one file part, streamed with backpressure; resolves with the stored file. */
function uploadMultipart(url: string, size: number): Promise<{ id: string; size: number; sha256: string }> {
  const head = Buffer.from(
    `--${BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="bench.bin"\r\nContent-Type: application/octet-stream\r\n\r\n`,
  );
  const tail = Buffer.from(`\r\n--${BOUNDARY}--\r\n`);
  return new Promise((resolvePromise, reject) => {
    const req = request(`${url}/upload`, {
      method: 'POST',
      agent: false,
      headers: { 'content-type': `multipart/form-data; boundary=${BOUNDARY}`, 'content-length': head.length + size + tail.length },
    });
    req.on('error', reject);
    req.on('response', (res) => {
      let text = '';
      res.setEncoding('utf8').on('data', (d: string) => (text += d));
      res.on('end', () => {
        if (res.statusCode !== 201) return reject(new Error(`upload answered ${res.statusCode}: ${text}`));
        const file = (JSON.parse(text) as { files: Array<{ id: string; size: number; sha256: string }> }).files[0];
        if (file === undefined) return reject(new Error(`upload stored nothing: ${text}`));
        resolvePromise(file);
      });
    });
    void (async () => {
      req.write(head);
      for (const block of pseudoRandomBlocks(size, SEED)) {
        if (!req.write(block)) await once(req, 'drain');
      }
      req.end(tail);
    })().catch((err: unknown) => req.destroy(err as Error));
  });
}

/**
 * The same bytes as a resumable upload: tus creation, then one PATCH of every byte, streamed with
 * backpressure. The file's record (size, sha256) is read back from GET /files.
 */
async function uploadResumable(url: string, size: number): Promise<{ id: string; size: number; sha256: string }> {
  const tus = { 'tus-resumable': '1.0.0' };
  const created = await fetch(`${url}/uploads`, { method: 'POST', headers: { ...tus, 'upload-length': String(size) } });
  const location = created.headers.get('location');
  if (created.status !== 201 || location === null) throw new Error(`creation answered ${created.status}: ${await created.text()}`);
  const id = location.split('/').pop() as string;
  await new Promise<void>((resolvePromise, reject) => {
    const req = request(new URL(location, url), {
      method: 'PATCH',
      agent: false,
      headers: { ...tus, 'upload-offset': '0', 'content-type': 'application/offset+octet-stream', 'content-length': size },
    });
    req.on('error', reject);
    req.on('response', (res) => {
      res.resume();
      res.on('end', () =>
        res.statusCode === 204 && res.headers['upload-offset'] === String(size) ? resolvePromise() : reject(new Error(`PATCH answered ${res.statusCode}, offset ${res.headers['upload-offset']}`)),
      );
    });
    void (async () => {
      for (const block of pseudoRandomBlocks(size, SEED)) {
        if (!req.write(block)) await once(req, 'drain');
      }
      req.end();
    })().catch((err: unknown) => req.destroy(err as Error));
  });
  const listed = (await (await fetch(`${url}/files`)).json()) as { files: Array<{ id: string; size: number; sha256: string }> };
  const file = listed.files.find((f) => f.id === id);
  if (file === undefined) throw new Error(`the resumable upload ${id} is not a file`);
  return file;
}

interface SmallAppendsRun {
  readonly name: string;
  readonly bytes: number;
  readonly seconds: number;
  /** S3 requests by operation, the whole upload (creation to file). */
  readonly requests: ReadonlyMap<string, number>;
  /** The completing append: the last PATCH's time, with the read-back when the upload moved. */
  readonly completionSeconds: number;
  readonly readBackBytes: number;
  readonly readBackMs: number;
}

/**
 * An upload in 1 MiB appends through S3Store in this process (no HTTP): once on one store (its
 * tail stays in memory between appends), once alternating between two stores on the bucket (as
 * two instances behind a round-robin balancer: each reads the other's pieces back when a part
 * fills, and the file's sha256 is read back once at the end).
 */
async function runSmallAppends(s3: Omit<S3Config, 'prefix'>, size: number): Promise<SmallAppendsRun[]> {
  const runs: SmallAppendsRun[] = [];
  for (const stores of [1, 2]) {
    const config: S3Config = { ...s3, prefix: 'bench-appends/' };
    const fleet = Array.from({ length: stores }, () => new S3Store(config));
    try {
      const name = stores === 1 ? '1 MiB appends, one instance' : '1 MiB appends alternating between two instances';
      log(`${name}: ${fmtMiB(size)}`);
      const before = fleet.map((s) => new Map(s.uploads.requests));
      const t0 = process.hrtime.bigint();
      const meta = { field: null, filename: 'appends.bin', contentType: 'application/octet-stream' };
      const { id } = await (fleet[0] as S3Store).createUpload({ length: size, meta, metadata: {}, partial: false });
      let offset = 0;
      let completionSeconds = 0;
      let last = 0;
      for (const block of pseudoRandomBlocks(size, SEED)) {
        const store = fleet[last++ % fleet.length] as S3Store;
        const c0 = process.hrtime.bigint();
        const { file } = await store.appendUpload(id, Readable.from([block]), { offset });
        offset += block.length;
        if (file !== null) completionSeconds = Number(process.hrtime.bigint() - c0) / 1e9;
      }
      const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
      const requests = new Map<string, number>();
      fleet.forEach((s, i) => {
        for (const [op, n] of s.uploads.requests) requests.set(op, (requests.get(op) ?? 0) + n - ((before[i] as Map<string, number>).get(op) ?? 0));
      });
      const record = await (fleet[0] as S3Store).stat(id);
      if (record?.size !== size) throw new Error(`${name}: no file of ${size} bytes`);
      await (fleet[0] as S3Store).delete(id);
      const readBackBytes = fleet.reduce((n, s) => n + s.uploads.readBack.bytes, 0);
      const readBackMs = fleet.reduce((n, s) => n + s.uploads.readBack.ms, 0);
      runs.push({ name, bytes: size, seconds, requests, completionSeconds, readBackBytes, readBackMs });
    } finally {
      for (const s of fleet) await s.close();
    }
  }
  return runs;
}

function printSmallAppends(runs: readonly SmallAppendsRun[], partBytes: number): void {
  const ops = [...new Set(runs.flatMap((r) => [...r.requests.keys()]))].sort();
  const perGiB = (r: SmallAppendsRun, n: number): string => ((n * 2 ** 30) / r.bytes).toFixed(0);
  const lines = [
    '',
    `### resumable: 1 MiB appends through S3Store, S3_PART_BYTES=${fmtMiB(partBytes)} (S3 requests per GiB)`,
    '',
    `| run | MB/s | ${ops.join(' | ')} | all requests / GiB | last append (completion) s | read back for sha256 |`,
    `|---|---:|${ops.map(() => '---:|').join('')}---:|---:|---|`,
    ...runs.map((r) => {
      const total = [...r.requests.values()].reduce((a, b) => a + b, 0);
      const readBack = r.readBackBytes === 0 ? 'none (hashed on the way)' : `${fmtMiB(r.readBackBytes)} in ${(r.readBackMs / 1000).toFixed(1)} s (${(r.readBackBytes / 1e6 / (r.readBackMs / 1000)).toFixed(0)} MB/s)`;
      return `| ${r.name} | ${(r.bytes / 1e6 / r.seconds).toFixed(1)} | ${ops.map((op) => perGiB(r, r.requests.get(op) ?? 0)).join(' | ')} | **${perGiB(r, total)}** | ${r.completionSeconds.toFixed(2)} | ${readBack} |`;
    }),
    '',
    `- ${fmtMiB(runs[0]?.bytes ?? 0)} per run, counts scaled to 1 GiB; creation and completion included`,
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
}

function listeningUrl(child: ChildProcess): Promise<string> {
  return new Promise((resolvePromise, reject) => {
    let out = '';
    child.stdout?.setEncoding('utf8').on('data', (d: string) => {
      out += d;
      const m = /"msg":"listening","url":"([^"]+)"/.exec(out);
      if (m) resolvePromise(m[1] as string);
    });
    child.once('exit', (code) => reject(new Error(`server exited with ${code}`)));
  });
}

interface Summary {
  readonly name: string;
  /** Median over the rounds. */
  readonly mbps: number;
  readonly seconds: number;
  readonly cpuSeconds: number;
  readonly rgwCpuSeconds: number | undefined;
  /** Highest over the rounds. */
  readonly sampledPeakMiB: number | undefined;
  readonly hwmMiB: number | undefined;
}

function summarize(runs: readonly Run[], name: string): Summary {
  const mine = runs.filter((r) => r.name === name);
  const speeds = mine.map((r) => r.bytes / 1e6 / r.seconds).sort((a, b) => a - b);
  const mbps = median(speeds);
  const withRss = mine.filter((r) => r.rss !== null);
  return {
    name,
    mbps,
    seconds: median(mine.map((r) => r.seconds).sort((a, b) => a - b)),
    cpuSeconds: median(mine.map((r) => r.cpuSeconds).sort((a, b) => a - b)),
    rgwCpuSeconds: mine.some((r) => r.rgwCpuSeconds === null) ? undefined : median(mine.map((r) => r.rgwCpuSeconds as number).sort((a, b) => a - b)),
    sampledPeakMiB: withRss.length === 0 ? undefined : Math.max(...withRss.map((r) => r.rss?.sampledPeakMiB ?? 0)),
    hwmMiB: withRss.length === 0 ? undefined : Math.max(...withRss.map((r) => r.rss?.hwmMiB ?? 0)),
  };
}

function median(sorted: readonly number[]): number {
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? (sorted[mid] as number) : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}

function printTable(runs: readonly Run[], size: number, partBytes: number, rounds: number): void {
  const [local, s3, resumable, direct] = [LOCAL, VIA_S3, RESUMABLE, DIRECT].map((n) => summarize(runs, n)) as [Summary, Summary, Summary, Summary];
  const cell = (n: number | undefined): string => (n === undefined ? '–' : n.toFixed(1));
  const all = (name: string): string =>
    runs
      .filter((r) => r.name === name)
      .map((r) => (r.bytes / 1e6 / r.seconds).toFixed(1))
      .join(', ');
  const lines = [
    `### upload-s3: ${fmtMiB(size)}, multipart/form-data, S3_PART_BYTES=${fmtMiB(partBytes)}`,
    '',
    '| run | MB/s (median) | s | CPU s (uploader) | CPU s (radosgw + osd) | peak RSS MiB (50 ms samples) | VmHWM MiB | MB/s of each round |',
    '|---|---:|---:|---:|---:|---:|---:|---|',
    ...[local, s3, resumable, direct].map(
      (r) =>
        `| ${r.name} | ${cell(r.mbps)} | ${r.seconds.toFixed(1)} | ${r.cpuSeconds.toFixed(1)} | ${cell(r.rgwCpuSeconds)} | ${cell(r.sampledPeakMiB)} | ${cell(r.hwmMiB)} | ${all(r.name)} |`,
    ),
    '',
    `- throughput, sluice→RGW / direct→RGW: **${(s3.mbps / direct.mbps).toFixed(2)}×**`,
    `- throughput, sluice→RGW / sluice→disk: ${(s3.mbps / local.mbps).toFixed(2)}×`,
    `- resumable (one PATCH) / POST /upload, both into RGW: **${(resumable.mbps / s3.mbps).toFixed(2)}×** (target ≥ 0.90); peak RSS resumable − POST /upload: **${cell((resumable.hwmMiB ?? 0) - (s3.hwmMiB ?? 0))} MiB** (VmHWM; target ≤ one part, ${fmtMiB(partBytes)})`,
    `- peak RSS, STORE=s3 − STORE=local: **${cell((s3.hwmMiB ?? 0) - (local.hwmMiB ?? 0))} MiB** (VmHWM; one part is ${fmtMiB(partBytes)}), ratio ${((s3.hwmMiB ?? 0) / (local.hwmMiB ?? 1)).toFixed(2)}×`,
    `- node ${process.version}, ${rounds} round(s), order rotated each round; client, sluice and RGW share one host with ${cpus().length} CPUs, load average ${loadavg()[0]?.toFixed(1)} at the end (MB = 10^6 bytes)`,
    '- CPU s: the sluice server process for the sluice rows; for the direct row this process (data generation included); radosgw + osd: the gateway and the OSD storing the bytes (memstore: in RAM), meanwhile',
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
}

function fmtMiB(bytes: number): string {
  return bytes >= 2 ** 30 && bytes % 2 ** 30 === 0 ? `${bytes / 2 ** 30} GiB` : `${(bytes / 2 ** 20).toFixed(bytes % 2 ** 20 === 0 ? 0 : 1)} MiB`;
}

function log(msg: string): void {
  process.stderr.write(`[upload-s3] ${msg}\n`);
}

main().catch((err: unknown) => {
  process.stderr.write(`upload-s3: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exitCode = 1;
});
