import { strict as assert } from 'node:assert';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { Agent, request, type IncomingHttpHeaders, type OutgoingHttpHeaders } from 'node:http';
import { connect } from 'node:net';
import { gzipSync } from 'node:zlib';
import { after, before, describe, test } from 'node:test';
import {
  answerEarly,
  busboyParts,
  closedPortUrl,
  neverAnswer,
  neverRead,
  readSlowly,
  reportParts,
  reportRaw,
  resetAfter,
  stallMidAnswer,
  startDestination,
  startTcpDestination,
  type Destination,
  type DestinationHandler,
  type ReportedPart,
} from './helpers/destination.js';
import { generateBytes } from './helpers/origin.js';
import { startServer, type TestServer } from './helpers/server.js';

const MiB = 1024 * 1024;

// ---- the client -----------------------------------------------------------------------------

interface Reply {
  /** null when no answer came at all (the connection failed first). */
  readonly status: number | null;
  readonly headers: IncomingHttpHeaders;
  readonly body: Buffer;
  /** The answer started but its connection broke before the end. */
  readonly broken: boolean;
  /** Body bytes the client's generator handed to its socket. */
  readonly sent: number;
  /** The generator ran to its end. */
  readonly sentAll: boolean;
}

interface PostOptions {
  /** Called after every chunk handed to the socket, with the running total. */
  readonly onSent?: (sent: number) => void;
  /** Destroy the request (the client going away) once this says so, checked after each chunk. */
  readonly abortWhen?: (sent: number) => boolean;
  /** Stop sending once an answer arrives, as curl does ("HTTP error before end of send"). */
  readonly stopOnAnswer?: boolean;
}

/**
 * POSTs a streamed body and collects the answer. Not pipeline(body, req): an early answer
 * followed by a closed connection must still be read, and a pipeline would destroy it.
 */
function post(url: string, headers: OutgoingHttpHeaders, body: Iterable<Buffer> | AsyncIterable<Buffer>, options: PostOptions = {}): Promise<Reply> {
  // A keep-alive agent of its own, as browsers and curl keep connections (Node's agent: false
  // would send `Connection: close`, and a server must close at once after answering that).
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  const req = request(url, { method: 'POST', headers, agent });
  let sent = 0;
  let sentAll = false;
  let answered = false;
  const closed = once(req, 'close').catch(() => {});
  const answeredNow = once(req, 'response').catch(() => {});
  const upload = (async () => {
    for await (const chunk of body) {
      if (req.destroyed) return;
      if (answered && options.stopOnAnswer === true) return void req.destroy();
      sent += chunk.length;
      const more = req.write(chunk);
      options.onSent?.(sent);
      if (options.abortWhen?.(sent) === true) return void req.destroy();
      if (!more) await Promise.race([once(req, 'drain'), closed, ...(options.stopOnAnswer === true ? [answeredNow] : [])]);
    }
    if (!req.destroyed) {
      sentAll = true;
      req.end();
    }
  })().catch(() => {});
  const answer = new Promise<Omit<Reply, 'sent' | 'sentAll'>>((resolve) => {
    req.once('error', () => resolve({ status: null, headers: {}, body: Buffer.alloc(0), broken: false }));
    req.once('response', (res) => {
      answered = true;
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.once('end', () => resolve({ status: res.statusCode ?? null, headers: res.headers, body: Buffer.concat(chunks), broken: false }));
      res.once('error', () => resolve({ status: res.statusCode ?? null, headers: res.headers, body: Buffer.concat(chunks), broken: true }));
    });
  });
  return Promise.all([answer, upload]).then(([a]) => {
    agent.destroy();
    return { ...a, sent, sentAll };
  });
}

function json(reply: Reply): { error?: { code: string }; [key: string]: unknown } {
  return JSON.parse(reply.body.toString('utf8')) as { error?: { code: string } };
}

/** `total` seeded pseudo-random bytes in 64 KiB chunks. */
function data(seed: string, total: number): Iterable<Buffer> {
  return { [Symbol.iterator]: () => generateBytes(seed, 0, total) };
}

