/**
 * Resumable uploads in the local store, through the UploadStore contract on real files, with
 * O_DIRECT writes (odd offsets: the block before the offset is read back and rewritten) and
 * with page-cache writes: offsets, byte-exact content and sha256 over many uneven appends and
 * restarts, cut bodies, checksums, takeover of a stuck append, lengths and limits, expiry,
 * concatenation, termination, and no descriptor left open.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { constants, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, statfsSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterEach, describe, test, type TestContext } from 'node:test';
import { SluiceError } from '../lib/errors.js';
import { newFileId } from '../storage/file-id.js';
import { LocalStore, type LocalStoreOptions } from '../storage/local-store.js';
import { readStateFile } from '../storage/upload-state-file.js';
import { openDescriptors, openFlags } from './helpers/descriptors.js';
import { mountOrSkip, unmount } from './helpers/mount.js';
import { failingAfter, meta, newUpload, pattern, sha256, stuckAfter, unevenChunks } from './helpers/uploads.js';

/** File systems known to take O_DIRECT (statfs magic numbers): ext4, XFS, btrfs. */
const DIRECT_IO_FILE_SYSTEMS = new Set([0xef53, 0x58465342, 0x9123683e]);

let dir = '';
afterEach(() => rmSync(dir, { recursive: true, force: true }));

async function openStore(options: LocalStoreOptions = {}): Promise<LocalStore> {
  const store = new LocalStore(dir, { fsync: true, ...options });
  await store.open();
  return store;
}

function code(expected: string): (err: unknown) => boolean {
  return (err) => {
    assert.ok(err instanceof SluiceError, `not a SluiceError: ${String(err)}`);
    assert.equal(err.code, expected);
    return true;
  };
}

/** Appends `data` from `from` up to `to` in pieces of `sizes` (cycled), checking each reported offset. */
async function appendInPieces(store: LocalStore, id: string, data: Buffer, from: number, to: number, sizes: readonly number[]): Promise<void> {
  let offset = from;
  for (let i = 0; offset < to; i += 1) {
    const end = Math.min(to, offset + (sizes[i % sizes.length] as number));
    const { upload, file } = await store.appendUpload(id, Readable.from(unevenChunks(data.subarray(offset, end))), { offset });
    assert.equal(upload.offset, end);
    assert.equal(file === null, end < data.length, 'a file exactly when the last byte arrives');
    offset = end;
  }
}

