/**
 * Crash safety of resumable uploads in the local store: a real `kill -9` of a process in the
 * middle of an append, and every state a crash can leave on disk built by hand, each repaired or
 * finished by the next open() so that an offset once reported is never lost and no
 * half-completed file is ever visible. Also: documents, and records written before resumable
 * uploads existed.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { appendFileSync, existsSync, mkdtempSync, openSync, readdirSync, readFileSync, renameSync, rmSync, statSync, unlinkSync, writeFileSync, writeSync, closeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, test } from 'node:test';
import { newFileId } from '../storage/file-id.js';
import { LocalStore } from '../storage/local-store.js';
import { parseRecord } from '../storage/record.js';
import { createStateFile, readStateFile, type StoredUpload } from '../storage/upload-state-file.js';
import { meta, newUpload, pattern, sha256 } from './helpers/uploads.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const CHILD = fileURLToPath(new URL('./helpers/append-child.ts', import.meta.url));

let dir = '';
afterEach(() => rmSync(dir, { recursive: true, force: true }));

async function openStore(): Promise<LocalStore> {
  const store = new LocalStore(dir, { fsync: true });
  await store.open();
  return store;
}

const dataOf = (id: string): string => join(dir, `.${id}.upload`);
const stateOf = (id: string): string => join(dir, `.${id}.upload-state`);

/** The state file of `id` as a crash left it: `progress` on top of what the store wrote. */
async function stateWith(id: string, change: Partial<StoredUpload['progress']>, header: Partial<StoredUpload['header']> = {}): Promise<void> {
  const stored = await readStateFile(stateOf(id), id);
  assert.ok(stored !== null && stored !== 'unfinished');
  unlinkSync(stateOf(id));
  await createStateFile(stateOf(id), { header: { ...stored.header, ...header }, progress: { ...stored.progress, ...change, seq: 0 } }, true);
}

