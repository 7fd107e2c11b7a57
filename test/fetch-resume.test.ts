/**
 * Resuming a broken origin (issue 15): GET /fetch gives the client one uninterrupted, byte-exact
 * body; POST /fetch stores byte-exact files; a changed resource is never spliced; digests are
 * checked; FETCH_CONNECTIONS fetches pieces in parallel. Against test/helpers/ranged-origin.ts,
 * which breaks connections at chosen offsets, changes its ETag, lies in Content-Range, refuses
 * ranges and throttles.
 */
import { strict as assert } from 'node:assert';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { get, type IncomingHttpHeaders } from 'node:http';
import { readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { generateBytes } from './helpers/origin.js';
import { fileSha256, startRangedOrigin, type RangedOrigin, type RangedRequest } from './helpers/ranged-origin.js';
import { startServer, type TestServer } from './helpers/server.js';

const MiB = 1024 * 1024;
const run = promisify(execFile);

interface Download {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  readonly body: Buffer;
  /** Set when the response broke off instead of ending cleanly. */
  readonly error: Error | null;
}

/** GET over a real socket; a broken response resolves with `error` set and the bytes that came. */
function download(url: string, headers: Record<string, string> = {}): Promise<Download> {
  return new Promise((resolve, reject) => {
    const req = get(url, { headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      let settled = false;
      const settle = (error: Error | null): void => {
        if (settled) return;
        settled = true;
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks), error });
      };
      res.on('data', (c: Buffer) => chunks.push(c));
      res.once('end', () => settle(null));
      res.once('error', (err) => settle(err));
      res.once('close', () => settle(res.complete ? null : new Error('closed before the end')));
    });
    req.once('error', reject);
  });
}

function expected(seed: string, start: number, length: number): Buffer {
  return Buffer.concat([...generateBytes(seed, start, length)]);
}