for (const directIo of [true, false]) {
  describe(`resumable uploads in the local store, ${directIo ? 'O_DIRECT' : 'page-cache'} writes`, () => {
    const options = { directIo };

    test('appends of uneven sizes at odd offsets: each offset reported, the bytes and sha256 exact, a file only at the end', async (t) => {
      dir = mkdtempSync(join(tmpdir(), 'sluice-uploads-'));
      if (directIo && !DIRECT_IO_FILE_SYSTEMS.has(statfsSync(dir).type)) t.diagnostic(`${tmpdir()} may not take O_DIRECT; page-cache writes are tested twice`);
      const store = await openStore(options);
      const data = pattern(3 * 1024 * 1024 + 4097);
      const created = await store.createUpload(newUpload(data.length));
      assert.equal(created.offset, 0);
      assert.equal(created.complete, false);
      assert.equal(created.length, data.length);
      assert.ok(created.expires !== null && Date.parse(created.expires) > Date.now());
      // Before completion the upload is no file: not in stat, read or list.
      await appendInPieces(store, created.id, data, 0, 1_000_003, [1, 4095, 4097, 3, 65_537, 524_287, 4096]);
      assert.equal(await store.stat(created.id), null);
      assert.deepEqual(await store.list(), []);
      await assert.rejects(store.read(created.id), code('NOT_FOUND'));
      const pending = await store.getUpload(created.id);
      assert.equal(pending?.offset, 1_000_003);
      assert.ok(readFileSync(join(dir, `.${created.id}.upload`)).equals(data.subarray(0, 1_000_003)), 'the bytes so far, exactly');
      await appendInPieces(store, created.id, data, 1_000_003, data.length, [1_048_577, 2, 700_000, 999_999]);
      const record = await store.stat(created.id);
      assert.equal(record?.size, data.length);
      assert.equal(record?.sha256, sha256(data));
      assert.deepEqual(record?.metadata, { note: 'kept' });
      assert.equal(record?.filename, meta.filename);
      assert.ok(readFileSync(join(dir, created.id)).equals(data));
      assert.deepEqual(readdirSync(dir).sort(), [created.id, `${created.id}.json`].sort(), 'nothing of the upload is left beside the file');
      const done = await store.getUpload(created.id);
      assert.equal(done?.complete, true);
      assert.equal(done?.offset, data.length);
      assert.equal(done?.expires, null);
      assert.equal(store.uploads.hashesHeld, 0, 'the hash is dropped once the upload is a file');
    });

    test('a new store on the same directory between appends (a restart) continues the upload with the right sha256', async () => {
      dir = mkdtempSync(join(tmpdir(), 'sluice-uploads-'));
      const data = pattern(2 * 1024 * 1024 + 333, 2);
      let store = await openStore(options);
      const { id } = await store.createUpload(newUpload(data.length));
      const cuts = [0, 5, 4096 * 3 + 1, 700_001, 1_500_000, data.length];
      for (let i = 0; i + 1 < cuts.length; i += 1) {
        const [from, to] = [cuts[i] as number, cuts[i + 1] as number];
        // Every append runs in a fresh store: no hash in memory, the prefix is read back at the end.
        store = await openStore(options);
        assert.equal((await store.getUpload(id))?.offset, from);
        await store.appendUpload(id, Readable.from([data.subarray(from, to)]), { offset: from });
      }
      const record = await store.stat(id);
      assert.equal(record?.sha256, sha256(data));
      assert.ok(readFileSync(join(dir, id)).equals(data));
    });

    test('after a restart the sha256 is rebuilt in the background, behind the appends, then hashed on the way in again', async () => {
      dir = mkdtempSync(join(tmpdir(), 'sluice-uploads-'));
      const data = pattern(6 * 1024 * 1024, 21);
      let store = await openStore(options);
      const { id } = await store.createUpload(newUpload(data.length));
      await store.appendUpload(id, Readable.from(unevenChunks(data.subarray(0, 4 * 1024 * 1024 + 1))), { offset: 0 });
      const until = async (what: string, check: () => boolean): Promise<void> => {
        for (let i = 0; i < 1000 && !check(); i += 1) await new Promise((r) => setTimeout(r, 10));
        assert.ok(check(), what);
      };
      // open() starts rebuilding the hashes of pending uploads, without waiting for them.
      store = await openStore(options);
      await until('rebuilt after the restart, without any append', () => store.uploads.hashStateOf(id).running === 4 * 1024 * 1024 + 1);
      await store.close();
      // An append right after a restart is not held up by the read-back: it takes its bytes at
      // once (unhashed if the rebuild is not done yet); the rebuild catches up behind it.
      store = await openStore(options);
      const cut = new Error('cut');
      await assert.rejects(store.appendUpload(id, failingAfter(data.subarray(4 * 1024 * 1024 + 1, 5 * 1024 * 1024), cut), { offset: 4 * 1024 * 1024 + 1 }), (e) => e === cut);
      await until('caught up with the durable bytes, then running again', () => store.uploads.hashStateOf(id).running === 5 * 1024 * 1024);
      assert.equal(store.uploads.hashStateOf(id).rebuilt, null);
      const { file } = await store.appendUpload(id, Readable.from([data.subarray(5 * 1024 * 1024)]), { offset: 5 * 1024 * 1024 });
      assert.equal(file?.sha256, sha256(data));
      assert.equal(store.uploads.hashesHeld, 0);
    });

    test('a wrong offset is 409 with the true offset and changes nothing', async () => {
      dir = mkdtempSync(join(tmpdir(), 'sluice-uploads-'));
      const store = await openStore(options);
      const data = pattern(10_000);
      const { id } = await store.createUpload(newUpload(data.length));
      await store.appendUpload(id, Readable.from([data.subarray(0, 3000)]), { offset: 0 });
      await assert.rejects(store.appendUpload(id, Readable.from([Buffer.alloc(10)]), { offset: 2999 }), (err: unknown) => {
        assert.ok(err instanceof SluiceError && err.code === 'OFFSET_MISMATCH' && err.status === 409);
        assert.equal((err as SluiceError & { offset: number }).offset, 3000);
        return true;
      });
      assert.equal((await store.getUpload(id))?.offset, 3000);
      assert.equal(statSync(join(dir, `.${id}.upload`)).size, 3000);
      await store.appendUpload(id, Readable.from([data.subarray(3000)]), { offset: 3000 });
      assert.equal((await store.stat(id))?.sha256, sha256(data));
    });

    test('a body cut mid-way: every byte taken is durable and counted, then the append rejects with the cut', async () => {
      dir = mkdtempSync(join(tmpdir(), 'sluice-uploads-'));
      const store = await openStore(options);
      const data = pattern(1024 * 1024 + 77, 3);
      const { id } = await store.createUpload(newUpload(data.length));
      const cut = new Error('client went away');
      await assert.rejects(store.appendUpload(id, failingAfter(data.subarray(0, 600_001), cut), { offset: 0 }), (err) => err === cut);
      assert.equal((await store.getUpload(id))?.offset, 600_001);
      // A restart sees the same: the offset was durable before the append rejected.
      const again = await openStore(options);
      assert.equal((await again.getUpload(id))?.offset, 600_001);
      // The request's signal aborting (client gone, idle timeout, shutdown): the same.
      const controller = new AbortController();
      const aborting = again.appendUpload(id, stuckAfter(data.subarray(600_001, 700_000)), { offset: 600_001, signal: controller.signal });
      await new Promise((r) => setTimeout(r, 30));
      const reason = new Error('idle timeout');
      controller.abort(reason);
      await assert.rejects(aborting, (err) => err === reason);
      assert.equal((await again.getUpload(id))?.offset, 700_000);
      await again.appendUpload(id, Readable.from([data.subarray(700_000)]), { offset: 700_000 });
      assert.equal((await again.stat(id))?.sha256, sha256(data));
    });

    test('checksum extension: a mismatch and a cut checksummed body discard their bytes; the sha256 comes out right after', async () => {
      dir = mkdtempSync(join(tmpdir(), 'sluice-uploads-'));
      const store = await openStore(options);
      const data = pattern(900_000, 4);
      const { id } = await store.createUpload(newUpload(data.length));
      const first = data.subarray(0, 100_003);
      await store.appendUpload(id, Readable.from([first]), { offset: 0, checksum: { algorithm: 'sha1', digest: createHash('sha1').update(first).digest() } });
      const second = data.subarray(100_003, 600_000);
      const wrong = createHash('md5').update('not the body').digest();
      await assert.rejects(
        store.appendUpload(id, Readable.from(unevenChunks(second)), { offset: 100_003, checksum: { algorithm: 'md5', digest: wrong } }),
        code('CHECKSUM_MISMATCH'),
      );
      assert.equal((await store.getUpload(id))?.offset, 100_003);
      assert.equal(statSync(join(dir, `.${id}.upload`)).size, 100_003, 'the mismatched bytes are gone from the disk');
      const cut = new Error('cut');
      const digest = createHash('sha512').update(second).digest();
      await assert.rejects(store.appendUpload(id, failingAfter(second.subarray(0, 50_000), cut), { offset: 100_003, checksum: { algorithm: 'sha512', digest } }), (e) => e === cut);
      assert.equal((await store.getUpload(id))?.offset, 100_003, 'a cut checksummed body cannot be verified: none of it counts');
      await store.appendUpload(id, Readable.from([second]), { offset: 100_003, checksum: { algorithm: 'sha512', digest } });
      const rest = data.subarray(600_000);
      await store.appendUpload(id, Readable.from([rest]), { offset: 600_000, checksum: { algorithm: 'sha256', digest: createHash('sha256').update(rest).digest() } });
      // Hashed once in memory, rolled back twice: the whole-file sha256 is still that of the bytes.
      assert.equal((await store.stat(id))?.sha256, sha256(data));
      assert.ok(readFileSync(join(dir, id)).equals(data));
    });

    test('quick takeover: a second append ends a stuck one at once; its bytes count; the newest wins', async () => {
      dir = mkdtempSync(join(tmpdir(), 'sluice-uploads-'));
      const store = await openStore(options);
      const data = pattern(2 * 1024 * 1024, 5);
      const { id } = await store.createUpload(newUpload(data.length));
      const stuck = store.appendUpload(id, stuckAfter(data.subarray(0, 300_001)), { offset: 0 });
      const stuckSettled = stuck.then(
        () => 'resolved',
        (err: unknown) => (err instanceof SluiceError ? err.code : String(err)),
      );
      // Let it take its bytes (they sit in the writer's batch, not yet on disk) and get stuck.
      await new Promise((r) => setTimeout(r, 50));
      assert.equal((await store.getUpload(id))?.offset, 0, 'nothing durable yet: the bytes wait in the batch');
      // A retry that believes the offset is 0 learns the true one.
      const started = Date.now();
      await assert.rejects(store.appendUpload(id, Readable.from([data]), { offset: 0 }), (err: unknown) => {
        assert.ok(err instanceof SluiceError && err.code === 'OFFSET_MISMATCH');
        assert.equal((err as SluiceError & { offset: number }).offset, 300_001);
        return true;
      });
      assert.equal(await stuckSettled, 'UPLOAD_INTERRUPTED');
      // Not a timing claim: a takeover that waited for the stuck body would never get here.
      assert.ok(Date.now() - started < 30_000);
      // interruptUpload on an upload with a stuck append: the same, and the state it answers is the true one.
      const stuck2 = store.appendUpload(id, stuckAfter(data.subarray(300_001, 400_000)), { offset: 300_001 }).catch((e: unknown) => e);
      await new Promise((r) => setTimeout(r, 50));
      const state = await store.interruptUpload(id);
      assert.equal(state?.offset, 400_000);
      assert.equal(((await stuck2) as SluiceError).code, 'UPLOAD_INTERRUPTED');
      await store.appendUpload(id, Readable.from([data.subarray(400_000)]), { offset: 400_000 });
      assert.equal((await store.stat(id))?.sha256, sha256(data));
    });

    test('a takeover keeps what the old body still delivers at once (the buffers of a cut socket), then lets go', async () => {
      dir = mkdtempSync(join(tmpdir(), 'sluice-uploads-'));
      const store = await openStore(options);
      const data = pattern(8 * 1024 * 1024, 22);
      const { id } = await store.createUpload(newUpload(data.length));
      let open = (): void => {};
      const gate = new Promise<void>((r) => (open = r));
      let reachedGate = (): void => {};
      const atGate = new Promise<void>((r) => (reachedGate = r));
      async function* body(): AsyncGenerator<Buffer> {
        yield data.subarray(0, 1024 * 1024);
        reachedGate();
        await gate;
        // What the kernel had received before the cut: it comes at once when read.
        for (let at = 1024 * 1024; at < 4 * 1024 * 1024; at += 64 * 1024) yield data.subarray(at, at + 64 * 1024);
        await new Promise(() => {}); // then nothing: the connection is dead
      }
      const old = store.appendUpload(id, body(), { offset: 0 }).catch((e: unknown) => e);
      await atGate;
      const interrupted = store.interruptUpload(id);
      open();
      assert.equal((await interrupted)?.offset, 4 * 1024 * 1024, 'the bytes at hand were read and kept, not thrown away');
      assert.equal(((await old) as SluiceError).code, 'UPLOAD_INTERRUPTED');
      await store.appendUpload(id, Readable.from([data.subarray(4 * 1024 * 1024)]), { offset: 4 * 1024 * 1024 });
      assert.equal((await store.stat(id))?.sha256, sha256(data));
    });

    test('an append waiting behind a stuck one is superseded by a newer request: never two writers', async () => {
      dir = mkdtempSync(join(tmpdir(), 'sluice-uploads-'));
      const store = await openStore(options);
      const data = pattern(100_000, 6);
      const { id } = await store.createUpload(newUpload(data.length));
      const a = store.appendUpload(id, stuckAfter(data.subarray(0, 10_000)), { offset: 0 }).catch((e: unknown) => e);
      await new Promise((r) => setTimeout(r, 30));
      const b = store.appendUpload(id, stuckAfter(data.subarray(0, 10_000)), { offset: 0 }).catch((e: unknown) => e);
      const c = store.deleteUpload(id);
      assert.equal(((await a) as SluiceError).code, 'UPLOAD_INTERRUPTED');
      assert.equal(((await b) as SluiceError).code, 'UPLOAD_INTERRUPTED', 'b never ran: c came after it');
      assert.equal(await c, true);
      assert.equal(await store.getUpload(id), null);
      assert.deepEqual(readdirSync(dir), [], 'termination removes every byte and the state');
      assert.equal(store.uploads.hashesHeld, 0);
    });

    test('deferred length, an append that sets it, and `last` (the length becomes where the body ends)', async () => {
      dir = mkdtempSync(join(tmpdir(), 'sluice-uploads-'));
      const store = await openStore(options);
      const data = pattern(300_000, 7);
      const a = await store.createUpload(newUpload(null));
      assert.equal(a.length, null);
      await store.appendUpload(a.id, Readable.from([data.subarray(0, 1000)]), { offset: 0 });
      await assert.rejects(store.appendUpload(a.id, Readable.from([]), { offset: 1000, length: 999 }), code('UPLOAD_LENGTH_MISMATCH'));
      const set = await store.appendUpload(a.id, Readable.from([data.subarray(1000, 2000)]), { offset: 1000, length: data.length });
      assert.equal(set.upload.length, data.length);
      await assert.rejects(store.appendUpload(a.id, Readable.from([]), { offset: 2000, length: data.length + 1 }), code('UPLOAD_LENGTH_MISMATCH'));
      const done = await store.appendUpload(a.id, Readable.from([data.subarray(2000)]), { offset: 2000 });
      assert.equal(done.file?.sha256, sha256(data));

      const b = await store.createUpload(newUpload(null));
      await store.appendUpload(b.id, Readable.from([data.subarray(0, 5000)]), { offset: 0 });
      const last = await store.appendUpload(b.id, Readable.from([data.subarray(5000, 12_345)]), { offset: 5000, last: true });
      assert.equal(last.upload.length, 12_345);
      assert.equal(last.file?.sha256, sha256(data.subarray(0, 12_345)));

      // `last` with a known length that the body does not reach: its bytes count, the append is refused.
      const c = await store.createUpload(newUpload(10_000));
      await assert.rejects(store.appendUpload(c.id, Readable.from([data.subarray(0, 4000)]), { offset: 0, last: true }), code('UPLOAD_LENGTH_MISMATCH'));
      assert.equal((await store.getUpload(c.id))?.offset, 4000);
    });

    test('IETF completion (completesOnLast): reaching the length is not enough; an empty last append completes it', async () => {
      dir = mkdtempSync(join(tmpdir(), 'sluice-uploads-'));
      const store = await openStore(options);
      const data = pattern(50_000, 8);
      const { id } = await store.createUpload(newUpload(data.length, { completesOnLast: true }));
      const full = await store.appendUpload(id, Readable.from([data]), { offset: 0 });
      assert.equal(full.upload.offset, data.length);
      assert.equal(full.upload.complete, false);
      assert.equal(await store.stat(id), null);
      const done = await store.appendUpload(id, Readable.from([]), { offset: data.length, last: true });
      assert.equal(done.upload.complete, true);
      assert.equal(done.file?.sha256, sha256(data));
      await assert.rejects(store.appendUpload(id, Readable.from([]), { offset: data.length }), code('UPLOAD_COMPLETE'));
    });

    test('a body past the length, or past maxBytes: 413, none of its bytes kept, the offset where it was', async () => {
      dir = mkdtempSync(join(tmpdir(), 'sluice-uploads-'));
      const store = await openStore(options);
      const data = pattern(200_000, 9);
      const { id } = await store.createUpload(newUpload(100_000));
      await store.appendUpload(id, Readable.from([data.subarray(0, 10_001)]), { offset: 0 });
      await assert.rejects(store.appendUpload(id, Readable.from(unevenChunks(data.subarray(10_001))), { offset: 10_001 }), (err: unknown) => {
        assert.ok(err instanceof SluiceError && err.code === 'UPLOAD_LENGTH_EXCEEDED' && err.status === 413);
        return true;
      });
      assert.equal((await store.getUpload(id))?.offset, 10_001);
      assert.equal(statSync(join(dir, `.${id}.upload`)).size, 10_001);
      assert.equal(await store.stat(id), null, 'never completed with bytes past its length');
      const done = await store.appendUpload(id, Readable.from([data.subarray(10_001, 100_000)]), { offset: 10_001 });
      assert.equal(done.file?.sha256, sha256(data.subarray(0, 100_000)), 'the hash was rolled back with the bytes');

      const deferred = await store.createUpload(newUpload(null));
      await assert.rejects(store.appendUpload(deferred.id, Readable.from([data]), { offset: 0, maxBytes: 150_000 }), code('FILE_TOO_LARGE'));
      assert.equal((await store.getUpload(deferred.id))?.offset, 0);
      await assert.rejects(store.appendUpload(deferred.id, Readable.from([]), { offset: 0, length: 150_001, maxBytes: 150_000 }), code('FILE_TOO_LARGE'));
    });

    test('maxPending: creation refused with 503 TOO_MANY_PENDING_UPLOADS while that many are pending; a completed one frees its place', async () => {
      dir = mkdtempSync(join(tmpdir(), 'sluice-uploads-'));
      const store = await openStore(options);
      const a = await store.createUpload(newUpload(3), { maxPending: 2 });
      await store.createUpload(newUpload(3), { maxPending: 2 });
      await assert.rejects(store.createUpload(newUpload(3), { maxPending: 2 }), (err: unknown) => {
        assert.ok(err instanceof SluiceError && err.code === 'TOO_MANY_PENDING_UPLOADS' && err.status === 503);
        assert.ok(err.headers['retry-after'] !== undefined);
        return true;
      });
      await store.appendUpload(a.id, Readable.from([Buffer.from('abc')]), { offset: 0 });
      await store.createUpload(newUpload(3), { maxPending: 2 });
      assert.equal((await store.listUploads()).length, 2);
      // After a restart the count is rebuilt from the disk.
      const again = await openStore(options);
      await assert.rejects(again.createUpload(newUpload(3), { maxPending: 2 }), code('TOO_MANY_PENDING_UPLOADS'));
    });

    test('appends go through the O_DIRECT writer exactly when direct writes are on', async (t) => {
      dir = mkdtempSync(join(tmpdir(), 'sluice-uploads-'));
      if (directIo && !DIRECT_IO_FILE_SYSTEMS.has(statfsSync(dir).type)) return t.skip(`${tmpdir()} is not ext4, XFS or btrfs`);
      const store = await openStore(options);
      assert.equal(store.writesDirect, directIo);
      const { id } = await store.createUpload(newUpload(1_000_000));
      await store.appendUpload(id, Readable.from([pattern(4097)]), { offset: 0 });
      const appending = store.appendUpload(id, stuckAfter(pattern(10_000)), { offset: 4097 }).catch(() => {});
      await new Promise((r) => setTimeout(r, 30));
      const flags = openFlags(join(dir, `.${id}.upload`));
      assert.notEqual(flags, null, 'no descriptor open on the upload file');
      assert.equal(((flags as number) & constants.O_DIRECT) !== 0, directIo);
      await store.interruptUpload(id);
      await appending;
    });

    test('fetch jobs: a caller-made id (taken once), and verify() refusing the completed bytes (nothing visible)', async () => {
      dir = mkdtempSync(join(tmpdir(), 'sluice-uploads-'));
      const store = await openStore(options);
      const id = newFileId();
      const created = await store.createUpload(newUpload(5000), { id });
      assert.equal(created.id, id);
      await assert.rejects(store.createUpload(newUpload(5000), { id }), code('UPLOAD_EXISTS'));
      await assert.rejects(store.createUpload(newUpload(5000), { id: '../../etc/passwd' }), code('BAD_UPLOAD_ID'));
      const data = pattern(5000, 23);
      const seen: Array<{ size: number; sha256: string }> = [];
      const mismatch = new SluiceError('DIGEST_MISMATCH', 'not the published digest', 502);
      await assert.rejects(
        store.appendUpload(id, Readable.from([data]), {
          offset: 0,
          verify: (whole) => {
            seen.push({ ...whole });
            throw mismatch;
          },
        }),
        (err) => err === mismatch,
      );
      assert.deepEqual(seen, [{ size: 5000, sha256: sha256(data) }]);
      assert.equal(await store.stat(id), null, 'refused: never visible');
      assert.deepEqual(await store.list(), []);
      const state = await store.getUpload(id);
      assert.equal(state?.offset, 5000);
      assert.equal(state?.complete, false);
      assert.equal(await store.deleteUpload(id), true);
      assert.deepEqual(readdirSync(dir), []);
      // Accepted: the file, with that id; and the id of a file cannot be taken again.
      const other = newFileId();
      await store.createUpload(newUpload(5000), { id: other });
      const done = await store.appendUpload(other, Readable.from([data]), { offset: 0, verify: () => {} });
      assert.equal(done.file?.id, other);
      await assert.rejects(store.createUpload(newUpload(1), { id: other }), code('UPLOAD_EXISTS'));
    });

    test('an upload of length 0 is complete (an empty file) as soon as it is created', async () => {
      dir = mkdtempSync(join(tmpdir(), 'sluice-uploads-'));
      const store = await openStore(options);
      const created = await store.createUpload(newUpload(0));
      assert.equal(created.complete, true);
      assert.equal((await store.stat(created.id))?.sha256, sha256(Buffer.alloc(0)));
    });

    test('expiry counts from the last byte; expired uploads are removed, bytes and state, and unknown after', async () => {
      dir = mkdtempSync(join(tmpdir(), 'sluice-uploads-'));
      const store = await openStore({ ...options, uploadExpiryMs: 60_000 });
      const idle = await store.createUpload(newUpload(100));
      const active = await store.createUpload(newUpload(100));
      const t0 = Date.now();
      await new Promise((r) => setTimeout(r, 20));
      const appended = await store.appendUpload(active.id, Readable.from([Buffer.alloc(10)]), { offset: 0 });
      assert.ok(Date.parse(appended.upload.expires as string) > Date.parse(idle.expires as string), 'a byte received pushes the expiry');
      assert.equal(await store.expireUploads(new Date(t0 + 30_000)), 0);
      assert.equal(await store.expireUploads(new Date(Date.parse(idle.expires as string) + 1)), 1);
      assert.equal(await store.getUpload(idle.id), null);
      assert.equal(existsSync(join(dir, `.${idle.id}.upload`)), false);
      assert.equal(existsSync(join(dir, `.${idle.id}.upload-state`)), false);
      assert.notEqual(await store.getUpload(active.id), null);
      await assert.rejects(store.appendUpload(idle.id, Readable.from([Buffer.alloc(1)]), { offset: 0 }), code('UPLOAD_NOT_FOUND'));
      assert.equal(await store.expireUploads(new Date(Date.now() + 61_000)), 1);
      assert.deepEqual(readdirSync(dir), []);
    });

    test('concatenation: the partial uploads in order, the right sha256, the parts removed; parts that cannot be used are 4xx', async () => {
      dir = mkdtempSync(join(tmpdir(), 'sluice-uploads-'));
      const store = await openStore(options);
      const pieces = [pattern(300_001, 10), pattern(4096, 11), pattern(1, 12), pattern(1_100_000, 13)];
      const ids: string[] = [];
      for (const piece of pieces) {
        const part = await store.createUpload(newUpload(piece.length, { partial: true }));
        const done = await store.appendUpload(part.id, Readable.from(unevenChunks(piece)), { offset: 0 });
        assert.equal(done.upload.complete, true);
        assert.equal(done.file, null, 'a partial upload is no file of its own');
        assert.ok(done.upload.expires !== null, 'a complete partial upload still expires');
        ids.push(part.id);
      }
      const incomplete = await store.createUpload(newUpload(10, { partial: true }));
      const plain = await store.createUpload(newUpload(10));
      await assert.rejects(store.concatenateUploads([ids[0] as string, incomplete.id], { meta, metadata: {} }), code('UPLOAD_INCOMPLETE'));
      await assert.rejects(store.concatenateUploads([ids[0] as string, plain.id], { meta, metadata: {} }), code('UPLOAD_NOT_PARTIAL'));
      await assert.rejects(store.concatenateUploads([ids[0] as string, 'AAAAAAAAAAAAAAAAAAAAAA'], { meta, metadata: {} }), code('UPLOAD_NOT_FOUND'));
      // The failed attempts left the first part as it was.
      assert.equal(statSync(join(dir, `.${ids[0]}.upload`)).size, (pieces[0] as Buffer).length);
      const whole = Buffer.concat(pieces);
      const { upload, file } = await store.concatenateUploads(ids, { meta, metadata: { name: 'final' } });
      assert.equal(file?.size, whole.length);
      assert.equal(file?.sha256, sha256(whole));
      assert.deepEqual(file?.parts, ids);
      assert.deepEqual(upload.parts, ids);
      assert.ok(readFileSync(join(dir, upload.id)).equals(whole));
      for (const id of ids) assert.equal(await store.getUpload(id), null, 'the parts are gone once the final upload is committed');
      assert.deepEqual((await store.getUpload(upload.id))?.parts, ids);
      const left = readdirSync(dir).filter((n) => n.includes(ids[0] as string) || ids.some((id) => n.includes(id)));
      assert.deepEqual(left, []);
    });

    test('concatenation after a restart (no hash in memory) and of a part used twice', async () => {
      dir = mkdtempSync(join(tmpdir(), 'sluice-uploads-'));
      let store = await openStore(options);
      const a = pattern(70_001, 14);
      const b = pattern(5, 15);
      const pa = await store.createUpload(newUpload(a.length, { partial: true }));
      await store.appendUpload(pa.id, Readable.from([a]), { offset: 0 });
      const pb = await store.createUpload(newUpload(b.length, { partial: true }));
      await store.appendUpload(pb.id, Readable.from([b]), { offset: 0 });
      store = await openStore(options);
      const { file } = await store.concatenateUploads([pa.id, pb.id, pa.id], { meta, metadata: {} });
      const whole = Buffer.concat([a, b, a]);
      assert.equal(file?.sha256, sha256(whole));
      assert.ok(readFileSync(join(dir, (file as { id: string }).id)).equals(whole));
    });

    test('deleteUpload removes every byte and the state; a completed upload is a file and stays', async () => {
      dir = mkdtempSync(join(tmpdir(), 'sluice-uploads-'));
      const store = await openStore(options);
      const a = await store.createUpload(newUpload(1_000_000));
      await store.appendUpload(a.id, Readable.from([pattern(500_000)]), { offset: 0 });
      assert.equal(await store.deleteUpload(a.id), true);
      assert.equal(await store.deleteUpload(a.id), false);
      assert.equal(await store.getUpload(a.id), null);
      await assert.rejects(store.appendUpload(a.id, Readable.from([]), { offset: 500_000 }), code('UPLOAD_NOT_FOUND'));
      const b = await store.createUpload(newUpload(3));
      await store.appendUpload(b.id, Readable.from([Buffer.from('xyz')]), { offset: 0 });
      assert.equal(await store.deleteUpload(b.id), false);
      assert.notEqual(await store.stat(b.id), null);
      assert.deepEqual(readdirSync(dir).sort(), [b.id, `${b.id}.json`].sort());
      // Ordinary files are not resumable uploads.
      const writer = store.createWriter(meta);
      writer.end(Buffer.from('plain'));
      await new Promise((r) => writer.on('finish', r));
      const plain = await writer.commit();
      assert.equal(await store.getUpload(plain.id), null);
    });

    test('a long append records checkpoints: the durable offset moves while the body is still arriving', async () => {
      dir = mkdtempSync(join(tmpdir(), 'sluice-uploads-'));
      const store = await openStore({ ...options, checkpointBytes: 1024 * 1024 });
      const data = pattern(4 * 1024 * 1024, 16);
      const { id } = await store.createUpload(newUpload(data.length));
      let release = (): void => {};
      const held = new Promise<void>((r) => (release = r));
      async function* body(): AsyncGenerator<Buffer> {
        yield* unevenChunks(data.subarray(0, 3 * 1024 * 1024 + 5));
        await held;
        yield data.subarray(3 * 1024 * 1024 + 5);
      }
      const appending = store.appendUpload(id, body(), { offset: 0 });
      let seen = 0;
      for (let i = 0; i < 500 && seen < 1024 * 1024; i += 1) {
        await new Promise((r) => setTimeout(r, 10));
        seen = (await store.getUpload(id))?.offset ?? 0;
      }
      assert.ok(seen >= 1024 * 1024, `a checkpoint was recorded mid-append (offset ${seen})`);
      // What getUpload reports is what the state on disk says, and the bytes up to it are there.
      const onDisk = await readStateFile(join(dir, `.${id}.upload-state`), id);
      assert.ok(onDisk !== null && onDisk !== 'unfinished');
      assert.ok(onDisk.progress.offset >= seen, 'the state on disk is at least what was reported');
      assert.ok(readFileSync(join(dir, `.${id}.upload`)).subarray(0, seen).equals(data.subarray(0, seen)));
      release();
      const { file } = await appending;
      assert.equal(file?.sha256, sha256(data));
    });

    test('no descriptor is left open by appends, cuts, takeovers, concatenation and termination', async () => {
      dir = mkdtempSync(join(tmpdir(), 'sluice-uploads-'));
      const store = await openStore(options);
      // Warm up whatever the first calls open once (the thread pool, the directory sync).
      const warm = await store.createUpload(newUpload(1));
      await store.appendUpload(warm.id, Readable.from([Buffer.alloc(1)]), { offset: 0 });
      const before = openDescriptors();
      for (let round = 0; round < 3; round += 1) {
        const data = pattern(600_000, round);
        const { id } = await store.createUpload(newUpload(data.length));
        await store.appendUpload(id, failingAfter(data.subarray(0, 1000), new Error('cut')), { offset: 0 }).catch(() => {});
        const stuck = store.appendUpload(id, stuckAfter(data.subarray(1000, 2000)), { offset: 1000 }).catch(() => {});
        await new Promise((r) => setTimeout(r, 20));
        await store.interruptUpload(id);
        await stuck;
        await store.appendUpload(id, Readable.from([data.subarray(2000)]), { offset: 2000 });
        const part = await store.createUpload(newUpload(10, { partial: true }));
        await store.appendUpload(part.id, Readable.from([Buffer.alloc(10)]), { offset: 0 });
        await store.concatenateUploads([part.id], { meta, metadata: {} });
        const gone = await store.createUpload(newUpload(10));
        await store.deleteUpload(gone.id);
      }
      await new Promise((r) => setTimeout(r, 50));
      assert.equal(openDescriptors(), before);
    });
  });
}

