/**
 * Resumable uploads on the S3 store against a real Ceph RGW (one gateway for the whole file):
 * the offset derivation alone, the client calls it needs, then the store through the UploadStore
 * interface with two stores on one bucket standing in for two instances. The suite ends by
 * listing the bucket: no pending multipart upload and no upload object may be left.
 */
import * as assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { after, before, describe, test, type TestContext } from 'node:test';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { setTimeout as sleep } from 'node:timers/promises';
import { SluiceError } from '../lib/errors.js';
import { newFileId } from '../storage/file-id.js';
import { S3Store } from '../storage/s3-store.js';
import type { ListedObject, S3Client, UploadedPart } from '../storage/s3/client.js';
import { UploadKeys } from '../storage/s3/resumable-keys.js';
import type { UploadDoc } from '../storage/s3/resumable-state.js';
import { deriveView, sortListing } from '../storage/s3/resumable-view.js';
import { MAX_TAIL_PIECES } from '../storage/s3/resumable-writer.js';
import type { AppendOptions, NewUpload, UploadState } from '../storage/uploads.js';
import { startRgw, type Rgw, type RgwStart } from './helpers/ceph.js';
import { poll } from './helpers/http.js';
import { fileSha256, startRangedOrigin } from './helpers/ranged-origin.js';
import { startServer } from './helpers/server.js';

const MiB = 1024 * 1024;
const P = 5 * MiB; // S3's smallest part: every test's parts are this
const BUCKET = `sluice-resumable-${randomBytes(4).toString('hex')}`;
const PREFIX = 'r/';

setFlagsFromString('--expose_gc');
const gc = runInNewContext('gc') as () => void;

let started: RgwStart = { ok: false, reason: 'not started yet' };
before(async () => {
  started = await startRgw();
  if (!started.ok) console.log(`# s3-resumable tests skipped: ${started.reason}`);
});
after(async () => {
  if (started.ok) await started.rgw.stop();
});

function rgwTest(name: string, fn: (rgw: Rgw, t: TestContext) => Promise<void>): void {
  test(name, async (t) => {
    if (!started.ok) return t.skip(started.reason);
    await fn(started.rgw, t);
  });
}

function newStore(rgw: Rgw, options: { tailCacheBytes?: number; uploadExpiryMs?: number } = {}): S3Store {
  return new S3Store(rgw.config(BUCKET, { prefix: PREFIX, partBytes: P }), options);
}

const sha256 = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

/** Chunks of awkward sizes, so part and piece boundaries fall in the middle of writes. */
function* awkwardChunks(data: Buffer): Generator<Buffer> {
  const sizes = [1, 1000, 65_536, 1_048_579, 13, 300_007];
  for (let offset = 0, i = 0; offset < data.length; i += 1) {
    const n = sizes[i % sizes.length] as number;
    yield data.subarray(offset, offset + n);
    offset += n;
  }
}

function upload(length: number | null, extra: Partial<NewUpload> = {}): NewUpload {
  return { length, meta: { field: null, filename: 'r.bin', contentType: 'application/x-test' }, metadata: { note: 'hi' }, partial: false, ...extra };
}

async function append(store: S3Store, id: string, data: Buffer, offset: number, options: Partial<AppendOptions> = {}) {
  return store.appendUpload(id, Readable.from(awkwardChunks(data)), { offset, ...options });
}

/** A body whose first byte comes late: two appends started together both pass the offset check first. */
async function* late(data: Buffer): AsyncGenerator<Buffer> {
  await sleep(500);
  yield* awkwardChunks(data);
}

async function readAll(stream: AsyncIterable<unknown>): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

async function keysUnder(client: S3Client, prefix: string): Promise<string[]> {
  const keys: string[] = [];
  for await (const o of client.listObjects(prefix)) keys.push(o.key);
  return keys;
}

async function pendingUploads(client: S3Client, prefix: string): Promise<string[]> {
  const keys: string[] = [];
  for await (const u of client.listMultipartUploads(prefix)) keys.push(u.key);
  return keys;
}

async function rejectsWith(promise: Promise<unknown>, code: string): Promise<SluiceError> {
  const err = await promise.then(
    () => assert.fail(`expected ${code}`),
    (e: unknown) => e,
  );
  assert.ok(err instanceof SluiceError, `expected a SluiceError ${code}, got ${String(err)}`);
  assert.equal(err.code, code);
  return err;
}

// ---------------------------------------------------------------------------------------------

