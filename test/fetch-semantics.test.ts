/**
 * GET/HEAD/POST /fetch against an origin that answers with exact bytes (a raw TCP server), for
 * the HTTP semantics of the relay: HEAD, the client's Range against an origin's 416 or an
 * unasked-for 206, transfer and content codings, Content-Disposition bytes past ASCII (raw UTF-8
 * and Latin-1 filenames, which Node would otherwise re-encode), the name given when the origin
 * gives none, redirects of every kind, userinfo and IPv6 literals.
 */
import { strict as assert } from 'node:assert';
import { once } from 'node:events';
import { createServer, type Server, type Socket } from 'node:net';
import { gunzipSync, gzipSync } from 'node:zlib';
import { after, before, describe, test } from 'node:test';
import { startServer, type TestServer } from './helpers/server.js';
import { rawExchange, rawRequest, sha256, type RawResponse } from './helpers/http.js';

interface SeenRequest {
  readonly method: string;
  readonly path: string;
  /** Lower-case names. */
  readonly headers: Map<string, string>;
}

/** What an origin route answers: the status line and header lines (no CRLFs), and the body bytes. */
interface RawAnswer {
  readonly head: readonly (string | Buffer)[];
  readonly body?: Buffer;
}

const GZIPPED_TEXT = Buffer.from('hello, gzip world\n'.repeat(500));
const GZIPPED = gzipSync(GZIPPED_TEXT);
const PLAIN = Buffer.from('0123456789abcdefghijklmnopqrstuvwxyz');

/** Routes of the raw origin; `req` is the request being answered. */
function answer(req: SeenRequest): RawAnswer {
  const url = new URL(req.path, 'http://origin.test');
  const cd = (value: Buffer): Buffer => Buffer.concat([Buffer.from('Content-Disposition: '), value]);
  switch (url.pathname) {
    case '/plain':
    case '/files/na%C3%AFve%20r%C3%A9sum%C3%A9.txt':
    case '/dir/':
      return { head: ['HTTP/1.1 200 OK', 'Content-Type: text/plain', `Content-Length: ${PLAIN.length}`, 'ETag: "plain-1"'], body: PLAIN };
    case '/chunked':
      return { head: ['HTTP/1.1 200 OK', 'Content-Type: text/plain', 'Transfer-Encoding: chunked'], body: Buffer.from(`${PLAIN.length.toString(16)}\r\n${PLAIN}\r\n0\r\n\r\n`) };
    case '/416':
      return { head: ['HTTP/1.1 416 Range Not Satisfiable', 'Content-Range: bytes */36', 'Content-Length: 0'] };
    case '/416-bare':
      return { head: ['HTTP/1.1 416 Range Not Satisfiable', 'Content-Length: 0'] };
    case '/206':
      return { head: ['HTTP/1.1 206 Partial Content', 'Content-Range: bytes 0-9/36', 'Content-Length: 10'], body: PLAIN.subarray(0, 10) };
    case '/204':
      return { head: ['HTTP/1.1 204 No Content', 'ETag: "empty"'] };
    case '/te-gzip': {
      const chunked = Buffer.concat([Buffer.from(`${GZIPPED.length.toString(16)}\r\n`), GZIPPED, Buffer.from('\r\n0\r\n\r\n')]);
      return { head: ['HTTP/1.1 200 OK', 'Content-Type: text/plain', 'Transfer-Encoding: gzip, chunked'], body: chunked };
    }
    case '/gzip':
      // Encoded although we asked for identity (Apache's AddEncoding does this for .gz files).
      return { head: ['HTTP/1.1 200 OK', 'Content-Type: text/plain', 'Content-Encoding: gzip', `Content-Length: ${GZIPPED.length}`, 'Content-Disposition: attachment; filename="notes.txt"'], body: GZIPPED };
    case '/cd-utf8':
      return { head: ['HTTP/1.1 200 OK', cd(Buffer.from('attachment; filename="naïve €.txt"', 'utf8')), `Content-Length: ${PLAIN.length}`], body: PLAIN };
    case '/cd-latin1':
      return { head: ['HTTP/1.1 200 OK', cd(Buffer.from('inline; filename="café.txt"', 'latin1')), `Content-Length: ${PLAIN.length}`], body: PLAIN };
    case '/cd-utf8-chunked':
      return { head: ['HTTP/1.1 200 OK', cd(Buffer.from('attachment; filename="日本.txt"', 'utf8')), 'Transfer-Encoding: chunked'], body: Buffer.from(`${PLAIN.length.toString(16)}\r\n${PLAIN}\r\n0\r\n\r\n`) };
    case '/cd-broken':
      return { head: ['HTTP/1.1 200 OK', cd(Buffer.from('attachment; filename="unterminated ü', 'utf8')), `Content-Length: ${PLAIN.length}`], body: PLAIN };
    case '/cd-ascii':
      return { head: ['HTTP/1.1 200 OK', "Content-Disposition: attachment;  filename=report.pdf; filename*=UTF-8''r%C3%A9port.pdf", `Content-Length: ${PLAIN.length}`], body: PLAIN };
    case '/etag-obs-text':
      return { head: ['HTTP/1.1 200 OK', Buffer.concat([Buffer.from('ETag: "caf'), Buffer.from([0xe9]), Buffer.from('"')]), `Content-Length: ${PLAIN.length}`], body: PLAIN };
    case '/auth':
      return { head: ['HTTP/1.1 200 OK', 'Content-Type: text/plain', `Content-Length: ${Buffer.byteLength(req.headers.get('authorization') ?? 'none')}`], body: Buffer.from(req.headers.get('authorization') ?? 'none') };
    case '/redirect': {
      const code = url.searchParams.get('code') ?? '302';
      return { head: [`HTTP/1.1 ${code} Moved`, `Location: ${url.searchParams.get('to') ?? '/plain'}`, 'Content-Length: 5'], body: Buffer.from('moved') };
    }
    default:
      return { head: ['HTTP/1.1 404 Not Found', 'Content-Length: 0'] };
  }
}

