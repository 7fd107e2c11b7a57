/**
 * HTTP clients for the hardening suite, both talking to 127.0.0.1 only: `request` (node:http,
 * one connection per request, bodies streamed with backpressure, early answers handled) and
 * `rawExchange` (a TCP socket: exactly the bytes we choose, every byte of the answer, and how the
 * connection ended), plus a byte-exact parser of response heads and bodies.
 */
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { request as httpRequest, type IncomingHttpHeaders, type OutgoingHttpHeaders } from 'node:http';
import { connect, type Socket } from 'node:net';
import { setImmediate as setImmediatePromise } from 'node:timers/promises';
import { KiB, sha256 } from './test-data.js';

export const HOST = '127.0.0.1';

// HTTP clients

/** Resolves on the first of these events (never rejects); removes its listeners afterwards. */
export async function firstOf(emitter: NodeJS.EventEmitter, events: readonly string[]): Promise<void> {
  const ac = new AbortController();
  try {
    await Promise.race(events.map((e) => once(emitter, e, { signal: ac.signal }).catch(() => undefined)));
  } finally {
    ac.abort();
  }
}

export interface Answer {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  readonly body: Buffer;
}

export interface RequestOptions {
  readonly method?: string;
  readonly headers?: OutgoingHttpHeaders;
  /** A body, or its chunks (written with backpressure, one chunk per event-loop turn; a generator is never read ahead). */
  readonly body?: Buffer | Iterable<Buffer> | AsyncIterable<Buffer>;
  readonly timeoutMs?: number;
  /** Hash the answer instead of keeping it (large downloads). */
  readonly hashOnly?: boolean;
}

export interface HashedAnswer extends Answer {
  readonly sha256: string;
  readonly size: number;
}

/**
 * One request on its own connection (agent: false), `path` sent as written. Resolves once the
 * answer is complete, even when the server answered early and the rest of the body could not be
 * sent (the write errors are then ignored). Rejects on a broken answer or after `timeoutMs`.
 */
export function request(base: string, path: string, options: RequestOptions = {}): Promise<HashedAnswer> {
  const { hostname, port } = new URL(base);
  const timeoutMs = options.timeoutMs ?? 30_000;
  return new Promise<HashedAnswer>((resolvePromise, reject) => {
    let settled = false;
    let answered = false;
    const req = httpRequest({ host: hostname, port: Number(port), method: options.method ?? 'GET', path, headers: options.headers, agent: false });
    const timer = setTimeout(() => fail(new Error(`${options.method ?? 'GET'} ${path}: no complete answer within ${timeoutMs} ms`)), timeoutMs);
    const fail = (err: Error): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      req.destroy();
      reject(err);
    };
    req.on('error', (err) => {
      if (!answered) fail(err);
    });
    req.on('response', (res) => {
      answered = true;
      const chunks: Buffer[] = [];
      const hash = createHash('sha256');
      let size = 0;
      res.on('data', (c: Buffer) => {
        size += c.length;
        if (options.hashOnly === true) hash.update(c);
        else chunks.push(c);
      });
      res.on('error', (e) => fail(e));
      res.on('aborted', () => fail(new Error(`${path}: answer aborted after ${size} bytes`)));
      res.on('end', () => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        const body = Buffer.concat(chunks);
        resolvePromise({ status: res.statusCode ?? 0, headers: res.headers, body, size, sha256: options.hashOnly === true ? hash.digest('hex') : sha256(body) });
        req.destroy();
      });
    });
    const body = options.body;
    if (body === undefined) return void req.end();
    if (Buffer.isBuffer(body)) return void req.end(body);
    void (async () => {
      try {
        for await (const chunk of body as AsyncIterable<Buffer>) {
          if (answered || settled || req.destroyed) return;
          if (!req.write(chunk)) await firstOf(req, ['drain', 'close', 'response']);
          // Let the event loop turn between chunks. On loopback the kernel takes megabytes before
          // a write returns false, so without this one request's body generation runs on in
          // microtasks and starves every other socket's events: with 128 requests in one process,
          // the later ones' heads sat unsent past the server's HEADERS_TIMEOUT_MS (a 408 that
          // was the test client's doing, seen on a slow CI machine).
          else await setImmediatePromise();
        }
        if (!answered && !settled && !req.destroyed) req.end();
      } catch (err) {
        if (!answered) fail(err as Error);
      }
    })();
  });
}

