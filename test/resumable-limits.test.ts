/**
 * The bounds around resumable uploads, end to end: MAX_PENDING_UPLOADS (503 + Retry-After),
 * MAX_CONCURRENT_UPLOADS counting PATCH bodies in flight, the free-space check on Upload-Length at
 * creation, an interrupted PATCH whose bytes still count (idle timeout; shutdown, then a restart),
 * and STORE=s3 answering resumable requests with a clean JSON 502 when the object store is down.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { mkdtemp, rm, statfs } from 'node:fs/promises';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { assertError, rawRequest, seededBytes, sha256 } from './helpers/http.js';
import { spawnServer, startServer } from './helpers/server.js';
import { S3Store } from '../storage/s3-store.js';

const TUS = { 'tus-resumable': '1.0.0' };

async function createTus(base: string, length: number): Promise<string> {
  const res = await rawRequest(base, '/uploads', { method: 'POST', headers: { ...TUS, 'upload-length': String(length) } });
  assert.equal(res.status, 201, res.body.toString());
  return String(res.headers.location);
}

/** A PATCH that sends `body` and then goes silent, its connection left open. */
async function silentPatch(base: string, location: string, declared: number, body: Buffer): Promise<Socket> {
  const socket = connect({ host: '127.0.0.1', port: Number(new URL(base).port) });
  await once(socket, 'connect');
  socket.on('error', () => {});
  socket.write(`PATCH ${location} HTTP/1.1\r\nHost: x\r\nTus-Resumable: 1.0.0\r\nContent-Type: application/offset+octet-stream\r\nUpload-Offset: 0\r\nContent-Length: ${declared}\r\n\r\n`);
  socket.write(body);
  return socket;
}

test('MAX_PENDING_UPLOADS: one more creation is 503 with Retry-After; after a termination there is room again', async () => {
  const server = await startServer({ MAX_PENDING_UPLOADS: '2' });
  try {
    const first = await createTus(server.url, 10);
    await createTus(server.url, 10);
    const refused = await rawRequest(server.url, '/uploads', { method: 'POST', headers: { ...TUS, 'upload-length': '10' } });
    assertError(refused, 503, 'TOO_MANY_PENDING_UPLOADS');
    assert.ok(Number(refused.headers['retry-after']) > 0);
    assert.equal(refused.headers['tus-resumable'], '1.0.0');
    assert.equal((await rawRequest(server.url, first, { method: 'DELETE', headers: TUS })).status, 204);
    await createTus(server.url, 10);
  } finally {
    await server.close();
  }
});

test('MAX_CONCURRENT_UPLOADS counts PATCH bodies in flight: a second PATCH while one streams is 503 TOO_MANY_UPLOADS', async () => {
  const server = await startServer({ MAX_CONCURRENT_UPLOADS: '1' });
  try {
    const a = await createTus(server.url, 1000);
    const b = await createTus(server.url, 1000);
    const socket = await silentPatch(server.url, a, 1000, Buffer.alloc(10));
    await new Promise((r) => setTimeout(r, 200));
    const second = await rawRequest(server.url, b, { method: 'PATCH', headers: { ...TUS, 'content-type': 'application/offset+octet-stream', 'upload-offset': '0' }, body: Buffer.alloc(5) });
    assertError(second, 503, 'TOO_MANY_UPLOADS');
    // A HEAD is no body in flight: it is answered, and takes the silent PATCH over.
    const head = await rawRequest(server.url, a, { method: 'HEAD', headers: TUS });
    assert.equal(head.headers['upload-offset'], '10');
    socket.destroy();
  } finally {
    await server.close();
  }
});

test('the free space is checked on Upload-Length at creation (413 NOT_ENOUGH_SPACE, nothing created)', async () => {
  // Keep all but ~1 GiB of the disk free: an empty creation request fits, a 4 GiB upload does not.
  const probe = await mkdtemp(join(tmpdir(), 'sluice-free-'));
  const { bavail, bsize } = await statfs(probe);
  await rm(probe, { recursive: true });
  const server = await startServer({ MIN_FREE_BYTES: String(Math.max(0, bavail * bsize - 2 ** 30)) });
  try {
    const res = await rawRequest(server.url, '/uploads', { method: 'POST', headers: { ...TUS, 'upload-length': String(4 * 2 ** 30) } });
    assertError(res, 413, 'NOT_ENOUGH_SPACE');
    assert.equal(res.headers.location, undefined);
    const draft = await rawRequest(server.url, '/uploads', { method: 'POST', headers: { 'upload-draft-interop-version': '8', 'upload-complete': '?0', 'upload-length': String(4 * 2 ** 30) } });
    assertError(draft, 413, 'NOT_ENOUGH_SPACE');
    assert.equal(draft.headers['upload-complete'], '?0');
  } finally {
    await server.close();
  }
});