describe('deriveView: the offset from what S3 lists', () => {
  const keys = new UploadKeys('p/.sluice/uploads/', 'p/');
  const id = 'A'.repeat(22);
  const doc: UploadDoc = {
    v: 1,
    id,
    uploadId: 'u',
    dataKey: `p/${id}`,
    partBytes: 10,
    length: 35,
    meta: { field: null, filename: null, contentType: 'x/y' },
    metadata: {},
    partial: false,
    completesOnLast: false,
    created: '2026-01-01T00:00:00.000Z',
  };
  const obj = (key: string, size = 0, lastModified = '2026-01-01T00:00:01.000Z'): ListedObject => ({ key, size, etag: `"${key.length}"`, lastModified });
  const piece = (start: number, end: number): ListedObject => obj(keys.piece(id, start, end), end - start);
  const part = (n: number, size = 10): UploadedPart => ({ partNumber: n, size, etag: `"e${n}"`, lastModified: '2026-01-01T00:00:02.000Z' });
  const view = (objects: ListedObject[], parts: UploadedPart[] | null, d: UploadDoc = doc) => deriveView(d, sortListing(keys, id, [obj(keys.state(id)), ...objects]), parts);

  const cases: ReadonlyArray<{ what: string; objects: ListedObject[]; parts: UploadedPart[]; offset: number; fullParts: number; tail: number }> = [
    { what: 'nothing yet', objects: [], parts: [], offset: 0, fullParts: 0, tail: 0 },
    { what: 'pieces only, chained', objects: [piece(0, 3), piece(3, 7)], parts: [], offset: 7, fullParts: 0, tail: 2 },
    { what: 'a gap stops the count', objects: [piece(0, 3), piece(4, 7)], parts: [], offset: 3, fullParts: 0, tail: 1 },
    { what: 'overlapping pieces (two writers) count as their union', objects: [piece(0, 5), piece(0, 3), piece(3, 8)], parts: [], offset: 8, fullParts: 0, tail: 2 },
    { what: 'full parts, then the tail of the next slot', objects: [piece(20, 24)], parts: [part(1), part(2)], offset: 24, fullParts: 2, tail: 1 },
    { what: 'pieces of a slot that has its part are ignored (deletion pending)', objects: [piece(0, 4), piece(4, 10), piece(10, 12)], parts: [part(1)], offset: 12, fullParts: 1, tail: 1 },
    { what: 'a part after a gap does not count', objects: [], parts: [part(1), part(3)], offset: 10, fullParts: 1, tail: 0 },
    { what: 'a short part that is not the last counts for nothing', objects: [piece(10, 13)], parts: [part(1), part(2, 4)], offset: 13, fullParts: 1, tail: 1 },
    { what: 'the short last part: every byte is in', objects: [piece(30, 33)], parts: [part(1), part(2), part(3), part(4, 5)], offset: 35, fullParts: 3, tail: 0 },
    { what: 'never past the length', objects: [piece(30, 38)], parts: [part(1), part(2), part(3)], offset: 35, fullParts: 3, tail: 1 },
  ];
  for (const c of cases) {
    test(c.what, () => {
      const v = view(c.objects, c.parts);
      assert.equal(v.offset, c.offset);
      assert.equal(v.fullParts, c.fullParts);
      assert.equal(v.tail.length, c.tail);
      assert.equal(v.open, true);
    });
  }

  test('due: tus at the length; IETF only with the final marker', () => {
    const all = [part(1), part(2), part(3), part(4, 5)];
    assert.equal(view([], all).due, true);
    const ietf = { ...doc, completesOnLast: true };
    assert.equal(view([], all, ietf).due, false);
    assert.equal(view([obj(keys.final(id, 35))], all, ietf).due, true);
  });

  test('a deferred length comes from its marker; expiry counts from the newest object or part', () => {
    const deferred = { ...doc, length: null };
    assert.equal(view([], [], deferred).length, null);
    const v = view([obj(keys.length(id, 12), 0, '2026-01-01T00:00:05.000Z')], [part(1)], deferred);
    assert.equal(v.length, 12);
    assert.equal(v.lastActivity, Date.parse('2026-01-01T00:00:05.000Z'));
    assert.equal(view([], [part(1)]).lastActivity, Date.parse('2026-01-01T00:00:02.000Z'));
  });

  test('the multipart upload gone (ListParts 404): not open', () => {
    assert.equal(view([], null).open, false);
  });

  test('keys: ids and kinds parse back; other keys are unknown', () => {
    assert.equal(keys.idOf(keys.state(id)), id);
    assert.equal(keys.idOf(keys.piece(id, 1, 2)), id);
    assert.equal(keys.idOf(`${keys.root}${id}x`), null);
    assert.equal(keys.idOf(`p/${id}`), null);
    assert.deepEqual(keys.classify(id, keys.piece(id, 5, 9)), { kind: 'piece', start: 5, end: 9 });
    assert.deepEqual(keys.classify(id, keys.pending(id, 'tok', 3)), { kind: 'pending', token: 'tok', part: 3 });
    assert.deepEqual(keys.classify(id, `${keys.folder(id)}piece/1-2`), { kind: 'unknown' });
  });
});

