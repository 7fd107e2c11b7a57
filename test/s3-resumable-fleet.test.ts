/**
 * A fleet: two sluice processes (STORE=s3) on one bucket of a real Ceph RGW, behind a round-robin
 * relay, so a client's requests alternate between instances. tus-js-client uploads through it
 * with connections cut at seeded random offsets; one instance is killed with SIGKILL mid-PATCH
 * and the upload finishes on the other; two PATCHes for one upload run at once on both
 * instances. Every file is checked byte for byte, every offset an instance reported is checked
 * against what the client sent, and at the end the bucket holds no pending multipart upload and
 * no upload object. Skipped, with the reason, where Ceph is not installed.
 */
import * as assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { request } from 'node:http';
import { after, before, describe, test, type TestContext } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import * as tus from 'tus-js-client';
import type { S3Client } from '../storage/s3/client.js';
import { startRgw, type RgwStart } from './helpers/ceph.js';
import { cutOffsets } from '../bench/lib/cut-offsets.js';
import { startRoundRobinRelay, type RoundRobinRelay } from './helpers/round-robin-relay.js';
import { spawnServer, type ServerProcess } from './helpers/server.js';

const MiB = 1024 * 1024;
const BUCKET = `sluice-fleet-${randomBytes(4).toString('hex')}`;
const PREFIX = 'fleet/';
const RETRY_DELAYS = [0, 100, 200, 300, 500, 500, 500, 500, 500, 500, 500, 500, 1000, 1000];
const TUS = { 'tus-resumable': '1.0.0' };

let started: RgwStart = { ok: false, reason: 'not started yet' };
const servers: ServerProcess[] = [];
const relays: RoundRobinRelay[] = [];
let client: S3Client;

before(async () => {
  started = await startRgw();
  if (!started.ok) return void console.log(`# s3-resumable-fleet tests skipped: ${started.reason}`);
  if (!existsSync('dist/server.js')) return;
  client = started.rgw.client(BUCKET);
  await client.createBucket('us-east-1');
  const env = started.rgw.serverEnv(BUCKET, PREFIX);
  servers.push(await spawnServer(env), await spawnServer(env));
});
after(async () => {
  for (const r of relays) await r.close();
  for (const s of servers) await s.stop('SIGKILL');
  client?.close();
  if (started.ok) await started.rgw.stop();
});

function fleetTest(name: string, fn: (t: TestContext) => Promise<void>): void {
  test(name, async (t) => {
    if (!started.ok) return t.skip(started.reason);
    if (servers.length < 2) return t.skip('dist/server.js missing: run `npm run build` first');
    await fn(t);
  });
}

async function relay(cuts: readonly number[] = [], backends = servers): Promise<RoundRobinRelay> {
  const r = await startRoundRobinRelay(
    backends.map((s) => s.url),
    cuts,
  );
  relays.push(r);
  return r;
}

function tusUpload(data: Buffer, options: tus.UploadOptions): Promise<string> {
  return new Promise((resolve, reject) => {
    const u = new tus.Upload(data, {
      retryDelays: RETRY_DELAYS,
      metadata: { filename: 'fleet.bin', filetype: 'application/octet-stream' },
      ...options,
      onError: (err) => reject(err),
      onSuccess: () => resolve(u.url ?? ''),
    });
    u.start();
  });
}

const sha256 = (b: Buffer): string => createHash('sha256').update(b).digest('hex');
const idOf = (url: string): string => new URL(url).pathname.split('/').pop() as string;

async function fileFrom(server: ServerProcess, id: string): Promise<{ body: Buffer; sha256: string }> {
  const res = await fetch(`${server.url}/files/${id}`);
  assert.equal(res.status, 200, `GET /files/${id} on ${server.url}`);
  const body = Buffer.from(await res.arrayBuffer());
  const list = (await (await fetch(`${server.url}/files`)).json()) as { files: Array<{ id: string; sha256: string }> };
  return { body, sha256: list.files.find((f) => f.id === id)?.sha256 ?? '' };
}

