/**
 * Faults: the disk fills up. DATA_DIR is a tmpfs of 8 MiB mounted by the test (root only; the
 * test is skipped with the reason printed where mounting is not allowed). Uploads whose length
 * is not declared (chunked) cannot be refused up front: they must fail with 507
 * INSUFFICIENT_STORAGE once the disk is full, their partial files removed (the space comes
 * back), and a later upload that fits must succeed.
 */
import { strict as assert } from 'node:assert';
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, rm, statfs } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { after, before, test } from 'node:test';
import {
  Invariants,
  KiB,
  MULTIPART,
  MiB,
  errorCodeOf,
  filePart,
  generated,
  generatedChunks,
  multipartBody,
  request,
  sha256OfChunks,
  startSluice,
  streamedFileBody,
  type Sluice,
} from './helpers.js';

const run = promisify(execFile);
const TMPFS_BYTES = 8 * MiB;

let root = '';
let mountPoint = '';
let mounted = false;
let skipReason: string | null = null;
let server: Sluice | null = null;
let inv: Invariants;

before(async () => {
  root = await mkdtemp(join(tmpdir(), 'sluice-hardening-diskfull-'));
  mountPoint = join(root, 'tmpfs');
  await mkdir(mountPoint);
  if (process.getuid?.() !== 0) {
    skipReason = 'not root: cannot mount a tmpfs';
  } else {
    try {
      await run('mount', ['-t', 'tmpfs', '-o', `size=${TMPFS_BYTES}`, 'tmpfs', mountPoint], { timeout: 10_000 });
      mounted = true;
    } catch (err) {
      skipReason = `mount -t tmpfs failed: ${(err as Error).message.split('\n')[0]}`;
    }
  }
  if (skipReason !== null) {
    console.log(`SKIP disk-full tests: ${skipReason}`);
    return;
  }
  const dataDir = join(mountPoint, 'data');
  server = await startSluice({ FSYNC: 'false' }, { root, dataDir });
  inv = await Invariants.create(server, { canarySizes: [0, 5, 64 * KiB] });
});

after(async () => {
  await server?.stop();
  if (mounted) {
    await run('umount', [mountPoint], { timeout: 10_000 }).catch(async (err: unknown) => {
      console.log(`umount failed (${(err as Error).message}); lazy unmount`);
      await run('umount', ['-l', mountPoint], { timeout: 10_000 });
    });
  }
  await rm(root, { recursive: true, force: true });
});

async function freeBytes(): Promise<number> {
  const s = await statfs(mountPoint);
  return s.bavail * s.bsize;
}

test('a raw upload that does not fit gets 507 and leaves nothing', { timeout: 60_000 }, async (t) => {
  if (server === null) return void t.skip(skipReason ?? 'no server');
  const free = await freeBytes();
  const res = await request(server.url, '/upload', {
    method: 'POST',
    // chunked: no Content-Length, so the server cannot refuse it before reading
    headers: { 'content-type': 'application/octet-stream', 'transfer-encoding': 'chunked' },
    body: generatedChunks('too-big-raw', 2 * TMPFS_BYTES, 64 * KiB),
  });
  assert.equal(res.status, 507, res.body.toString());
  assert.equal(errorCodeOf(res), 'INSUFFICIENT_STORAGE');
  await inv.check('raw upload past the disk');
  assert.ok((await freeBytes()) >= free - 64 * KiB, 'the space of the failed upload came back');
});

test('a multipart upload that does not fit gets 507, every file of it removed', { timeout: 60_000 }, async (t) => {
  if (server === null) return void t.skip(skipReason ?? 'no server');
  const free = await freeBytes();
  // A first file that fits, then one that does not: both must go.
  const first = multipartBody([filePart('small', 'small.bin', generated('fits', 2 * MiB))]).body;
  const big = streamedFileBody('too-big-multipart', 2 * TMPFS_BYTES);
  const parts = (function* () {
    // `first` without its close delimiter (`CRLF--b--CRLF`), then CRLF and the second body's parts.
    yield first.subarray(0, first.lastIndexOf(Buffer.from('\r\n--', 'latin1')));
    yield Buffer.from('\r\n', 'latin1');
    yield* big.chunks();
  })();
  const res = await request(server.url, '/upload', { method: 'POST', headers: { 'content-type': MULTIPART, 'transfer-encoding': 'chunked' }, body: parts });
  assert.equal(res.status, 507, res.body.toString());
  assert.equal(errorCodeOf(res), 'INSUFFICIENT_STORAGE');
  await inv.check('multipart upload past the disk');
  assert.ok((await freeBytes()) >= free - 64 * KiB, 'the space of the failed upload came back');
});

test('a declared length that does not fit is refused before the body (413)', { timeout: 30_000 }, async (t) => {
  if (server === null) return void t.skip(skipReason ?? 'no server');
  const res = await request(server.url, '/upload', {
    method: 'POST',
    headers: { 'content-type': 'application/octet-stream', 'content-length': String(2 * TMPFS_BYTES), expect: '100-continue' },
    body: generatedChunks('declared-too-big', 2 * TMPFS_BYTES),
  });
  assert.equal(res.status, 413, res.body.toString());
  assert.equal(errorCodeOf(res), 'NOT_ENOUGH_SPACE');
  await inv.check('declared length past the disk');
});

test('after the disk was full, an upload that fits succeeds', { timeout: 30_000 }, async (t) => {
  if (server === null) return void t.skip(skipReason ?? 'no server');
  for (const [i, size] of [4 * MiB, 1 * MiB].entries()) {
    const res = await request(server.url, '/upload', {
      method: 'POST',
      headers: { 'content-type': 'application/octet-stream', 'transfer-encoding': 'chunked' },
      body: generatedChunks(`fits-${i}`, size),
    });
    assert.equal(res.status, 201, res.body.toString());
    const file = (JSON.parse(res.body.toString()) as { files: Array<{ id: string; sha256: string; size: number }> }).files[0];
    assert.ok(file !== undefined);
    assert.equal(file.size, size);
    assert.equal(file.sha256, sha256OfChunks(`fits-${i}`, size));
    const back = await request(server.url, `/files/${file.id}`, { hashOnly: true });
    assert.equal(back.sha256, file.sha256);
    inv.keep(file.id);
    await inv.check(`upload ${i} that fits`);
  }
});
