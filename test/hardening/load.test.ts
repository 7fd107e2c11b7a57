/**
 * Load: 64 concurrent multipart uploads of 64 MiB each while 64 concurrent downloads of stored
 * files run. Every sha256 matches (the server's answer against what was sent, the downloads
 * against what was stored), nothing fails, and the server's peak RSS (VmHWM) is printed and
 * stays under 256 MiB: memory does not grow with the number or size of transfers.
 *
 * The data is generated while it is sent (AES-CTR keystream, see helpers.ts) and hashed on the
 * way; no body is ever whole in memory on either side.
 *
 * FSYNC=false: with fsync on, the server fdatasyncs every 32 MiB and before each commit, which
 * makes 4 GiB on a small VM disk-bound and slow without changing what this test is about (the
 * memory of the streaming path). Crash safety is the foundation tests' subject.
 */
import { strict as assert } from 'node:assert';
import { createHash } from 'node:crypto';
import { after, before, test } from 'node:test';
import {
  BOUNDARY,
  Invariants,
  MULTIPART,
  MiB,
  generatedChunks,
  memory,
  request,
  sha256OfChunks,
  startSluice,
  type Sluice,
} from './helpers.js';

const UPLOADS = 64;
const UPLOAD_BYTES = 64 * MiB;
const DOWNLOADS = 64;
const STORED_FILES = 8;
const STORED_BYTES = 32 * MiB;
const RSS_LIMIT_MIB = 256;

let server: Sluice;
let inv: Invariants;

before(async () => {
  server = await startSluice({ FSYNC: 'false', LOG_LEVEL: 'warn' });
  inv = await Invariants.create(server);
});
after(async () => {
  await server?.stop();
});

/** A multipart body with one 64 MiB file, generated as it is sent; the file's sha256 lands in `hash`. */
function* uploadBody(seed: string, hash: ReturnType<typeof createHash>): Generator<Buffer> {
  yield Buffer.from(`--${BOUNDARY}\r\nContent-Disposition: form-data; name="note"\r\n\r\n${seed}\r\n`, 'latin1');
  yield Buffer.from(`--${BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="${seed}.bin"\r\nContent-Type: application/octet-stream\r\n\r\n`, 'latin1');
  for (const chunk of generatedChunks(seed, UPLOAD_BYTES, 64 * 1024)) {
    hash.update(chunk);
    yield chunk;
  }
  yield Buffer.from(`\r\n--${BOUNDARY}--\r\n`, 'latin1');
}

const multipartLength = (seed: string): number =>
  Buffer.byteLength(`--${BOUNDARY}\r\nContent-Disposition: form-data; name="note"\r\n\r\n${seed}\r\n`) +
  Buffer.byteLength(`--${BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="${seed}.bin"\r\nContent-Type: application/octet-stream\r\n\r\n`) +
  UPLOAD_BYTES +
  Buffer.byteLength(`\r\n--${BOUNDARY}--\r\n`);

test(`${UPLOADS} uploads of 64 MiB and ${DOWNLOADS} downloads at once: every sha256 matches, VmHWM < ${RSS_LIMIT_MIB} MiB`, { timeout: 600_000 }, async () => {
  // Files to download, stored first (raw uploads, generated as they are sent).
  const stored: Array<{ id: string; sha256: string }> = [];
  await Promise.all(
    Array.from({ length: STORED_FILES }, async (_, i) => {
      const res = await request(server.url, '/upload', {
        method: 'POST',
        headers: { 'content-type': 'application/octet-stream', 'content-length': String(STORED_BYTES) },
        body: generatedChunks(`stored-${i}`, STORED_BYTES),
        timeoutMs: 120_000,
      });
      assert.equal(res.status, 201, res.body.toString());
      const file = (JSON.parse(res.body.toString('utf8')) as { files: Array<{ id: string; sha256: string }> }).files[0];
      assert.ok(file !== undefined);
      assert.equal(file.sha256, sha256OfChunks(`stored-${i}`, STORED_BYTES));
      stored[i] = file;
      inv.keep(file.id);
    }),
  );
  const before = memory(server.pid);

  let peakRss = 0;
  const sampler = setInterval(() => {
    try {
      peakRss = Math.max(peakRss, memory(server.pid).rssKiB);
    } catch {
      // the process is gone; the assertions below will say so
    }
  }, 100);
  const started = Date.now();
  try {
    const uploads = Array.from({ length: UPLOADS }, async (_, i) => {
      const seed = `load-${i}`;
      const hash = createHash('sha256');
      const res = await request(server.url, '/upload', {
        method: 'POST',
        headers: { 'content-type': MULTIPART, 'content-length': String(multipartLength(seed)) },
        body: uploadBody(seed, hash),
        timeoutMs: 540_000,
      });
      assert.equal(res.status, 201, `upload ${i}: ${res.status} ${res.body.toString()}`);
      const file = (JSON.parse(res.body.toString('utf8')) as { files: Array<{ id: string; sha256: string; size: number }> }).files[0];
      assert.ok(file !== undefined, `upload ${i}: no file`);
      assert.equal(file.size, UPLOAD_BYTES, `upload ${i}: size`);
      assert.equal(file.sha256, hash.digest('hex'), `upload ${i}: sha256`);
      inv.keep(file.id);
      return file;
    });
    const downloads = Array.from({ length: DOWNLOADS }, async (_, i) => {
      const file = stored[i % STORED_FILES] as { id: string; sha256: string };
      const res = await request(server.url, `/files/${file.id}`, { hashOnly: true, timeoutMs: 540_000 });
      assert.equal(res.status, 200, `download ${i}`);
      assert.equal(res.size, STORED_BYTES, `download ${i}: size`);
      assert.equal(res.sha256, file.sha256, `download ${i}: sha256`);
    });
    const results = await Promise.allSettled([...uploads, ...downloads]);
    const failed = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected').map((r) => String(r.reason));
    assert.deepEqual(failed, [], `${failed.length} transfers failed`);
    // A stored upload reads back whole.
    const uploaded = await uploads[0];
    const back = await request(server.url, `/files/${uploaded?.id ?? ''}`, { hashOnly: true, timeoutMs: 120_000 });
    assert.equal(back.sha256, uploaded?.sha256);
  } finally {
    clearInterval(sampler);
  }
  const seconds = (Date.now() - started) / 1000;
  const after = memory(server.pid);
  const movedMiB = (UPLOADS * UPLOAD_BYTES + DOWNLOADS * STORED_BYTES) / MiB;
  console.log(
    `load: ${UPLOADS}×64 MiB up and ${DOWNLOADS}×${STORED_BYTES / MiB} MiB down (${movedMiB} MiB) in ${seconds.toFixed(1)} s (${Math.round(movedMiB / seconds)} MiB/s); ` +
      `server RSS ${Math.round(before.rssKiB / 1024)} MiB before, peak sampled ${Math.round(peakRss / 1024)} MiB, after ${Math.round(after.rssKiB / 1024)} MiB; VmHWM ${Math.round(after.hwmKiB / 1024)} MiB`,
  );
  assert.ok(after.hwmKiB < RSS_LIMIT_MIB * 1024, `the server's peak RSS (VmHWM) was ${Math.round(after.hwmKiB / 1024)} MiB`);
  await inv.check('load');
});