describe('resumable uploads on scratch file systems (root only: mounted by the test)', () => {
  let mountPoint = '';
  afterEach(() => {
    if (mountPoint !== '') unmount(mountPoint);
    mountPoint = '';
  });

  function scratch(t: TestContext, type: string): string | null {
    dir = mkdtempSync(join(tmpdir(), 'sluice-uploads-'));
    const point = join(dir, type);
    mkdirSync(point);
    if (!mountOrSkip(t, type, point)) return null;
    mountPoint = point;
    return point;
  }

  test('a disk that fills up mid-append (ENOSPC): the append fails, the offset stays at what is durable, the upload goes on once there is room', async (t) => {
    dir = mkdtempSync(join(tmpdir(), 'sluice-uploads-'));
    const point = join(dir, 'tmpfs');
    mkdirSync(point);
    if (!mountOrSkip(t, 'tmpfs', point, ['-o', 'size=4m'])) return;
    mountPoint = point;
    const store = new LocalStore(point, { fsync: true, directIo: true, checkpointBytes: 512 * 1024 });
    await store.open();
    const data = pattern(3 * 1024 * 1024, 31);
    const { id } = await store.createUpload(newUpload(data.length));
    await store.appendUpload(id, Readable.from([data.subarray(0, 100_001)]), { offset: 0 });
    const filler = join(point, 'filler');
    writeFileSync(filler, Buffer.alloc(2 * 1024 * 1024));
    await assert.rejects(store.appendUpload(id, Readable.from(unevenChunks(data.subarray(100_001))), { offset: 100_001 }), (err: unknown) => {
      assert.equal((err as NodeJS.ErrnoException).code, 'ENOSPC');
      return true;
    });
    const offset = (await store.getUpload(id))?.offset as number;
    assert.ok(offset >= 100_001 && offset < data.length, `offset ${offset}`);
    assert.equal(statSync(join(point, `.${id}.upload`)).size, offset, 'cut back to the durable offset');
    assert.ok(readFileSync(join(point, `.${id}.upload`)).equals(data.subarray(0, offset)));
    // Room again: the upload goes on; the hash, dropped with the failed write, is read back.
    rmSync(filler);
    const { file } = await store.appendUpload(id, Readable.from([data.subarray(offset)]), { offset });
    assert.equal(file?.sha256, sha256(data));
  });

  for (const type of ['ramfs', 'tmpfs']) {
    test(`${type}: odd offsets, a restart and a takeover, byte-exact with the right sha256`, async (t) => {
      const root = scratch(t, type);
      if (root === null) return;
      let store = new LocalStore(root, { fsync: true, directIo: true });
      await store.open();
      t.diagnostic(`${type}: ${store.writesDirect ? 'O_DIRECT' : 'page-cache'} writes`);
      const data = pattern(1024 * 1024 + 4099, 30);
      const { id } = await store.createUpload(newUpload(data.length));
      await store.appendUpload(id, Readable.from(unevenChunks(data.subarray(0, 4097))), { offset: 0 });
      const stuck = store.appendUpload(id, stuckAfter(data.subarray(4097, 300_001)), { offset: 4097 }).catch((e: unknown) => e);
      await new Promise((r) => setTimeout(r, 30));
      assert.equal((await store.interruptUpload(id))?.offset, 300_001);
      assert.equal(((await stuck) as SluiceError).code, 'UPLOAD_INTERRUPTED');
      store = new LocalStore(root, { fsync: true, directIo: true });
      await store.open();
      const { file } = await store.appendUpload(id, Readable.from(unevenChunks(data.subarray(300_001))), { offset: 300_001 });
      assert.equal(file?.sha256, sha256(data));
      assert.ok(readFileSync(join(root, id)).equals(data));
    });
  }
});