// ---------------------------------------------------------------------------------------------

describe('S3 client calls for resumable uploads (real RGW)', () => {
  let client: S3Client;
  before(async () => {
    if (!started.ok) return;
    client = started.rgw.client(BUCKET);
    if (!(await client.bucketExists())) await client.createBucket('us-east-1');
  });
  after(() => client?.close());

  rgwTest('PutObject If-None-Match: * writes once, then answers false (RGW 16 honours it)', async () => {
    const key = `client/once-${randomBytes(3).toString('hex')}`;
    const first = await client.putObjectIfAbsent(key, Buffer.from('first'));
    assert.equal(first.written, true);
    assert.equal(first.etag, `"${createHash('md5').update('first').digest('hex')}"`);
    assert.deepEqual(await client.putObjectIfAbsent(key, Buffer.from('second')), { written: false, etag: null });
    assert.equal(await client.getObjectText(key, 100), 'first');
    await client.deleteObject(key);
  });

  rgwTest('ListParts pages, starts after a part number, and says null once the upload is gone', async () => {
    const key = `client/parts-${randomBytes(3).toString('hex')}`;
    const uploadId = await client.createMultipartUpload(key);
    for (let n = 1; n <= 5; n += 1) await client.uploadPart(key, uploadId, n, Buffer.from(`part ${n}`));
    const all = await client.listParts(key, uploadId, 0, { pageSize: 2 });
    assert.deepEqual(all?.map((p) => p.partNumber), [1, 2, 3, 4, 5]);
    assert.equal(all?.[0]?.size, 6);
    assert.match(all?.[0]?.etag ?? '', /^"[0-9a-f]{32}"$/);
    assert.deepEqual((await client.listParts(key, uploadId, 3))?.map((p) => p.partNumber), [4, 5]);
    await client.abortMultipartUpload(key, uploadId);
    assert.equal(await client.listParts(key, uploadId), null);
  });

  rgwTest('UploadPartCopy copies a byte range inside S3; DeleteObjects removes many keys', async () => {
    const src = `client/src-${randomBytes(3).toString('hex')}`;
    const data = randomBytes(P + 100);
    await client.putObject(src, data);
    const key = `client/copy-${randomBytes(3).toString('hex')}`;
    const uploadId = await client.createMultipartUpload(key);
    const e1 = await client.uploadPartCopy(key, uploadId, 1, src, { start: 50, end: 50 + P - 1 });
    const e2 = await client.uploadPartCopy(key, uploadId, 2, src, { start: 0, end: 49 });
    assert.match(e1, /^"[0-9a-f]{32}"$/);
    await client.completeMultipartUpload(key, uploadId, [
      { partNumber: 1, etag: e1 },
      { partNumber: 2, etag: e2 },
    ]);
    const got = await readAll(await client.getObject(key));
    assert.ok(got.equals(Buffer.concat([data.subarray(50, 50 + P), data.subarray(0, 50)])));
    await client.deleteObjects([src, key, 'client/never-existed']);
    assert.deepEqual(await keysUnder(client, 'client/'), []);
  });
});

// ---------------------------------------------------------------------------------------------

