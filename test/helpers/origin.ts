import { createCipheriv, createHash } from 'node:crypto';
import { once } from 'node:events';
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

/**
 * A test origin on 127.0.0.1 serving generated bodies and misbehaving on demand:
 *
 * | path | answer |
 * |---|---|
 * | `/data?size=N&seed=S[&length=0][&name=F]` | N pseudo-random bytes (seeded), streamed with backpressure; `Range: bytes=a-b` → 206; `length=0` → chunked; `name` → Content-Disposition |
 * | `/redirect?n=K&to=PATH` | 302 to `/redirect?n=K-1...` (relative), the last one to PATH |
 * | `/loop` | 302 to itself, forever |
 * | `/reset?size=N&after=M` | Content-Length N, M bytes, then a TCP reset |
 * | `/short?size=N&claim=C` | Content-Length C, only N < C bytes, then a clean close |
 * | `/long?size=N&claim=C` | Content-Length C, then N > C bytes, then a clean close |
 * | `/stall` | never answers |
 * | `/stall-body?size=N&after=M` | Content-Length N, M bytes, then silence with the connection open |
 * | `/status?code=404` | that status |
 */
export interface Origin {
  readonly url: string;
  readonly port: number;
  /** Every request seen, in arrival order. */
  readonly requests: OriginRequest[];
  close(): Promise<void>;
}

export interface OriginRequest {
  readonly path: string;
  readonly headers: IncomingHttpHeaders;
  /** Body bytes handed to the socket so far. */
  written: number;
  /** True when the connection closed before the response was complete (the fetcher hung up). */
  closedEarly: boolean;
  /** Resolves once the connection of this request has closed. */
  readonly closed: Promise<void>;
}

const CHUNK = 64 * 1024;
const ZEROS = Buffer.alloc(CHUNK);

/**
 * `length` bytes of the stream seeded by `seed`, from offset `start`: AES-128-CTR keystream, so
 * any offset is reachable at once (for ranges) and tens of MiB cost milliseconds.
 */
export function* generateBytes(seed: string, start: number, length: number): Generator<Buffer> {
  const key = createHash('sha256').update(seed).digest().subarray(0, 16);
  const iv = Buffer.alloc(16);
  iv.writeBigUInt64BE(BigInt(Math.floor(start / 16)), 8);
  const cipher = createCipheriv('aes-128-ctr', key, iv);
  let skip = start % 16;
  let left = length;
  while (left > 0) {
    let block = cipher.update(ZEROS);
    if (skip > 0) {
      block = block.subarray(skip);
      skip = 0;
    }
    if (block.length > left) block = block.subarray(0, left);
    left -= block.length;
    yield block;
  }
}

export function sha256Of(seed: string, start: number, length: number): string {
  const hash = createHash('sha256');
  for (const chunk of generateBytes(seed, start, length)) hash.update(chunk);
  return hash.digest('hex');
}

export async function startOrigin(): Promise<Origin> {
  const requests: OriginRequest[] = [];
  const sockets = new Set<Socket>();
  const server: Server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://origin.test');
    const entry: OriginRequest = {
      path: url.pathname + url.search,
      headers: req.headers,
      written: 0,
      closedEarly: false,
      closed: new Promise<void>((resolve) => res.once('close', () => resolve())),
    };
    res.once('close', () => {
      if (!res.writableFinished) entry.closedEarly = true;
    });
    requests.push(entry);
    void route(url, req, res, entry).catch(() => res.destroy());
  });
  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    requests,
    close: async () => {
      for (const s of sockets) s.destroy();
      server.close();
      await once(server, 'close');
    },
  };
}

function num(url: URL, name: string, fallback: number): number {
  const v = url.searchParams.get(name);
  return v === null ? fallback : Number(v);
}