function sha256Of(chunks: Iterable<Buffer>): string {
  const hash = createHash('sha256');
  for (const c of chunks) hash.update(c);
  return hash.digest('hex');
}

/** A client part: headers written by hand, the way a browser writes them. */
interface ClientPart {
  readonly disposition: string;
  readonly type?: string;
  readonly body: Iterable<Buffer>;
}

const CLIENT_BOUNDARY = '----WebKitFormBoundaryTestTestTest1';

function* multipart(parts: readonly ClientPart[], boundary = CLIENT_BOUNDARY): Generator<Buffer> {
  for (const p of parts) {
    yield Buffer.from(`--${boundary}\r\nContent-Disposition: ${p.disposition}\r\n${p.type === undefined ? '' : `Content-Type: ${p.type}\r\n`}\r\n`, 'utf8');
    yield* p.body;
    yield Buffer.from('\r\n');
  }
  yield Buffer.from(`--${boundary}--\r\n`);
}

const MULTIPART_TYPE = `multipart/form-data; boundary=${CLIENT_BOUNDARY}`;

/** What busboy reads from a body: the reference for what the destination should see. */
const busboyReads = (body: Iterable<Buffer>, contentType: string): Promise<ReportedPart[]> => busboyParts(body, contentType);

// ---- fixtures ---------------------------------------------------------------------------------

/** A sluice whose PROXY_TARGET is a destination with `handler`, both closed after the suite. */
async function proxyTo(handler: DestinationHandler, env: Record<string, string> = {}): Promise<{ sluice: TestServer; dest: Destination }> {
  const dest = await startDestination(handler);
  const sluice = await startServer({ PROXY_TARGET: dest.url, ...env });
  return { sluice, dest };
}

async function closeAll(...things: Array<{ close(): Promise<void> } | undefined>): Promise<void> {
  for (const t of things) await t?.close();
}

// ---- tests -------------------------------------------------------------------------------------