interface RawOrigin {
  readonly url: string;
  readonly seen: SeenRequest[];
  close(): Promise<void>;
}

/** An origin on `host` that reads one request head per connection and answers with `answer`'s exact bytes, then closes. */
async function startRawOrigin(host = '127.0.0.1'): Promise<RawOrigin> {
  const seen: SeenRequest[] = [];
  const sockets = new Set<Socket>();
  const server: Server = createServer((socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    let head = Buffer.alloc(0);
    const onData = (chunk: Buffer): void => {
      head = Buffer.concat([head, chunk]);
      const end = head.indexOf('\r\n\r\n');
      if (end === -1) return;
      socket.off('data', onData);
      const [requestLine = '', ...lines] = head.subarray(0, end).toString('latin1').split('\r\n');
      const [method = '', path = ''] = requestLine.split(' ');
      const headers = new Map(lines.map((l) => [l.slice(0, l.indexOf(':')).trim().toLowerCase(), l.slice(l.indexOf(':') + 1).trim()]));
      const req = { method, path, headers };
      seen.push(req);
      const a = answer(req);
      const headBytes = Buffer.concat([...a.head.map((l) => Buffer.concat([typeof l === 'string' ? Buffer.from(l, 'latin1') : l, Buffer.from('\r\n')])), Buffer.from('Connection: close\r\n\r\n')]);
      socket.end(method === 'HEAD' || a.body === undefined ? headBytes : Buffer.concat([headBytes, a.body]));
    };
    socket.on('data', onData);
  });
  server.listen(0, host);
  await once(server, 'listening');
  const address = server.address();
  const port = typeof address === 'object' && address !== null ? address.port : 0;
  return {
    url: `http://${host.includes(':') ? `[${host}]` : host}:${port}`,
    seen,
    close: async () => {
      for (const s of sockets) s.destroy();
      server.close();
      await once(server, 'close');
    },
  };
}

function via(server: TestServer, target: string): string {
  return `/fetch?url=${encodeURIComponent(target)}`;
}

function errorCodeOf(res: RawResponse): string | undefined {
  return (JSON.parse(res.body.toString('utf8')) as { error?: { code?: string } }).error?.code;
}

/** The header block of a raw answer, as bytes (latin1 text), and what followed it. */
function splitAnswer(wire: Buffer): { head: string; body: Buffer } {
  const end = wire.indexOf('\r\n\r\n');
  assert.ok(end !== -1, 'a complete header block');
  return { head: wire.subarray(0, end).toString('latin1'), body: wire.subarray(end + 4) };
}

