/**
 * The S3 store against a real Ceph RGW (test/helpers/ceph.ts starts a throwaway one), no mocks:
 * first through the Store interface, then through the real HTTP server, then two server
 * processes sharing one bucket. Skipped, with the reason printed, where Ceph is not installed.
 */
import * as assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { request } from 'node:http';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { after, before, describe, test, type TestContext } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type { S3Config } from '../lib/config.js';
import { LimitExceededError, NotFoundError, SluiceError } from '../lib/errors.js';
import { newFileId } from '../storage/file-id.js';
import { S3Store } from '../storage/s3-store.js';
import { S3Client, type PendingUpload } from '../storage/s3/client.js';
import { saveStream } from '../storage/save-stream.js';
import type { FileRecord } from '../storage/store.js';
import { startRgw, type Rgw, type RgwStart } from './helpers/ceph.js';
import { spawnServer, startServer, type ServerProcess, type TestServer } from './helpers/server.js';

const PART = 5 * 1024 * 1024; // S3's smallest part: keeps "3 parts + 1" at 15 MiB
const SIZES: ReadonlyArray<{ what: string; size: number; parts: number }> = [
  { what: 'empty', size: 0, parts: 0 },
  { what: '1 byte', size: 1, parts: 0 },
  { what: 'part - 1', size: PART - 1, parts: 0 },
  { what: 'exactly one part (still a single PutObject)', size: PART, parts: 0 },
  { what: 'part + 1 (two parts, the last one byte)', size: PART + 1, parts: 2 },
  { what: '3 parts + 1', size: 3 * PART + 1, parts: 4 },
];
const BUCKET = `sluice-test-${randomBytes(4).toString('hex')}`;

let started: RgwStart = { ok: false, reason: 'not started yet' };
before(async () => {
  started = await startRgw();
  if (!started.ok) console.log(`# s3-store tests skipped: ${started.reason}`);
});
after(async () => {
  if (started.ok) await started.rgw.stop();
});

/** A test that needs the gateway: skipped with the reason when there is none. */
function rgwTest(name: string, fn: (rgw: Rgw, t: TestContext) => Promise<void>): void {
  test(name, async (t) => {
    if (!started.ok) return t.skip(started.reason);
    await fn(started.rgw, t);
  });
}

function config(rgw: Rgw, prefix: string, overrides: Partial<S3Config> = {}): S3Config {
  return rgw.config(BUCKET, { prefix, partBytes: PART, ...overrides });
}

/** A raw client on the same bucket, to look behind the store's back. */
function rawClient(rgw: Rgw, overrides: { secretKey?: string; endpoint?: string } = {}): S3Client {
  return new S3Client({
    endpoint: new URL(overrides.endpoint ?? (rgw.env.S3_ENDPOINT as string)),
    region: rgw.env.S3_REGION as string,
    bucket: BUCKET,
    accessKey: rgw.env.S3_ACCESS_KEY as string,
    secretKey: overrides.secretKey ?? (rgw.env.S3_SECRET_KEY as string),
    pathStyle: true,
  });
}

/** Chunks of awkward sizes, so part boundaries fall in the middle of writes. */
function* awkwardChunks(data: Buffer): Generator<Buffer> {
  const sizes = [1, 1000, 65_536, 1_048_579, 13, 300_007];
  let offset = 0;
  for (let i = 0; offset < data.length; i += 1) {
    const n = sizes[i % sizes.length] as number;
    yield data.subarray(offset, offset + n);
    offset += n;
  }
}

async function readAll(stream: AsyncIterable<unknown>): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