describe('POST /proxy, multipart/form-data', () => {
  let sluice: TestServer;
  let dest: Destination;
  before(async () => ({ sluice, dest } = await proxyTo(reportParts)));
  after(() => closeAll(sluice, dest));

  test('parts arrive in order with their names, filenames, types and values; files byte-exact (40 MiB)', async () => {
    const BIG = 40 * MiB + 7;
    const parts: ClientPart[] = [
      { disposition: 'form-data; name="title"', body: [Buffer.from('Holiday photos')] },
      { disposition: 'form-data; name="photo"; filename="beach.raw"', type: 'image/x-raw', body: data('beach', BIG) },
      { disposition: 'form-data; name="légende ☀"', body: [Buffer.from('crème brûlée, 日本語')] },
      { disposition: 'form-data; name="notes"; filename="résumé 😀.txt"', type: 'text/plain; charset=utf-8', body: [Buffer.from('line 1\r\nline 2\r\n')] },
      // As a browser sends a quote in a name: %22. The destination must read what it would read from the client.
      { disposition: 'form-data; name="say %22hi%22"; filename="a %22b%22.bin"', type: 'application/octet-stream', body: data('small', 70_000) },
      { disposition: 'form-data; name="empty-input"; filename=""', type: 'application/octet-stream', body: [] },
      { disposition: 'form-data; name="empty-field"', body: [] },
      { disposition: 'form-data; name="tail"', body: [Buffer.from('after the big file')] },
    ];
    const expected = await busboyReads(multipart(parts), MULTIPART_TYPE);
    assert.equal(expected[1]?.size, BIG);

    const reply = await post(`${sluice.url}/proxy`, { 'content-type': MULTIPART_TYPE }, multipart(parts));
    assert.equal(reply.status, 200, reply.body.toString());
    const report = json(reply) as unknown as { parts: ReportedPart[]; headers: IncomingHttpHeaders };
    assert.deepEqual(report.parts, expected);
    // A fresh boundary of ours, and chunked: the length is not known in advance.
    assert.match(String(report.headers['content-type']), /^multipart\/form-data; boundary=----sluice[A-Za-z0-9_-]{24,}$/);
    assert.equal(report.headers['transfer-encoding'], 'chunked');
    assert.equal(report.headers['content-length'], undefined);
  });

  test('a file part without a type is sent as application/octet-stream', async () => {
    const parts: ClientPart[] = [{ disposition: 'form-data; name="f"; filename="x"', body: [Buffer.from('abc')] }];
    const reply = await post(`${sluice.url}/proxy`, { 'content-type': MULTIPART_TYPE }, multipart(parts));
    const report = json(reply) as unknown as { parts: ReportedPart[] };
    assert.equal(report.parts[0]?.type, 'application/octet-stream');
  });

  test('filenames go on as the client sent them, directories included (a Windows path, a directory upload, `..`, `dir/`)', async () => {
    // RFC 7578 4.2 tells the receiver to drop directories; sluice is not the receiver here. Cut
    // names lost a directory upload's relative paths (PHP's full_path), and `..` or `dir/` became
    // `filename=""`, which PHP drops as an empty file input and busboy reads as a field.
    const parts: ClientPart[] = [
      { disposition: 'form-data; name="a\\b"; filename="C:\\fakepath\\x.txt"', type: 'text/plain', body: [Buffer.from('abc')] },
      { disposition: 'form-data; name="files[]"; filename="photos/2024/a.jpg"', type: 'image/jpeg', body: data('a.jpg', 1000) },
      { disposition: 'form-data; name="files[]"; filename="photos/b.jpg"', type: 'image/jpeg', body: data('b.jpg', 2000) },
      { disposition: 'form-data; name="dots"; filename=".."', type: 'text/plain', body: [Buffer.from('a file called ..')] },
      { disposition: 'form-data; name="slash"; filename="dir/"', type: 'text/plain', body: [Buffer.from('a file called dir/')] },
      { disposition: "form-data; name=\"ext\"; filename*=UTF-8''r%C3%A9p%2Fr%C3%A9sum%C3%A9.txt", type: 'text/plain', body: [Buffer.from('ext')] },
    ];
    const reply = await post(`${sluice.url}/proxy`, { 'content-type': MULTIPART_TYPE }, multipart(parts));
    assert.equal(reply.status, 200, reply.body.toString());
    const report = json(reply) as unknown as { parts: ReportedPart[] };
    assert.deepEqual(
      report.parts.map((p) => [p.name, p.filename, p.size]),
      [
        ['a\\b', 'C:\\fakepath\\x.txt', 3],
        ['files[]', 'photos/2024/a.jpg', 1000],
        ['files[]', 'photos/b.jpg', 2000],
        ['dots', '..', 16],
        ['slash', 'dir/', 18],
        // filename* is decoded and sent the way browsers send names (RFC 7578 4.2 has no filename*).
        ['ext', 'rép/résumé.txt', 3],
      ],
    );
  });

  test('a malformed body: 400 from our parser, and the outbound request is aborted', async () => {
    const seenBefore = dest.seen.length;
    const broken = [
      Buffer.from(`--${CLIENT_BOUNDARY}\r\nContent-Disposition: form-data; name="ok"; filename="ok.bin"\r\n\r\n`),
      ...data('before-the-fault', 2 * MiB),
      Buffer.from(`\r\n--${CLIENT_BOUNDARY}\r\nContent-Disposition: form-data; name="bad"\r\nNo colon here\r\n\r\nx\r\n--${CLIENT_BOUNDARY}--\r\n`),
    ];
    const reply = await post(`${sluice.url}/proxy`, { 'content-type': MULTIPART_TYPE }, broken);
    assert.equal(reply.status, 400);
    assert.equal(json(reply).error?.code, 'PART_HEADER_MALFORMED');
    assert.equal(dest.seen.length, seenBefore + 1, 'the destination got the request');
    assert.equal(await dest.seen[seenBefore]?.outcome, 'aborted');
  });

  test('a missing boundary: 400 BOUNDARY_MISSING, nothing sent to the destination', async () => {
    const seenBefore = dest.seen.length;
    const reply = await post(`${sluice.url}/proxy`, { 'content-type': 'multipart/form-data' }, [Buffer.from('x')]);
    assert.equal(reply.status, 400);
    assert.equal(json(reply).error?.code, 'BOUNDARY_MISSING');
    assert.equal(dest.seen.length, seenBefore);
  });
});