function headerLines(head: string, name: string): string[] {
  return head.split('\r\n').filter((l) => l.toLowerCase().startsWith(`${name}:`)).map((l) => l.slice(name.length + 1).trim());
}

/** RFC 6266 / RFC 8187 as a client reads it: the ASCII fallback and the decoded filename*. */
function disposition(value: string): { type: string; filename: string | null; filenameStar: string | null } {
  assert.match(value, /^[\x20-\x7e]*$/, `only ASCII goes out: ${JSON.stringify(value)}`);
  const m = /^(attachment|inline)(?:; filename="([^"\\]*)")?(?:; filename\*=UTF-8''([A-Za-z0-9!#$&+.^_`|~%-]+))?$/.exec(value);
  assert.ok(m !== null, `not a well-formed disposition: ${value}`);
  return { type: m[1] as string, filename: m[2] ?? null, filenameStar: m[3] === undefined ? null : decodeURIComponent(m[3]) };
}

let origin: RawOrigin;
let server: TestServer;
before(async () => {
  origin = await startRawOrigin();
  server = await startServer({ FETCH_ALLOW: '127.0.0.1,[::1]', FETCH_TIMEOUT_MS: '2000' });
});
after(async () => {
  await server.close();
  await origin.close();
});

describe('HEAD /fetch', () => {
  test('asks the origin with HEAD and relays its headers, the length GET would have included; no body', async () => {
    const wire = await rawExchange(server.url, `HEAD ${via(server, `${origin.url}/plain`)} HTTP/1.1\r\nHost: sluice\r\nConnection: close\r\n\r\n`);
    const { head, body } = splitAnswer(wire);
    assert.match(head, /^HTTP\/1\.1 200 /);
    assert.deepEqual(headerLines(head, 'content-length'), [String(PLAIN.length)]);
    assert.deepEqual(headerLines(head, 'etag'), ['"plain-1"']);
    assert.equal(body.length, 0, 'not one body byte');
    assert.equal(origin.seen[origin.seen.length - 1]?.method, 'HEAD');
  });

  test('HEAD of a chunked resource: no Content-Length is made up; HEAD errors are bare statuses', async () => {
    const res = await rawRequest(server.url, via(server, `${origin.url}/chunked`), { method: 'HEAD' });
    assert.equal(res.status, 200);
    assert.equal(res.headers['content-length'], undefined);
    const missing = await rawRequest(server.url, via(server, `${origin.url}/nothing-here`), { method: 'HEAD' });
    assert.equal(missing.status, 502);
    assert.equal(missing.body.length, 0);
  });
});

describe("the client's Range against the origin's answer", () => {
  test("an origin's 416 to the client's Range is the client's 416, with the origin's complete length", async () => {
    const res = await rawRequest(server.url, via(server, `${origin.url}/416`), { headers: { range: 'bytes=100-' } });
    assert.equal(res.status, 416);
    assert.equal(errorCodeOf(res), 'RANGE_NOT_SATISFIABLE');
    assert.equal(res.headers['content-range'], 'bytes */36');
    assert.equal(origin.seen[origin.seen.length - 1]?.headers.get('range'), 'bytes=100-');
    const bare = await rawRequest(server.url, via(server, `${origin.url}/416-bare`), { headers: { range: 'bytes=100-' } });
    assert.equal(bare.status, 416);
    assert.equal(bare.headers['content-range'], undefined, 'no length is invented');
  });

  test('a 416 the client did not ask for (no Range) is an origin failure: 502 UPSTREAM_STATUS', async () => {
    const res = await rawRequest(server.url, via(server, `${origin.url}/416`));
    assert.equal(res.status, 502);
    assert.equal(errorCodeOf(res), 'UPSTREAM_STATUS');
  });

  test('a 206 to a request without Range would pass for the whole resource: 502 UPSTREAM_PARTIAL', async () => {
    const res = await rawRequest(server.url, via(server, `${origin.url}/206`));
    assert.equal(res.status, 502);
    assert.equal(errorCodeOf(res), 'UPSTREAM_PARTIAL');
    const asked = await rawRequest(server.url, via(server, `${origin.url}/206`), { headers: { range: 'bytes=0-9' } });
    assert.equal(asked.status, 206);
    assert.equal(asked.headers['content-range'], 'bytes 0-9/36');
    assert.ok(asked.body.equals(PLAIN.subarray(0, 10)));
  });

  test('a 204 is relayed without Content-Length or a made-up Content-Disposition', async () => {
    const res = await rawRequest(server.url, via(server, `${origin.url}/204`));
    assert.equal(res.status, 204);
    assert.equal(res.headers['content-length'], undefined);
    assert.equal(res.headers['content-disposition'], undefined);
    assert.equal(res.headers.etag, '"empty"');
  });
});