test('a PATCH cut by the idle timeout: every byte that reached the server counts', async () => {
  const server = await startServer({ IDLE_TIMEOUT_MS: '400' });
  try {
    const location = await createTus(server.url, 100_000);
    const data = seededBytes(31, 100_000);
    const socket = await silentPatch(server.url, location, data.length, data.subarray(0, 40_000));
    const answer = new Promise<string>((resolve) => {
      let text = '';
      socket.on('data', (c: Buffer) => (text += c.toString('latin1')));
      socket.on('close', () => resolve(text));
    });
    assert.match(await answer, /^HTTP\/1\.1 408 /);
    const head = await rawRequest(server.url, location, { method: 'HEAD', headers: TUS });
    assert.equal(head.headers['upload-offset'], '40000');
    const rest = await rawRequest(server.url, location, { method: 'PATCH', headers: { ...TUS, 'content-type': 'application/offset+octet-stream', 'upload-offset': '40000' }, body: data.subarray(40_000) });
    assert.equal(rest.status, 204);
    const id = location.slice('/uploads/'.length);
    assert.equal(sha256((await rawRequest(server.url, `/files/${id}`)).body), sha256(data));
  } finally {
    await server.close();
  }
});

test('a PATCH still open at shutdown: what reached the server is durable and counted after a restart', async () => {
  const dataDir = await mkdtemp(join(tmpdir(), 'sluice-shutdown-'));
  let server = await spawnServer({ DATA_DIR: dataDir, SHUTDOWN_GRACE_MS: '300' });
  try {
    const location = await createTus(server.url, 500_000);
    const data = seededBytes(32, 500_000);
    const socket = await silentPatch(server.url, location, data.length, data.subarray(0, 123_456));
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(await server.stop('SIGTERM'), 0);
    socket.destroy();
    server = await spawnServer({ DATA_DIR: dataDir });
    const head = await rawRequest(server.url, location, { method: 'HEAD', headers: TUS });
    assert.equal(head.status, 200);
    assert.equal(head.headers['upload-offset'], '123456');
    const rest = await rawRequest(server.url, location, { method: 'PATCH', headers: { ...TUS, 'content-type': 'application/offset+octet-stream', 'upload-offset': '123456' }, body: data.subarray(123_456) });
    assert.equal(rest.status, 204);
    const id = location.slice('/uploads/'.length);
    assert.equal(sha256((await rawRequest(server.url, `/files/${id}`)).body), sha256(data));
  } finally {
    await server.stop('SIGKILL');
    await rm(dataDir, { recursive: true, force: true });
  }
});

test('STORE=s3 with the object store unreachable: resumable requests get a clean JSON 502 S3_UNREACHABLE, in the dialect asked', async () => {
  /** The real S3 store pointed at a port where nothing listens. */
  class OfflineS3Store extends S3Store {
    override async open(): Promise<void> {}
  }
  const store = new OfflineS3Store({ endpoint: 'http://127.0.0.1:9', region: 'us-east-1', bucket: 'b', accessKey: 'k', secretKey: 's', prefix: '', forcePathStyle: true, partBytes: 8 * 1024 * 1024 });
  const server = await startServer({}, store);
  try {
    const tus = await rawRequest(server.url, '/uploads', { method: 'POST', headers: { ...TUS, 'upload-length': '10' } });
    assertError(tus, 502, 'S3_UNREACHABLE');
    assert.equal(tus.headers['tus-resumable'], '1.0.0');
    const draft = await rawRequest(server.url, '/uploads', { method: 'POST', headers: { 'upload-draft-interop-version': '8', 'upload-complete': '?1' }, body: Buffer.from('abc') });
    assertError(draft, 502, 'S3_UNREACHABLE');
    const head = await rawRequest(server.url, '/uploads/AAAAAAAAAAAAAAAAAAAAAA', { method: 'HEAD', headers: TUS });
    assert.equal(head.status, 502);
    assert.equal(head.headers['upload-offset'], undefined, 'no offset when the truth cannot be told');
  } finally {
    await server.close();
  }
});
