/**
 * Faults: a /fetch origin that misbehaves. A raw TCP origin on 127.0.0.1 (allowed through the
 * SSRF guard with FETCH_ALLOW) resets mid-body (with Content-Length, chunked, close-delimited),
 * ends a chunked body without its last chunk, stalls before its headers or mid-body, or lies
 * about Content-Length (declares fewer bytes than it sends, or more). The client of
 * `GET /fetch` must never see a clean short file (a complete 200 with fewer or other bytes than
 * the origin's whole body); `POST /fetch` must store nothing. No origin connection may be left
 * open, and the usual invariants hold.
 */
import { strict as assert } from 'node:assert';
import { once } from 'node:events';
import { createServer, type Server, type Socket } from 'node:net';
import { after, before, test } from 'node:test';
import {
  HOST,
  Invariants,
  KiB,
  errorCodeOf,
  generated,
  parseResponses,
  rawExchange,
  request,
  requestHead,
  sha256,
  startSluice,
  tcpEntriesOnPort,
  until,
  type Sluice,
} from './helpers.js';

const FETCH_TIMEOUT_MS = 1_000;
const IDLE_TIMEOUT_MS = 2_000;
const FULL = 512 * KiB;
const BODY = generated('origin-body', FULL);

interface Origin {
  readonly server: Server;
  readonly port: number;
  readonly open: Set<Socket>;
}

/** Writes `data` as chunked-coding frames of 16 KiB. */
function chunkedFrames(data: Buffer): Buffer {
  const out: Buffer[] = [];
  for (let i = 0; i < data.length; i += 16 * KiB) {
    const piece = data.subarray(i, i + 16 * KiB);
    out.push(Buffer.from(`${piece.length.toString(16)}\r\n`), piece, Buffer.from('\r\n'));
  }
  return Buffer.concat(out);
}

/** The origin's behaviour, by path. Every answer declares or carries the first bytes of BODY. */
function behave(path: string, socket: Socket): void {
  const head = (h: string): string => `HTTP/1.1 200 OK\r\ncontent-type: application/octet-stream\r\n${h}\r\n`;
  const part = BODY.subarray(0, 128 * KiB);
  switch (path) {
    case '/ok-cl':
      return void socket.end(Buffer.concat([Buffer.from(head(`content-length: ${FULL}\r\nconnection: close\r\n`)), BODY]));
    case '/ok-chunked':
      return void socket.end(Buffer.concat([Buffer.from(head('transfer-encoding: chunked\r\nconnection: close\r\n')), chunkedFrames(BODY), Buffer.from('0\r\n\r\n')]));
    case '/reset-cl':
      socket.write(Buffer.concat([Buffer.from(head(`content-length: ${FULL}\r\n`)), part]));
      return void setTimeout(() => socket.resetAndDestroy(), 50);
    case '/reset-chunked':
      socket.write(Buffer.concat([Buffer.from(head('transfer-encoding: chunked\r\n')), chunkedFrames(part)]));
      return void setTimeout(() => socket.resetAndDestroy(), 50);
    case '/reset-close-delimited':
      // No length at all: only the connection's end delimits the body, and a reset is no end.
      socket.write(Buffer.concat([Buffer.from(head('connection: close\r\n')), part]));
      return void setTimeout(() => socket.resetAndDestroy(), 50);
    case '/fin-chunked':
      // A clean FIN, but the chunked body never got its last chunk.
      return void socket.end(Buffer.concat([Buffer.from(head('transfer-encoding: chunked\r\n')), chunkedFrames(part)]));
    case '/stall-headers':
      return; // never answers
    case '/stall-cl':
      return void socket.write(Buffer.concat([Buffer.from(head(`content-length: ${FULL}\r\n`)), part]));
    case '/stall-chunked':
      return void socket.write(Buffer.concat([Buffer.from(head('transfer-encoding: chunked\r\n')), chunkedFrames(part)]));
    case '/lie-shorter':
      // Declares 128 KiB, sends all 512 KiB, closes cleanly.
      return void socket.end(Buffer.concat([Buffer.from(head(`content-length: ${part.length}\r\nconnection: close\r\n`)), BODY]));
    case '/lie-longer':
      // Declares 512 KiB, sends 128 KiB, closes cleanly.
      return void socket.end(Buffer.concat([Buffer.from(head(`content-length: ${FULL}\r\nconnection: close\r\n`)), part]));
    default:
      return void socket.end('HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n');
  }
}

function startOrigin(): Promise<Origin> {
  const open = new Set<Socket>();
  const server = createServer((socket) => {
    open.add(socket);
    socket.on('close', () => open.delete(socket));
    socket.on('error', () => {});
    let head = '';
    const onData = (d: Buffer): void => {
      head += d.toString('latin1');
      const end = head.indexOf('\r\n\r\n');
      if (end === -1) return;
      socket.off('data', onData);
      socket.resume(); // keep reading (and so seeing the fetcher's FIN)
      behave(/^GET (\S+) /.exec(head)?.[1] ?? '/', socket);
    };
    socket.on('data', onData);
  });
  return new Promise((resolve) =>
    server.listen(0, HOST, () => {
      const address = server.address();
      resolve({ server, port: typeof address === 'object' && address !== null ? address.port : 0, open });
    }),
  );
}