describe('codings', () => {
  test('Transfer-Encoding other than chunked (gzip, chunked) → 502 UPSTREAM_TRANSFER_CODING, never gzip bytes without a header saying so', async () => {
    const res = await rawRequest(server.url, via(server, `${origin.url}/te-gzip`));
    assert.equal(res.status, 502);
    assert.equal(errorCodeOf(res), 'UPSTREAM_TRANSFER_CODING');
    const before = (await server.files()).sort();
    const post = await rawRequest(server.url, '/fetch', { method: 'POST', headers: { 'content-type': 'application/json' }, body: Buffer.from(JSON.stringify({ url: `${origin.url}/te-gzip` })) });
    assert.equal(post.status, 502);
    assert.deepEqual((await server.files()).sort(), before, 'nothing stored');
  });

  test('GET: a gzip body the origin sent anyway is relayed with its Content-Encoding and length, bytes untouched', async () => {
    const res = await rawRequest(server.url, via(server, `${origin.url}/gzip`), { headers: { 'accept-encoding': 'gzip' } });
    assert.equal(res.status, 200);
    assert.equal(origin.seen[origin.seen.length - 1]?.headers.get('accept-encoding'), 'identity', 'we ask for the bytes as stored');
    assert.equal(res.headers['content-encoding'], 'gzip');
    assert.equal(res.headers['content-length'], String(GZIPPED.length));
    assert.ok(res.body.equals(GZIPPED));
    assert.ok(gunzipSync(res.body).equals(GZIPPED_TEXT));
  });

  test('POST: a gzip body is stored as sent, typed application/gzip (never text that is secretly gzip)', async () => {
    const post = await rawRequest(server.url, '/fetch', { method: 'POST', headers: { 'content-type': 'application/json' }, body: Buffer.from(JSON.stringify({ url: `${origin.url}/gzip` })) });
    assert.equal(post.status, 201, post.body.toString());
    const record = JSON.parse(post.body.toString('utf8')) as { id: string; contentType: string; filename: string; sha256: string; size: number };
    assert.equal(record.contentType, 'application/gzip');
    assert.equal(record.filename, 'notes.txt');
    assert.equal(record.sha256, sha256(GZIPPED));
    const back = await rawRequest(server.url, `/files/${record.id}`);
    assert.equal(back.headers['content-type'], 'application/gzip');
    assert.equal(back.headers['content-encoding'], undefined);
    assert.ok(back.body.equals(GZIPPED));
  });
});

