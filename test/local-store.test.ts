/**
 * The local store's file writer on its own, writing with O_DIRECT and through the page cache:
 * what reaches the disk is exactly what was written, however the chunks are cut (it gathers
 * them into larger writes, and pads and truncates the last direct one), and a writer that fails
 * or is destroyed half-way leaves no file and no open descriptor behind.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { appendFileSync, constants, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statfsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { finished, pipeline } from 'node:stream/promises';
import { afterEach, beforeEach, describe, test, type TestContext } from 'node:test';
import { LocalStore } from '../storage/local-store.js';

import { openDescriptors, openFlags } from './helpers/descriptors.js';
import { mountOrSkip, unmount } from './helpers/mount.js';

let dir: string;
let store: LocalStore;

afterEach(() => rmSync(dir, { recursive: true, force: true }));

const meta = { field: 'file', filename: 'a.bin', contentType: 'application/octet-stream' };

/** Chunks of every size from 1 byte to 200 KiB, cut from `data`: small ones, and ones that span a batch. */
function* unevenChunks(data: Buffer): Generator<Buffer> {
  const sizes = [1, 7, 4096, 65_536, 1000, 200 * 1024, 3, 512 * 1024 - 1, 2, 65_535];
  for (let at = 0, i = 0; at < data.length; i += 1) {
    const size = sizes[i % sizes.length] as number;
    yield data.subarray(at, at + size);
    at += size;
  }
}

/** File systems known to take O_DIRECT (statfs magic numbers): ext4, XFS, btrfs. */
const DIRECT_IO_FILE_SYSTEMS = new Set([0xef53, 0x58465342, 0x9123683e]);

for (const directIo of [true, false]) describe(`LocalStore writer, ${directIo ? 'O_DIRECT' : 'page-cache'} writes`, () => {
  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'sluice-local-store-'));
    store = new LocalStore(dir, { fsync: true, directIo });
    await store.open();
  });

  test('the partial file is open with O_DIRECT exactly when direct writes are on', async (t) => {
    if (directIo && !DIRECT_IO_FILE_SYSTEMS.has(statfsSync(dir).type)) return t.skip(`${tmpdir()} is not ext4, XFS or btrfs`);
    assert.equal(store.writesDirect, directIo);
    const writer = store.createWriter(meta);
    await new Promise((resolve) => writer.write(randomBytes(1000), resolve));
    const flags = openFlags(join(dir, `.${writer.id}.partial`));
    assert.notEqual(flags, null, 'no descriptor open on the partial file');
    assert.equal(((flags as number) & constants.O_DIRECT) !== 0, directIo);
    writer.end();
    await finished(writer);
    await writer.commit();
  });

  test('files of aligned and unaligned lengths around the batch size are stored byte for byte', async () => {
    for (const size of [1, 4095, 4096, 4097, 512 * 1024 - 1, 512 * 1024, 512 * 1024 + 1, 1024 * 1024, 3 * 512 * 1024 + 100]) {
      const data = randomBytes(size);
      const writer = store.createWriter(meta);
      await pipeline(Readable.from(unevenChunks(data)), writer);
      const record = await writer.commit();
      assert.equal(record.size, size);
      assert.ok(readFileSync(join(dir, record.id)).equals(data), `${size} bytes: the stored bytes differ from the written ones`);
    }
  });

  test('a file written in uneven chunks (several write batches) is stored byte for byte, with its sha256', async () => {
    const data = randomBytes(5 * 1024 * 1024 + 12_345);
    const writer = store.createWriter(meta);
    await pipeline(Readable.from(unevenChunks(data)), writer);
    const record = await writer.commit();
    assert.equal(record.size, data.length);
    assert.equal(record.sha256, createHash('sha256').update(data).digest('hex'));
    assert.ok(readFileSync(join(dir, record.id)).equals(data), 'the stored bytes differ from the written ones');
    assert.deepEqual(readdirSync(dir).sort(), [record.id, `${record.id}.json`].sort());
  });

  test('many files written at once (their writes wait for turns) are each stored byte for byte', async () => {
    const files = Array.from({ length: 6 }, (_, i) => randomBytes(2 * 1024 * 1024 + i * 1_001));
    const records = await Promise.all(
      files.map(async (data) => {
        const writer = store.createWriter(meta);
        await pipeline(Readable.from(unevenChunks(data)), writer);
        return writer.commit();
      }),
    );
    records.forEach((record, i) => {
      const data = files[i] as Buffer;
      assert.equal(record.sha256, createHash('sha256').update(data).digest('hex'));
      assert.ok(readFileSync(join(dir, record.id)).equals(data), `file ${i}: the stored bytes differ from the written ones`);
    });
  });

  test('a file smaller than one write batch is stored too (written at the end)', async () => {
    const data = randomBytes(1000);
    const writer = store.createWriter(meta);
    await pipeline(Readable.from([data.subarray(0, 10), data.subarray(10)]), writer);
    const record = await writer.commit();
    assert.ok(readFileSync(join(dir, record.id)).equals(data));
  });

  test('an empty file is stored', async () => {
    const writer = store.createWriter(meta);
    writer.end();
    await finished(writer);
    const record = await writer.commit();
    assert.equal(record.size, 0);
    assert.equal(readFileSync(join(dir, record.id)).length, 0);
  });

  test('destroyed while a write is in flight: no file left, no descriptor left open', async () => {
    const before = openDescriptors();
    const writer = store.createWriter(meta);
    writer.on('error', () => {});
    // Enough for a batch to go out, then destroy while it may still be on its way to the disk.
    for (let i = 0; i < 12; i += 1) writer.write(randomBytes(64 * 1024));
    writer.destroy(new Error('client went away'));
    // abort() returns once the descriptor is closed and the partial file removed.
    await writer.abort();
    assert.deepEqual(readdirSync(dir), []);
    assert.equal(openDescriptors(), before);
  });

  test('destroyed while finishing (its last batch and sync still running): no crash, nothing left', async () => {
    const before = openDescriptors();
    for (let round = 0; round < 20; round += 1) {
      const writer = store.createWriter(meta);
      writer.on('error', () => {});
      // Once this first write is done the file is open (its open() is asynchronous).
      await new Promise((resolve) => writer.write(Buffer.alloc(10), resolve));
      writer.write(randomBytes(400 * 1024));
      writer.end();
      // end() starts _final (a writev of what was gathered, then fdatasync and close); cut it
      // short before the thread pool can report back.
      await new Promise<void>((r) => process.nextTick(r));
      writer.destroy(new Error('client went away'));
      await writer.abort();
    }
    // An fs call on the closed (null) descriptor would have thrown out of a callback by now.
    await new Promise((r) => setTimeout(r, 50));
    assert.deepEqual(readdirSync(dir), []);
    assert.equal(openDescriptors(), before);
  });

  test('past maxBytes the writer fails, and aborting leaves nothing', async () => {
    const writer = store.createWriter(meta, { maxBytes: 700 * 1024 });
    await assert.rejects(
      pipeline(Readable.from(unevenChunks(randomBytes(2 * 1024 * 1024))), writer),
      (err: Error & { code?: string }) => err.code === 'FILE_TOO_LARGE',
    );
    await writer.abort();
    assert.deepEqual(readdirSync(dir), []);
  });
});