/** The `{"error":{"code",...}}` code of an answer, or null when it is not one. */
export function errorCodeOf(answer: { body: Buffer }): string | null {
  try {
    const parsed = JSON.parse(answer.body.toString('utf8')) as { error?: { code?: unknown } };
    return typeof parsed.error?.code === 'string' ? parsed.error.code : null;
  } catch {
    return null;
  }
}

export interface RawExchange {
  /** Every byte the server sent, in order. */
  readonly received: Buffer;
  /** How the connection ended: 'end' (FIN from the server), 'reset'/'error:<code>', or 'timeout' (we gave up). */
  readonly ended: 'end' | 'reset' | 'timeout' | `error:${string}`;
  /** Bytes we had handed to the socket when the first answer byte arrived (-1: none arrived). */
  readonly writtenAtFirstByte: number;
  readonly written: number;
  /** ms from connect to the first answer byte / to the end. */
  readonly firstByteMs: number;
  readonly endMs: number;
}

export interface RawOptions {
  /** Bytes to send, or a producer: it gets a write function that honours backpressure and says when to stop. */
  readonly send: Buffer | string | ((io: RawIo) => Promise<void>);
  readonly timeoutMs?: number;
  /** Half-close our side once `send` is done (default false: keep it open, like a client waiting). */
  readonly endAfterSend?: boolean;
  /** Stop reading/close as soon as this says the answer is complete. */
  readonly complete?: (received: Buffer) => boolean;
}

export interface RawIo {
  readonly socket: Socket;
  /** Writes with backpressure; resolves false once writing makes no sense any more (answer came, socket gone). */
  write(chunk: Buffer | string): Promise<boolean>;
  /** True once the server sent anything or the socket is closing. */
  readonly stopped: () => boolean;
}

/** A raw TCP exchange with the server: exactly the bytes we choose, and every byte it answers. */
export function rawExchange(port: number, options: RawOptions): Promise<RawExchange> {
  const timeoutMs = options.timeoutMs ?? 20_000;
  return new Promise<RawExchange>((resolvePromise) => {
    const started = Date.now();
    const socket = connect({ host: HOST, port });
    const chunks: Buffer[] = [];
    let received = 0;
    let written = 0;
    let lastYield = 0;
    let writtenAtFirstByte = -1;
    let firstByteMs = -1;
    let done = false;
    let closing = false;
    const finish = (ended: RawExchange['ended']): void => {
      if (done) return;
      done = true;
      closing = true;
      clearTimeout(timer);
      socket.destroy();
      resolvePromise({ received: Buffer.concat(chunks, received), ended, writtenAtFirstByte, written, firstByteMs, endMs: Date.now() - started });
    };
    const timer = setTimeout(() => finish('timeout'), timeoutMs);
    socket.on('data', (d: Buffer) => {
      if (writtenAtFirstByte === -1) {
        writtenAtFirstByte = written;
        firstByteMs = Date.now() - started;
      }
      chunks.push(d);
      received += d.length;
      if (options.complete?.(Buffer.concat(chunks, received)) === true) finish('end');
    });
    socket.on('end', () => finish('end'));
    socket.on('error', (err: NodeJS.ErrnoException) => finish(err.code === 'ECONNRESET' ? 'reset' : `error:${err.code ?? err.message}`));
    socket.on('close', () => finish('end'));
    const io: RawIo = {
      socket,
      stopped: () => closing || done || writtenAtFirstByte !== -1 || socket.destroyed,
      write: async (chunk) => {
        if (io.stopped()) return false;
        const b = typeof chunk === 'string' ? Buffer.from(chunk, 'latin1') : chunk;
        written += b.length;
        if (!socket.write(b)) await firstOf(socket, ['drain', 'close', 'data']);
        else if (written - lastYield >= 256 * KiB) {
          // Like a real client, look at the socket now and then even while writes succeed: an
          // early answer must be seen (socket.write() returning true never yields to the loop).
          lastYield = written;
          await setImmediatePromise();
        }
        return !io.stopped();
      },
    };
    socket.once('connect', () => {
      void (async () => {
        try {
          if (typeof options.send === 'function') await options.send(io);
          else await io.write(options.send);
          if (options.endAfterSend === true && !socket.destroyed) socket.end();
        } catch {
          // the exchange's outcome is what the server sent and how the socket ended
        }
      })();
    });
  });
}