for (const directIo of [true, false]) {
  test(`kill -9 mid-append (${directIo ? 'O_DIRECT' : 'page-cache'}): a new store reports at least the last offset reported, with exactly the client's bytes`, async () => {
    dir = mkdtempSync(join(tmpdir(), 'sluice-upload-crash-'));
    const total = 24 * 1024 * 1024;
    const data = pattern(total);
    const { id } = await (await openStore()).createUpload(newUpload(total));
    const child = spawn(process.execPath, ['--import', 'tsx', CHILD, dir, id, String(total), String(directIo), String(1024 * 1024)], {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let lastReported = 0;
    let killedAt = 0;
    for await (const line of createInterface({ input: child.stdout })) {
      const m = /^reported (\d+)$/.exec(line);
      if (m === null) continue;
      lastReported = Number(m[1]);
      // Several checkpoints in, while the body is still arriving: the power goes.
      if (killedAt === 0 && lastReported >= 4 * 1024 * 1024) {
        killedAt = lastReported;
        child.kill('SIGKILL');
      }
    }
    if (child.exitCode === null && child.signalCode === null) await once(child, 'exit');
    assert.equal(child.signalCode, 'SIGKILL', 'the child was killed mid-append, not finished');
    const store = await openStore();
    const state = await store.getUpload(id);
    assert.ok(state !== null);
    assert.ok(state.offset >= lastReported, `offset ${state.offset} < last reported ${lastReported}`);
    assert.ok(state.offset < total);
    const bytes = readFileSync(dataOf(id));
    assert.equal(bytes.length, state.offset, 'the bytes past the durable offset are cut back');
    assert.ok(bytes.equals(data.subarray(0, state.offset)), "exactly the client's bytes up to the offset");
    // The client resumes from there: the file is whole, its sha256 right (the prefix read back once).
    const { file } = await store.appendUpload(id, Readable.from([data.subarray(state.offset)]), { offset: state.offset });
    assert.equal(file?.sha256, sha256(data));
  });
}

describe('open() repairs or finishes every state a crash can leave', () => {
  test('a state file whose creation never finished, and bytes without a state: both removed', async () => {
    dir = mkdtempSync(join(tmpdir(), 'sluice-upload-recovery-'));
    const torn = newFileId();
    writeFileSync(stateOf(torn), Buffer.alloc(5000, 0x41));
    writeFileSync(dataOf(torn), 'x');
    const orphan = newFileId();
    writeFileSync(dataOf(orphan), 'bytes of an upload whose state was removed');
    const store = await openStore();
    assert.deepEqual(readdirSync(dir), []);
    assert.equal(store.recovered.length, 2);
    assert.equal(await store.getUpload(torn), null);
  });

  test('bytes past the durable offset (a crash mid-append, O_DIRECT padding) are cut back; the upload goes on', async () => {
    dir = mkdtempSync(join(tmpdir(), 'sluice-upload-recovery-'));
    const data = pattern(20_000);
    let store = await openStore();
    const { id } = await store.createUpload(newUpload(data.length));
    await store.appendUpload(id, Readable.from([data.subarray(0, 5001)]), { offset: 0 });
    appendFileSync(dataOf(id), Buffer.alloc(8192, 0xee));
    store = await openStore();
    assert.equal(statSync(dataOf(id)).size, 5001);
    await store.appendUpload(id, Readable.from([data.subarray(5001)]), { offset: 5001 });
    assert.equal((await store.stat(id))?.sha256, sha256(data));
  });

  test('a state without its bytes is removed; bytes shorter than the offset (fsync off, power loss) set the offset back', async () => {
    dir = mkdtempSync(join(tmpdir(), 'sluice-upload-recovery-'));
    const data = pattern(9000);
    let store = await openStore();
    const lost = await store.createUpload(newUpload(100));
    unlinkSync(dataOf(lost.id));
    const short = await store.createUpload(newUpload(data.length));
    await store.appendUpload(short.id, Readable.from([data.subarray(0, 6000)]), { offset: 0 });
    // What a power loss with FSYNC=false can leave: the state says 6000, the disk kept 4000.
    writeFileSync(dataOf(short.id), data.subarray(0, 4000));
    store = await openStore();
    assert.equal(await store.getUpload(lost.id), null);
    assert.equal(existsSync(stateOf(lost.id)), false);
    assert.equal((await store.getUpload(short.id))?.offset, 4000, 'never past the bytes that are there');
    await store.appendUpload(short.id, Readable.from([data.subarray(4000)]), { offset: 4000 });
    assert.equal((await store.stat(short.id))?.sha256, sha256(data));
  });

  test('a torn state write: the other slot (the last durable state) is taken', async () => {
    dir = mkdtempSync(join(tmpdir(), 'sluice-upload-recovery-'));
    const data = pattern(30_000);
    let store = await openStore();
    const { id } = await store.createUpload(newUpload(data.length));
    await store.appendUpload(id, Readable.from([data.subarray(0, 1000)]), { offset: 0 }); // seq 1, slot 1
    await store.appendUpload(id, Readable.from([data.subarray(1000, 2000)]), { offset: 1000 }); // seq 2, slot 0
    // The power went while seq 3 was being written into slot 1: half of it is garbage.
    appendFileSync(dataOf(id), data.subarray(2000, 3000));
    const fd = openSync(stateOf(id), 'r+');
    writeSync(fd, Buffer.alloc(2048, 0x7b), 0, 2048, 4096);
    closeSync(fd);
    store = await openStore();
    assert.equal((await store.getUpload(id))?.offset, 2000);
    // Both slots torn would be a creation that never finished; one intact slot is enough.
    await store.appendUpload(id, Readable.from([data.subarray(2000)]), { offset: 2000 });
    assert.equal((await store.stat(id))?.sha256, sha256(data));
  });

  test('completion stopped after its state said complete, before the rename: finished at start-up', async () => {
    dir = mkdtempSync(join(tmpdir(), 'sluice-upload-recovery-'));
    const data = pattern(10_000);
    let store = await openStore();
    const { id } = await store.createUpload(newUpload(data.length));
    await store.appendUpload(id, Readable.from([data.subarray(0, 9999)]), { offset: 0 });
    appendFileSync(dataOf(id), data.subarray(9999));
    await stateWith(id, { offset: data.length, complete: true, sha256: sha256(data), completed: '2026-01-02T03:04:05.000Z', expires: null });
    // Until the next start nothing is visible; then the file is, with its record.
    assert.equal(await store.stat(id), null);
    store = await openStore();
    const record = await store.stat(id);
    assert.equal(record?.sha256, sha256(data));
    assert.equal(record?.created, '2026-01-02T03:04:05.000Z');
    assert.deepEqual(record?.metadata, { note: 'kept' });
    assert.ok(readFileSync(join(dir, id)).equals(data));
    assert.deepEqual(readdirSync(dir).sort(), [id, `${id}.json`].sort());
  });

  test('completion stopped after the rename, before the record: the record is written, the bytes are not swept', async () => {
    dir = mkdtempSync(join(tmpdir(), 'sluice-upload-recovery-'));
    const data = pattern(4097);
    let store = await openStore();
    const { id } = await store.createUpload(newUpload(data.length));
    await store.appendUpload(id, Readable.from([data.subarray(0, 100)]), { offset: 0 });
    appendFileSync(dataOf(id), data.subarray(100));
    await stateWith(id, { offset: data.length, complete: true, sha256: sha256(data), completed: new Date().toISOString() });
    renameSync(dataOf(id), join(dir, id));
    writeFileSync(join(dir, `.${id}.json.partial`), '{"half a rec');
    store = await openStore();
    assert.equal((await store.stat(id))?.sha256, sha256(data));
    assert.deepEqual(readdirSync(dir).sort(), [id, `${id}.json`].sort());
  });

  test('completion stopped after the file and its record were in place, before its state was removed: the state goes, the file stays', async () => {
    dir = mkdtempSync(join(tmpdir(), 'sluice-upload-recovery-'));
    const data = pattern(777);
    let store = await openStore();
    const { id } = await store.createUpload(newUpload(data.length));
    const before = await readStateFile(stateOf(id), id);
    await store.appendUpload(id, Readable.from([data]), { offset: 0 });
    const record = readFileSync(join(dir, `${id}.json`), 'utf8');
    // Put the completing state back beside the finished file, as a crash before its unlink leaves it.
    assert.ok(before !== null && before !== 'unfinished');
    await createStateFile(stateOf(id), { header: before.header, progress: { ...before.progress, offset: 777, length: 777, complete: true, sha256: sha256(data), completed: new Date().toISOString(), expires: null } }, true);
    store = await openStore();
    assert.deepEqual(readdirSync(dir).sort(), [id, `${id}.json`].sort());
    assert.equal(readFileSync(join(dir, `${id}.json`), 'utf8'), record, 'the record is left as it was');
    assert.equal((await store.getUpload(id))?.complete, true);
  });

  test('a final upload stopped after its completing state, before taking its first part: finished, the parts removed', async () => {
    dir = mkdtempSync(join(tmpdir(), 'sluice-upload-recovery-'));
    const [a, b] = [pattern(3000, 1), pattern(5000, 2)];
    let store = await openStore();
    const pa = await store.createUpload(newUpload(a.length, { partial: true }));
    await store.appendUpload(pa.id, Readable.from([a]), { offset: 0 });
    const pb = await store.createUpload(newUpload(b.length, { partial: true }));
    await store.appendUpload(pb.id, Readable.from([b]), { offset: 0 });
    // What concatenate() had done: b appended to a's file, the final's state written.
    appendFileSync(dataOf(pa.id), b);
    const final = newFileId();
    const whole = Buffer.concat([a, b]);
    const now = new Date().toISOString();
    await createStateFile(
      stateOf(final),
      {
        header: { id: final, meta, metadata: {}, partial: false, completesOnLast: false, created: now, parts: [pa.id, pb.id], dataFrom: pa.id },
        progress: { seq: 0, offset: whole.length, length: whole.length, expires: null, complete: true, sha256: sha256(whole), completed: now },
      },
      true,
    );
    store = await openStore();
    assert.equal((await store.stat(final))?.sha256, sha256(whole));
    assert.ok(readFileSync(join(dir, final)).equals(whole));
    assert.deepEqual((await store.getUpload(final))?.parts, [pa.id, pb.id]);
    assert.equal(await store.getUpload(pa.id), null);
    assert.equal(await store.getUpload(pb.id), null);
    assert.deepEqual(readdirSync(dir).sort(), [final, `${final}.json`].sort());
  });

  test('a concatenation stopped before its final state: the first part is cut back and whole, the final never existed', async () => {
    dir = mkdtempSync(join(tmpdir(), 'sluice-upload-recovery-'));
    const [a, b] = [pattern(3000, 3), pattern(5000, 4)];
    let store = await openStore();
    const pa = await store.createUpload(newUpload(a.length, { partial: true }));
    await store.appendUpload(pa.id, Readable.from([a]), { offset: 0 });
    const pb = await store.createUpload(newUpload(b.length, { partial: true }));
    await store.appendUpload(pb.id, Readable.from([b]), { offset: 0 });
    appendFileSync(dataOf(pa.id), b.subarray(0, 1234));
    store = await openStore();
    assert.ok(readFileSync(dataOf(pa.id)).equals(a));
    const { file } = await store.concatenateUploads([pa.id, pb.id], { meta, metadata: {} });
    assert.equal(file?.sha256, sha256(Buffer.concat([a, b])));
  });

  test('completed files, files of POST /upload and documents are left alone by the recovery and the sweep', async () => {
    dir = mkdtempSync(join(tmpdir(), 'sluice-upload-recovery-'));
    let store = await openStore();
    const writer = store.createWriter(meta);
    writer.end(Buffer.from('plain file'));
    await once(writer, 'finish');
    const plain = await writer.commit();
    const up = await store.createUpload(newUpload(3));
    await store.appendUpload(up.id, Readable.from([Buffer.from('abc')]), { offset: 0 });
    await store.putDocument('fetch-job', up.id, { state: 'done', n: 1 });
    const before = readdirSync(dir).sort();
    store = await openStore();
    assert.deepEqual(readdirSync(dir).sort(), before);
    assert.deepEqual(store.recovered, []);
    assert.deepEqual(await store.getDocument('fetch-job', up.id), { state: 'done', n: 1 });
    assert.notEqual(await store.stat(plain.id), null);
  });
});

describe('documents in the local store', () => {
  test('put, get, list, replace, delete; durable across a reopen; a temp file a crash left is swept', async () => {
    dir = mkdtempSync(join(tmpdir(), 'sluice-documents-'));
    let store = await openStore();
    const [a, b] = [newFileId(), newFileId()];
    assert.equal(await store.getDocument('fetch-job', a), null);
    assert.deepEqual(await store.listDocuments('fetch-job'), []);
    await store.putDocument('fetch-job', a, { n: 1 });
    await store.putDocument('fetch-job', b, { n: 2 });
    await store.putDocument('fetch-job', a, { n: 3 });
    await store.putDocument('other-kind', a, ['x']);
    writeFileSync(join(dir, '.sluice', 'fetch-job', `.${a}.0123.partial`), '{"n":');
    store = await openStore();
    assert.deepEqual(await store.getDocument('fetch-job', a), { n: 3 });
    assert.deepEqual(
      (await store.listDocuments('fetch-job')).map((d) => (d as { n: number }).n).sort(),
      [2, 3],
    );
    assert.equal(existsSync(join(dir, '.sluice', 'fetch-job', `.${a}.0123.partial`)), false);
    await store.deleteDocument('fetch-job', a);
    await store.deleteDocument('fetch-job', a);
    assert.equal(await store.getDocument('fetch-job', a), null);
    assert.deepEqual(await store.getDocument('other-kind', a), ['x']);
    // Documents are not files.
    assert.deepEqual(await store.list(), []);
    await assert.rejects(store.putDocument('../etc', a, {}));
    await assert.rejects(store.getDocument('fetch-job', '../../x'));
  });
});

test('records written before resumable uploads (no metadata) still parse; new ones keep metadata and parts', () => {
  const old = '{"id":"AAAAAAAAAAAAAAAAAAAAAA","field":"f","filename":null,"contentType":"text/plain","size":3,"sha256":"ab","created":"2025-01-01T00:00:00.000Z"}';
  const record = parseRecord(old, 'AAAAAAAAAAAAAAAAAAAAAA');
  assert.equal(record.metadata, undefined);
  assert.equal(record.size, 3);
  const now = parseRecord(JSON.stringify({ ...JSON.parse(old), metadata: { a: 'b' }, parts: ['x', 'y'] }), 'AAAAAAAAAAAAAAAAAAAAAA');
  assert.deepEqual(now.metadata, { a: 'b' });
  assert.deepEqual(now.parts, ['x', 'y']);
  assert.throws(() => parseRecord(JSON.stringify({ ...JSON.parse(old), metadata: { a: 1 } }), 'AAAAAAAAAAAAAAAAAAAAAA'));
});