function sha(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

function fetchUrl(server: TestServer, target: string): string {
  return `${server.url}/fetch?url=${encodeURIComponent(target)}`;
}

/** A seed from a test's words: ETags may hold no spaces (RFC 9110 8.8.3). */
function slug(text: string): string {
  return text.replace(/[^A-Za-z0-9]+/g, '-').slice(0, 40);
}

function requestsOf(origin: RangedOrigin, key: string): RangedRequest[] {
  return origin.requests.filter((r) => r.key === key);
}

async function postFetch(server: TestServer, body: unknown): Promise<{ status: number; json: Record<string, unknown> }> {
  const res = await fetch(`${server.url}/fetch`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  return { status: res.status, json: (await res.json()) as Record<string, unknown> };
}

function errorCodeOf(json: Record<string, unknown>): string | undefined {
  return (json.error as { code?: string } | undefined)?.code;
}

/** Only the store's own files remain: no partial file, no record. */
async function storedNames(server: TestServer): Promise<string[]> {
  return (await server.files()).sort();
}

describe('GET /fetch resumes a broken origin', () => {
  let origin: RangedOrigin;
  let server: TestServer;
  before(async () => {
    origin = await startRangedOrigin();
    server = await startServer({ FETCH_ALLOW: '127.0.0.1', FETCH_TIMEOUT_MS: '1000' });
  });
  after(async () => {
    await server.close();
    await origin.close();
  });

  for (const how of ['reset', 'close', 'stall'] as const) {
    test(`breaks by ${how} at chosen offsets: one uninterrupted, byte-exact body of the announced length`, async () => {
      const size = 3 * MiB + 123;
      const key = `get-${how}`;
      const breaks = how === 'stall' ? [MiB + 7] : [200_001, MiB + 7, 2 * MiB + 99];
      const d = await download(fetchUrl(server, origin.file({ size, seed: key, breaks: breaks.join(','), how })));
      assert.equal(d.error, null);
      assert.equal(d.status, 200);
      assert.equal(d.headers['content-length'], String(size));
      assert.equal(d.body.length, size);
      assert.ok(d.body.equals(expected(key, 0, size)), 'byte-exact');
      const seen = requestsOf(origin, key);
      assert.equal(seen.length, breaks.length + 1);
      assert.equal(seen[0]?.headers.range, undefined);
      for (const r of seen.slice(1)) {
        assert.match(r.headers.range ?? '', /^bytes=\d+-$/, 'the rest, open-ended, as curl -C asks');
        assert.equal(r.headers['if-range'], `"${key}-${size}"`);
        assert.equal(r.status, 206);
      }
    });
  }

  test("the client's own Range: the resumed answer stays within it", async () => {
    const size = 2 * MiB;
    const key = 'get-client-range';
    const d = await download(fetchUrl(server, origin.file({ size, seed: key, breaks: 600_000 })), { range: 'bytes=100000-1099999' });
    assert.equal(d.error, null);
    assert.equal(d.status, 206);
    assert.equal(d.headers['content-range'], `bytes 100000-1099999/${size}`);
    assert.ok(d.body.equals(expected(key, 100_000, 1_000_000)));
    const seen = requestsOf(origin, key);
    assert.equal(seen.length, 2);
    assert.match(seen[1]?.headers.range ?? '', /^bytes=\d+-1099999$/);
  });

  test('a Last-Modified date (no ETag, a second before Date) is used in If-Range', async () => {
    const size = MiB;
    const key = 'get-lastmod';
    const d = await download(fetchUrl(server, origin.file({ size, seed: key, etag: 'none', breaks: 300_000 })));
    assert.equal(d.error, null);
    assert.ok(d.body.equals(expected(key, 0, size)));
    assert.equal(requestsOf(origin, key)[1]?.headers['if-range'], 'Tue, 01 Jul 2025 00:00:00 GMT');
  });

  const noResume: [string, Record<string, string>][] = [
    ['a weak ETag (RFC 9110 13.1.4: never in If-Range, and no date either then)', { etag: 'weak' }],
    ['a Last-Modified equal to Date (not a strong validator, RFC 9110 8.8.2.2)', { etag: 'none', lastmod: 'recent' }],
    ['no validator at all', { etag: 'none', lastmod: 'none' }],
    ['no Accept-Ranges', { ranges: 'none' }],
  ];
  for (const [what, options] of noResume) {
    test(`${what}: a break fails as before, with no second request`, async () => {
      const key = `get-none-${slug(what)}`;
      const d = await download(fetchUrl(server, origin.file({ size: 2 * MiB, seed: key, breaks: MiB, ...options })));
      assert.notEqual(d.error, null, 'the body breaks');
      assert.ok(d.body.length < 2 * MiB);
      assert.equal(requestsOf(origin, key).length, 1);
    });
  }

  const changed: [string, Record<string, string>][] = [
    ['the ETag changes between requests (the origin answers 200 to If-Range)', { etag: 'changing' }],
    ['the origin answers 200 to Range, with the same ETag', { ranges: 'refuse' }],
    ['the Content-Range starts at another byte', { lie: 'start' }],
    ['the Content-Range states another total', { lie: 'total' }],
  ];
  for (const [what, options] of changed) {
    test(`${what}: nothing is spliced, the client's body breaks, and what it got is the first version's prefix`, async () => {
      const size = 2 * MiB;
      const key = `get-changed-${slug(what)}`;
      const d = await download(fetchUrl(server, origin.file({ size, seed: key, breaks: MiB, ...options })));
      assert.notEqual(d.error, null);
      assert.ok(d.body.length <= MiB);
      const firstSeed = options.etag === 'changing' ? `${key}-v1` : key;
      assert.ok(d.body.equals(expected(firstSeed, 0, d.body.length)), 'a prefix of the first version only');
      assert.equal(requestsOf(origin, key).length, 2, 'one retry, then no more');
    });
  }

  test('FETCH_RETRIES in a row without progress, then the body breaks; a retry that made progress starts the count again', async () => {
    const strict = await startServer({ FETCH_ALLOW: '127.0.0.1', FETCH_RETRIES: '2' });
    try {
      // Three breaks at the same byte: the 2nd and 3rd come with no progress.
      const key = 'get-retries-out';
      // Clean closes: a reset could lose bytes in flight, and the retry would then make progress.
      const d = await download(fetchUrl(strict, origin.file({ size: 2 * MiB, seed: key, how: 'close', breaks: `${MiB},${MiB},${MiB}` })));
      assert.notEqual(d.error, null);
      assert.equal(requestsOf(origin, key).length, 3, 'the first request and 2 retries');
      // Four breaks at four places: each retry made progress, so 2 in a row is never reached.
      const key2 = 'get-retries-progress';
      const size = 2 * MiB;
      const ok = await download(fetchUrl(strict, origin.file({ size, seed: key2, breaks: '100000,600000,1100000,1600000' })));
      assert.equal(ok.error, null);
      assert.ok(ok.body.equals(expected(key2, 0, size)));
      assert.equal(requestsOf(origin, key2).length, 5);
    } finally {
      await strict.close();
    }
  });

  test('a busy origin (503 to the resume) is asked again after the backoff', async () => {
    const size = MiB;
    const key = 'get-busy';
    const d = await download(fetchUrl(server, origin.file({ size, seed: key, breaks: 500_000, busy: 1 })));
    assert.equal(d.error, null);
    assert.ok(d.body.equals(expected(key, 0, size)));
    assert.deepEqual(requestsOf(origin, key).map((r) => r.status), [200, 503, 206]);
  });

  test('curl downloading through a fetch that breaks four times gets the whole file and exits 0', async () => {
    const size = 4 * MiB;
    const key = 'get-curl';
    const out = join(tmpdir(), `sluice-resume-curl-${process.pid}.bin`);
    try {
      const target = origin.file({ size, seed: key, breaks: [MiB, 2 * MiB, 3 * MiB, 4 * MiB - 10].join(',') });
      const { stdout } = await run('curl', ['-sS', '-o', out, '-w', '%{http_code} %{size_download}', fetchUrl(server, target)]);
      assert.equal(stdout, `200 ${size}`);
      assert.equal(sha(await readFile(out)), fileSha256(key, size));
    } finally {
      await rm(out, { force: true });
    }
  });
});

describe('POST /fetch resumes, verifies digests, fetches in parallel', () => {
  let origin: RangedOrigin;
  let server: TestServer;
  before(async () => {
    origin = await startRangedOrigin();
    server = await startServer({ FETCH_ALLOW: '127.0.0.1', FETCH_TIMEOUT_MS: '1000' });
  });
  after(async () => {
    await server.close();
    await origin.close();
  });

  test('an origin that breaks three times: 201, and the stored file is byte-exact', async () => {
    const size = 3 * MiB + 5;
    const key = 'post-breaks';
    const { status, json } = await postFetch(server, { url: origin.file({ size, seed: key, breaks: `1000,${MiB},${3 * MiB}` }) });
    assert.equal(status, 201, JSON.stringify(json));
    assert.equal(json.size, size);
    assert.equal(json.sha256, fileSha256(key, size));
    assert.equal(sha(await readFile(join(server.dataDir, json.id as string))), fileSha256(key, size));
  });

  test('a POST /fetch longer than IDLE_TIMEOUT_MS is not cut while the origin delivers (regression: 408 after 60 s of a 4 GiB fetch)', async () => {
    const patient = await startServer({ FETCH_ALLOW: '127.0.0.1', IDLE_TIMEOUT_MS: '1000' });
    try {
      const size = 3 * MiB;
      // About 3 s at 1 MiB/s, with the client's connection silent all along.
      const { status, json } = await postFetch(patient, { url: origin.file({ size, seed: 'post-idle', rate: MiB }) });
      assert.equal(status, 201, JSON.stringify(json));
      assert.equal(json.sha256, fileSha256('post-idle', size));
    } finally {
      await patient.close();
    }
  });

  const changed: [string, Record<string, string>][] = [
    ['a changed ETag', { etag: 'changing' }],
    ['a 200 to Range with the same ETag', { ranges: 'refuse' }],
    ['a Content-Range that starts elsewhere', { lie: 'start' }],
    ['a Content-Range with another total', { lie: 'total' }],
  ];
  for (const [what, options] of changed) {
    test(`${what}: 502 UPSTREAM_CHANGED and nothing stored`, async () => {
      const before = await storedNames(server);
      const { status, json } = await postFetch(server, { url: origin.file({ size: 2 * MiB, seed: `post-changed-${slug(what)}`, breaks: MiB, ...options }) });
      assert.equal(status, 502);
      assert.equal(errorCodeOf(json), 'UPSTREAM_CHANGED');
      assert.deepEqual(await storedNames(server), before);
    });
  }

  test('"sha256" that matches: stored; that does not: 502 DIGEST_MISMATCH and nothing stored; malformed: 400', async () => {
    const size = MiB;
    const key = 'post-sha';
    const good = await postFetch(server, { url: origin.file({ size, seed: key, breaks: 5000 }), sha256: fileSha256(key, size).toUpperCase() });
    assert.equal(good.status, 201);
    const before = await storedNames(server);
    const bad = await postFetch(server, { url: origin.file({ size, seed: `${key}-2` }), sha256: fileSha256('another', size) });
    assert.equal(bad.status, 502);
    assert.equal(errorCodeOf(bad.json), 'DIGEST_MISMATCH');
    assert.deepEqual(await storedNames(server), before);
    const malformed = await postFetch(server, { url: origin.file({ size, seed: key }), sha256: 'abc' });
    assert.equal(malformed.status, 400);
    assert.equal(errorCodeOf(malformed.json), 'BAD_FETCH_REQUEST');
  });

  test("the origin's Repr-Digest and Content-Digest (RFC 9530) are checked: right ones store, wrong ones 502 DIGEST_MISMATCH", async () => {
    const size = MiB;
    for (const [option, value, status] of [['repr', 'good', 201], ['cdigest', 'good', 201], ['repr', 'bad', 502], ['cdigest', 'bad', 502]] as const) {
      const before = await storedNames(server);
      const { status: got, json } = await postFetch(server, { url: origin.file({ size, seed: `post-digest-${option}-${value}`, [option]: value, breaks: 70_000 }) });
      assert.equal(got, status, `${option}=${value}: ${JSON.stringify(json)}`);
      if (status === 502) {
        assert.equal(errorCodeOf(json), 'DIGEST_MISMATCH');
        assert.deepEqual(await storedNames(server), before);
      }
    }
    // The client's sha256 against a Repr-Digest that says otherwise: refused before a byte is stored.
    const { status, json } = await postFetch(server, { url: origin.file({ size, seed: 'post-digest-both', repr: 'good' }), sha256: fileSha256('other', size) });
    assert.equal(status, 502);
    assert.equal(errorCodeOf(json), 'DIGEST_MISMATCH');
  });

  test('FETCH_CONNECTIONS=4: pieces over 4 connections at once, breaks in several pieces resumed, byte-exact', async () => {
    const parallel = await startServer({ FETCH_ALLOW: '127.0.0.1', FETCH_CONNECTIONS: '4', FETCH_PIECE_BYTES: '1MiB' });
    try {
      const size = 10 * MiB + 4321;
      const key = 'post-parallel';
      origin.open.max = 0;
      // Throttled, so that pieces overlap in time and the count of open connections means something.
      const url = origin.file({ size, seed: key, rate: 8 * MiB, breaks: [300_000, 2 * MiB + 5, 5 * MiB + 77, 10 * MiB].join(',') });
      const { status, json } = await postFetch(parallel, { url });
      assert.equal(status, 201, JSON.stringify(json));
      assert.equal(json.sha256, fileSha256(key, size));
      assert.equal(sha(await readFile(join(parallel.dataDir, json.id as string))), fileSha256(key, size));
      assert.equal(origin.open.max, 4, 'four connections at once, never more');
      const ranged = requestsOf(origin, key).filter((r) => r.headers.range !== undefined);
      // Every piece but the first (served by the first answer) asked for by range, with If-Range.
      for (let piece = 1; piece <= 10; piece += 1) {
        const start = piece * MiB;
        const end = Math.min(start + MiB - 1, size - 1);
        const asked = ranged.find((r) => r.headers.range === `bytes=${start}-${end === size - 1 ? '' : end}`);
        assert.ok(asked, `piece ${piece} was asked for`);
        assert.equal(asked.headers['if-range'], `"${key}-${size}"`);
      }
    } finally {
      await parallel.close();
    }
  });

  test('FETCH_CONNECTIONS=3 and a resource that changes: 502 UPSTREAM_CHANGED, nothing stored', async () => {
    const parallel = await startServer({ FETCH_ALLOW: '127.0.0.1', FETCH_CONNECTIONS: '3', FETCH_PIECE_BYTES: '1MiB' });
    try {
      const { status, json } = await postFetch(parallel, { url: origin.file({ size: 5 * MiB, seed: 'post-parallel-changed', etag: 'changing' }) });
      assert.equal(status, 502);
      assert.equal(errorCodeOf(json), 'UPSTREAM_CHANGED');
      assert.deepEqual(await parallel.files(), []);
    } finally {
      await parallel.close();
    }
  });
});