describe('S3 resumable uploads through the store', () => {
  let a: S3Store;
  let b: S3Store;
  let client: S3Client;
  before(async () => {
    if (!started.ok) return;
    a = newStore(started.rgw);
    b = newStore(started.rgw);
    await a.open();
    client = started.rgw.client(BUCKET);
  });
  after(async () => {
    await a?.close();
    await b?.close();
    client?.close();
  });

  rgwTest('one append across parts: the file is byte-exact, hashed once, nothing of the upload left', async () => {
    const data = randomBytes(2 * P + 12_345);
    const created = await a.createUpload(upload(data.length));
    assert.equal(created.offset, 0);
    const before = a.uploads.readBack.files;
    const { upload: state, file } = await append(a, created.id, data, 0);
    assert.equal(state.complete, true);
    assert.equal(file?.sha256, sha256(data));
    assert.equal(file?.size, data.length);
    assert.deepEqual(file?.metadata, { note: 'hi' });
    assert.equal(a.uploads.readBack.files, before, 'every byte passed through this process: no read-back');
    assert.ok((await readAll(await b.read(created.id))).equals(data));
    assert.deepEqual(await b.getUpload(created.id), { ...state });
    assert.deepEqual(await keysUnder(client, a.uploads.keys.folder(created.id)), []);
    assert.equal((await client.headObject(a.uploads.keys.state(created.id))), null);
    assert.deepEqual(await pendingUploads(client, `${PREFIX}${created.id}`), []);
  });

  rgwTest('1 MiB appends: one piece each, folded into a part when it fills; every offset true on the other store', async () => {
    const data = randomBytes(2 * P + 3 * MiB + 7);
    const { id } = await a.createUpload(upload(data.length));
    const gets = (): number => a.uploads.requests.get('GetObject') ?? 0;
    const getsBefore = gets();
    let offset = 0;
    for (let i = 0; offset < data.length; i += 1) {
      const chunk = data.subarray(offset, offset + MiB);
      const { upload: state } = await a.appendUpload(id, Readable.from([chunk]), { offset });
      offset += chunk.length;
      assert.equal(state.offset, offset);
      if (offset === data.length) break;
      assert.equal((await b.getUpload(id))?.offset, offset, `offset after append ${i}`);
      const pieces = (await keysUnder(client, a.uploads.keys.folder(id))).filter((k) => k.includes('/piece/'));
      const tail = offset % P;
      // The tail is one piece per append since the last part (each written once, never rewritten).
      assert.equal(pieces.length, Math.ceil(tail / MiB), `pieces after append ${i}: ${pieces.join(', ')}`);
    }
    // The tail stayed in memory between appends: no piece was read back (the stat below is the one GET).
    assert.equal(gets(), getsBefore);
    const record = await a.stat(id);
    assert.equal(record?.sha256, sha256(data));
    assert.ok((await readAll(await a.read(id))).equals(data));
    assert.deepEqual(await keysUnder(client, a.uploads.keys.folder(id)), []);
  });

  rgwTest('tiny appends: the tail is rewritten as one piece every so often, so the listing stays short', async () => {
    const data = randomBytes(45 * 10_000 + 3);
    const { id } = await b.createUpload(upload(data.length));
    let most = 0;
    for (let offset = 0; offset < data.length; offset += 10_000) {
      await b.appendUpload(id, Readable.from([data.subarray(offset, offset + 10_000)]), { offset });
      const pieces = (await keysUnder(client, b.uploads.keys.folder(id))).filter((k) => k.includes('/piece/')).length;
      most = Math.max(most, pieces);
    }
    assert.ok(most <= MAX_TAIL_PIECES, `${most} pieces at most`);
    assert.equal((await a.getUpload(id))?.offset, data.length);
    assert.equal((await a.stat(id))?.sha256, sha256(data));
  });

  rgwTest('appends alternating between two stores (instances): byte-exact, the sha256 read back once', async () => {
    const data = randomBytes(3 * P + 777);
    const { id } = await a.createUpload(upload(data.length));
    const cuts = [0, 1, 3 * MiB, P, P + 10, 2 * P + 4 * MiB, data.length];
    const stores = [a, b];
    const readBefore = a.uploads.readBack.files + b.uploads.readBack.files;
    for (let i = 0; i + 1 < cuts.length; i += 1) {
      const store = stores[i % 2] as S3Store;
      const other = stores[(i + 1) % 2] as S3Store;
      const [from, to] = [cuts[i] as number, cuts[i + 1] as number];
      await rejectsWith(other.appendUpload(id, Readable.from([Buffer.from('x')]), { offset: from + 1 }), 'OFFSET_MISMATCH');
      const { upload: state } = await append(store, id, data.subarray(from, to), from);
      assert.equal(state.offset, to);
    }
    const record = await a.stat(id);
    assert.equal(record?.sha256, sha256(data));
    assert.equal(a.uploads.readBack.files + b.uploads.readBack.files, readBefore + 1);
    assert.ok((await readAll(await b.read(id))).equals(data));
  });

  rgwTest('without the tail cache the pieces are read back: same bytes', async (rgw) => {
    const lean = newStore(rgw, { tailCacheBytes: 0 });
    try {
      const data = randomBytes(P + 2 * MiB);
      const { id } = await lean.createUpload(upload(data.length));
      for (let offset = 0; offset < data.length; offset += 700_000) {
        await lean.appendUpload(id, Readable.from([data.subarray(offset, offset + 700_000)]), { offset });
      }
      assert.equal((await lean.stat(id))?.sha256, sha256(data));
      assert.equal(lean.uploads.sessions.cachedTailBytes, 0);
    } finally {
      await lean.close();
    }
  });

  rgwTest('a body cut mid-way: what was taken is durable and counted, the rest resumes', async () => {
    const data = randomBytes(P + 3 * MiB);
    const { id } = await a.createUpload(upload(data.length));
    const cutAt = P + MiB + 5;
    async function* cut(): AsyncGenerator<Buffer> {
      yield* awkwardChunks(data.subarray(0, cutAt));
      throw Object.assign(new Error('connection reset'), { code: 'ECONNRESET' });
    }
    await assert.rejects(a.appendUpload(id, cut(), { offset: 0 }), /connection reset/);
    assert.equal((await b.getUpload(id))?.offset, cutAt);
    const { file } = await append(b, id, data.subarray(cutAt), cutAt);
    assert.equal(file?.sha256, sha256(data));
  });

  rgwTest('quick takeover: a newer request ends a stalled append at once; its bytes count', async () => {
    const data = randomBytes(2 * MiB);
    const { id } = await a.createUpload(upload(4 * MiB));
    let release = (): void => {};
    async function* stalls(): AsyncGenerator<Buffer> {
      yield data;
      await new Promise<void>((r) => (release = r)); // a dead connection: nothing more, ever
    }
    const stalled = rejectsWith(a.appendUpload(id, stalls(), { offset: 0 }), 'UPLOAD_INTERRUPTED');
    await sleep(300);
    const t0 = Date.now();
    const state = await a.interruptUpload(id);
    const took = Date.now() - t0;
    assert.equal(state?.offset, data.length);
    await stalled;
    release();
    assert.ok(took < 5_000, `takeover took ${took} ms`);
    assert.equal(await a.deleteUpload(id), true);
  });

  rgwTest('tus checksum over more than a part: a mismatch keeps the offset and leaves no pending object; a match counts', async () => {
    const data = randomBytes(2 * P + MiB);
    const { id } = await a.createUpload(upload(data.length));
    await append(a, id, data.subarray(0, MiB), 0);
    const body = data.subarray(MiB, 2 * P + 100);
    const wrong = { algorithm: 'sha256' as const, digest: createHash('sha256').update('other').digest() };
    await rejectsWith(append(a, id, body, MiB, { checksum: wrong }), 'CHECKSUM_MISMATCH');
    assert.equal((await b.getUpload(id))?.offset, MiB);
    assert.deepEqual((await keysUnder(client, a.uploads.keys.folder(id))).filter((k) => k.includes('/pending/')), []);
    const right = { algorithm: 'sha1' as const, digest: createHash('sha1').update(body).digest() };
    const { upload: state } = await append(a, id, body, MiB, { checksum: right });
    assert.equal(state.offset, 2 * P + 100);
    assert.equal((await b.getUpload(id))?.offset, 2 * P + 100);
    const { file } = await append(b, id, data.subarray(2 * P + 100), 2 * P + 100);
    assert.equal(file?.sha256, sha256(data));
  });

  rgwTest('deferred length, then IETF-style completion on `last`', async () => {
    const data = randomBytes(P + 10);
    const { id } = await a.createUpload(upload(null, { completesOnLast: true }));
    await append(a, id, data.subarray(0, 100), 0);
    assert.equal((await b.getUpload(id))?.length, null);
    // Reaching a length is not completion for an IETF upload: `last` is.
    const { upload: mid } = await append(b, id, data.subarray(100), 100, { length: data.length });
    assert.equal(mid.offset, data.length);
    assert.equal(mid.complete, false);
    assert.equal((await a.getUpload(id))?.length, data.length);
    const { upload: done, file } = await a.appendUpload(id, Readable.from([]), { offset: data.length, last: true });
    assert.equal(done.complete, true);
    assert.equal(file?.sha256, sha256(data));
  });

  rgwTest('limits: past the length 413 and the offset stays at the last checkpoint; an Upload-Length S3 cannot hold is 413 at creation', async () => {
    const { id } = await a.createUpload(upload(P + 10));
    const body = randomBytes(P + 30);
    const chunks = [body.subarray(0, P), body.subarray(P, P + 5), body.subarray(P + 5)];
    await rejectsWith(a.appendUpload(id, Readable.from(chunks), { offset: 0 }), 'UPLOAD_LENGTH_EXCEEDED');
    // The full part went to S3 when the next 5 bytes came, before the body went past the
    // length: it is a checkpoint; the 5 bytes after it are not kept.
    assert.equal((await b.getUpload(id))?.offset, P);
    assert.equal(await a.deleteUpload(id), true);
    const err = await rejectsWith(a.createUpload(upload(10_000 * P + 1)), 'FILE_TOO_LARGE');
    assert.equal(err.status, 413);
    await rejectsWith(a.createUpload(upload(-1)), 'BAD_UPLOAD_LENGTH');
  });

  rgwTest('concatenation: parts copied inside S3 where they are 5 MiB or more, small ones through sluice; partials removed', async () => {
    const sizes = [MiB, P + 3, 2 * MiB, 0, 2 * P + 5];
    const datas = sizes.map((n) => randomBytes(n));
    const ids: string[] = [];
    for (const d of datas) {
      const { id } = await a.createUpload(upload(d.length, { partial: true }));
      if (d.length > 0) await append(a, id, d, 0);
      const state = await b.getUpload(id);
      assert.equal(state?.complete, true);
      assert.equal(state?.partial, true);
      assert.notEqual(state?.expires, null, 'a complete partial upload still expires');
      ids.push(id);
    }
    const whole = Buffer.concat(datas);
    const { upload: final, file } = await b.concatenateUploads(ids, { meta: { field: null, filename: 'all.bin', contentType: 'x/y' }, metadata: {} });
    assert.equal(file?.sha256, sha256(whole));
    assert.deepEqual(final.parts, ids);
    assert.ok((await readAll(await a.read(final.id))).equals(whole));
    assert.deepEqual((await a.getUpload(final.id))?.parts, ids);
    for (const id of ids) assert.equal(await a.getUpload(id), null);
    await rejectsWith(b.concatenateUploads([ids[0] as string], { meta: { field: null, filename: null, contentType: 'x/y' }, metadata: {} }), 'UPLOAD_NOT_FOUND');
  });

  rgwTest('concatenation refuses parts that are not partial or not complete', async () => {
    const whole = await a.createUpload(upload(10));
    const open = await a.createUpload(upload(10, { partial: true }));
    const init = { meta: { field: null, filename: null, contentType: 'x/y' }, metadata: {} };
    await rejectsWith(a.concatenateUploads([whole.id], init), 'UPLOAD_NOT_PARTIAL');
    await rejectsWith(a.concatenateUploads([open.id], init), 'UPLOAD_INCOMPLETE');
    assert.equal(await a.deleteUpload(whole.id), true);
    assert.equal(await b.deleteUpload(open.id), true);
  });

  rgwTest('two writers at once, same bytes, both to the end: one file, right sha256, neither fails', async () => {
    const data = randomBytes(2 * P + MiB);
    const { id } = await a.createUpload(upload(data.length));
    const results = await Promise.allSettled([a.appendUpload(id, late(data), { offset: 0 }), b.appendUpload(id, late(data), { offset: 0 })]);
    for (const r of results) assert.equal(r.status, 'fulfilled', r.status === 'rejected' ? String(r.reason) : '');
    const record = await a.stat(id);
    assert.equal(record?.sha256, sha256(data));
    assert.ok((await readAll(await a.read(id))).equals(data));
  });

  rgwTest('two writers at once, different bytes at one offset: the record matches what S3 stored', async () => {
    const one = randomBytes(2 * P + 100);
    const two = randomBytes(2 * P + 100);
    const { id } = await a.createUpload(upload(one.length));
    await Promise.allSettled([a.appendUpload(id, late(one), { offset: 0 }), b.appendUpload(id, late(two), { offset: 0 })]);
    const stored = await readAll(await a.read(id));
    const record = await a.stat(id);
    assert.equal(record?.size, stored.length);
    assert.equal(record?.sha256, sha256(stored), 'the record describes the stored bytes');
  });

  rgwTest('an id made again (a fetch job retried): another instance does not answer from the old upload', async () => {
    const id = newFileId();
    await a.createUpload(upload(10), { id });
    await append(b, id, Buffer.from('01234'), 0);
    assert.equal((await b.getUpload(id))?.offset, 5);
    await rejectsWith(a.createUpload(upload(10), { id }), 'UPLOAD_EXISTS');
    assert.equal(await a.deleteUpload(id), true);
    await a.createUpload(upload(20), { id });
    const state = await b.getUpload(id);
    assert.equal(state?.length, 20);
    assert.equal(state?.offset, 0);
    const data = randomBytes(20);
    const { file } = await append(b, id, data, 0);
    assert.equal(file?.sha256, sha256(data));
    await rejectsWith(a.createUpload(upload(1), { id }), 'UPLOAD_EXISTS');
  });

  rgwTest('termination and expiry abort the multipart upload and remove every object', async (rgw) => {
    const { id: doomed } = await a.createUpload(upload(3 * P));
    await append(a, doomed, randomBytes(P + 99), 0);
    assert.equal(await b.deleteUpload(doomed), true);
    assert.equal(await a.getUpload(doomed), null);
    assert.equal(await a.deleteUpload(doomed), false);
    await rejectsWith(a.appendUpload(doomed, Readable.from([]), { offset: P + 99 }), 'UPLOAD_NOT_FOUND');

    const short = newStore(rgw, { uploadExpiryMs: 60_000 });
    try {
      const { id: idle } = await short.createUpload(upload(3 * P));
      await append(short, idle, randomBytes(MiB), 0);
      const { id: partial } = await short.createUpload(upload(10, { partial: true }));
      await append(short, partial, randomBytes(10), 0);
      assert.equal(await short.expireUploads(new Date()), 0, 'nothing is idle yet');
      const later = new Date(Date.now() + 120_000);
      assert.ok((await short.expireUploads(later)) >= 2);
      assert.equal(await short.getUpload(idle), null);
      assert.equal(await short.getUpload(partial), null);
    } finally {
      await short.close();
    }
  });

  rgwTest('the sweep removes what a removal left behind: pieces without a state, a partial upload\'s multipart upload without one', async () => {
    const id = newFileId();
    const keys = a.uploads.keys;
    await client.putObject(keys.piece(id, 0, 3), Buffer.from('abc')); // a late writer's piece, after a termination
    const stray = await client.createMultipartUpload(keys.partialData(id));
    await client.uploadPart(keys.partialData(id), stray, 1, Buffer.from('xyz'));
    assert.equal(await a.expireUploads(new Date()), 0);
    assert.notDeepEqual(await keysUnder(client, keys.folder(id)), [], 'too fresh to be taken for a leftover');
    await a.expireUploads(new Date(Date.now() + 5 * 60_000));
    assert.deepEqual(await keysUnder(client, keys.folder(id)), []);
    assert.deepEqual(await pendingUploads(client, keys.folder(id)), []);
  });

  rgwTest('a completer that died after its last part: the sweep completes the file', async (rgw) => {
    const data = randomBytes(P + 3);
    const { id } = await a.createUpload(upload(data.length));
    const broken = newStore(rgw);
    // This "instance" dies right at CompleteMultipartUpload.
    const internals = broken.uploads as unknown as { o: { client: S3Client } };
    internals.o.client.completeMultipartUpload = async () => {
      throw new Error('killed');
    };
    await assert.rejects(append(broken, id, data, 0), /killed/);
    await broken.close();
    assert.equal((await b.getUpload(id))?.offset, data.length);
    assert.equal(await a.stat(id), null);
    await a.expireUploads(new Date(Date.now() + 10 * 60_000));
    assert.equal((await a.stat(id))?.sha256, sha256(data));
  });

  for (const moved of [false, true]) {
    rgwTest(`verify() refusing the bytes${moved ? ' (upload moved: digest read back)' : ''}: no file, offset = length, the sweep leaves it, deleteUpload removes it`, async () => {
      const data = randomBytes(P + 1000);
      const { id } = await a.createUpload(upload(data.length));
      if (moved) await append(b, id, data.subarray(0, 1000), 0);
      const from = moved ? 1000 : 0;
      let seen: { size: number; sha256: string } | null = null;
      const verify = (whole: { size: number; sha256: string }): void => {
        seen = whole;
        throw new SluiceError('DIGEST_MISMATCH', 'not the bytes we wanted', 502);
      };
      await rejectsWith(append(a, id, data.subarray(from), from, { verify }), 'DIGEST_MISMATCH');
      assert.deepEqual(seen, { size: data.length, sha256: sha256(data) });
      const state = await b.getUpload(id);
      assert.equal(state?.offset, data.length);
      assert.equal(state?.complete, false);
      await a.expireUploads(new Date(Date.now() + 10 * 60_000));
      assert.equal(await a.stat(id), null, 'never published');
      assert.equal(await b.deleteUpload(id), true);
      assert.equal(await a.getUpload(id), null);
      assert.equal(await client.headObject(`${PREFIX}${id}`), null);
      assert.deepEqual(await pendingUploads(client, `${PREFIX}${id}`), []);
    });
  }

  rgwTest('memory: an append of fresh chunks keeps none of the chunks it took', async () => {
    const total = 40 * MiB;
    const { id } = await a.createUpload(upload(total));
    const refs: Array<WeakRef<Buffer>> = [];
    let alive = -1;
    async function* source(): AsyncGenerator<Buffer> {
      for (let sent = 0; sent < total; sent += 64 * 1024) {
        if (sent === 30 * MiB) {
          gc();
          alive = refs.slice(0, 320).filter((r) => r.deref() !== undefined).length; // the first 20 MiB
        }
        const chunk = randomBytes(64 * 1024); // a new buffer each time, as from a socket
        refs.push(new WeakRef(chunk));
        yield chunk;
      }
    }
    // Counting ArrayBuffers after a GC is not exact (V8 frees them on a background thread), so
    // what the test holds on to is which objects are still reachable: WeakRefs.
    const { file } = await a.appendUpload(id, source(), { offset: 0 });
    assert.equal(file?.size, total);
    assert.ok(alive >= 0 && alive <= 2, `${alive} of the first 320 chunks (20 MiB) still alive when 30 MiB had gone through`);
  });

  rgwTest('the largest upload S3 can hold (10,000 parts) is advertised and enforced over HTTP, below MAX_FILE_BYTES', async (rgw) => {
    const max = 10_000 * P;
    const server = await startServer({ MAX_FILE_BYTES: String(2 * max) }, newStore(rgw));
    try {
      const tus = { 'tus-resumable': '1.0.0' };
      const options = await fetch(`${server.url}/uploads`, { method: 'OPTIONS' });
      assert.equal(options.headers.get('tus-max-size'), String(max));
      assert.match(options.headers.get('upload-limit') ?? '', new RegExp(`max-size=${max}\\b`));
      const tooLong = await fetch(`${server.url}/uploads`, { method: 'POST', headers: { ...tus, 'upload-length': String(max + 1) } });
      assert.equal(tooLong.status, 413);
      assert.equal(tooLong.headers.get('tus-max-size'), String(max));
      assert.equal(((await tooLong.json()) as { error: { code: string } }).error.code, 'FILE_TOO_LARGE');
      const fits = await fetch(`${server.url}/uploads`, { method: 'POST', headers: { ...tus, 'upload-length': String(max) } });
      assert.equal(fits.status, 201);
      assert.equal((await fetch(`${server.url}${fits.headers.get('location')}`, { method: 'DELETE', headers: tus })).status, 204);
    } finally {
      await server.close();
      await server.store.close();
    }
  });

  rgwTest('fetch jobs on S3 (a resumable upload sluice feeds itself): stored through breaks, or nothing on a digest mismatch', async (rgw) => {
    const origin = await startRangedOrigin();
    const server = await startServer({ FETCH_ALLOW: '127.0.0.1', FETCH_TIMEOUT_MS: '5000' }, newStore(rgw));
    try {
      const size = 2 * P + 12_345;
      const submit = async (body: Record<string, unknown>): Promise<{ id: string; state: string; file: { sha256: string } | null; error: { code: string } | null }> => {
        const res = await fetch(`${server.url}/fetches`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
        assert.equal(res.status, 202, await res.clone().text());
        const { id } = (await res.json()) as { id: string };
        let job = { id, state: 'queued', file: null, error: null } as Awaited<ReturnType<typeof submit>>;
        await poll(`job ${id} finished`, async () => {
          job = (await (await fetch(`${server.url}/fetches/${id}`)).json()) as typeof job;
          return ['done', 'failed', 'cancelled'].includes(job.state);
        }, 60_000);
        return job;
      };
      const good = await submit({ url: origin.file({ size, seed: 's3-job', breaks: `${MiB},${P + 3}` }) });
      assert.equal(good.state, 'done', JSON.stringify(good));
      assert.equal(good.file?.sha256, fileSha256('s3-job', size));
      assert.equal((await a.stat(good.id))?.sha256, fileSha256('s3-job', size));
      const bad = await submit({ url: origin.file({ size: P + 7, seed: 's3-job-2' }), sha256: 'a'.repeat(64) });
      assert.equal(bad.state, 'failed');
      assert.equal(bad.error?.code, 'DIGEST_MISMATCH');
      assert.equal(await a.stat(bad.id), null, 'nothing stored');
      assert.equal(await a.getUpload(bad.id), null, 'and no upload left');
    } finally {
      await server.close();
      await server.store.close();
      await origin.close();
    }
  });

  rgwTest('after all of the above: no pending multipart upload and no upload object in the bucket', async () => {
    // Files stay (they are files); everything of uploads must be gone.
    await a.expireUploads(new Date(Date.now() + 48 * 3600_000));
    assert.deepEqual(await keysUnder(client, a.uploads.keys.root), []);
    assert.deepEqual(await pendingUploads(client, PREFIX), []);
  });
});