describe('Content-Disposition', () => {
  const cases: ReadonlyArray<{ path: string; type: string; name: string }> = [
    { path: '/cd-utf8', type: 'attachment', name: 'naïve €.txt' },
    { path: '/cd-latin1', type: 'inline', name: 'café.txt' },
    { path: '/cd-utf8-chunked', type: 'attachment', name: '日本.txt' },
  ];
  for (const c of cases) {
    test(`${c.path}: a raw non-ASCII filename goes out as RFC 6266 ASCII + filename*=UTF-8 naming ${c.name}; POST stores that name`, async () => {
      const wire = await rawExchange(server.url, `GET ${via(server, `${origin.url}${c.path}`)} HTTP/1.1\r\nHost: sluice\r\nConnection: close\r\n\r\n`);
      const { head } = splitAnswer(wire);
      const values = headerLines(head, 'content-disposition');
      assert.equal(values.length, 1);
      const d = disposition(values[0] as string);
      assert.equal(d.type, c.type);
      assert.equal(d.filenameStar, c.name);
      assert.match(d.filename ?? '', /^[\x20-\x7e]+$/);
      const post = await rawRequest(server.url, '/fetch', { method: 'POST', headers: { 'content-type': 'application/json' }, body: Buffer.from(JSON.stringify({ url: `${origin.url}${c.path}` })) });
      assert.equal(post.status, 201);
      assert.equal((JSON.parse(post.body.toString('utf8')) as { filename: string }).filename, c.name);
    });
  }

  test('a plain ASCII disposition is relayed exactly as the origin wrote it', async () => {
    const res = await rawRequest(server.url, via(server, `${origin.url}/cd-ascii`));
    assert.equal(res.headers['content-disposition'], "attachment;  filename=report.pdf; filename*=UTF-8''r%C3%A9port.pdf");
  });

  test('an unreadable non-ASCII disposition is dropped for the name the URL gives', async () => {
    const res = await rawRequest(server.url, via(server, `${origin.url}/cd-broken`));
    assert.equal(res.status, 200);
    assert.equal(res.headers['content-disposition'], 'inline; filename="cd-broken"');
  });

  test('no disposition from the origin: inline, named after the last segment of the URL (percent-decoded); none for a directory URL', async () => {
    const plain = await rawRequest(server.url, via(server, `${origin.url}/plain?x=1`));
    assert.equal(plain.headers['content-disposition'], 'inline; filename="plain"');
    const encoded = await rawRequest(server.url, via(server, `${origin.url}/files/na%C3%AFve%20r%C3%A9sum%C3%A9.txt`));
    const d = disposition(String(encoded.headers['content-disposition']));
    assert.equal(d.type, 'inline');
    assert.equal(d.filenameStar, 'naïve résumé.txt');
    const redirected = await rawRequest(server.url, via(server, `${origin.url}/redirect?to=${encodeURIComponent('/plain')}`));
    assert.equal(redirected.headers['content-disposition'], 'inline; filename="plain"', 'named after the URL that answered');
    const dir = await rawRequest(server.url, via(server, `${origin.url}/dir/`));
    assert.equal(dir.headers['content-disposition'], undefined);
  });

  test('other header bytes past ASCII (an obs-text ETag) reach the client byte for byte', async () => {
    const wire = await rawExchange(server.url, `GET ${via(server, `${origin.url}/etag-obs-text`)} HTTP/1.1\r\nHost: sluice\r\nConnection: close\r\n\r\n`);
    const { head, body } = splitAnswer(wire);
    assert.deepEqual(headerLines(head, 'etag'), ['"caf\u00e9"'], 'the single byte 0xE9, not its UTF-8 form');
    assert.ok(body.equals(PLAIN));
  });
});

describe('redirects, userinfo, IPv6', () => {
  for (const code of ['301', '302', '303', '307', '308']) {
    test(`${code} with a relative Location is followed`, async () => {
      const res = await rawRequest(server.url, via(server, `${origin.url}/redirect?code=${code}&to=${encodeURIComponent('plain')}`));
      assert.equal(res.status, 200);
      assert.ok(res.body.equals(PLAIN));
      assert.equal(origin.seen[origin.seen.length - 1]?.path, '/plain');
    });
  }

  test('a 300 is not a redirect to follow: 502', async () => {
    const res = await rawRequest(server.url, via(server, `${origin.url}/redirect?code=300`));
    assert.equal(res.status, 502);
    assert.equal(errorCodeOf(res), 'UPSTREAM_STATUS');
  });

  test('userinfo in the URL becomes Basic credentials, percent-decoded; the fragment is not sent', async () => {
    const target = origin.url.replace('http://', 'http://us%40er:p%3Ass@') + '/auth#frag';
    const res = await rawRequest(server.url, via(server, target));
    assert.equal(res.status, 200);
    assert.equal(res.body.toString(), `Basic ${Buffer.from('us@er:p:ss').toString('base64')}`);
    assert.equal(origin.seen[origin.seen.length - 1]?.path, '/auth');
  });

  test('an IPv6 literal URL (allowed as [::1]) is fetched, Host header bracketed', async (t) => {
    let v6: RawOrigin;
    try {
      v6 = await startRawOrigin('::1');
    } catch {
      t.skip('no IPv6 loopback here');
      return;
    }
    try {
      const res = await rawRequest(server.url, via(server, `${v6.url}/plain`));
      assert.equal(res.status, 200);
      assert.ok(res.body.equals(PLAIN));
      assert.equal(v6.seen[0]?.headers.get('host'), v6.url.slice('http://'.length));
    } finally {
      await v6.close();
    }
  });
});
