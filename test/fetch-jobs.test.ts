/**
 * Background fetch jobs (`/fetches`, issue 15): submission and its checks, progress, the queue
 * (MAX_FETCH_JOBS), cancellation that leaves nothing, forgetting, the TTL, the bounded list,
 * digests, metrics and auth; and a restart mid-job (a real `node dist/server.js`, stopped and
 * started again on the same DATA_DIR) that goes on from the stored bytes.
 */
import { strict as assert } from 'node:assert';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFile, readdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { poll } from './helpers/http.js';
import { fileSha256, startRangedOrigin, type RangedOrigin } from './helpers/ranged-origin.js';
import { spawnServer, startServer, type TestServer } from './helpers/server.js';

const MiB = 1024 * 1024;
const run = promisify(execFile);

interface Job {
  id: string;
  url: string;
  state: string;
  bytes: number;
  total: number | null;
  bytesPerSecond: number | null;
  retries: number;
  createdAt: string;
  startedAt: string | null;
  finishedAt: string | null;
  file: { id: string; size: number; sha256: string; filename: string | null; contentType: string } | null;
  error: { code: string; message: string } | null;
}

async function submit(base: string, body: unknown, headers: Record<string, string> = {}): Promise<{ status: number; location: string | null; json: Record<string, unknown> }> {
  const res = await fetch(`${base}/fetches`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) });
  return { status: res.status, location: res.headers.get('location'), json: (await res.json()) as Record<string, unknown> };
}

async function getJob(base: string, id: string): Promise<Job> {
  const res = await fetch(`${base}/fetches/${id}`);
  assert.equal(res.status, 200);
  return (await res.json()) as Job;
}

async function waitFor(base: string, id: string, done: (job: Job) => boolean, what: string, timeoutMs = 30_000): Promise<Job> {
  let last: Job | null = null;
  await poll(
    `job ${id}: ${what} (last: ${JSON.stringify(last)})`,
    async () => {
      last = await getJob(base, id);
      return done(last);
    },
    timeoutMs,
  );
  return last as unknown as Job;
}

const finished = (job: Job): boolean => ['done', 'failed', 'cancelled'].includes(job.state);

/** DATA_DIR without the jobs' own documents: files, records, uploads. */
async function storedNames(dataDir: string): Promise<string[]> {
  return (await readdir(dataDir)).filter((n) => n !== '.sluice').sort();
}

