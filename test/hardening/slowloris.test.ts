/**
 * Hostile input: slowloris. 200 connections each send a request head one byte a second. While
 * they hang on, /healthz still answers within a second (measured again and again); each of them
 * is cut once HEADERS_TIMEOUT_MS (2 s here, so the test is quick) has passed, give or take
 * Node's once-a-second check; then descriptors and sockets are back to their baseline.
 */
import { strict as assert } from 'node:assert';
import { connect, type Socket } from 'node:net';
import { after, before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { HOST, Invariants, request, socketCount, startSluice, type Sluice } from './helpers.js';

const HEADERS_TIMEOUT_MS = 2_000;
const CONNECTIONS = 200;

let server: Sluice;
let inv: Invariants;

before(async () => {
  server = await startSluice({ HEADERS_TIMEOUT_MS: String(HEADERS_TIMEOUT_MS), FSYNC: 'false' });
  inv = await Invariants.create(server);
});
after(async () => {
  await server?.stop();
});

interface Loris {
  readonly socket: Socket;
  readonly opened: number;
  closedAfter: number | null;
  answer: string;
  sent: number;
}

test(`${CONNECTIONS} slowloris connections: /healthz keeps answering, each is cut at headersTimeout`, { timeout: 60_000 }, async () => {
  const head = `POST /upload HTTP/1.1\r\nHost: ${HOST}\r\nContent-Type: application/octet-stream\r\nX-Slow: ${'s'.repeat(64)}`;
  const lorises: Loris[] = [];
  for (let i = 0; i < CONNECTIONS; i += 1) {
    const socket = connect({ host: HOST, port: server.port });
    const l: Loris = { socket, opened: Date.now(), closedAfter: null, answer: '', sent: 0 };
    socket.setEncoding('latin1');
    socket.on('data', (d: string) => (l.answer += d));
    socket.on('error', () => {});
    socket.on('close', () => (l.closedAfter = Date.now() - l.opened));
    // The first byte at once, so that the clock of headersTimeout and ours start together.
    socket.once('connect', () => {
      socket.write(head[0] as string);
      l.sent = 1;
    });
    lorises.push(l);
  }
  // One byte a second each, until the server cuts them (bounded: the head is far longer than the test).
  const dripper = setInterval(() => {
    for (const l of lorises) {
      if (l.closedAfter !== null || l.socket.destroyed || l.sent >= head.length) continue;
      l.socket.write(head[l.sent] as string);
      l.sent += 1;
    }
  }, 1_000);
  const latencies: number[] = [];
  try {
    await sleep(300);
    const peakSockets = socketCount(server.pid);
    // Probe /healthz every 250 ms for as long as the attack lasts.
    const deadline = Date.now() + HEADERS_TIMEOUT_MS + 3_500;
    while (Date.now() < deadline && lorises.some((l) => l.closedAfter === null)) {
      const t = Date.now();
      const res = await request(server.url, '/healthz', { timeoutMs: 5_000 });
      latencies.push(Date.now() - t);
      assert.equal(res.status, 200);
      await sleep(250);
    }
    const open = lorises.filter((l) => l.closedAfter === null).length;
    const cut = lorises.map((l) => l.closedAfter ?? Infinity).sort((a, b) => a - b);
    const answered408 = lorises.filter((l) => l.answer.startsWith('HTTP/1.1 408')).length;
    console.log(
      `slowloris: server held ${peakSockets} sockets at the peak; /healthz latency max ${Math.max(...latencies)} ms over ${latencies.length} probes; ` +
        `connections cut after ${cut[0]}..${cut[cut.length - 1]} ms; ${answered408} got a 408; ${open} still open`,
    );
    assert.ok(peakSockets >= CONNECTIONS, `the server held only ${peakSockets} sockets: the attack did not land`);
    assert.ok(Math.max(...latencies) < 1_000, `/healthz took ${Math.max(...latencies)} ms under attack`);
    assert.equal(open, 0, `${open} slow connections were never cut`);
    // Cut at headersTimeout: not before it, and no later than Node's 1 s check interval (plus slack) after it.
    assert.ok((cut[0] as number) >= HEADERS_TIMEOUT_MS - 100, `a connection was cut after ${cut[0]} ms, before headersTimeout`);
    assert.ok((cut[cut.length - 1] as number) <= HEADERS_TIMEOUT_MS + 2_500, `a connection was cut only after ${cut[cut.length - 1]} ms`);
  } finally {
    clearInterval(dripper);
    for (const l of lorises) l.socket.destroy();
  }
  await inv.check('slowloris');
});