function sha256(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

async function keysUnder(client: S3Client, prefix: string): Promise<string[]> {
  const keys: string[] = [];
  for await (const o of client.listObjects(prefix)) keys.push(o.key);
  return keys;
}

async function uploadsUnder(client: S3Client, prefix: string): Promise<PendingUpload[]> {
  const uploads: PendingUpload[] = [];
  for await (const u of client.listMultipartUploads(prefix)) uploads.push(u);
  return uploads;
}

/** Polls `check` until it returns true (the server cleans up after answering). */
async function eventually(what: string, check: () => Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for: ${what}`);
    await sleep(50);
  }
}

describe('S3Store through the Store interface', () => {
  let store: S3Store;
  let client: S3Client;
  const prefix = 'store/tenant a+b é/'; // spaces, '+', UTF-8: the SigV4 path encoding meets a real gateway
  before(async () => {
    if (!started.ok) return;
    store = new S3Store(config(started.rgw, prefix));
    await store.open(); // creates the bucket
    client = rawClient(started.rgw);
  });
  after(async () => {
    await store?.close();
    client?.close();
  });

  for (const { what, size, parts } of SIZES) {
    rgwTest(`${what} (${size} bytes): stored byte-exact, sha256 and size computed on the way`, async () => {
      const data = randomBytes(size);
      const record = await saveStream(store, Readable.from(awkwardChunks(data)), { field: 'f', filename: 'a.bin', contentType: 'application/x-test' });
      assert.equal(record.size, size);
      assert.equal(record.sha256, sha256(data));
      assert.deepEqual(await store.stat(record.id), record);
      assert.ok((await readAll(await store.read(record.id))).equals(data), 'downloaded bytes differ');
      // Single PutObject up to one part; beyond, a multipart object whose ETag ends in -<parts>.
      const head = await client.headObject(`${prefix}${record.id}`);
      assert.equal(head?.size, size);
      assert.equal(head?.contentType, 'application/x-test');
      const multipartSuffix = /-(\d+)"?$/.exec(head?.etag ?? '');
      if (parts === 0) assert.equal(multipartSuffix, null, `expected a single PutObject, ETag ${head?.etag}`);
      else assert.equal(Number(multipartSuffix?.[1]), parts, `expected ${parts} parts, ETag ${head?.etag}`);
    });
  }

  rgwTest('ranges are byte-exact, across part boundaries too', async () => {
    const data = randomBytes(3 * PART + 1);
    const record = await saveStream(store, Readable.from(awkwardChunks(data)), { field: null, filename: null, contentType: 'application/octet-stream' });
    const ranges = [
      { start: 0, end: 0 },
      { start: 0, end: 9 },
      { start: PART - 1, end: PART }, // the last byte of part 1 and the first of part 2
      { start: PART - 100, end: 2 * PART + 100 }, // spans a whole part
      { start: 3 * PART, end: 3 * PART }, // the last part, alone
      { start: 12_345, end: 3 * PART }, // to the end
    ];
    for (const r of ranges) {
      const got = await readAll(await store.read(record.id, r));
      assert.ok(got.equals(data.subarray(r.start, r.end + 1)), `range ${r.start}-${r.end}`);
    }
  });

  rgwTest('list shows committed files only; delete removes record and bytes; unknown ids are 404', async () => {
    const a = await saveStream(store, Readable.from([Buffer.from('alpha')]), { field: 'x', filename: 'a.txt', contentType: 'text/plain' });
    const writer = store.createWriter({ field: 'y', filename: 'b.txt', contentType: 'text/plain' });
    await pipeline(Readable.from([Buffer.from('not committed yet')]), writer);
    const ids = (await store.list()).map((r) => r.id);
    assert.ok(ids.includes(a.id));
    assert.ok(!ids.includes(writer.id), 'a finished but uncommitted file is invisible');
    assert.equal(await store.stat(writer.id), null);
    await writer.abort();

    assert.equal(await store.delete(a.id), true);
    assert.equal(await store.stat(a.id), null);
    await assert.rejects(store.read(a.id), NotFoundError);
    assert.equal(await store.delete(a.id), false, 'a second delete finds nothing');
    assert.deepEqual((await keysUnder(client, prefix)).filter((k) => k.includes(a.id) || k.includes(writer.id)), []);
    for (const bad of ['..', 'a/b', '%00', 'x'.repeat(22) + '/']) {
      assert.equal(await store.stat(bad), null);
      await assert.rejects(store.read(bad), NotFoundError);
      assert.equal(await store.delete(bad), false);
    }
  });

  rgwTest('list pages past 1000 keys (ListObjectsV2 continuation)', async (rgw) => {
    const paged = new S3Store(config(rgw, `${prefix}page/`));
    try {
      // 520 files = 1040 keys (bytes + record): two pages.
      const made: FileRecord[] = [];
      for (let i = 0; i < 520; i += 40) {
        made.push(...(await Promise.all(Array.from({ length: 40 }, (_, j) => saveStream(paged, Readable.from([Buffer.from(`file ${i + j}`)]), { field: null, filename: null, contentType: 'text/plain' })))));
      }
      const listed = await paged.list();
      assert.equal(listed.length, 520);
      assert.deepEqual(new Set(listed.map((r) => r.id)), new Set(made.map((r) => r.id)));
    } finally {
      await paged.close();
    }
  });

  rgwTest('abort mid-upload (source fails after 2.5 parts): no object and no pending multipart upload', async () => {
    const before = new Set(await keysUnder(client, prefix));
    const data = randomBytes(PART * 2 + PART / 2);
    async function* failing(): AsyncGenerator<Buffer> {
      yield* awkwardChunks(data);
      // Parts 1 and 2 are in S3 by now: prove the multipart upload is really pending.
      assert.equal((await uploadsUnder(client, prefix)).length, 1, 'a multipart upload is in progress');
      throw new Error('client went away');
    }
    await assert.rejects(saveStream(store, Readable.from(failing()), { field: 'f', filename: 'big', contentType: 'x/y' }), /client went away/);
    assert.deepEqual(await uploadsUnder(client, prefix), [], 'ListMultipartUploads is empty');
    assert.deepEqual((await keysUnder(client, prefix)).filter((k) => !before.has(k)), [], 'no object of the aborted upload');
  });

  rgwTest('abort while a part upload is in flight: AbortMultipartUpload runs after it settles', async () => {
    const before = new Set(await keysUnder(client, prefix));
    const writer = store.createWriter({ field: 'f', filename: 'inflight', contentType: 'application/octet-stream' });
    const data = randomBytes(PART + 10);
    writer.write(data.subarray(0, PART));
    writer.write(data.subarray(PART)); // needs room: CreateMultipartUpload + UploadPart start now
    await sleep(5);
    await writer.abort();
    assert.equal(writer.destroyed, true);
    assert.deepEqual(await uploadsUnder(client, prefix), []);
    assert.deepEqual((await keysUnder(client, prefix)).filter((k) => !before.has(k)), []);
  });

  rgwTest('FILE_TOO_LARGE past maxBytes: 413, the multipart upload aborted, nothing stored', async () => {
    const before = new Set(await keysUnder(client, prefix));
    const data = randomBytes(2 * PART);
    const err = await saveStream(store, Readable.from(awkwardChunks(data)), { field: null, filename: null, contentType: 'x/y' }, { maxBytes: PART + 10 }).then(
      () => assert.fail('should have failed'),
      (e: unknown) => e,
    );
    assert.ok(err instanceof LimitExceededError);
    assert.equal(err.code, 'FILE_TOO_LARGE');
    assert.equal(err.status, 413);
    assert.deepEqual(await uploadsUnder(client, prefix), []);
    assert.deepEqual((await keysUnder(client, prefix)).filter((k) => !before.has(k)), []);
  });

  rgwTest('abort after commit removes the committed file too', async () => {
    const writer = store.createWriter({ field: null, filename: null, contentType: 'text/plain' });
    await pipeline(Readable.from([Buffer.from('soon gone')]), writer);
    const record = await writer.commit();
    assert.ok(await store.stat(record.id));
    await writer.abort();
    assert.equal(await store.stat(record.id), null);
    assert.deepEqual((await keysUnder(client, prefix)).filter((k) => k.includes(record.id)), []);
  });

  rgwTest('memory: a 60 MiB upload holds about one part, not the file', async () => {
    const block = randomBytes(1024 * 1024);
    const total = 60 * 1024 * 1024;
    let peak = 0;
    const baseline = process.memoryUsage().arrayBuffers;
    async function* source(): AsyncGenerator<Buffer> {
      // Slices of one block: the source itself allocates nothing.
      for (let sent = 0; sent < total; sent += 64 * 1024) {
        peak = Math.max(peak, process.memoryUsage().arrayBuffers - baseline);
        yield block.subarray(sent % block.length, (sent % block.length) + 64 * 1024);
      }
    }
    const record = await saveStream(store, Readable.from(source()), { field: null, filename: null, contentType: 'x/y' });
    assert.equal(record.size, total);
    assert.ok(peak < 3 * PART, `peak external memory ${(peak / 2 ** 20).toFixed(1)} MiB for ${PART / 2 ** 20} MiB parts`);
    await store.delete(record.id);
  });

  rgwTest('two stores on one bucket: stored through one, listed, read and deleted through the other', async (rgw) => {
    const other = new S3Store(config(rgw, prefix));
    try {
      await other.open();
      const data = randomBytes(PART + 123);
      const record = await saveStream(store, Readable.from(awkwardChunks(data)), { field: 'f', filename: 'shared.bin', contentType: 'application/octet-stream' });
      assert.deepEqual(await other.stat(record.id), record);
      assert.ok((await other.list()).some((r) => r.id === record.id));
      assert.ok((await readAll(await other.read(record.id, { start: PART - 1, end: PART + 122 }))).equals(data.subarray(PART - 1)));
      assert.equal(await other.delete(record.id), true);
      assert.equal(await store.stat(record.id), null);
    } finally {
      await other.close();
    }
  });

  rgwTest('freeBytes is unknown for S3', async () => {
    assert.equal(await store.freeBytes(), null);
  });

  rgwTest('documents: put, get, list, replace, delete under <prefix>.sluice/<kind>/<id>.json; never listed as files', async () => {
    const [a, b] = [newFileId(), newFileId()];
    assert.equal(await store.getDocument('fetch-job', a), null);
    await store.putDocument('fetch-job', a, { state: 'running', bytes: 1 });
    await store.putDocument('fetch-job', b, { state: 'queued' });
    await store.putDocument('fetch-job', a, { state: 'done', bytes: 2 });
    await store.putDocument('another-kind', a, [1, 2]);
    assert.deepEqual(await store.getDocument('fetch-job', a), { state: 'done', bytes: 2 });
    const listed = (await store.listDocuments('fetch-job')) as Array<{ state: string }>;
    assert.deepEqual(listed.map((d) => d.state).sort(), ['done', 'queued']);
    // Where they are, seen from behind the store's back.
    assert.notEqual(await client.headObject(`${prefix}.sluice/fetch-job/${a}.json`), null);
    assert.ok(!(await store.list()).some((r) => r.id === a || r.id === b), 'documents are not files');
    await store.deleteDocument('fetch-job', a);
    await store.deleteDocument('fetch-job', b);
    await store.deleteDocument('another-kind', a);
    assert.equal(await store.getDocument('fetch-job', a), null);
    assert.deepEqual(await store.listDocuments('fetch-job'), []);
    await assert.rejects(store.putDocument('fetch-job', '../x', {}));
  });
});

describe('S3 errors from a real gateway', () => {
  rgwTest('a wrong secret is a 502 S3_AUTH_FAILED that names the settings, never the secret', async (rgw) => {
    const secret = 'wrong-secret-0123456789-do-not-print';
    const bad = new S3Store(config(rgw, 'x/', { secretKey: secret }));
    try {
      const err = await bad.open().then(
        () => assert.fail('open() should fail'),
        (e: unknown) => e,
      );
      assert.ok(err instanceof SluiceError);
      assert.equal(err.status, 502);
      assert.equal(err.code, 'S3_AUTH_FAILED');
      assert.match(err.message, /S3_SECRET_KEY/);
      assert.doesNotMatch(JSON.stringify(err, Object.getOwnPropertyNames(err)) + String(err.stack) + String((err.cause as Error)?.message), new RegExp(secret));
      const err2 = await bad.stat('A'.repeat(22)).then(() => null, (e: unknown) => e);
      assert.equal((err2 as SluiceError).code, 'S3_AUTH_FAILED');
    } finally {
      await bad.close();
    }
  });

  rgwTest('an unreachable endpoint is a 502 S3_UNREACHABLE', async (rgw) => {
    const server = (await import('node:net')).createServer();
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const port = (server.address() as { port: number }).port;
    server.close(); // nothing listens there now
    const gone = new S3Store(config(rgw, 'x/', { endpoint: `http://127.0.0.1:${port}` }));
    try {
      const err = await gone.stat('A'.repeat(22)).then(() => null, (e: unknown) => e);
      assert.ok(err instanceof SluiceError);
      assert.equal(err.status, 502);
      assert.equal(err.code, 'S3_UNREACHABLE');
      assert.match(err.message, /ECONNREFUSED/);
    } finally {
      await gone.close();
    }
  });
});