describe('POST /proxy, multipart limits apply as for uploads', () => {
  let sluice: TestServer;
  let dest: Destination;
  before(async () => ({ sluice, dest } = await proxyTo(reportParts, { MAX_FILES: '1', MAX_FILE_BYTES: '1MiB' })));
  after(() => closeAll(sluice, dest));

  for (const c of [
    { what: 'MAX_FILES', code: 'TOO_MANY_FILES', files: [1000, 1000] },
    { what: 'MAX_FILE_BYTES', code: 'FILE_TOO_LARGE', files: [3 * MiB] },
  ]) {
    test(`${c.what}: 413 ${c.code}, the outbound request aborted`, async () => {
      const seenBefore = dest.seen.length;
      const parts = c.files.map((size, i): ClientPart => ({ disposition: `form-data; name="f${i}"; filename="f${i}"`, type: 'application/octet-stream', body: data(`f${i}`, size) }));
      const reply = await post(`${sluice.url}/proxy`, { 'content-type': MULTIPART_TYPE }, multipart(parts));
      assert.equal(reply.status, 413);
      assert.equal(json(reply).error?.code, c.code);
      if (dest.seen.length > seenBefore) assert.equal(await dest.seen[seenBefore]?.outcome, 'aborted');
    });
  }
});

describe('POST /proxy, any other body', () => {
  let sluice: TestServer;
  let dest: Destination;
  before(async () => ({ sluice, dest } = await proxyTo(reportRaw, { AUTH_TOKEN: 'sluice-secret', MAX_FILE_BYTES: '64MiB' })));
  after(() => closeAll(sluice, dest));
  const auth = { authorization: 'Bearer sluice-secret' };

  test('goes through as it is, with its Content-Type and Content-Length (24 MiB)', async () => {
    const size = 24 * MiB + 3;
    const reply = await post(`${sluice.url}/proxy`, { ...auth, 'content-type': 'application/x-tar', 'content-length': size }, data('raw', size));
    assert.equal(reply.status, 201);
    const report = json(reply) as { size: number; sha256: string; headers: IncomingHttpHeaders };
    assert.equal(report.size, size);
    assert.equal(report.sha256, sha256Of(data('raw', size)));
    assert.equal(report.headers['content-type'], 'application/x-tar');
    assert.equal(report.headers['content-length'], String(size));
  });

  test('a chunked body stays chunked', async () => {
    const size = 3 * MiB;
    const reply = await post(`${sluice.url}/proxy`, { ...auth, 'content-type': 'application/octet-stream' }, data('chunked', size));
    const report = json(reply) as { size: number; sha256: string; headers: IncomingHttpHeaders };
    assert.equal(report.sha256, sha256Of(data('chunked', size)));
    assert.equal(report.headers['transfer-encoding'], 'chunked');
    assert.equal(report.headers['content-length'], undefined);
  });

  test('hop-by-hop headers are not copied either way; our bearer token and cookies stay here', async () => {
    const reply = await post(
      `${sluice.url}/proxy`,
      {
        ...auth,
        'content-type': 'text/plain',
        cookie: 'session=for-sluice-only',
        connection: 'keep-alive, x-client-hop',
        'keep-alive': 'timeout=30',
        'x-client-hop': 'named in Connection',
        'proxy-authorization': 'Basic c2VjcmV0',
        te: 'trailers',
        'x-request-id': 'trace-me-123',
        'x-end-to-end': 'please forward',
        'content-digest': 'sha-256=:n4bQgYhMfWWaL+qgxVrQFaO/TxsrC4Is0V1sFbDwCgg=:',
        via: '1.1 corporate-proxy',
      },
      [Buffer.from('test')],
    );
    assert.equal(reply.status, 201);
    const sent = (json(reply) as { headers: IncomingHttpHeaders }).headers;
    for (const name of ['authorization', 'cookie', 'keep-alive', 'x-client-hop', 'proxy-authorization', 'te']) {
      assert.equal(sent[name], undefined, `${name} reached the destination`);
    }
    assert.notEqual(sent.connection, 'keep-alive, x-client-hop');
    assert.equal(sent['x-request-id'], 'trace-me-123');
    assert.equal(sent['x-end-to-end'], 'please forward');
    // The body is passed as it is, so a digest of it still holds.
    assert.equal(sent['content-digest'], 'sha-256=:n4bQgYhMfWWaL+qgxVrQFaO/TxsrC4Is0V1sFbDwCgg=:');
    assert.equal(sent.via, '1.1 corporate-proxy, 1.1 sluice');
    assert.equal(sent.host, new URL(dest.url).host);
    assert.equal(sent['x-forwarded-for'], '127.0.0.1');

    // And back: the destination's hop-by-hop headers stay with it, its end-to-end ones come through.
    for (const name of ['x-hop-secret', 'proxy-authenticate']) assert.equal(reply.headers[name], undefined, `${name} reached the client`);
    // Node writes a Keep-Alive of its own for our connection; the destination's must not replace it.
    assert.notEqual(reply.headers['keep-alive'], 'timeout=99');
    assert.equal(reply.headers['x-end-to-end'], 'yes');
    assert.equal(reply.headers['cache-control'], 'no-cache');
    assert.equal(reply.headers['x-request-id'], 'trace-me-123');
  });

  test('a POST with no body at all goes on with Content-Length: 0, not as an empty chunked body', async () => {
    // Neither Content-Length nor Transfer-Encoding (RFC 9112 6.3: no body). Node's own client
    // always sends one of them, so the request is written by hand.
    const url = new URL(sluice.url);
    const socket = connect(Number(url.port), url.hostname);
    socket.write(`POST /proxy HTTP/1.1\r\nHost: ${url.host}\r\nAuthorization: Bearer sluice-secret\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\n`);
    const chunks: Buffer[] = [];
    for await (const chunk of socket) chunks.push(chunk as Buffer);
    const answer = Buffer.concat(chunks).toString('utf8');
    assert.match(answer, /^HTTP\/1\.1 201 /);
    const report = JSON.parse(answer.slice(answer.indexOf('{'), answer.lastIndexOf('}') + 1)) as { size: number; headers: IncomingHttpHeaders };
    assert.equal(report.size, 0);
    assert.equal(report.headers['content-length'], '0');
    assert.equal(report.headers['transfer-encoding'], undefined);
  });

  test('a content-coded (gzip) multipart body is not ours to parse: it goes on as it is', async () => {
    const form = Buffer.concat([...multipart([{ disposition: 'form-data; name="f"; filename="a.txt"', type: 'text/plain', body: [Buffer.from('hello '.repeat(1000))] }])]);
    const gzipped = gzipSync(form);
    const reply = await post(`${sluice.url}/proxy`, { ...auth, 'content-type': MULTIPART_TYPE, 'content-encoding': 'gzip', 'content-length': gzipped.length }, [gzipped]);
    assert.equal(reply.status, 201, reply.body.toString());
    const report = json(reply) as { size: number; sha256: string; headers: IncomingHttpHeaders };
    assert.equal(report.sha256, sha256Of([gzipped]));
    assert.equal(report.headers['content-type'], MULTIPART_TYPE);
    assert.equal(report.headers['content-encoding'], 'gzip');
    assert.equal(report.headers['content-length'], String(gzipped.length));
  });

  test('the destination sees the path and query of PROXY_TARGET', async () => {
    const dest2 = await startDestination((req, res) => {
      req.resume();
      res.end(req.url);
    });
    const sluice2 = await startServer({ PROXY_TARGET: dest2.url });
    try {
      const reply = await post(`${sluice2.url}/proxy?ignored=1`, { 'content-type': 'text/plain' }, [Buffer.from('x')]);
      assert.equal(reply.body.toString(), '/inbox?from=sluice');
    } finally {
      await closeAll(sluice2, dest2);
    }
  });

  test('a Content-Length over MAX_FILE_BYTES: 413 before anything is sent', async () => {
    const seenBefore = dest.seen.length;
    const reply = await post(`${sluice.url}/proxy`, { ...auth, 'content-type': 'application/octet-stream', 'content-length': 65 * MiB }, data('too-big', 65 * MiB));
    assert.equal(reply.status, 413);
    assert.equal(json(reply).error?.code, 'FILE_TOO_LARGE');
    assert.equal(dest.seen.length, seenBefore);
  });

  test('a chunked body that grows over MAX_FILE_BYTES: 413 and the outbound request aborted', async () => {
    const seenBefore = dest.seen.length;
    const reply = await post(`${sluice.url}/proxy`, { ...auth, 'content-type': 'application/octet-stream' }, data('too-big', 80 * MiB));
    assert.equal(reply.status, 413);
    assert.equal(json(reply).error?.code, 'FILE_TOO_LARGE');
    assert.equal(await dest.seen[seenBefore]?.outcome, 'aborted');
  });

  test('the destination status and body are relayed whatever they are', async () => {
    const dest2 = await startDestination((req, res) => {
      req.resume();
      req.on('end', () => {
        res.writeHead(422, { 'content-type': 'application/problem+json' });
        res.end('{"title":"nope"}');
      });
    });
    const sluice2 = await startServer({ PROXY_TARGET: dest2.url });
    try {
      const reply = await post(`${sluice2.url}/proxy`, { 'content-type': 'text/plain' }, [Buffer.from('x')]);
      assert.equal(reply.status, 422);
      assert.equal(reply.headers['content-type'], 'application/problem+json');
      assert.equal(reply.body.toString(), '{"title":"nope"}');
    } finally {
      await closeAll(sluice2, dest2);
    }
  });
});