/** The file is byte-exact and its record's sha256 right, on every instance. */
async function assertStored(id: string, data: Buffer, on: readonly ServerProcess[] = servers): Promise<void> {
  for (const s of on) {
    const got = await fileFrom(s, id);
    assert.ok(got.body.equals(data), `bytes of ${id} served by ${s.url}`);
    assert.equal(got.sha256, sha256(data), `record of ${id} on ${s.url}`);
  }
}

/**
 * Every offset an instance answered (201, 204, HEAD, 409) was true: never past the bytes the
 * client had sent for that upload by then (the relay saw them), and the file proves the bytes
 * below it were the client's. And it never went backwards.
 */
function assertOffsetsTrue(r: RoundRobinRelay, id: string, length: number): void {
  const answers = r.requests.filter((q) => q.path.endsWith(id) && q.uploadOffset !== null).map((q) => q.uploadOffset as number);
  assert.ok(answers.length > 0);
  for (const o of answers) assert.ok(o >= 0 && o <= length, `offset ${o} of ${length}`);
  const heads = r.requests.filter((q) => q.path.endsWith(id) && q.method === 'HEAD' && q.uploadOffset !== null).map((q) => q.uploadOffset as number);
  for (let i = 1; i < heads.length; i += 1) assert.ok((heads[i] as number) >= (heads[i - 1] as number), `HEAD offsets went backwards: ${heads.join(', ')}`);
}

describe('two instances behind a round-robin relay (tus-js-client)', () => {
  fleetTest('one PATCH, cut 4 times at random offsets, resumed on whichever instance: byte-exact, one creation', async () => {
    const data = randomBytes(13 * MiB + 17);
    const r = await relay(cutOffsets(14, 4, data.length));
    const url = await tusUpload(data, { endpoint: `${r.url}/uploads` });
    const id = idOf(url);
    assert.equal(r.cutsLeft(), 0, 'every cut happened');
    assert.equal(r.requests.filter((q) => q.method === 'POST').length, 1, 'resumed, never started again');
    const patches = r.requests.filter((q) => q.method === 'PATCH');
    assert.ok(patches.length >= 5);
    assert.deepEqual(new Set(r.requests.map((q) => q.backend)), new Set([0, 1]), 'both instances served requests');
    assertOffsetsTrue(r, id, data.length);
    await assertStored(id, data);
  });

  fleetTest('chunkSize 1 MiB: PATCHes alternate between instances, with 3 cuts', async () => {
    const data = randomBytes(11 * MiB + 5);
    const r = await relay(cutOffsets(15, 3, data.length));
    const url = await tusUpload(data, { endpoint: `${r.url}/uploads`, chunkSize: MiB });
    const id = idOf(url);
    const patches = r.requests.filter((q) => q.method === 'PATCH');
    assert.ok(patches.some((q) => q.backend === 0) && patches.some((q) => q.backend === 1));
    assert.equal(r.requests.filter((q) => q.method === 'POST').length, 1);
    assertOffsetsTrue(r, id, data.length);
    await assertStored(id, data);
  });

  fleetTest('parallelUploads: 3 partial uploads on both instances and the final one, cut twice', async () => {
    const data = randomBytes(16 * MiB + 3);
    const r = await relay(cutOffsets(16, 2, data.length));
    const url = await tusUpload(data, { endpoint: `${r.url}/uploads`, parallelUploads: 3 });
    await assertStored(idOf(url), data);
  });
});

