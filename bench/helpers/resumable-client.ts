/**
 * The resumable-upload client of the benchmarks (tus 1.0.0 over node:http), in its own process:
 *
 *   node resumable-client.js --port P --bytes N --mode one            # creation, then one PATCH of every byte
 *   node resumable-client.js --port P --bytes N --mode cut --cuts 5   # the same PATCH cut 5 times at random offsets
 *   node resumable-client.js --port P --bytes N --mode chunks --chunk 1048576
 *
 * A cut here is a connection that goes silent (the client stops sending and is never heard from
 * again, its socket left open): the hard case, where the server has not noticed anything. The
 * client then does what tus-js-client does: a HEAD on a new connection, and a PATCH from the offset
 * it names. The bytes are the benchmarks' cycled random blocks, addressed by position so that a
 * resumed PATCH sends exactly the bytes the interrupted one did.
 *
 * Prints one JSON line: { requests: [{ status, body, startedAt, endedAt }], stats: {...} } with the
 * final PATCH's answer as the only request (its body: the upload's id and offset as JSON).
 */
import { createHash } from 'node:crypto';
import { Agent, request, type ClientRequest, type IncomingMessage } from 'node:http';
import { cutOffsets } from '../lib/cut-offsets.js';
import { drainOrClose } from '../lib/drain.js';
import { BLOCK_BYTES, RingSource } from '../lib/pattern.js';

function argValue(name: string, fallback?: string): string {
  const i = process.argv.indexOf(name);
  const v = i === -1 ? fallback : process.argv[i + 1];
  if (v === undefined) throw new Error(`resumable-client: ${name} is required`);
  return v;
}

function epochMs(): number {
  return performance.timeOrigin + performance.now();
}

/** The cycled blocks, addressed by absolute position. */
const BLOCKS: readonly Buffer[] = (() => {
  const ring = new RingSource();
  return Array.from({ length: 8 }, () => ring.next(BLOCK_BYTES));
})();

/** The bytes [at, at + n) of the stream, n at most up to the next block boundary. */
function bytesAt(at: number, n: number): Buffer {
  const block = BLOCKS[Math.floor(at / BLOCK_BYTES) % BLOCKS.length] as Buffer;
  const start = at % BLOCK_BYTES;
  return block.subarray(start, Math.min(BLOCK_BYTES, start + n));
}

interface Answer {
  readonly status: number;
  readonly headers: IncomingMessage['headers'];
  readonly body: string;
}