// ---------------------------------------------------------------------------------------------
// Through the real HTTP server.

const BOUNDARY = 'sluice-s3-test-boundary';

function multipartBody(filename: string, data: Buffer): Buffer {
  return Buffer.concat([
    Buffer.from(`--${BOUNDARY}\r\nContent-Disposition: form-data; name="note"\r\n\r\nhello\r\n`),
    Buffer.from(`--${BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="${filename}"\r\nContent-Type: application/octet-stream\r\n\r\n`),
    data,
    Buffer.from(`\r\n--${BOUNDARY}--\r\n`),
  ]);
}

interface Uploaded {
  readonly id: string;
  readonly size: number;
  readonly sha256: string;
  readonly filename: string | null;
}

async function upload(url: string, data: Buffer, kind: 'multipart' | 'raw'): Promise<Uploaded> {
  const res = await fetch(`${url}/upload${kind === 'raw' ? '?filename=raw.bin' : ''}`, {
    method: 'POST',
    headers: { 'content-type': kind === 'raw' ? 'application/octet-stream' : `multipart/form-data; boundary=${BOUNDARY}` },
    body: kind === 'raw' ? data : multipartBody('m.bin', data),
  });
  const text = await res.text();
  assert.equal(res.status, 201, text);
  const files = (JSON.parse(text) as { files: Uploaded[] }).files;
  assert.equal(files.length, 1);
  return files[0] as Uploaded;
}