describe('LocalStore on scratch file systems (root only: mounted by the test)', () => {
  let mountPoint = '';
  afterEach(() => {
    if (mountPoint !== '') unmount(mountPoint);
    mountPoint = '';
  });

  /** A fresh `type` file system under a new temp dir; null (and the test skipped) where mounting is not allowed. */
  function scratch(t: TestContext, type: string, options: readonly string[] = []): string | null {
    dir = mkdtempSync(join(tmpdir(), 'sluice-local-store-'));
    const point = join(dir, type);
    mkdirSync(point);
    if (!mountOrSkip(t, type, point, options)) return null;
    mountPoint = point;
    return point;
  }

  test('ramfs refuses O_DIRECT: the store falls back to page-cache writes and stores the bytes', async (t) => {
    const root = scratch(t, 'ramfs');
    if (root === null) return;
    store = new LocalStore(root, { fsync: true, directIo: true });
    await store.open();
    assert.equal(store.writesDirect, false);
    // The refused probe left nothing behind.
    assert.deepEqual(readdirSync(root), []);
    const data = randomBytes(2 * 1024 * 1024 + 17);
    const writer = store.createWriter(meta);
    await pipeline(Readable.from(unevenChunks(data)), writer);
    const record = await writer.commit();
    assert.ok(readFileSync(join(root, record.id)).equals(data));
  });

  test('a full tmpfs: the store opens (the O_DIRECT probe failing with ENOSPC does not stop start-up), and an upload fails cleanly', async (t) => {
    const root = scratch(t, 'tmpfs', ['-o', 'size=1m']);
    if (root === null) return;
    // Fill it to the last block.
    const filler = join(root, 'filler');
    assert.throws(() => {
      for (;;) appendFileSync(filler, Buffer.alloc(64 * 1024));
    }, (err: NodeJS.ErrnoException) => err.code === 'ENOSPC');
    store = new LocalStore(root, { fsync: true, directIo: true });
    await store.open();
    const writer = store.createWriter(meta);
    await assert.rejects(pipeline(Readable.from([randomBytes(1024 * 1024)]), writer), (err: NodeJS.ErrnoException) => err.code === 'ENOSPC');
    await writer.abort();
    assert.deepEqual(readdirSync(root), ['filler']);
  });
});
