/**
 * Generated test data for the hardening suite: a seeded PRNG, pseudo-random bytes that are
 * generated as they are sent (never whole in memory), sha256 helpers and multipart bodies.
 */
import { createCipheriv, createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';

export const MiB = 1024 * 1024;
export const KiB = 1024;

// ---------------------------------------------------------------------------------------------
// Seeded randomness and generated data

// One seeded PRNG for every suite (test/helpers/multipart-body.ts), so seeds mean the same everywhere.
export { mulberry32, randomInt as randInt } from '../helpers/multipart-body.js';

export function pick<T>(random: () => number, items: readonly T[]): T {
  if (items.length === 0) throw new Error('pick from nothing');
  return items[Math.floor(random() * items.length)] as T;
}

const ZEROS = Buffer.alloc(256 * KiB);

/**
 * `length` pseudo-random bytes named by `seed`, as chunks of at most `chunkBytes`: the AES-128-CTR
 * keystream (native, GB/s), so many MiB cost little CPU and are never all in memory at once.
 */
export function* generatedChunks(seed: string, length: number, chunkBytes = 256 * KiB): Generator<Buffer> {
  const key = createHash('sha256').update(seed).digest().subarray(0, 16);
  const cipher = createCipheriv('aes-128-ctr', key, Buffer.alloc(16));
  let left = length;
  while (left > 0) {
    const n = Math.min(left, chunkBytes, ZEROS.length);
    left -= n;
    yield cipher.update(ZEROS.subarray(0, n));
  }
}

/** A small generated buffer (whole in memory: only for small sizes). */
export function generated(seed: string, length: number): Buffer {
  return Buffer.concat([...generatedChunks(seed, length)], length);
}

export function sha256(data: Buffer | string): string {
  return createHash('sha256').update(data).digest('hex');
}

export function sha256OfChunks(seed: string, length: number): string {
  const h = createHash('sha256');
  for (const c of generatedChunks(seed, length)) h.update(c);
  return h.digest('hex');
}

export async function sha256OfFile(path: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(path)) h.update(chunk as Buffer);
  return h.digest('hex');
}

// ---------------------------------------------------------------------------------------------
// Multipart bodies

export const BOUNDARY = 'hardening-7d1e0c-Boundary';
export const MULTIPART = `multipart/form-data; boundary=${BOUNDARY}`;

/** One part: raw header lines (Buffers are sent as they are, strings as UTF-8) and data. */
export interface Part {
  readonly headers: ReadonlyArray<string | Buffer>;
  readonly data: Buffer | string;
}

export function fieldPart(name: string, value: string): Part {
  return { headers: [`Content-Disposition: form-data; name="${name}"`], data: value };
}

export function filePart(name: string, filename: string, data: Buffer | string, type = 'application/octet-stream'): Part {
  return { headers: [`Content-Disposition: form-data; name="${name}"; filename="${filename}"`, `Content-Type: ${type}`], data };
}

/** Where each piece of a body starts and ends, so that cuts can aim at a kind of place. */
export interface BodyMap {
  /** [start, end) of each part's header block (after `--b CRLF`, through the empty line). */
  readonly headers: Array<[number, number]>;
  readonly data: Array<[number, number]>;
  /** [start, end) of each delimiter (`CRLF --b CRLF`, `--b CRLF` first, `CRLF --b--` last). */
  readonly delimiters: Array<[number, number]>;
}

/** RFC 2046 5.1.1 framing: `--b CRLF part *(CRLF --b CRLF part) CRLF --b-- CRLF`. */
export function multipartBody(parts: readonly Part[], boundary = BOUNDARY): { body: Buffer; map: BodyMap } {
  const out: Buffer[] = [];
  const map: BodyMap = { headers: [], data: [], delimiters: [] };
  let at = 0;
  const add = (b: Buffer): [number, number] => {
    out.push(b);
    const range: [number, number] = [at, at + b.length];
    at += b.length;
    return range;
  };
  parts.forEach((part, i) => {
    map.delimiters.push(add(Buffer.from(`${i === 0 ? '' : '\r\n'}--${boundary}\r\n`, 'latin1')));
    const head = Buffer.concat([...part.headers.map((h) => Buffer.concat([typeof h === 'string' ? Buffer.from(h, 'utf8') : h, Buffer.from('\r\n')])), Buffer.from('\r\n')]);
    map.headers.push(add(head));
    map.data.push(add(typeof part.data === 'string' ? Buffer.from(part.data, 'utf8') : part.data));
  });
  map.delimiters.push(add(Buffer.from(`\r\n--${boundary}--`, 'latin1')));
  add(Buffer.from('\r\n'));
  return { body: Buffer.concat(out), map };
}

/** A multipart body with one generated file of `size` bytes, streamed: never whole in memory. */
export function streamedFileBody(seed: string, size: number, filename = `${seed}.bin`, boundary = BOUNDARY): { length: number; chunks: () => Generator<Buffer> } {
  const head = Buffer.from(
    `--${boundary}\r\nContent-Disposition: form-data; name="note"\r\n\r\nload ${seed}\r\n` +
      `--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="${filename}"\r\nContent-Type: application/octet-stream\r\n\r\n`,
    'latin1',
  );
  const tail = Buffer.from(`\r\n--${boundary}--\r\n`, 'latin1');
  return {
    length: head.length + size + tail.length,
    chunks: function* () {
      yield head;
      yield* generatedChunks(seed, size);
      yield tail;
    },
  };
}