async function download(url: string, id: string, range?: string): Promise<{ status: number; body: Buffer; headers: Headers }> {
  const res = await fetch(`${url}/files/${id}`, { headers: range === undefined ? {} : { range } });
  return { status: res.status, body: Buffer.from(await res.arrayBuffer()), headers: res.headers };
}

describe('through the HTTP server (in process, S3Store)', () => {
  let server: TestServer;
  let client: S3Client;
  const prefix = 'http/';
  before(async () => {
    if (!started.ok) return;
    server = await startServer({}, new S3Store(config(started.rgw, prefix)));
    client = rawClient(started.rgw);
  });
  after(async () => {
    await server?.close();
    await server?.store.close();
    client?.close();
  });

  for (const kind of ['multipart', 'raw'] as const) {
    for (const { what, size } of SIZES) {
      rgwTest(`${kind} upload, ${what} (${size} bytes): GET returns the same bytes`, async () => {
        const data = randomBytes(size);
        const file = await upload(server.url, data, kind);
        assert.equal(file.size, size);
        assert.equal(file.sha256, sha256(data));
        const got = await download(server.url, file.id);
        assert.equal(got.status, 200);
        assert.ok(got.body.equals(data), 'downloaded bytes differ');
        assert.equal(got.headers.get('etag'), `"${sha256(data)}"`);
      });
    }
  }

  rgwTest('GET with Range → 206 and the exact bytes, passed through to S3', async () => {
    const data = randomBytes(3 * PART + 1);
    const file = await upload(server.url, data, 'raw');
    for (const [range, start, end] of [
      ['bytes=0-0', 0, 0],
      [`bytes=${PART - 2}-${PART + 1}`, PART - 2, PART + 1],
      ['bytes=-5', 3 * PART - 4, 3 * PART],
      [`bytes=${2 * PART}-`, 2 * PART, 3 * PART],
    ] as const) {
      const got = await download(server.url, file.id, range);
      assert.equal(got.status, 206, range);
      assert.equal(got.headers.get('content-range'), `bytes ${start}-${end}/${data.length}`);
      assert.ok(got.body.equals(data.subarray(start, end + 1)), range);
    }
    assert.equal((await download(server.url, file.id, `bytes=${data.length}-`)).status, 416);
  });

  rgwTest('GET /files lists it, DELETE → 204, then 404 and gone from the bucket', async () => {
    const file = await upload(server.url, Buffer.from('to be deleted'), 'multipart');
    const list = (await (await fetch(`${server.url}/files`)).json()) as { files: Array<{ id: string }> };
    assert.ok(list.files.some((f) => f.id === file.id));
    assert.equal((await fetch(`${server.url}/files/${file.id}`, { method: 'DELETE' })).status, 204);
    assert.equal((await download(server.url, file.id)).status, 404);
    assert.equal((await fetch(`${server.url}/files/${file.id}`, { method: 'DELETE' })).status, 404);
    assert.deepEqual((await keysUnder(client, prefix)).filter((k) => k.includes(file.id)), []);
  });

  for (const kind of ['multipart', 'raw'] as const) {
    rgwTest(`${kind}: a client abort mid-upload leaves no object and no pending multipart upload`, async () => {
      const before = new Set(await keysUnder(client, prefix));
      const body = kind === 'raw' ? randomBytes(3 * PART) : multipartBody('aborted.bin', randomBytes(3 * PART));
      const req = request(`${server.url}/upload`, {
        method: 'POST',
        headers: {
          'content-type': kind === 'raw' ? 'application/octet-stream' : `multipart/form-data; boundary=${BOUNDARY}`,
          'content-length': body.length,
        },
      });
      req.on('error', () => {});
      req.write(body.subarray(0, Math.floor(2.5 * PART)));
      // Wait until the server really has a multipart upload going, then vanish.
      await eventually('a pending multipart upload', async () => (await uploadsUnder(client, prefix)).length > 0);
      req.destroy();
      await eventually('no pending multipart upload', async () => (await uploadsUnder(client, prefix)).length === 0);
      await eventually('no new object', async () => (await keysUnder(client, prefix)).every((k) => before.has(k)));
    });
  }

  rgwTest('MAX_FILE_BYTES over HTTP: 413 and nothing left in the bucket', async (rgw) => {
    const limited = await startServer({ MAX_FILE_BYTES: String(PART + 1) }, new S3Store(config(rgw, 'limited/')));
    try {
      const res = await fetch(`${limited.url}/upload`, { method: 'POST', headers: { 'content-type': 'application/octet-stream' }, body: randomBytes(2 * PART) });
      assert.equal(res.status, 413);
      assert.equal(((await res.json()) as { error: { code: string } }).error.code, 'FILE_TOO_LARGE');
      await eventually('no pending upload', async () => (await uploadsUnder(client, 'limited/')).length === 0);
      assert.deepEqual(await keysUnder(client, 'limited/'), []);
    } finally {
      await limited.close();
      await limited.store.close();
    }
  });
});

