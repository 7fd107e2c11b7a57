/**
 * Faults: a /proxy destination that misbehaves. The destination is a raw TCP server on
 * 127.0.0.1 whose behaviour the client picks with an `x-fault` header (an end-to-end header,
 * so sluice forwards it): it resets mid-body, answers 413 before reading the body, reads
 * nothing, reads everything and never answers, stalls mid-answer, or is not listening at all.
 * Each time: the status the issue asks for (502 / 413 / 504), a complete answer on the client's
 * socket which the server then closes (no hang), no outbound socket left open (the destination
 * sees every connection closed), and the usual invariants.
 */
import { strict as assert } from 'node:assert';
import { createServer, type Server, type Socket } from 'node:net';
import { once } from 'node:events';
import { after, before, test } from 'node:test';
import {
  HOST,
  Invariants,
  KiB,
  MULTIPART,
  MiB,
  generatedChunks,
  hasCompleteResponse,
  parseResponses,
  rawExchange,
  requestHead,
  startSluice,
  streamedFileBody,
  tcpEntriesOnPort,
  until,
  type RawExchange,
  type Sluice,
} from './helpers.js';

const PROXY_TIMEOUT_MS = 1_000;

type Fault = 'ok' | 'reset-mid-body' | 'early-413' | 'stall-read' | 'stall-answer' | 'stall-mid-answer' | 'reset-after-body';

interface Destination {
  readonly server: Server;
  readonly port: number;
  /** Connections still open on the destination's side. */
  readonly open: Set<Socket>;
  /** Body bytes each connection received, by fault, in arrival order. */
  readonly received: Array<{ fault: string; bytes: number }>;
}

const EARLY_413_BODY = '{"error":"destination says: too large"}';

/** A destination that misbehaves as the request's `x-fault` header says. */
function startDestination(): Promise<Destination> {
  const open = new Set<Socket>();
  const received: Array<{ fault: string; bytes: number }> = [];
  const server = createServer((socket) => {
    open.add(socket);
    socket.on('close', () => open.delete(socket));
    socket.on('error', () => {});
    let head: Buffer | null = Buffer.alloc(0);
    let fault = 'ok';
    let length: number | null = null;
    let chunked = false;
    let tail = '';
    const entry = { fault, bytes: 0 };
    let answered = false;
    const bodyDone = (): boolean => (chunked ? tail.endsWith('0\r\n\r\n') : length !== null && entry.bytes >= length);
    const onBody = (data: Buffer): void => {
      entry.bytes += data.length;
      tail = (tail + data.toString('latin1', Math.max(0, data.length - 8))).slice(-8);
      if (fault === 'reset-mid-body' && entry.bytes >= 256 * KiB) return void socket.resetAndDestroy();
      if (!bodyDone() || answered) return;
      answered = true;
      if (fault === 'ok') socket.end('HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok');
      else if (fault === 'reset-after-body') socket.resetAndDestroy();
      else if (fault === 'stall-mid-answer') socket.write(`HTTP/1.1 200 OK\r\ncontent-type: application/octet-stream\r\ncontent-length: ${MiB}\r\n\r\n${'x'.repeat(64 * KiB)}`);
      // stall-answer: nothing, ever
    };
    socket.on('data', (data: Buffer) => {
      if (head === null) return onBody(data);
      head = Buffer.concat([head, data]);
      const end = head.indexOf('\r\n\r\n');
      if (end === -1) return;
      const text = head.toString('latin1', 0, end).toLowerCase();
      fault = /\r\nx-fault: *([a-z0-9-]+)/.exec(text)?.[1] ?? 'ok';
      entry.fault = fault;
      received.push(entry);
      const cl = /\r\ncontent-length: *(\d+)/.exec(text);
      length = cl === null ? null : Number(cl[1]);
      chunked = /\r\ntransfer-encoding: *chunked/.test(text);
      const rest = head.subarray(end + 4);
      head = null;
      if (fault === 'early-413') {
        // Answer before reading the body, close our side, and drop what keeps coming.
        answered = true;
        socket.end(`HTTP/1.1 413 Payload Too Large\r\ncontent-type: application/json\r\ncontent-length: ${EARLY_413_BODY.length}\r\nconnection: close\r\n\r\n${EARLY_413_BODY}`);
        return;
      }
      if (fault === 'stall-read') return void socket.pause();
      if (rest.length > 0) onBody(rest);
    });
  });
  return new Promise((resolve) => {
    server.listen(0, HOST, () => {
      const address = server.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      resolve({ server, port, open, received });
    });
  });
}

let dest: Destination;
let server: Sluice;
let inv: Invariants;

before(async () => {
  dest = await startDestination();
  server = await startSluice({ PROXY_TARGET: `http://${HOST}:${dest.port}/sink`, PROXY_TIMEOUT_MS: String(PROXY_TIMEOUT_MS), FSYNC: 'false' });
  inv = await Invariants.create(server);
});
after(async () => {
  await server?.stop();
  for (const s of dest?.open ?? []) s.destroy();
  if (dest?.server.listening === true) {
    dest.server.close();
    await once(dest.server, 'close');
  }
});

