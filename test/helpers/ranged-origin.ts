import { once } from 'node:events';
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { drainOrClose, generateBytes, sha256Of } from './origin.js';

/**
 * A test origin for resumable fetching: `GET /file?size=N&seed=S&...` serves N seeded bytes
 * (generateBytes, so tests know every byte) with byte ranges, and misbehaves on demand. Options,
 * as query parameters:
 *
 * | parameter | effect |
 * |---|---|
 * | `breaks=o1,o2,...` | a connection that reaches absolute offset `o` breaks there (each offset once; repeat one to break the retries at the same byte) |
 * | `how=reset\|close\|stall` | how it breaks: TCP reset (default), a clean close (a short body), or silence with the connection open |
 * | `etag=strong\|weak\|none\|changing` | `"S-N"` (default); `W/"S-N"`; none; a new strong tag (and new bytes) on every request |
 * | `lastmod=old\|recent\|none` | Last-Modified a year before Date (default, a strong validator), equal to Date (weak), absent |
 * | `ranges=yes\|refuse\|none` | honour Range (default); answer `200` to any Range while announcing `Accept-Ranges: bytes`; no Accept-Ranges, Range ignored |
 * | `lie=start\|total` | a 206's Content-Range starts one byte late / states another total (the bytes sent are right) |
 * | `busy=K` | answer the first K ranged requests with 503 |
 * | `rate=B` | at most B bytes per second on each connection |
 * | `repr=good\|bad`, `cdigest=good\|bad` | send `Repr-Digest` (any answer) / `Content-Digest` (200 only) with the right or a wrong sha-256 |
 *
 * State (breaks used, requests counted) is per `key` (default: the seed), so one origin serves
 * many tests.
 */
export interface RangedOrigin {
  readonly url: string;
  /** Every request seen, in arrival order. */
  readonly requests: RangedRequest[];
  /** Connections open now and the most open at once (for ranged parallel fetches). */
  readonly open: { now: number; max: number };
  /** `/file?...` URL for these options. */
  file(options: Record<string, string | number>): string;
  close(): Promise<void>;
}

export interface RangedRequest {
  readonly key: string;
  readonly headers: IncomingHttpHeaders;
  status: number;
  /** Body bytes handed to the socket. */
  written: number;
}

interface KeyState {
  requests: number;
  rangedRequests: number;
  usedBreaks: number;
}

const CHUNK = 16 * 1024;
const OLD_DATE = 'Tue, 01 Jul 2025 00:00:00 GMT';

export async function startRangedOrigin(): Promise<RangedOrigin> {
  const requests: RangedRequest[] = [];
  const states = new Map<string, KeyState>();
  const open = { now: 0, max: 0 };
  const sockets = new Set<Socket>();
  const server: Server = createServer((req, res) => {
    open.now += 1;
    open.max = Math.max(open.max, open.now);
    res.once('close', () => (open.now -= 1));
    void serve(req, res, requests, states).catch(() => res.destroy());
  });
  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  const url = `http://127.0.0.1:${port}`;
  return {
    url,
    requests,
    open,
    file: (options) => `${url}/file?${new URLSearchParams(Object.entries(options).map(([k, v]): [string, string] => [k, String(v)]))}`,
    close: async () => {
      for (const s of sockets) s.destroy();
      server.close();
      await once(server, 'close');
    },
  };
}

