/**
 * Small helpers for the end-to-end tests: a raw `http.request` client that can send any bytes
 * (chunked or not) and read the answer, polling, seeded data, sha256, hand-built multipart
 * bodies (so malformed ones can be sent too) and the checks every failure test repeats.
 */
import { strict as assert } from 'node:assert';
import { createHash } from 'node:crypto';
import { request as httpRequest, type IncomingHttpHeaders, type OutgoingHttpHeaders } from 'node:http';
import { connect } from 'node:net';

export interface RawResponse {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  /** Header names and values exactly as they came off the wire, alternating. */
  readonly rawHeaders: readonly string[];
  readonly body: Buffer;
}

export interface RawRequestOptions {
  readonly method?: string;
  readonly headers?: OutgoingHttpHeaders;
  /** The body, written in these pieces. Without `chunked`, a Content-Length is sent. */
  readonly body?: Buffer | readonly Buffer[];
  /** Send `Transfer-Encoding: chunked` (no Content-Length), so no limit can be checked up front. */
  readonly chunked?: boolean;
}

/**
 * One request on its own connection (no agent, no keep-alive pool), `path` sent verbatim, so
 * targets such as `/files/..%2F..%2Fetc` or `/files/%00` reach the server as written.
 */
export function rawRequest(base: string, path: string, options: RawRequestOptions = {}): Promise<RawResponse> {
  const { hostname, port } = new URL(base);
  const pieces = options.body === undefined ? [] : Buffer.isBuffer(options.body) ? [options.body] : [...options.body];
  const headers: OutgoingHttpHeaders = { ...options.headers };
  if (options.chunked === true) headers['transfer-encoding'] = 'chunked';
  else if (options.body !== undefined) headers['content-length'] = String(pieces.reduce((n, b) => n + b.length, 0));
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: hostname, port: Number(port), method: options.method ?? 'GET', path, headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('error', reject);
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, rawHeaders: res.rawHeaders, body: Buffer.concat(chunks) }));
    });
    req.on('error', reject);
    for (const piece of pieces) req.write(piece);
    req.end();
  });
}

/**
 * Writes `text` on a fresh TCP connection and returns every byte the server sent until it
 * closed: for checks no HTTP client can make (a HEAD answer carries no body bytes at all).
 * Send `Connection: close` in `text`.
 */
export function rawExchange(base: string, text: string): Promise<Buffer> {
  const { hostname, port } = new URL(base);
  return new Promise((resolve, reject) => {
    const socket = connect({ host: hostname, port: Number(port) }, () => socket.write(text));
    const chunks: Buffer[] = [];
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.on('error', reject);
    socket.on('close', () => resolve(Buffer.concat(chunks)));
  });
}

/** Calls `check` until it returns true, every 10 ms, failing with `what` after `timeoutMs`. */
export async function poll(what: string, check: () => Promise<boolean> | boolean, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return;
    if (Date.now() > deadline) assert.fail(`timed out after ${timeoutMs} ms waiting for: ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** Lower-case hex SHA-256. */
export function sha256(data: Buffer | string): string {
  return createHash('sha256').update(data).digest('hex');
}

/** `length` pseudo-random bytes from a seed (mulberry32), the same on every run. */
export function seededBytes(seed: number, length: number): Buffer {
  const out = Buffer.alloc(length);
  let a = seed >>> 0;
  let i = 0;
  while (i < length) {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    const word = (t ^ (t >>> 14)) >>> 0;
    for (let k = 0; k < 4 && i < length; k += 1, i += 1) out[i] = (word >>> (8 * k)) & 0xff;
  }
  return out;
}

/** One hand-built body part: raw header lines (UTF-8, no CRLF) and its data. */
export interface RawPart {
  readonly headers: readonly string[];
  readonly data: Buffer | string;
}

export function fieldPart(name: string, value: string): RawPart {
  return { headers: [`Content-Disposition: form-data; name="${name}"`], data: value };
}

export function filePart(name: string, filename: string, data: Buffer | string, contentType = 'application/octet-stream'): RawPart {
  return { headers: [`Content-Disposition: form-data; name="${name}"; filename="${filename}"`, `Content-Type: ${contentType}`], data };
}

/**
 * A multipart body, RFC 2046 5.1.1 framing: `--b CRLF part *(CRLF --b CRLF part) CRLF --b-- CRLF`.
 * `close: false` leaves out the close delimiter (a truncated body).
 */
export function multipartBody(boundary: string, parts: readonly RawPart[], options: { close?: boolean } = {}): Buffer {
  const out: Buffer[] = [];
  parts.forEach((part, i) => {
    out.push(Buffer.from(`${i === 0 ? '' : '\r\n'}--${boundary}\r\n${part.headers.map((h) => `${h}\r\n`).join('')}\r\n`, 'utf8'));
    out.push(typeof part.data === 'string' ? Buffer.from(part.data, 'utf8') : part.data);
  });
  if (options.close !== false) out.push(Buffer.from(`\r\n--${boundary}--\r\n`, 'latin1'));
  return Buffer.concat(out);
}

export const BOUNDARY = 'sluice-e2e-boundary-7MA4YWxkTrZu0gW';
export const MULTIPART_TYPE = `multipart/form-data; boundary=${BOUNDARY}`;

/** The JSON error body every failure must have; returns its code. */
export function errorCode(res: RawResponse): string {
  assert.match(String(res.headers['content-type']), /^application\/json/, `error answer ${res.status} is not JSON`);
  const parsed = JSON.parse(res.body.toString('utf8')) as unknown;
  assert.ok(typeof parsed === 'object' && parsed !== null && 'error' in parsed, `no "error" in ${res.body.toString('utf8')}`);
  const error = (parsed as { error: unknown }).error;
  assert.ok(typeof error === 'object' && error !== null, 'error is not an object');
  const { code, message } = error as { code?: unknown; message?: unknown };
  assert.equal(typeof code, 'string', 'error.code is not a string');
  assert.equal(typeof message, 'string', 'error.message is not a string');
  assert.deepEqual(Object.keys(error).sort(), ['code', 'message']);
  return code as string;
}

/** Asserts a `{"error":{"code","message"}}` answer with this status and code. */
export function assertError(res: RawResponse, status: number, code: string): void {
  assert.equal(res.status, status, `expected ${status} ${code}, got ${res.status}: ${res.body.toString('utf8')}`);
  assert.equal(errorCode(res), code);
}

/** What `GET /healthz` answers: the server still serves. */
export async function assertHealthy(base: string): Promise<void> {
  const res = await rawRequest(base, '/healthz');
  assert.equal(res.status, 200);
  assert.deepEqual(JSON.parse(res.body.toString('utf8')), { status: 'ok' });
}