function answerOf(req: ClientRequest): Promise<Answer> {
  return new Promise((resolve, reject) => {
    req.once('error', reject);
    req.once('response', (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.once('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
      res.once('error', reject);
    });
  });
}

const TUS = { 'tus-resumable': '1.0.0' };

async function create(port: number, bytes: number, agent: Agent | false): Promise<string> {
  const req = request({ host: '127.0.0.1', port, method: 'POST', path: '/uploads', agent, headers: { ...TUS, 'upload-length': String(bytes), 'content-length': '0' } });
  req.end();
  const a = await answerOf(req);
  if (a.status !== 201 || typeof a.headers.location !== 'string') throw new Error(`creation: ${a.status} ${a.body}`);
  return a.headers.location;
}

async function head(port: number, path: string): Promise<number> {
  const req = request({ host: '127.0.0.1', port, method: 'HEAD', path, agent: false, headers: TUS });
  req.end();
  const a = await answerOf(req);
  if (a.status !== 200) throw new Error(`HEAD: ${a.status} ${a.body}`);
  return Number(a.headers['upload-offset']);
}

interface Patch {
  readonly req: ClientRequest;
  readonly answer: Promise<Answer>;
  /** Resolves when the first body bytes are in the socket. */
  readonly firstByte: Promise<number>;
  /** Bytes written into the socket. */
  written: number;
}

/**
 * A PATCH of [from, to) declared as [from, total): with `to < total` it stops sending at `to`
 * and leaves the connection open and silent (the cut).
 */
function patch(port: number, path: string, from: number, to: number, total: number, agent: Agent | false): Patch {
  const req = request({
    host: '127.0.0.1',
    port,
    method: 'PATCH',
    path,
    agent,
    headers: { ...TUS, 'content-type': 'application/offset+octet-stream', 'upload-offset': String(from), 'content-length': String(total - from) },
  });
  const answer = answerOf(req);
  answer.catch(() => {});
  let resolveFirst: (t: number) => void = () => {};
  const firstByte = new Promise<number>((r) => (resolveFirst = r));
  const p: Patch = { req, answer, firstByte, written: 0 };
  void (async () => {
    let at = from;
    let first = true;
    while (at < to && !req.destroyed) {
      const piece = bytesAt(at, to - at);
      const ok = req.write(piece, first ? () => resolveFirst(epochMs()) : undefined);
      first = false;
      at += piece.length;
      p.written += piece.length;
      if (!ok) await drainOrClose(req);
    }
    if (to === total && !req.destroyed) req.end();
  })().catch(() => req.destroy());
  return p;
}

async function main(): Promise<void> {
  const port = Number(argValue('--port'));
  const bytes = Number(argValue('--bytes'));
  const mode = argValue('--mode');
  const startedAt = epochMs();
  let final: Answer | null = null;
  const stats: Record<string, unknown> = { mode, bytes };
  if (mode === 'one') {
    const path = await create(port, bytes, false);
    const p = patch(port, path, 0, bytes, bytes, false);
    final = await p.answer;
    stats.path = path;
    stats.bytesSent = p.written;
  } else if (mode === 'cut') {
    const path = await create(port, bytes, false);
    const cuts = cutOffsets(Number(argValue('--seed', '1')), Number(argValue('--cuts', '5')), bytes, 0.02, 0.96);
    let offset = 0;
    let sent = 0;
    let reconnect: number | null = null;
    const reconnectMs: Promise<number>[] = [];
    const resumedAt: number[] = [];
    const stalled: ClientRequest[] = [];
    for (const cut of [...cuts, bytes]) {
      if (cut <= offset) continue;
      const p = patch(port, path, offset, cut, bytes, false);
      // From the reconnect (the HEAD's new connection) to the resumed PATCH's first body byte in the socket.
      if (reconnect !== null) {
        const since = reconnect;
        reconnectMs.push(p.firstByte.then((t) => t - since));
      }
      if (cut === bytes) {
        final = await p.answer;
        sent += p.written;
        break;
      }
      // Send up to the cut, then go silent, the connection left open.
      while (p.written < cut - offset && !p.req.destroyed) await new Promise((r) => setTimeout(r, 1));
      sent += p.written;
      stalled.push(p.req);
      await new Promise((r) => setTimeout(r, 50));
      reconnect = epochMs();
      offset = await head(port, path);
      resumedAt.push(offset);
    }
    for (const s of stalled) s.destroy();
    stats.path = path;
    stats.cuts = cuts;
    stats.resumedAt = resumedAt;
    stats.bytesSent = sent;
    stats.reconnectMs = (await Promise.all(reconnectMs)).map((ms) => Math.round(ms * 10) / 10);
  } else if (mode === 'chunks') {
    const chunk = Number(argValue('--chunk', String(BLOCK_BYTES)));
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    const path = await create(port, bytes, agent);
    let offset = 0;
    let requests = 0;
    for (;;) {
      const to = Math.min(bytes, offset + chunk);
      const req = request({
        host: '127.0.0.1',
        port,
        method: 'PATCH',
        path,
        agent,
        headers: { ...TUS, 'content-type': 'application/offset+octet-stream', 'upload-offset': String(offset), 'content-length': String(to - offset) },
      });
      const answer = answerOf(req);
      for (let at = offset; at < to; ) {
        const piece = bytesAt(at, to - at);
        if (!req.write(piece)) await drainOrClose(req);
        at += piece.length;
      }
      req.end();
      final = await answer;
      requests += 1;
      if (final.status !== 204) break;
      offset = Number(final.headers['upload-offset']);
      if (offset >= bytes) break;
    }
    agent.destroy();
    stats.path = path;
    stats.patches = requests;
    stats.bytesSent = bytes;
  } else {
    throw new Error(`unknown --mode ${mode}`);
  }
  const endedAt = epochMs();
  // After the clock: the sha256 the server must have stored (only where a resumption could go wrong).
  if (mode === 'cut') {
    const hash = createHash('sha256');
    for (let at = 0; at < bytes; ) {
      const piece = bytesAt(at, bytes - at);
      hash.update(piece);
      at += piece.length;
    }
    stats.sha256 = hash.digest('hex');
  }
  if (final === null) throw new Error('no final answer');
  const last: Answer = final;
  const body = JSON.stringify({ status: last.status, offset: Number(last.headers['upload-offset']), stats });
  process.stdout.write(`${JSON.stringify({ requests: [{ status: last.status, body, startedAt, endedAt }] })}\n`);
}

main().catch((err: unknown) => {
  process.stderr.write(`resumable-client: ${err instanceof Error ? err.stack ?? err.message : String(err)}\n`);
  process.exit(1);
});