describe('POST /proxy, backpressure: a slow destination slows the client', () => {
  // The destination reads at 32 MiB/s, the client could send at several hundred. What the client
  // has handed over minus what the destination has read is what sits in between: the kernel's
  // socket buffers on both hops (Linux autotunes each send buffer up to tcp_wmem's max, 4 MiB by
  // default; a direct connection alone holds about 5 MiB here) plus whatever sluice holds.
  const RATE = 32 * MiB;
  const TOTAL = 160 * MiB;
  const BOUND = 16 * MiB;
  /**
   * What sluice may add to a direct connection: one more hop of kernel buffers (a send buffer
   * autotuned up to 4 MiB, and the receive buffer before it), a few chunks, and the 256 KiB the
   * outbound request may hold unsent (proxy.ts, SEND_AHEAD_BYTES). Measured 5.5-8.3 MiB.
   */
  const SLUICE_SHARE = 10 * MiB;
  let sluice: TestServer;
  let dest: Destination;
  let direct = 0;

  /** The most bytes ever in flight between the client's generator and the destination's reads. */
  async function worstInFlight(url: string, type: string, body: Iterable<Buffer>): Promise<{ worst: number; reply: Reply }> {
    const index = dest.seen.length;
    let worst = 0;
    const onSent = (sent: number): void => {
      worst = Math.max(worst, sent - (dest.seen[index]?.bytes ?? 0));
    };
    const reply = await post(url, { 'content-type': type }, body, { onSent });
    return { worst, reply };
  }

  before(async () => {
    ({ sluice, dest } = await proxyTo(readSlowly(RATE)));
    direct = (await worstInFlight(dest.url, 'application/octet-stream', data('direct', TOTAL))).worst;
    console.log(`# direct connection, no proxy: at most ${(direct / MiB).toFixed(2)} MiB in flight`);
  });
  after(() => closeAll(sluice, dest));

  for (const kind of ['raw', 'multipart'] as const) {
    test(`${kind}: client bytes sent minus destination bytes read stay under ${BOUND / MiB} MiB over ${TOTAL / MiB} MiB`, async () => {
      const body = kind === 'raw' ? data('slow', TOTAL) : multipart([{ disposition: 'form-data; name="f"; filename="big"', type: 'application/octet-stream', body: data('slow', TOTAL) }]);
      const { worst, reply } = await worstInFlight(`${sluice.url}/proxy`, kind === 'raw' ? 'application/octet-stream' : MULTIPART_TYPE, body);
      console.log(`# ${kind} through sluice: at most ${(worst / MiB).toFixed(2)} MiB in flight`);
      assert.equal(reply.status, 200);
      const report = json(reply) as { size: number; sha256: string };
      if (kind === 'raw') assert.equal(report.sha256, sha256Of(data('slow', TOTAL)));
      else assert.ok(report.size > TOTAL);
      assert.ok(worst < BOUND, `${(worst / MiB).toFixed(1)} MiB were in flight`);
      assert.ok(worst - direct < SLUICE_SHARE, `sluice added ${((worst - direct) / MiB).toFixed(1)} MiB to a direct connection`);
    });
  }
});