/** POST /proxy with a streamed body of `size` bytes (multipart or raw), reading until the server closes. */
async function proxied(fault: Fault, size: number, kind: 'multipart' | 'raw'): Promise<RawExchange> {
  const multipart = streamedFileBody(`proxy-${fault}`, size);
  const length = kind === 'multipart' ? multipart.length : size;
  const chunks = kind === 'multipart' ? multipart.chunks() : generatedChunks(`proxy-${fault}`, size, 64 * KiB);
  return rawExchange(server.port, {
    timeoutMs: 20_000,
    // A complete answer that keeps the connection alive is the end of it; after any other, the
    // server must close the connection itself.
    complete: (received) => {
      if (!hasCompleteResponse(received)) return false;
      const last = parseResponses(received).at(-1);
      return !(last?.headers.get('connection') ?? []).some((v) => /close/i.test(v));
    },
    send: async (io) => {
      const headers = { 'content-type': kind === 'multipart' ? MULTIPART : 'application/octet-stream', 'content-length': length, 'x-fault': fault };
      if (!(await io.write(requestHead('POST', '/proxy', headers)))) return;
      for (const chunk of chunks) if (!(await io.write(chunk))) return;
    },
  });
}

interface Expect {
  readonly status: number;
  readonly code?: string;
  /** The answer must be complete (false: the client must see it broken). */
  readonly complete: boolean;
}

async function attack(fault: Fault, size: number, kind: 'multipart' | 'raw', expected: Expect): Promise<void> {
  const label = `${fault} (${kind}, ${size} bytes)`;
  const ex = await proxied(fault, size, kind);
  const answers = parseResponses(ex.received);
  const last = answers[answers.length - 1];
  assert.ok(last !== undefined, `${label}: no answer at all (connection ${ex.ended} after ${ex.endMs} ms)`);
  assert.equal(last.status, expected.status, `${label}: ${last.status} ${last.body?.toString('latin1').slice(0, 300)}`);
  if (expected.code !== undefined) assert.match(last.body?.toString('utf8') ?? '', new RegExp(`"code":"${expected.code}"`), label);
  assert.equal(last.complete, expected.complete, `${label}: answer ${expected.complete ? 'incomplete' : 'looks complete'} (connection ${ex.ended})`);
  assert.notEqual(ex.ended, 'timeout', `${label}: the server never closed the client connection`);
  // Closed cleanly: the whole answer, then a FIN, never a reset.
  assert.equal(ex.ended, 'end', `${label}: the client connection ended by ${ex.ended}`);
  // A destination that stopped reading cannot see our FIN behind the bytes it never read: let it read now.
  for (const s of dest.open) s.resume();
  console.log(`${label}: ${last.status}, client connection ended by ${ex.ended} ${ex.endMs} ms after connect; client wrote ${ex.written} bytes`);
  // No outbound socket left: the destination sees every connection closed...
  await until(`${label}: destination connections closed (open: ${dest.open.size})`, () => dest.open.size === 0, 5_000);
  // ...and no TCP connection to the destination's port is left in the kernel's table (either end).
  await until(`${label}: TCP entries for the destination port gone`, () => tcpEntriesOnPort(server.pid, dest.port) === 0, 5_000);
  // ...and the server's own descriptors are back (inv.check polls sockets to the baseline).
  await inv.check(label);
}

test('destination healthy (control)', { timeout: 30_000 }, async () => {
  await attack('ok', 1 * MiB, 'multipart', { status: 200, complete: true });
  await attack('ok', 1 * MiB, 'raw', { status: 200, complete: true });
});

test('destination resets mid-body → 502', { timeout: 30_000 }, async () => {
  await attack('reset-mid-body', 8 * MiB, 'multipart', { status: 502, code: 'PROXY_DESTINATION_RESET', complete: true });
  await attack('reset-mid-body', 8 * MiB, 'raw', { status: 502, code: 'PROXY_DESTINATION_RESET', complete: true });
});

test('destination resets after the body, before answering → 502', { timeout: 30_000 }, async () => {
  await attack('reset-after-body', 256 * KiB, 'multipart', { status: 502, complete: true });
});

test('destination answers 413 before reading the body → 413 relayed', { timeout: 30_000 }, async () => {
  await attack('early-413', 32 * MiB, 'multipart', { status: 413, complete: true });
  await attack('early-413', 32 * MiB, 'raw', { status: 413, complete: true });
});

test('destination reads nothing → 504 after PROXY_TIMEOUT_MS', { timeout: 30_000 }, async () => {
  await attack('stall-read', 64 * MiB, 'multipart', { status: 504, code: 'PROXY_TIMEOUT', complete: true });
  await attack('stall-read', 64 * MiB, 'raw', { status: 504, code: 'PROXY_TIMEOUT', complete: true });
});

test('destination reads everything and never answers → 504', { timeout: 30_000 }, async () => {
  await attack('stall-answer', 2 * MiB, 'multipart', { status: 504, code: 'PROXY_TIMEOUT', complete: true });
});

test('destination stalls mid-answer → the client sees a broken answer, never a clean short one', { timeout: 30_000 }, async () => {
  await attack('stall-mid-answer', 256 * KiB, 'multipart', { status: 200, complete: false });
});

test('destination refuses the connection → 502', { timeout: 30_000 }, async () => {
  dest.server.close();
  await once(dest.server, 'close');
  await attack('ok', 4 * MiB, 'multipart', { status: 502, code: 'PROXY_DESTINATION_UNREACHABLE', complete: true });
  await attack('ok', 4 * MiB, 'raw', { status: 502, code: 'PROXY_DESTINATION_UNREACHABLE', complete: true });
});