async function route(url: URL, req: IncomingMessage, res: ServerResponse, entry: OriginRequest): Promise<void> {
  const seed = url.searchParams.get('seed') ?? 'seed';
  switch (url.pathname) {
    case '/data':
      return serveData(url, req, res, entry, seed);
    case '/redirect': {
      const n = num(url, 'n', 1);
      const to = url.searchParams.get('to') ?? '/data?size=10';
      const location = n > 1 ? `/redirect?n=${n - 1}&to=${encodeURIComponent(to)}` : to;
      res.writeHead(302, { location, 'content-type': 'text/plain' });
      return void res.end('moved\n');
    }
    case '/loop':
      res.writeHead(302, { location: '/loop' });
      return void res.end();
    case '/reset': {
      const size = num(url, 'size', 1024 * 1024);
      const after = num(url, 'after', size / 2);
      res.writeHead(200, { 'content-length': String(size), 'content-type': 'application/octet-stream' });
      await writeBody(res, entry, generateBytes(seed, 0, after));
      // Let the bytes leave before the RST (which would otherwise discard them in the kernel).
      await new Promise((r) => setTimeout(r, 50));
      return void res.socket?.resetAndDestroy();
    }
    case '/short':
    case '/long': {
      const size = num(url, 'size', 1024);
      const claim = num(url, 'claim', size);
      const socket = res.socket as Socket;
      // Raw bytes: Node's own server would refuse to send a body that contradicts its length.
      socket.write(`HTTP/1.1 200 OK\r\ncontent-type: application/octet-stream\r\ncontent-length: ${claim}\r\nconnection: close\r\n\r\n`);
      const chunks = [...generateBytes(seed, 0, size)];
      // 64 KiB writes, so the declared end of a lying `/long` falls inside one of them, as when
      // a file grows under a server that sent its old length.
      for (const chunk of chunks) {
        entry.written += chunk.length;
        if (!socket.write(chunk)) await once(socket, 'drain');
      }
      return void socket.end();
    }
    case '/stall':
      return; // the connection stays open, silent, until the client gives up
    case '/stall-body': {
      const size = num(url, 'size', 1024 * 1024);
      const after = num(url, 'after', size / 2);
      res.writeHead(200, { 'content-length': String(size), 'content-type': 'application/octet-stream' });
      await writeBody(res, entry, generateBytes(seed, 0, after));
      return; // the rest never comes; the connection stays open until the client gives up
    }
    case '/status': {
      const code = num(url, 'code', 404);
      res.writeHead(code, { 'content-type': 'text/plain' });
      return void res.end(`status ${code}\n`);
    }
    default:
      res.writeHead(404);
      res.end();
  }
}

async function serveData(url: URL, req: IncomingMessage, res: ServerResponse, entry: OriginRequest, seed: string): Promise<void> {
  const size = num(url, 'size', 1024);
  const withLength = url.searchParams.get('length') !== '0';
  const name = url.searchParams.get('name');
  const headers: Record<string, string> = {
    'content-type': 'application/octet-stream',
    etag: `"${seed}-${size}"`,
    'last-modified': 'Tue, 01 Jul 2025 00:00:00 GMT',
    'accept-ranges': 'bytes',
    // Not for relaying: a hop-by-hop header and one our relay does not pass.
    'keep-alive': 'timeout=5',
    'x-origin-secret': 'do-not-relay',
  };
  if (name !== null) headers['content-disposition'] = `attachment; filename="${name}"`;
  let start = 0;
  let length = size;
  let status = 200;
  const range = /^bytes=(\d+)-(\d*)$/.exec(req.headers.range ?? '');
  if (range !== null) {
    start = Number(range[1]);
    const end = range[2] === '' ? size - 1 : Math.min(Number(range[2]), size - 1);
    if (start > end) {
      res.writeHead(416, { 'content-range': `bytes */${size}` });
      return void res.end();
    }
    length = end - start + 1;
    status = 206;
    headers['content-range'] = `bytes ${start}-${end}/${size}`;
  }
  if (withLength) headers['content-length'] = String(length);
  res.writeHead(status, headers);
  await writeBody(res, entry, generateBytes(seed, start, length));
  res.end();
}

/** Writes with backpressure: never more than the socket's buffer ahead of the reader. */
async function writeBody(res: ServerResponse, entry: OriginRequest, chunks: Iterable<Buffer>): Promise<void> {
  for (const chunk of chunks) {
    if (res.destroyed) return;
    entry.written += chunk.length;
    if (!res.write(chunk)) await drainOrClose(res);
  }
}

export function drainOrClose(res: ServerResponse): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      res.off('drain', done);
      res.off('close', done);
      resolve();
    };
    res.on('drain', done);
    res.on('close', done);
  });
}