async function serve(req: IncomingMessage, res: ServerResponse, requests: RangedRequest[], states: Map<string, KeyState>): Promise<void> {
  const url = new URL(req.url ?? '/', 'http://origin.test');
  const q = (name: string, fallback: string): string => url.searchParams.get(name) ?? fallback;
  const size = Number(q('size', '1024'));
  const baseSeed = q('seed', 'seed');
  const key = q('key', baseSeed);
  const state = states.get(key) ?? { requests: 0, rangedRequests: 0, usedBreaks: 0 };
  states.set(key, state);
  state.requests += 1;
  const entry: RangedRequest = { key, headers: req.headers, status: 0, written: 0 };
  requests.push(entry);
  if (url.pathname !== '/file') {
    entry.status = 404;
    return void res.writeHead(404).end();
  }

  const etagMode = q('etag', 'strong');
  // A changing resource is other bytes under another tag at every request.
  const seed = etagMode === 'changing' ? `${baseSeed}-v${state.requests}` : baseSeed;
  const tag = `"${seed}-${size}"`;
  const date = new Date().toUTCString();
  const headers: Record<string, string> = { 'content-type': 'application/octet-stream', date };
  if (etagMode === 'strong' || etagMode === 'changing') headers.etag = tag;
  if (etagMode === 'weak') headers.etag = `W/${tag}`;
  const lastmod = q('lastmod', 'old');
  if (lastmod === 'old') headers['last-modified'] = OLD_DATE;
  if (lastmod === 'recent') headers['last-modified'] = date;
  const ranges = q('ranges', 'yes');
  if (ranges !== 'none') headers['accept-ranges'] = 'bytes';
  const digest = (good: boolean): string => `sha-256=:${Buffer.from(good ? sha256Of(seed, 0, size) : sha256Of(`${seed}-other`, 0, size), 'hex').toString('base64')}:`;
  if (q('repr', '') !== '') headers['repr-digest'] = digest(q('repr', '') === 'good');

  let start = 0;
  let end = size - 1;
  let status = 200;
  const range = /^bytes=(\d+)-(\d*)$/.exec(req.headers.range ?? '');
  if (range !== null && ranges === 'yes' && ifRangeHolds(req.headers['if-range'] as string | undefined, headers)) {
    state.rangedRequests += 1;
    if (state.rangedRequests <= Number(q('busy', '0'))) {
      entry.status = 503;
      return void res.writeHead(503, { 'content-length': '0' }).end();
    }
    start = Number(range[1]);
    end = range[2] === '' ? size - 1 : Math.min(Number(range[2]), size - 1);
    if (start > end) {
      entry.status = 416;
      return void res.writeHead(416, { 'content-range': `bytes */${size}` }).end();
    }
    status = 206;
    const lie = q('lie', '');
    headers['content-range'] = `bytes ${lie === 'start' ? start + 1 : start}-${end}/${lie === 'total' ? size + 1 : size}`;
  } else if (q('cdigest', '') !== '') {
    headers['content-digest'] = digest(q('cdigest', '') === 'good');
  }
  headers['content-length'] = String(end - start + 1);
  entry.status = status;
  res.writeHead(status, headers);

  // The first offset of the list not yet used that this answer reaches breaks it.
  const breaks = q('breaks', '') === '' ? [] : q('breaks', '').split(',').map(Number);
  const next = breaks[state.usedBreaks];
  const breakAt = next !== undefined && next >= start && next <= end ? next : null;
  if (breakAt !== null) state.usedBreaks += 1;
  const stop = breakAt ?? end + 1;
  const rate = Number(q('rate', '0'));
  const began = performance.now();
  let sent = 0;
  for (const chunk of generateBytes(seed, start, stop - start)) {
    for (let at = 0; at < chunk.length; at += CHUNK) {
      if (res.destroyed) return;
      const piece = chunk.subarray(at, at + CHUNK);
      entry.written += piece.length;
      sent += piece.length;
      if (!res.write(piece)) await drainOrClose(res);
      if (rate > 0) {
        const ahead = (sent / rate) * 1000 - (performance.now() - began);
        if (ahead > 1) await sleep(ahead);
      }
    }
  }
  if (breakAt === null) return void res.end();
  await breakConnection(res, q('how', 'reset'));
}

/** RFC 9110 13.1.5 as an honest origin evaluates it: a strong ETag or the exact Last-Modified. */
function ifRangeHolds(value: string | undefined, headers: Record<string, string>): boolean {
  if (value === undefined) return true;
  if (value.startsWith('"')) return headers.etag !== undefined && value === headers.etag;
  return headers['last-modified'] !== undefined && value === headers['last-modified'];
}

async function breakConnection(res: ServerResponse, how: string): Promise<void> {
  const socket = res.socket as Socket;
  if (how === 'stall') return; // silent with the connection open, until the fetcher gives up
  // Let the bytes leave first: a reset discards whatever the kernel still holds to send.
  if (socket.writableLength > 0) await Promise.race([once(socket, 'drain').catch(() => {}), sleep(2_000)]);
  await sleep(30);
  if (how === 'close') socket.end();
  else socket.resetAndDestroy();
}

/** sha256 of the bytes a `/file` with this seed and size serves (not for `etag=changing`). */
export function fileSha256(seed: string, size: number): string {
  return sha256Of(seed, 0, size);
}