describe('POST /proxy, failures', () => {
  test('PROXY_TARGET unset: 503 PROXY_NOT_CONFIGURED', async () => {
    const sluice = await startServer({});
    try {
      const reply = await post(`${sluice.url}/proxy`, { 'content-type': 'text/plain' }, [Buffer.from('x')]);
      assert.equal(reply.status, 503);
      assert.equal(json(reply).error?.code, 'PROXY_NOT_CONFIGURED');
    } finally {
      await sluice.close();
    }
  });

  test('the destination refuses the connection: 502 PROXY_DESTINATION_UNREACHABLE', async () => {
    const sluice = await startServer({ PROXY_TARGET: await closedPortUrl() });
    try {
      for (const type of ['text/plain', MULTIPART_TYPE]) {
        const body = type === MULTIPART_TYPE ? multipart([{ disposition: 'form-data; name="a"', body: [Buffer.from('x')] }]) : [Buffer.from('x')];
        const reply = await post(`${sluice.url}/proxy`, { 'content-type': type }, body);
        assert.equal(reply.status, 502);
        assert.equal(json(reply).error?.code, 'PROXY_DESTINATION_UNREACHABLE');
      }
    } finally {
      await sluice.close();
    }
  });

  test('the destination answers with something that is not HTTP: 502 that says so', async () => {
    const dest = await startTcpDestination((socket) => socket.once('data', () => socket.end('SSH-2.0-OpenSSH_9.2\r\n')));
    const sluice = await startServer({ PROXY_TARGET: dest.url });
    try {
      const reply = await post(`${sluice.url}/proxy`, { 'content-type': MULTIPART_TYPE }, multipart([{ disposition: 'form-data; name="a"', body: [Buffer.from('x')] }]));
      assert.equal(reply.status, 502);
      const error = json(reply).error as { code: string; message: string };
      assert.equal(error.code, 'PROXY_DESTINATION_RESET');
      assert.match(error.message, /invalid HTTP answer/);
    } finally {
      await closeAll(sluice, dest);
    }
  });

  test('the destination resets mid-body: 502 (or a broken answer), the client not left hanging', async () => {
    const { sluice, dest } = await proxyTo(resetAfter(1 * MiB));
    try {
      const reply = await post(`${sluice.url}/proxy`, { 'content-type': 'application/octet-stream' }, data('reset', 20 * MiB));
      if (reply.status !== null && !reply.broken) {
        assert.equal(reply.status, 502);
        assert.equal(json(reply).error?.code, 'PROXY_DESTINATION_RESET');
      }
      assert.equal(reply.sentAll, false, 'the client was not made to send everything');
    } finally {
      await closeAll(sluice, dest);
    }
  });

  /** Far more than loopback carries in the few seconds these tests wait. */
  const ENDLESS = 1024 ** 4;
  for (const type of ['application/octet-stream', MULTIPART_TYPE]) {
    const endless = (): Iterable<Buffer> =>
      type === MULTIPART_TYPE ? multipart([{ disposition: 'form-data; name="f"; filename="f"', body: data('early', ENDLESS) }]) : data('early', ENDLESS);

    test(`${type}: the destination answers 413 early: relayed, and a client that notices stops sending`, async () => {
      const { sluice, dest } = await proxyTo(answerEarly(413));
      try {
        const reply = await post(`${sluice.url}/proxy`, { 'content-type': type }, endless(), { stopOnAnswer: true });
        assert.equal(reply.status, 413);
        assert.equal(reply.headers['x-destination'], 'early');
        assert.deepEqual(json(reply), { error: 'too large for the destination' });
        assert.ok(reply.sent < 64 * MiB, `the client sent ${(reply.sent / MiB).toFixed(1)} MiB`);
        // We stopped sending too: the destination saw an unfinished request.
        assert.equal(await dest.seen[0]?.outcome, 'aborted');
      } finally {
        await closeAll(sluice, dest);
      }
    });

    test(`${type}: the destination answers 413 early: a client that keeps sending is cut off after the answer`, async () => {
      const { sluice, dest } = await proxyTo(answerEarly(413));
      try {
        const started = Date.now();
        const reply = await post(`${sluice.url}/proxy`, { 'content-type': type }, endless());
        assert.equal(reply.status, 413);
        assert.deepEqual(json(reply), { error: 'too large for the destination' });
        assert.equal(reply.sentAll, false);
        assert.ok(Date.now() - started < 10_000, 'the connection was closed within the linger time');
        // Not read by sluice while it waited: the client was blocked, not drained.
        assert.ok(reply.sent < 256 * MiB, `the client sent ${(reply.sent / MiB).toFixed(1)} MiB`);
      } finally {
        await closeAll(sluice, dest);
      }
    });
  }

  for (const c of [
    { what: 'reads the body and never answers', handler: neverAnswer, size: 1 * MiB },
    { what: 'never reads the body', handler: neverRead, size: 64 * MiB },
  ]) {
    test(`the destination ${c.what}: 504 PROXY_TIMEOUT after PROXY_TIMEOUT_MS`, async () => {
      const { sluice, dest } = await proxyTo(c.handler, { PROXY_TIMEOUT_MS: '300' });
      try {
        const started = Date.now();
        const reply = await post(`${sluice.url}/proxy`, { 'content-type': 'application/octet-stream' }, data('stall', c.size));
        assert.equal(reply.status, 504);
        assert.equal(json(reply).error?.code, 'PROXY_TIMEOUT');
        assert.ok(Date.now() - started < 10_000);
        dest.seen[0]?.drain();
        assert.equal(await dest.seen[0]?.outcome, c.handler === neverAnswer ? 'complete' : 'aborted');
      } finally {
        await closeAll(sluice, dest);
      }
    });
  }

  test('the destination stalls in the middle of its answer: the client sees a broken answer', async () => {
    const { sluice, dest } = await proxyTo(stallMidAnswer, { PROXY_TIMEOUT_MS: '300' });
    try {
      const reply = await post(`${sluice.url}/proxy`, { 'content-type': 'text/plain' }, [Buffer.from('x')]);
      assert.equal(reply.status, 200);
      assert.equal(reply.broken, true);
      assert.equal(reply.body.toString(), 'the beginning of a long answer');
    } finally {
      await closeAll(sluice, dest);
    }
  });

  test('a slow client is not the destination timing out', async () => {
    const { sluice, dest } = await proxyTo(reportRaw, { PROXY_TIMEOUT_MS: '200' });
    try {
      async function* dribble(): AsyncGenerator<Buffer> {
        for (let i = 0; i < 4; i += 1) {
          yield Buffer.from(`piece ${i};`);
          await new Promise((r) => setTimeout(r, 400));
        }
      }
      const reply = await post(`${sluice.url}/proxy`, { 'content-type': 'text/plain' }, dribble());
      assert.equal(reply.status, 201);
      assert.equal((json(reply) as { size: number }).size, 'piece 0;'.length * 4);
    } finally {
      await closeAll(sluice, dest);
    }
  });

  for (const kind of ['raw', 'multipart'] as const) {
    test(`${kind}: the client going away aborts the outbound request`, async () => {
      const { sluice, dest } = await proxyTo(readSlowly(16 * MiB));
      try {
        const body = kind === 'raw' ? data('abort', 64 * MiB) : multipart([{ disposition: 'form-data; name="f"; filename="f"', body: data('abort', 64 * MiB) }]);
        const type = kind === 'raw' ? 'application/octet-stream' : MULTIPART_TYPE;
        // Once the destination is reading, so that there is an outbound request to abort.
        const reply = await post(`${sluice.url}/proxy`, { 'content-type': type }, body, { abortWhen: () => (dest.seen[0]?.bytes ?? 0) >= 1 * MiB });
        assert.equal(reply.status, null);
        assert.equal(await dest.seen[0]?.outcome, 'aborted');
      } finally {
        await closeAll(sluice, dest);
      }
    });
  }
});
