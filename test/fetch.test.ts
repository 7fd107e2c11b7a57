import { strict as assert } from 'node:assert';
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { get, request, type IncomingHttpHeaders } from 'node:http';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { cleanFilename, filenameFromDisposition, filenameFromUrl } from '../net/upstream-filename.js';
import { sha256Of, startOrigin, type Origin } from './helpers/origin.js';
import { freePort } from './helpers/ports.js';
import { startServer, type TestServer } from './helpers/server.js';

const MiB = 1024 * 1024;

interface Download {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  readonly size: number;
  readonly sha256: string;
  /** The body as text, for small (JSON) answers. */
  readonly text: string;
  /** Set when the response broke off instead of ending. */
  readonly error: Error | null;
}

/** GET over a real socket, hashing as it goes; a broken response resolves with `error` set. */
function download(url: string, headers: Record<string, string> = {}): Promise<Download> {
  return new Promise((resolve, reject) => {
    const req = get(url, { headers, agent: false }, (res) => {
      const hash = createHash('sha256');
      const small: Buffer[] = [];
      let size = 0;
      let settled = false;
      const settle = (error: Error | null): void => {
        if (settled) return;
        settled = true;
        const text = Buffer.concat(small).toString('utf8');
        resolve({ status: res.statusCode ?? 0, headers: res.headers, size, sha256: hash.digest('hex'), text, error });
      };
      res.on('data', (chunk: Buffer) => {
        hash.update(chunk);
        if (size < 64 * 1024) small.push(chunk);
        size += chunk.length;
      });
      res.once('end', () => settle(null));
      res.once('error', (err) => settle(err));
      res.once('close', () => settle(res.complete ? null : new Error('closed before the end')));
    });
    req.once('error', reject);
  });
}

function fetchUrl(server: TestServer, target: string): string {
  return `${server.url}/fetch?url=${encodeURIComponent(target)}`;
}

function errorCode(d: Download): string | undefined {
  return (JSON.parse(d.text) as { error?: { code?: string } }).error?.code;
}