let origin: Origin;
let server: Sluice;
let inv: Invariants;

before(async () => {
  origin = await startOrigin();
  server = await startSluice({ FETCH_ALLOW: HOST, FETCH_TIMEOUT_MS: String(FETCH_TIMEOUT_MS), IDLE_TIMEOUT_MS: String(IDLE_TIMEOUT_MS), FSYNC: 'false' });
  inv = await Invariants.create(server);
});
after(async () => {
  await server?.stop();
  for (const s of origin?.open ?? []) s.destroy();
  if (origin?.server.listening === true) {
    origin.server.close();
    await once(origin.server, 'close');
  }
});

const url = (path: string): string => `http://${HOST}:${origin.port}${path}`;

type Seen = { kind: 'clean'; body: Buffer } | { kind: 'broken'; got: number } | { kind: 'error'; status: number; code: string | null };

/** GET /fetch through a raw socket: what exactly the client saw. */
async function getThrough(path: string): Promise<Seen> {
  const ex = await rawExchange(server.port, {
    timeoutMs: 15_000,
    send: requestHead('GET', `/fetch?url=${encodeURIComponent(url(path))}`, { connection: 'close' }),
  });
  assert.notEqual(ex.ended, 'timeout', `GET /fetch ${path}: the server never ended the answer`);
  const last = parseResponses(ex.received).at(-1);
  assert.ok(last !== undefined, `GET /fetch ${path}: no answer (${ex.ended})`);
  if (last.status !== 200) return { kind: 'error', status: last.status, code: errorCodeOf({ body: last.body ?? Buffer.alloc(0) }) };
  return last.complete && last.body !== null ? { kind: 'clean', body: last.body } : { kind: 'broken', got: last.body?.length ?? 0 };
}

async function afterEach(label: string): Promise<void> {
  await until(`${label}: origin connections closed (open: ${origin.open.size})`, () => origin.open.size === 0, 8_000);
  await until(`${label}: TCP entries for the origin port gone`, () => tcpEntriesOnPort(server.pid, origin.port) === 0, 5_000);
  await inv.check(label);
}

test('healthy origin (control): clean 200 with the whole body, and POST /fetch stores it', { timeout: 30_000 }, async () => {
  for (const path of ['/ok-cl', '/ok-chunked']) {
    const seen = await getThrough(path);
    assert.equal(seen.kind, 'clean', `${path}: ${JSON.stringify(seen)}`);
    if (seen.kind === 'clean') assert.equal(sha256(seen.body), sha256(BODY));
    const res = await request(server.url, '/fetch', { method: 'POST', headers: { 'content-type': 'application/json' }, body: Buffer.from(JSON.stringify({ url: url(path) })) });
    assert.equal(res.status, 201, res.body.toString());
    const record = JSON.parse(res.body.toString()) as { id: string; sha256: string };
    assert.equal(record.sha256, sha256(BODY));
    inv.keep(record.id);
    await afterEach(`control ${path}`);
  }
});

const FAULTS: ReadonlyArray<{ path: string; what: string }> = [
  { path: '/reset-cl', what: 'resets mid-body (Content-Length)' },
  { path: '/reset-chunked', what: 'resets mid-body (chunked)' },
  { path: '/reset-close-delimited', what: 'resets mid-body (close-delimited)' },
  { path: '/fin-chunked', what: 'closes a chunked body without its last chunk' },
  { path: '/stall-headers', what: 'never sends its headers' },
  { path: '/stall-cl', what: 'stalls mid-body (Content-Length)' },
  { path: '/stall-chunked', what: 'stalls mid-body (chunked)' },
  { path: '/lie-shorter', what: 'declares a shorter Content-Length than it sends' },
  { path: '/lie-longer', what: 'declares a longer Content-Length than it sends' },
];

for (const { path, what } of FAULTS) {
  test(`origin ${what}: GET /fetch is never a clean short file, POST /fetch stores nothing`, { timeout: 40_000 }, async () => {
    const seen = await getThrough(path);
    console.log(`GET /fetch ${path}: ${JSON.stringify(seen.kind === 'clean' ? { kind: 'clean', bytes: seen.body.length } : seen)}`);
    assert.notEqual(seen.kind, 'clean', `GET /fetch ${path}: the client got a clean ${seen.kind === 'clean' ? seen.body.length : 0}-byte file`);
    if (seen.kind === 'error') assert.ok(seen.status >= 500 && seen.status <= 504, `GET /fetch ${path}: ${seen.status}`);
    if (path === '/stall-headers') assert.deepEqual(seen, { kind: 'error', status: 504, code: 'UPSTREAM_TIMEOUT' });
    await afterEach(`GET /fetch ${path}`);

    const res = await request(server.url, '/fetch', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: Buffer.from(JSON.stringify({ url: url(path) })),
      timeoutMs: 15_000,
    });
    console.log(`POST /fetch ${path}: ${res.status} ${errorCodeOf(res)}`);
    assert.notEqual(res.status, 201, `POST /fetch ${path} stored a file: ${res.body.toString()}`);
    assert.ok(res.status >= 400, `POST /fetch ${path}: ${res.status}`);
    assert.notEqual(errorCodeOf(res), null, 'a JSON error answer');
    await afterEach(`POST /fetch ${path}`);
  });
}