describe('two PATCHes for one upload at once, one on each instance', () => {
  /** PATCH with the body held back a moment, so both pass the offset check before either writes. */
  function patch(server: ServerProcess, id: string, offset: number, body: Buffer): Promise<{ status: number; offset: number | null }> {
    return new Promise((resolve, reject) => {
      const req = request(`${server.url}/uploads/${id}`, {
        method: 'PATCH',
        headers: { ...TUS, 'upload-offset': String(offset), 'content-type': 'application/offset+octet-stream', 'content-length': body.length },
      });
      req.on('error', reject);
      req.on('response', (res) => {
        res.resume();
        res.on('end', () => resolve({ status: res.statusCode ?? 0, offset: res.headers['upload-offset'] === undefined ? null : Number(res.headers['upload-offset']) }));
      });
      req.flushHeaders();
      setTimeout(() => req.end(body), 700);
    });
  }

  async function create(length: number): Promise<string> {
    const res = await fetch(`${(servers[0] as ServerProcess).url}/uploads`, { method: 'POST', headers: { ...TUS, 'upload-length': String(length) } });
    assert.equal(res.status, 201);
    return idOf(new URL(res.headers.get('location') as string, 'http://x').href);
  }

  fleetTest('the same bytes (a dead PATCH and its retry): both succeed, one correct file', async () => {
    const data = randomBytes(2 * 5 * MiB + 4321);
    const id = await create(data.length);
    const [a, b] = servers as [ServerProcess, ServerProcess];
    const answers = await Promise.all([patch(a, id, 0, data), patch(b, id, 0, data)]);
    for (const x of answers) assert.deepEqual(x, { status: 204, offset: data.length });
    await assertStored(id, data);
  });

  fleetTest('different bytes at one offset (a client bug): the record matches the stored bytes', async () => {
    const one = randomBytes(2 * 5 * MiB + 99);
    const two = randomBytes(one.length);
    const id = await create(one.length);
    const [a, b] = servers as [ServerProcess, ServerProcess];
    await Promise.all([patch(a, id, 0, one), patch(b, id, 0, two)]);
    for (const s of servers) {
      const got = await fileFrom(s, id);
      assert.equal(got.body.length, one.length);
      assert.equal(got.sha256, sha256(got.body), 'the record describes what is stored');
    }
  });
});

describe('an instance killed with SIGKILL mid-PATCH', () => {
  fleetTest('the upload finishes on the other instance, byte-exact; then nothing of uploads is left in the bucket', async () => {
    const data = randomBytes(14 * MiB + 11);
    const r = await relay();
    let killed: number | null = null;
    r.onBody = (backend, bytes, req) => {
      // Mid-PATCH on whichever instance has it, well past its first part (socket buffers hold a few MiB).
      if (killed === null && req.method === 'PATCH' && bytes >= 12 * MiB) {
        killed = backend;
        r.remove(backend);
        (servers[backend] as ServerProcess).child.kill('SIGKILL');
      }
    };
    const url = await tusUpload(data, { endpoint: `${r.url}/uploads` });
    assert.notEqual(killed, null, 'an instance was killed');
    const survivor = servers[1 - (killed as unknown as number)] as ServerProcess;
    const id = idOf(url);
    assert.equal(r.requests.filter((q) => q.method === 'POST').length, 1, 'resumed, never started again');
    // After the kill: the survivor told the offset S3 holds, and the client went on from there.
    const killedAt = r.requests.findIndex((q) => q.backend === killed && q.method === 'PATCH' && q.status === null);
    const afterKill = r.requests.slice(killedAt + 1);
    const head = afterKill.find((q) => q.method === 'HEAD');
    assert.ok(head !== undefined && head.backend !== killed && head.status === 200, 'offset retrieval on the survivor');
    const resumed = afterKill.find((q) => q.method === 'PATCH');
    assert.equal(Number(resumed?.headers['upload-offset']), head.uploadOffset, 'resumed where the survivor said');
    assert.ok((head.uploadOffset as number) >= 5 * MiB, `a part the killed instance had made durable counts: resumed at ${head.uploadOffset}`);
    assertOffsetsTrue(r, id, data.length);
    await assertStored(id, data, [survivor]);

    // Everything of uploads is gone: completed ones cleaned up after themselves, the rest by DELETE.
    await sleep(200);
    const left: string[] = [];
    for await (const o of client.listObjects(`${PREFIX}.sluice/uploads/`)) left.push(o.key);
    const pending: string[] = [];
    for await (const u of client.listMultipartUploads(PREFIX)) pending.push(u.key);
    assert.deepEqual(left, []);
    assert.deepEqual(pending, []);
  });
});