async function postFetch(server: TestServer, body: unknown, contentType = 'application/json'): Promise<{ status: number; json: Record<string, unknown>; headers: Headers }> {
  const res = await fetch(`${server.url}/fetch`, {
    method: 'POST',
    headers: { 'content-type': contentType },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  return { status: res.status, json: (await res.json()) as Record<string, unknown>, headers: res.headers };
}

function lastRequest(origin: Origin): NonNullable<Origin['requests'][number]> {
  const r = origin.requests[origin.requests.length - 1];
  assert.ok(r, 'the origin saw a request');
  return r;
}

describe('GET /fetch', () => {
  let origin: Origin;
  let server: TestServer;
  before(async () => {
    origin = await startOrigin();
    server = await startServer({ FETCH_ALLOW: '127.0.0.1', FETCH_TIMEOUT_MS: '500' });
  });
  after(async () => {
    await server.close();
    await origin.close();
  });

  test('streams a 48 MiB body with Content-Length: same bytes, headers relayed', async () => {
    const size = 48 * MiB;
    const d = await download(fetchUrl(server, `${origin.url}/data?size=${size}&seed=big&name=big.bin`), { 'x-secret': 'mine', cookie: 'a=b' });
    assert.equal(d.error, null);
    assert.equal(d.status, 200);
    assert.equal(d.size, size);
    assert.equal(d.sha256, sha256Of('big', 0, size));
    assert.equal(d.headers['content-length'], String(size));
    assert.equal(d.headers['content-type'], 'application/octet-stream');
    assert.equal(d.headers['content-disposition'], 'attachment; filename="big.bin"');
    assert.equal(d.headers.etag, `"big-${size}"`);
    assert.equal(d.headers['last-modified'], 'Tue, 01 Jul 2025 00:00:00 GMT');
    assert.equal(d.headers['accept-ranges'], 'bytes');
    assert.equal(d.headers['x-origin-secret'], undefined, 'headers off the list stay upstream');
    assert.equal(d.headers['x-content-type-options'], 'nosniff');
    const seen = lastRequest(origin).headers;
    assert.equal(seen['x-secret'], undefined, "the client's headers are not passed on");
    assert.equal(seen.cookie, undefined);
    assert.equal(seen['accept-encoding'], 'identity');
  });

  test('streams a 32 MiB body without Content-Length (chunked) intact', async () => {
    const size = 32 * MiB + 7;
    const d = await download(fetchUrl(server, `${origin.url}/data?size=${size}&seed=chunked&length=0`));
    assert.equal(d.error, null);
    assert.equal(d.status, 200);
    assert.equal(d.headers['content-length'], undefined);
    assert.equal(d.size, size);
    assert.equal(d.sha256, sha256Of('chunked', 0, size));
  });

  test('passes Range and If-Range on and relays the 206 with its Content-Range', async () => {
    const size = 20 * MiB;
    const start = 3 * MiB + 11;
    const end = 9 * MiB + 5;
    const d = await download(fetchUrl(server, `${origin.url}/data?size=${size}&seed=range`), {
      range: `bytes=${start}-${end}`,
      'if-range': `"range-${size}"`,
    });
    assert.equal(d.status, 206);
    assert.equal(d.headers['content-range'], `bytes ${start}-${end}/${size}`);
    assert.equal(d.headers['content-length'], String(end - start + 1));
    assert.equal(d.size, end - start + 1);
    assert.equal(d.sha256, sha256Of('range', start, end - start + 1));
    assert.equal(lastRequest(origin).headers['if-range'], `"range-${size}"`);
  });

  test('follows a chain of 5 redirects (relative Locations)', async () => {
    const target = '/data?size=1000000&seed=redirected';
    const d = await download(fetchUrl(server, `${origin.url}/redirect?n=5&to=${encodeURIComponent(target)}`));
    assert.equal(d.status, 200);
    assert.equal(d.sha256, sha256Of('redirected', 0, 1000000));
  });

  test('a 6th redirect is one too many: 502 TOO_MANY_REDIRECTS', async () => {
    const d = await download(fetchUrl(server, `${origin.url}/redirect?n=6&to=${encodeURIComponent('/data?size=10')}`));
    assert.equal(d.status, 502);
    assert.equal(errorCode(d), 'TOO_MANY_REDIRECTS');
  });

  test('a redirect loop ends in 502 after 5 hops', async () => {
    const before = origin.requests.length;
    const d = await download(fetchUrl(server, `${origin.url}/loop`));
    assert.equal(d.status, 502);
    assert.equal(errorCode(d), 'TOO_MANY_REDIRECTS');
    assert.equal(origin.requests.length - before, 6, 'the first request and 5 redirects');
  });

  test('upstream non-2xx: 502 naming the status', async () => {
    const d = await download(fetchUrl(server, `${origin.url}/status?code=404`));
    assert.equal(d.status, 502);
    assert.equal(errorCode(d), 'UPSTREAM_STATUS');
    assert.match(d.text, /404/);
  });

  test('unreachable origin: 502', async () => {
    const d = await download(fetchUrl(server, `http://127.0.0.1:${await freePort()}/`));
    assert.equal(d.status, 502);
    assert.equal(errorCode(d), 'UPSTREAM_UNREACHABLE');
  });

  test('https: goes through node:https; a TLS failure (plain HTTP behind it) is a 502', async () => {
    const d = await download(fetchUrl(server, `https://127.0.0.1:${origin.port}/data`));
    assert.equal(d.status, 502);
    assert.equal(errorCode(d), 'UPSTREAM_UNREACHABLE');
  });

  test('an origin that stalls before its headers: 504 after FETCH_TIMEOUT_MS, and the connection is dropped', async () => {
    const started = Date.now();
    const d = await download(fetchUrl(server, `${origin.url}/stall`));
    const elapsed = Date.now() - started;
    assert.equal(d.status, 504);
    assert.equal(errorCode(d), 'UPSTREAM_TIMEOUT');
    assert.ok(elapsed >= 450 && elapsed < 3000, `answered after ${elapsed} ms`);
    await lastRequest(origin).closed;
  });

  test('an origin that stalls mid-body: the download breaks off after FETCH_TIMEOUT_MS, not IDLE_TIMEOUT_MS', async () => {
    const started = Date.now();
    const d = await download(fetchUrl(server, `${origin.url}/stall-body?size=${8 * MiB}&after=${MiB}`));
    const elapsed = Date.now() - started;
    assert.equal(d.status, 200);
    assert.notEqual(d.error, null, 'the response must break off');
    assert.ok(d.size >= MiB - 64 * 1024 && d.size < 8 * MiB, `got ${d.size} bytes`);
    // FETCH_TIMEOUT_MS is 500 here, IDLE_TIMEOUT_MS the default 60 s.
    assert.ok(elapsed >= 450 && elapsed < 5000, `broke off after ${elapsed} ms`);
    await lastRequest(origin).closed;
  });

  test('an origin that resets mid-body breaks the client response (never a clean short file)', async () => {
    const size = 16 * MiB;
    const d = await download(fetchUrl(server, `${origin.url}/reset?size=${size}&after=${4 * MiB}`));
    assert.equal(d.status, 200);
    assert.notEqual(d.error, null, 'the response must break off');
    assert.ok(d.size < size);
  });

  test('an origin that sends fewer bytes than its Content-Length breaks the client response', async () => {
    const d = await download(fetchUrl(server, `${origin.url}/short?size=${3 * MiB}&claim=${4 * MiB}`));
    assert.equal(d.status, 200);
    assert.notEqual(d.error, null);
    assert.ok(d.size < 4 * MiB);
  });

  test('an origin that sends more bytes than its Content-Length breaks the client response', async () => {
    const big = await download(fetchUrl(server, `${origin.url}/long?size=${3 * MiB + 6000}&claim=${3 * MiB + 1000}`));
    assert.equal(big.status, 200);
    assert.notEqual(big.error, null, 'the last bytes must not arrive as a complete body');
    assert.ok(big.size < 3 * MiB + 1000, `got ${big.size}`);
    // Body and extra bytes arrive with the headers: found out before anything went out, so 502.
    const small = await download(fetchUrl(server, `${origin.url}/long?size=5000&claim=100`));
    assert.equal(small.status, 502);
    assert.equal(errorCode(small), 'UPSTREAM_BODY_BROKEN');
  });

  test('the client going away aborts the upstream at once', async () => {
    const size = 512 * MiB;
    const before = origin.requests.length;
    await new Promise<void>((resolve, reject) => {
      const req = get(fetchUrl(server, `${origin.url}/data?size=${size}&seed=gone`), { agent: false }, (res) => {
        let got = 0;
        res.on('data', (chunk: Buffer) => {
          got += chunk.length;
          if (got >= MiB) {
            req.destroy();
            resolve();
          }
        });
      });
      req.once('error', (err) => (req.destroyed ? resolve() : reject(err)));
    });
    const entry = origin.requests[before];
    assert.ok(entry);
    const timeout = new Promise<never>((_r, reject) => setTimeout(() => reject(new Error('upstream still open')), 2000).unref());
    await Promise.race([entry.closed, timeout]);
    assert.equal(entry.closedEarly, true);
    assert.ok(entry.written < 64 * MiB, `the origin wrote ${entry.written} bytes`);
  });

  test('backpressure: a slow client holds the origin back (bounded gap over a 256 MiB body)', async () => {
    const size = 256 * MiB;
    // Measured here: ~9-10 MiB, nearly all of it kernel socket buffers (about 4 MiB of send
    // plus receive buffer on each of the two loopback connections); sluice's own streams hold
    // a few hundred KiB. An unbounded queue anywhere would let the origin run hundreds of MiB
    // ahead during each pause.
    const BOUND = 16 * MiB;
    const before = origin.requests.length;
    const gaps: number[] = [];
    await new Promise<void>((resolve, reject) => {
      const req = get(fetchUrl(server, `${origin.url}/data?size=${size}&seed=slow`), { agent: false }, (res) => {
        let got = 0;
        res.on('data', (chunk: Buffer) => (got += chunk.length));
        res.pause();
        const entry = origin.requests[before];
        let rounds = 0;
        const measure = (): void => {
          if (entry === undefined) return reject(new Error('no upstream request'));
          gaps.push(entry.written - got);
          rounds += 1;
          if (rounds === 6) {
            req.destroy();
            return resolve();
          }
          // Read a little (a burst of a few MiB), then stall again.
          res.resume();
          setTimeout(() => {
            res.pause();
            setTimeout(measure, 400);
          }, 20);
        };
        setTimeout(measure, 400);
      });
      req.once('error', (err) => (req.destroyed ? undefined : reject(err)));
    });
    const entry = origin.requests[before];
    assert.ok(entry);
    for (const gap of gaps) assert.ok(gap < BOUND, `origin ahead of the client by ${(gap / MiB).toFixed(1)} MiB (gaps: ${gaps.map((g) => (g / MiB).toFixed(1)).join(', ')})`);
    assert.ok(entry.written < size / 2, `the origin wrote ${(entry.written / MiB).toFixed(1)} MiB of ${size / MiB}`);
  });

  test('a missing, invalid or non-HTTP url: 400 with a code', async () => {
    const cases: ReadonlyArray<[string, string]> = [
      [`${server.url}/fetch`, 'MISSING_URL'],
      [`${server.url}/fetch?url=`, 'MISSING_URL'],
      [`${server.url}/fetch?url=not%20a%20url`, 'INVALID_URL'],
      [`${server.url}/fetch?url=${encodeURIComponent('ftp://127.0.0.1/x')}`, 'UNSUPPORTED_URL_SCHEME'],
      [`${server.url}/fetch?url=${encodeURIComponent('file:///etc/passwd')}`, 'UNSUPPORTED_URL_SCHEME'],
    ];
    for (const [url, code] of cases) {
      const d = await download(url);
      assert.equal(d.status, 400, url);
      assert.equal(errorCode(d), code, url);
    }
  });
});

describe('POST /fetch', () => {
  let origin: Origin;
  let server: TestServer;
  before(async () => {
    origin = await startOrigin();
    server = await startServer({ FETCH_ALLOW: '127.0.0.1', MAX_FILE_BYTES: '40MiB', FETCH_TIMEOUT_MS: '500' });
  });
  after(async () => {
    await server.close();
    await origin.close();
  });

  /** Runs `work` and checks that DATA_DIR holds exactly what it held before, temporaries included. */
  async function assertNothingStored(work: () => Promise<void>): Promise<void> {
    const before = (await server.files()).sort();
    await work();
    assert.deepEqual((await server.files()).sort(), before, 'DATA_DIR holds no new file, temporary or not');
  }

  test('stores exactly the bytes (24 MiB) and answers 201 with the record', async () => {
    const size = 24 * MiB + 3;
    const { status, json, headers } = await postFetch(server, { url: `${origin.url}/data?size=${size}&seed=store&name=report.bin` });
    assert.equal(status, 201);
    assert.equal(json.size, size);
    assert.equal(json.sha256, sha256Of('store', 0, size));
    assert.equal(json.filename, 'report.bin', 'from the origin Content-Disposition');
    assert.equal(json.field, null);
    assert.equal(json.contentType, 'application/octet-stream');
    assert.equal(typeof json.id, 'string');
    assert.equal(typeof json.created, 'string');
    assert.equal(headers.get('location'), `/files/${json.id as string}`);
    const stored = await readFile(join(server.dataDir, json.id as string));
    assert.equal(createHash('sha256').update(stored).digest('hex'), sha256Of('store', 0, size));
    assert.equal((await server.store.stat(json.id as string))?.sha256, json.sha256);
  });

  test('a chunked body (no Content-Length) is stored whole; the name comes from the URL path', async () => {
    const size = 5 * MiB + 1;
    const { status, json } = await postFetch(server, { url: `${origin.url}/data?size=${size}&seed=nolen&length=0` });
    assert.equal(status, 201);
    assert.equal(json.size, size);
    assert.equal(json.sha256, sha256Of('nolen', 0, size));
    assert.equal(json.filename, 'data');
  });

  test('an explicit filename wins, reduced to a name (never a path)', async () => {
    const { status, json } = await postFetch(server, { url: `${origin.url}/data?size=10&name=origin.bin`, filename: '../../etc/mine.txt' });
    assert.equal(status, 201);
    assert.equal(json.filename, 'mine.txt');
  });

  test('follows redirects; the final URL names the file', async () => {
    const { status, json } = await postFetch(server, { url: `${origin.url}/redirect?n=3&to=${encodeURIComponent('/data?size=1000&seed=hop')}` });
    assert.equal(status, 201);
    assert.equal(json.sha256, sha256Of('hop', 0, 1000));
    assert.equal(json.filename, 'data');
  });

  for (const [what, path] of [
    ['a reset mid-body', `/reset?size=${16 * MiB}&after=${4 * MiB}`],
    ['a body shorter than its Content-Length', `/short?size=${3 * MiB}&claim=${4 * MiB}`],
    ['a body longer than its Content-Length', `/long?size=${3 * MiB + 5000}&claim=${3 * MiB}`],
    ['a small body longer than its Content-Length', '/long?size=5000&claim=100'],
  ] as const) {
    test(`${what}: 502 and nothing stored`, async () => {
      await assertNothingStored(async () => {
        const { status, json } = await postFetch(server, { url: `${origin.url}${path}` });
        assert.equal(status, 502, JSON.stringify(json));
        assert.equal((json.error as { code: string }).code, 'UPSTREAM_BODY_BROKEN');
      });
    });
  }

  test('a Content-Length over MAX_FILE_BYTES: 413 before reading, nothing stored', async () => {
    const before = origin.requests.length;
    await assertNothingStored(async () => {
      const { status, json } = await postFetch(server, { url: `${origin.url}/data?size=${64 * MiB}&seed=huge` });
      assert.equal(status, 413);
      assert.equal((json.error as { code: string }).code, 'FILE_TOO_LARGE');
    });
    const entry = origin.requests[before];
    assert.ok(entry);
    await entry.closed;
    assert.equal(entry.closedEarly, true);
    assert.ok(entry.written < 16 * MiB, `the origin wrote ${entry.written} bytes`);
  });

  test('a chunked body that grows past MAX_FILE_BYTES: 413 while streaming, nothing stored', async () => {
    await assertNothingStored(async () => {
      const { status, json } = await postFetch(server, { url: `${origin.url}/data?size=${48 * MiB}&seed=huge&length=0` });
      assert.equal(status, 413);
      assert.equal((json.error as { code: string }).code, 'FILE_TOO_LARGE');
    });
  });

  test('upstream errors before the body: 502/504, nothing stored', async () => {
    await assertNothingStored(async () => {
      const notFound = await postFetch(server, { url: `${origin.url}/status?code=500` });
      assert.equal(notFound.status, 502);
      const stalled = await postFetch(server, { url: `${origin.url}/stall` });
      assert.equal(stalled.status, 504);
    });
  });

  test('an origin that stalls mid-body: 504 UPSTREAM_TIMEOUT after FETCH_TIMEOUT_MS, nothing stored', async () => {
    await assertNothingStored(async () => {
      const started = Date.now();
      const { status, json } = await postFetch(server, { url: `${origin.url}/stall-body?size=${8 * MiB}&after=${2 * MiB}&seed=stall-post` });
      const elapsed = Date.now() - started;
      assert.equal(status, 504);
      assert.equal((json.error as { code: string }).code, 'UPSTREAM_TIMEOUT');
      assert.ok(elapsed >= 450 && elapsed < 5000, `answered after ${elapsed} ms`);
    });
  });

  test('request body checks: 415, 400, 413', async () => {
    const cases: ReadonlyArray<[string, unknown, string, number, string]> = [
      ['not JSON-ish', '{"url":"http://127.0.0.1/"}', 'text/plain', 415, 'UNSUPPORTED_MEDIA_TYPE'],
      ['bad JSON', '{"url":', 'application/json', 400, 'BAD_JSON'],
      ['not an object', '["http://127.0.0.1/"]', 'application/json', 400, 'BAD_FETCH_REQUEST'],
      ['url not a string', { url: 5 }, 'application/json', 400, 'BAD_FETCH_REQUEST'],
      ['no url', {}, 'application/json', 400, 'MISSING_URL'],
      ['a +json type works (then no url)', {}, 'application/vnd.sluice+json; charset=utf-8', 400, 'MISSING_URL'],
      ['a non-HTTP url', { url: 'gopher://127.0.0.1/' }, 'application/json', 400, 'UNSUPPORTED_URL_SCHEME'],
      ['over 64 KiB', { url: `${origin.url}/data?pad=${'x'.repeat(70 * 1024)}` }, 'application/json', 413, 'BODY_TOO_LARGE'],
    ];
    await assertNothingStored(async () => {
      for (const [what, body, type, status, code] of cases) {
        const answer = await postFetch(server, body, type);
        assert.equal(answer.status, status, what);
        assert.equal((answer.json.error as { code: string }).code, code, what);
      }
    });
  });

  test('an over-long chunked JSON body (no Content-Length) is cut at 64 KiB with 413', async () => {
    const answer = await new Promise<{ status: number; text: string }>((resolve, reject) => {
      const req = request(`${server.url}/fetch`, { method: 'POST', headers: { 'content-type': 'application/json' }, agent: false }, (res) => {
        let text = '';
        res.setEncoding('utf8').on('data', (d: string) => (text += d));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
      });
      req.on('error', reject);
      req.write(`{"url":"${'x'.repeat(100 * 1024)}`);
      req.end('"}');
    });
    assert.equal(answer.status, 413);
    assert.match(answer.text, /BODY_TOO_LARGE/);
  });
});

describe('fetched file names', () => {
  const cases: ReadonlyArray<{ what: string; got: string | null; expected: string | null }> = [
    { what: 'plain filename', got: filenameFromDisposition('attachment; filename="report.pdf"'), expected: 'report.pdf' },
    { what: 'filename* wins (RFC 6266 4.3)', got: filenameFromDisposition(`attachment; filename="rates.txt"; filename*=UTF-8''%E2%82%AC%20rates.txt`), expected: '€ rates.txt' },
    { what: 'a path is cut to its last segment', got: filenameFromDisposition('attachment; filename="../../etc/passwd"'), expected: 'passwd' },
    { what: 'no filename parameter', got: filenameFromDisposition('inline'), expected: null },
    { what: 'malformed header', got: filenameFromDisposition('attachment; filename="open'), expected: null },
    { what: 'URL: last segment, percent-decoded', got: filenameFromUrl(new URL('http://h/a/b/my%20file.csv?x=1')), expected: 'my file.csv' },
    { what: 'URL: bad percent-encoding kept as written', got: filenameFromUrl(new URL('http://h/a/%E2%82.bin')), expected: '%E2%82.bin' },
    { what: 'URL: a directory has no name', got: filenameFromUrl(new URL('http://h/a/')), expected: null },
    { what: 'control characters removed', got: cleanFilename('evil\r\nname.txt'), expected: 'evilname.txt' },
    { what: 'dot-dot is no name', got: cleanFilename('a/..'), expected: null },
  ];
  for (const c of cases) test(c.what, () => assert.equal(c.got, c.expected));
});