export interface ParsedHead {
  readonly status: number;
  /** Header lines exactly as sent (without the CRLF), status line excluded. */
  readonly lines: string[];
  readonly headers: Map<string, string[]>;
  /** Offset of the first body byte. */
  readonly bodyStart: number;
}

/** Splits the first HTTP response head off `data` (latin1, byte for byte); null when incomplete. */
export function parseHead(data: Buffer, from = 0): ParsedHead | null {
  const end = data.indexOf('\r\n\r\n', from, 'latin1');
  if (end === -1) return null;
  const text = data.toString('latin1', from, end);
  const [statusLine = '', ...lines] = text.split('\r\n');
  const m = /^HTTP\/1\.[01] (\d{3})/.exec(statusLine);
  if (m === null) throw new Error(`not an HTTP status line: ${JSON.stringify(statusLine.slice(0, 100))}`);
  const headers = new Map<string, string[]>();
  for (const line of lines) {
    const colon = line.indexOf(':');
    const name = line.slice(0, colon).toLowerCase();
    const list = headers.get(name) ?? [];
    list.push(line.slice(colon + 1).trim());
    headers.set(name, list);
  }
  return { status: Number(m[1]), lines, headers, bodyStart: end + 4 };
}

/** All responses in `data` (interim 1xx ones first), with each final one's body when complete. */
export function parseResponses(data: Buffer): Array<ParsedHead & { body: Buffer | null; complete: boolean }> {
  const out: Array<ParsedHead & { body: Buffer | null; complete: boolean }> = [];
  let at = 0;
  for (let guard = 0; guard < 10 && at < data.length; guard += 1) {
    const head = parseHead(data, at);
    if (head === null) break;
    if (head.status >= 100 && head.status < 200) {
      out.push({ ...head, body: null, complete: true });
      at = head.bodyStart;
      continue;
    }
    const body = decodeBody(data.subarray(head.bodyStart), head.headers);
    out.push({ ...head, body: body.body, complete: body.complete });
    break;
  }
  return out;
}

/** The body framed by Content-Length or chunked coding; `complete` only when the framing says so. */
export function decodeBody(raw: Buffer, headers: Map<string, string[]>): { body: Buffer; complete: boolean } {
  const te = headers.get('transfer-encoding')?.join(',').toLowerCase() ?? '';
  if (te.includes('chunked')) {
    const parts: Buffer[] = [];
    let at = 0;
    for (;;) {
      const eol = raw.indexOf('\r\n', at, 'latin1');
      if (eol === -1) return { body: Buffer.concat(parts), complete: false };
      const size = parseInt(raw.toString('latin1', at, eol).split(';')[0] ?? '', 16);
      if (!Number.isFinite(size)) return { body: Buffer.concat(parts), complete: false };
      if (size === 0) return { body: Buffer.concat(parts), complete: raw.indexOf('\r\n', eol + 2, 'latin1') !== -1 };
      if (eol + 2 + size + 2 > raw.length) {
        parts.push(raw.subarray(eol + 2, Math.min(raw.length, eol + 2 + size)));
        return { body: Buffer.concat(parts), complete: false };
      }
      parts.push(raw.subarray(eol + 2, eol + 2 + size));
      at = eol + 2 + size + 2;
    }
  }
  const cl = headers.get('content-length')?.[0];
  if (cl !== undefined) {
    const n = Number(cl);
    return { body: raw.subarray(0, n), complete: raw.length >= n };
  }
  // Close-delimited: complete only in the sense that the connection ended.
  return { body: raw, complete: false };
}

/** True once `data` holds a whole final response (for `RawOptions.complete`). */
export function hasCompleteResponse(data: Buffer): boolean {
  try {
    const all = parseResponses(data);
    const last = all[all.length - 1];
    return last !== undefined && last.status >= 200 && last.complete;
  } catch {
    return false;
  }
}

/** The request head for a raw exchange. */
export function requestHead(method: string, path: string, headers: Record<string, string | number>): string {
  let head = `${method} ${path} HTTP/1.1\r\nHost: ${HOST}\r\n`;
  for (const [k, v] of Object.entries(headers)) head += `${k}: ${v}\r\n`;
  return `${head}\r\n`;
}

/** One chunk of the chunked transfer coding. */
export function chunkFrame(data: Buffer): Buffer {
  return Buffer.concat([Buffer.from(`${data.length.toString(16)}\r\n`, 'latin1'), data, Buffer.from('\r\n', 'latin1')]);
}