describe('two server processes sharing one bucket', () => {
  const servers: ServerProcess[] = [];
  before(async () => {
    if (!started.ok || !existsSync('dist/server.js')) return;
    const env = started.rgw.serverEnv(BUCKET, 'common/');
    servers.push(await spawnServer(env), await spawnServer(env));
  });
  after(async () => {
    for (const s of servers) await s.stop();
  });

  rgwTest('a file uploaded through one is listed, served (with ranges) and deleted through the other', async (_rgw, t) => {
    if (servers.length < 2) return t.skip('dist/server.js missing: run `npm run build` first');
    const [a, b] = servers as [ServerProcess, ServerProcess];
    const data = randomBytes(2 * PART + 7);
    const file = await upload(a.url, data, 'multipart');
    const listed = (await (await fetch(`${b.url}/files`)).json()) as { files: Array<{ id: string; sha256: string }> };
    assert.equal(listed.files.find((f) => f.id === file.id)?.sha256, sha256(data));
    const whole = await download(b.url, file.id);
    assert.ok(whole.body.equals(data));
    const part = await download(b.url, file.id, `bytes=${PART}-${PART + 99}`);
    assert.equal(part.status, 206);
    assert.ok(part.body.equals(data.subarray(PART, PART + 100)));
    assert.equal((await fetch(`${b.url}/files/${file.id}`, { method: 'DELETE' })).status, 204);
    assert.equal((await download(a.url, file.id)).status, 404);
  });
});