function sha(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

describe('/fetches: background fetch jobs', () => {
  let origin: RangedOrigin;
  let server: TestServer;
  before(async () => {
    origin = await startRangedOrigin();
    server = await startServer({ FETCH_ALLOW: '127.0.0.1', FETCH_TIMEOUT_MS: '2000', MAX_FETCH_JOBS: '2' });
  });
  after(async () => {
    await server.close();
    await origin.close();
  });

  test('POST → 202 with Location and the job; it runs, resumes the breaks, and ends done with the file of the same id', async () => {
    const size = 6 * MiB + 17;
    const key = 'job-done';
    const url = origin.file({ size, seed: key, breaks: `${MiB},${3 * MiB}`, rate: 16 * MiB });
    const { status, location, json } = await submit(server.url, { url, filename: 'weights.bin' });
    assert.equal(status, 202);
    assert.equal(location, `/fetches/${json.id as string}`);
    assert.ok(['queued', 'running'].includes(json.state as string));
    assert.equal(json.url, url);
    assert.equal(json.file, null);
    const id = json.id as string;
    const progress = await waitFor(server.url, id, (j) => j.state === 'running' && j.bytes > 0 && j.bytesPerSecond !== null, 'running with progress');
    assert.equal(progress.total, size);
    assert.ok(progress.bytes < size);
    const job = await waitFor(server.url, id, finished, 'finished');
    assert.equal(job.state, 'done', JSON.stringify(job.error));
    assert.equal(job.bytes, size);
    assert.equal(job.retries, 2);
    assert.ok(job.startedAt !== null && job.finishedAt !== null && job.finishedAt >= job.startedAt);
    assert.equal(job.file?.id, id);
    assert.equal(job.file?.filename, 'weights.bin');
    assert.equal(job.file?.size, size);
    assert.equal(job.file?.sha256, fileSha256(key, size));
    const res = await fetch(`${server.url}/files/${id}`);
    assert.equal(res.status, 200);
    assert.equal(sha(Buffer.from(await res.arrayBuffer())), fileSha256(key, size));
  });

  test('the URL is checked at submission: 400 for a bad one, 403 for a private address (no FETCH_ALLOW), 415 without JSON', async () => {
    const strict = await startServer({});
    try {
      const bad = await submit(strict.url, { url: 'ftp://example.com/x' });
      assert.equal(bad.status, 400);
      assert.equal((bad.json.error as { code: string }).code, 'UNSUPPORTED_URL_SCHEME');
      assert.equal((await submit(strict.url, { url: 'not a url' })).status, 400);
      assert.equal((await submit(strict.url, { url: origin.file({ size: 10 }), sha256: 'xyz' })).status, 400);
      const forbidden = await submit(strict.url, { url: origin.file({ size: 10 }) });
      assert.equal(forbidden.status, 403);
      assert.equal((forbidden.json.error as { code: string }).code, 'FORBIDDEN_ADDRESS');
      const named = await submit(strict.url, { url: `http://localhost:${new URL(origin.url).port}/file` });
      assert.equal(named.status, 403, 'a name that resolves to loopback is refused too');
      const text = await fetch(`${strict.url}/fetches`, { method: 'POST', headers: { 'content-type': 'text/plain' }, body: '{}' });
      assert.equal(text.status, 415);
      const list = (await (await fetch(`${strict.url}/fetches`)).json()) as { fetches: Job[] };
      assert.deepEqual(list.fetches, [], 'no job was made');
    } finally {
      await strict.close();
    }
  });

  test('MAX_FETCH_JOBS run at once, the rest wait in order; GET /fetches lists newest first', async () => {
    const ids: string[] = [];
    for (let i = 0; i < 3; i += 1) {
      const { json } = await submit(server.url, { url: origin.file({ size: 2 * MiB, seed: `job-queue-${i}`, rate: 4 * MiB }) });
      ids.push(json.id as string);
    }
    const third = await getJob(server.url, ids[2] as string);
    assert.equal(third.state, 'queued', 'two run, the third waits');
    assert.equal(third.startedAt, null);
    const list = (await (await fetch(`${server.url}/fetches`)).json()) as { fetches: Job[] };
    const positions = ids.map((id) => list.fetches.findIndex((j) => j.id === id));
    assert.ok(positions[2]! < positions[1]! && positions[1]! < positions[0]!, 'newest first');
    for (const id of ids) assert.equal((await waitFor(server.url, id, finished, 'finished')).state, 'done');
  });

  test('DELETE of a running job: 200, cancelled, and nothing of its bytes stays; DELETE again forgets it (204), then 404', async () => {
    const before = await storedNames(server.dataDir);
    const { json } = await submit(server.url, { url: origin.file({ size: 8 * MiB, seed: 'job-cancel', rate: 2 * MiB }) });
    const id = json.id as string;
    await waitFor(server.url, id, (j) => j.bytes > 0, 'some bytes stored');
    const res = await fetch(`${server.url}/fetches/${id}`, { method: 'DELETE' });
    assert.equal(res.status, 200);
    const cancelled = (await res.json()) as Job;
    assert.equal(cancelled.state, 'cancelled');
    assert.ok(cancelled.finishedAt !== null);
    assert.deepEqual(await storedNames(server.dataDir), before, 'no upload, no partial, no file');
    assert.equal((await fetch(`${server.url}/files/${id}`)).status, 404);
    assert.equal((await getJob(server.url, id)).state, 'cancelled', 'kept like a finished job');
    assert.equal((await fetch(`${server.url}/fetches/${id}`, { method: 'DELETE' })).status, 204);
    assert.equal((await fetch(`${server.url}/fetches/${id}`)).status, 404);
    assert.equal((await fetch(`${server.url}/fetches/${id}`, { method: 'DELETE' })).status, 404);
  });

  test('a running job\'s upload is not reachable through /uploads: HEAD, PATCH and DELETE there are 404, and the job ends byte-exact', async () => {
    // Regression: HEAD /uploads/<job id> took the job's append over (quick takeover), as it would
    // a client's dead PATCH.
    const size = 6 * MiB;
    const key = 'job-not-an-upload';
    const { json } = await submit(server.url, { url: origin.file({ size, seed: key, rate: 3 * MiB }) });
    const id = json.id as string;
    await waitFor(server.url, id, (j) => j.state === 'running' && j.bytes > 0, 'running with bytes');
    const tus = { 'tus-resumable': '1.0.0' };
    assert.equal((await fetch(`${server.url}/uploads/${id}`, { method: 'HEAD', headers: tus })).status, 404);
    const patch = await fetch(`${server.url}/uploads/${id}`, {
      method: 'PATCH',
      headers: { ...tus, 'upload-offset': '0', 'content-type': 'application/offset+octet-stream' },
      body: Buffer.alloc(10),
    });
    assert.equal(patch.status, 404);
    assert.equal((await fetch(`${server.url}/uploads/${id}`, { method: 'DELETE', headers: tus })).status, 404);
    const job = await waitFor(server.url, id, finished, 'finished');
    assert.equal(job.state, 'done', JSON.stringify(job.error));
    assert.equal(job.retries, 0, 'the job\'s append was never taken over');
    assert.equal(job.file?.sha256, fileSha256(key, size));
  });

  test('DELETE of a queued job: 200 cancelled, it never runs', async () => {
    const one = await startServer({ FETCH_ALLOW: '127.0.0.1', MAX_FETCH_JOBS: '1' });
    try {
      const first = await submit(one.url, { url: origin.file({ size: 4 * MiB, seed: 'job-q-first', rate: 2 * MiB }) });
      const second = await submit(one.url, { url: origin.file({ size: MiB, seed: 'job-q-second' }) });
      const res = await fetch(`${one.url}/fetches/${second.json.id as string}`, { method: 'DELETE' });
      assert.equal(res.status, 200);
      assert.equal(((await res.json()) as Job).state, 'cancelled');
      await fetch(`${one.url}/fetches/${first.json.id as string}`, { method: 'DELETE' });
      assert.equal(origin.requests.filter((r) => r.key === 'job-q-second').length, 0);
      assert.deepEqual(await storedNames(one.dataDir), []);
    } finally {
      await one.close();
    }
  });

  test('DELETE of a done job forgets it (204); its file stays', async () => {
    const { json } = await submit(server.url, { url: origin.file({ size: MiB, seed: 'job-forget' }) });
    const id = json.id as string;
    assert.equal((await waitFor(server.url, id, finished, 'finished')).state, 'done');
    assert.equal((await fetch(`${server.url}/fetches/${id}`, { method: 'DELETE' })).status, 204);
    assert.equal((await fetch(`${server.url}/fetches/${id}`)).status, 404);
    assert.equal((await fetch(`${server.url}/files/${id}`)).status, 200);
  });

  const failures: [string, Record<string, unknown>, string][] = [
    ['a wrong sha256', { sha256: fileSha256('another', MiB) }, 'DIGEST_MISMATCH'],
    ["a wrong Repr-Digest from the origin", { repr: 'bad' }, 'DIGEST_MISMATCH'],
    ['a resource that changes mid-fetch', { etag: 'changing', breaks: 300_000 }, 'UPSTREAM_CHANGED'],
    ['an origin that answers 404', { path: '/missing' }, 'UPSTREAM_STATUS'],
  ];
  for (const [what, options, code] of failures) {
    test(`${what}: failed with ${code}, nothing stored`, async () => {
      const before = await storedNames(server.dataDir);
      const { sha256: wanted, path, ...query } = options;
      const seed = `job-fail-${code}-${Object.keys(options).join('')}`;
      const url = path === undefined ? origin.file({ size: MiB, seed, ...(query as Record<string, string>) }) : `${origin.url}${path as string}`;
      const { json } = await submit(server.url, { url, ...(wanted === undefined ? {} : { sha256: wanted }) });
      const job = await waitFor(server.url, json.id as string, finished, 'finished');
      assert.equal(job.state, 'failed');
      assert.equal(job.error?.code, code, job.error?.message);
      assert.equal(job.file, null);
      assert.deepEqual(await storedNames(server.dataDir), before);
      assert.equal((await fetch(`${server.url}/files/${json.id as string}`)).status, 404);
    });
  }

  test('metrics: jobs by final state and bytes fetched', async () => {
    const text = await (await fetch(`${server.url}/metrics`)).text();
    assert.match(text, /^sluice_fetch_jobs_total\{state="done"\} [1-9]\d*$/m);
    assert.match(text, /^sluice_fetch_jobs_total\{state="failed"\} [1-9]\d*$/m);
    assert.match(text, /^sluice_fetch_jobs_total\{state="cancelled"\} [1-9]\d*$/m);
    const bytes = Number(/^sluice_fetched_bytes_total\{via="job"\} (\d+)$/m.exec(text)?.[1]);
    assert.ok(bytes >= 6 * MiB, `bytes fetched by jobs: ${bytes}`);
    assert.match(text, /^sluice_http_requests_total\{route="fetches",method="POST",status="202"\} \d+$/m);
    assert.match(text, /^sluice_http_requests_total\{route="fetch-job",method="GET",status="200"\} \d+$/m);
  });

  test('curl: submit, read Location, poll until done (the README example)', async () => {
    const size = 3 * MiB;
    const url = origin.file({ size, seed: 'job-curl', rate: 6 * MiB });
    const { stdout } = await run('curl', ['-sS', '-D', '-', '-o', '/dev/null', '-H', 'Content-Type: application/json', '-d', JSON.stringify({ url }), `${server.url}/fetches`]);
    assert.match(stdout, /^HTTP\/1\.1 202 /);
    const location = /^location: (\S+)\r?$/im.exec(stdout)?.[1];
    assert.ok(location !== undefined);
    let job: Job | null = null;
    for (let i = 0; i < 300 && (job === null || !finished(job)); i += 1) {
      job = JSON.parse((await run('curl', ['-sS', `${server.url}${location}`])).stdout) as Job;
      if (!finished(job)) await new Promise((r) => setTimeout(r, 100));
    }
    assert.equal(job?.state, 'done');
    assert.equal(job?.file?.sha256, fileSha256('job-curl', size));
  });
});

describe('/fetches: limits, TTL, auth', () => {
  let origin: RangedOrigin;
  before(async () => {
    origin = await startRangedOrigin();
  });
  after(() => origin.close());

  test('finished jobs are forgotten after FETCH_JOB_TTL_MS (their files stay)', async () => {
    const server = await startServer({ FETCH_ALLOW: '127.0.0.1', FETCH_JOB_TTL_MS: '500' });
    try {
      const { json } = await submit(server.url, { url: origin.file({ size: 1000, seed: 'job-ttl' }) });
      const id = json.id as string;
      await poll('the job is swept', async () => (await fetch(`${server.url}/fetches/${id}`)).status === 404, 10_000);
      assert.equal((await fetch(`${server.url}/files/${id}`)).status, 200);
    } finally {
      await server.close();
    }
  });

  test('at most 1000 jobs are kept: the oldest finished ones make room; the listing stays bounded', async () => {
    const server = await startServer({ FETCH_ALLOW: '127.0.0.1', FSYNC: 'false' });
    try {
      const first = await submit(server.url, { url: `${origin.url}/missing` });
      for (let i = 0; i < 1004; i += 1) {
        const { status } = await submit(server.url, { url: `${origin.url}/missing?${i}` });
        assert.equal(status, 202);
      }
      await poll(
        'every job finished',
        async () => ((await (await fetch(`${server.url}/fetches`)).json()) as { fetches: Job[] }).fetches.every(finished),
        60_000,
      );
      const { fetches } = (await (await fetch(`${server.url}/fetches`)).json()) as { fetches: Job[] };
      assert.ok(fetches.length <= 1000, `${fetches.length} kept`);
      assert.equal((await fetch(`${server.url}/fetches/${first.json.id as string}`)).status, 404, 'the oldest was forgotten');
      // Documents, not the temp files (dot names) of writes still landing for kept jobs.
      const documents = (await readdir(join(server.dataDir, '.sluice', 'fetch-job'))).filter((n) => !n.startsWith('.'));
      assert.ok(documents.length <= 1000, `and its document too: ${documents.length} documents`);
    } finally {
      await server.close();
    }
  });

  test('with AUTH_TOKEN every /fetches route needs the token', async () => {
    const server = await startServer({ FETCH_ALLOW: '127.0.0.1', AUTH_TOKEN: 'secret' });
    try {
      assert.equal((await fetch(`${server.url}/fetches`)).status, 401);
      assert.equal((await submit(server.url, { url: origin.file({ size: 10 }) })).status, 401);
      assert.equal((await fetch(`${server.url}/fetches/abc`, { method: 'DELETE' })).status, 401);
      const ok = await submit(server.url, { url: origin.file({ size: 10, seed: 'job-auth' }) }, { authorization: 'Bearer secret' });
      assert.equal(ok.status, 202);
    } finally {
      await server.close();
    }
  });
});

describe('/fetches across a restart', () => {
  let origin: RangedOrigin;
  let dataDir: string;
  before(async () => {
    origin = await startRangedOrigin();
    dataDir = await mkdtemp(join(tmpdir(), 'sluice-jobs-restart-'));
  });
  after(async () => {
    await origin.close();
    await rm(dataDir, { recursive: true, force: true });
  });

  for (const signal of ['SIGTERM', 'SIGKILL'] as const) {
    test(`stopped mid-job (${signal}) and started again on the same DATA_DIR: the job goes on and its file is byte-exact`, async () => {
      const size = 12 * MiB;
      const key = `job-restart-${signal}`;
      const env = { FETCH_ALLOW: '127.0.0.1', DATA_DIR: join(dataDir, signal) };
      const first = await spawnServer(env);
      const { json } = await submit(first.url, { url: origin.file({ size, seed: key, rate: 3 * MiB }) });
      const id = json.id as string;
      await waitFor(first.url, id, (j) => j.bytes > 3 * MiB, 'a few MiB stored');
      await first.stop(signal);
      const second = await spawnServer(env);
      try {
        const job = await waitFor(second.url, id, finished, 'finished after the restart');
        assert.equal(job.state, 'done', JSON.stringify(job.error));
        assert.equal(job.file?.sha256, fileSha256(key, size));
        assert.equal(sha(await readFile(join(env.DATA_DIR, id))), fileSha256(key, size));
        const after = origin.requests.filter((r) => r.key === key).slice(1);
        assert.ok(after.length >= 1, 'asked again after the restart');
        const resumedAt = Number(/^bytes=(\d+)-$/.exec(after[0]?.headers.range ?? '')?.[1] ?? 0);
        // After kill -9 the store has the bytes up to its last durable checkpoint (every 64 MiB
        // by default): for this 12 MiB job, none, so it starts again from byte 0, byte-exact all the same.
        if (signal === 'SIGTERM') {
          // A clean stop makes every byte taken durable: the restart asks only for the rest.
          assert.ok(resumedAt > 3 * MiB, `resumed at ${resumedAt}`);
          assert.equal(after[0]?.headers['if-range'], `"${key}-${size}"`);
        }
        assert.deepEqual((await storedNames(env.DATA_DIR)).filter((n) => n.startsWith('.')), [], 'no upload left behind');
      } finally {
        await second.stop();
      }
    });
  }

  test('restarted after the origin changed: the job fails with UPSTREAM_CHANGED and leaves nothing partial', async () => {
    const size = 8 * MiB;
    const key = 'job-restart-changed';
    const env = { FETCH_ALLOW: '127.0.0.1', DATA_DIR: join(dataDir, 'changed') };
    const first = await spawnServer(env);
    // `etag=changing`: the next request finds another version.
    const { json } = await submit(first.url, { url: origin.file({ size, seed: key, rate: 2 * MiB, etag: 'changing' }) });
    const id = json.id as string;
    await waitFor(first.url, id, (j) => j.bytes > MiB, 'some bytes stored');
    await first.stop('SIGTERM');
    const second = await spawnServer(env);
    try {
      const job = await waitFor(second.url, id, finished, 'finished after the restart');
      assert.equal(job.state, 'failed');
      assert.equal(job.error?.code, 'UPSTREAM_CHANGED');
      assert.deepEqual(await storedNames(env.DATA_DIR), []);
    } finally {
      await second.stop();
    }
  });
});
