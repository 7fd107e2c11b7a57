/**
 * Test helpers for the multipart parser: body builders, chunkings (one byte at a time, every
 * two-way split, seeded random) and `collect`, which feeds chunks through a parser and returns
 * the parts it reported, or the error it failed with.
 */
import { strict as assert } from 'node:assert';
import { Readable, type Duplex } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { MultipartEvent, PartInfo } from '../../multipart/events.js';
import { MultipartParser, type ParserOptions } from '../../multipart/parser.js';
import { SluiceError } from '../../lib/errors.js';

export const CRLF = '\r\n';

/** One body part: raw header lines (no CRLF; strings are written as UTF-8) and its data. */
export interface PartSpec {
  readonly headers: readonly (string | Buffer)[];
  readonly data: string | Buffer;
}

export interface BodyOptions {
  /** Bytes before the first delimiter; a CRLF is added after it (RFC 2046 5.1.1 `preamble CRLF`). */
  readonly preamble?: string | Buffer;
  /** Transport padding written after every delimiter (RFC 2046 5.1.1 `transport-padding`). */
  readonly padding?: string;
  /** Transport padding written after the close delimiter. */
  readonly closePadding?: string;
  /** Write CRLF after the close delimiter (default true). */
  readonly finalCrlf?: boolean;
  /** Bytes after the close delimiter's CRLF. */
  readonly epilogue?: string | Buffer;
}

/** A string as its UTF-8 bytes; a Buffer as itself. */
export function bytes(value: string | Buffer): Buffer {
  return typeof value === 'string' ? Buffer.from(value, 'utf8') : value;
}

/** A form field: `Content-Disposition: form-data; name="<name>"`. */
export function field(name: string, value: string | Buffer, extraHeaders: readonly string[] = []): PartSpec {
  return { headers: [`Content-Disposition: form-data; name="${name}"`, ...extraHeaders], data: value };
}

/** A file part, with a Content-Type when `contentType` is not null. */
export function file(name: string, filename: string, contentType: string | null, data: string | Buffer): PartSpec {
  const headers = [`Content-Disposition: form-data; name="${name}"; filename="${filename}"`];
  if (contentType !== null) headers.push(`Content-Type: ${contentType}`);
  return { headers, data };
}

/**
 * A multipart body (RFC 2046 5.1.1):
 * `[preamble CRLF] --b padding CRLF part *(CRLF --b padding CRLF part) CRLF --b-- padding [CRLF epilogue]`
 * where `part` is `*(header CRLF) CRLF data`.
 */
export function buildBody(boundary: string, parts: readonly PartSpec[], options: BodyOptions = {}): Buffer {
  const out: Buffer[] = [];
  if (options.preamble !== undefined) out.push(bytes(options.preamble), bytes(CRLF));
  const padding = options.padding ?? '';
  parts.forEach((part, i) => {
    out.push(bytes(`${i === 0 ? '' : CRLF}--${boundary}${padding}${CRLF}`));
    for (const line of part.headers) out.push(bytes(line), bytes(CRLF));
    out.push(bytes(CRLF), bytes(part.data));
  });
  out.push(bytes(`${parts.length === 0 ? '' : CRLF}--${boundary}--${options.closePadding ?? ''}`));
  if (options.finalCrlf !== false) out.push(bytes(CRLF));
  if (options.epilogue !== undefined) out.push(bytes(options.epilogue));
  return Buffer.concat(out);
}

/** A body of one part with these raw header lines (the usual way to test one header). */
export function onePart(boundary: string, headers: readonly (string | Buffer)[], data: string | Buffer = 'x'): Buffer {
  return buildBody(boundary, [{ headers, data }]);
}

// ---------------------------------------------------------------------------------------------
// Chunkings

/** mulberry32: a tiny seeded PRNG, so a failing random chunking can be replayed from its seed. */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** An integer in [min, max]. */
export function randomInt(random: () => number, min: number, max: number): number {
  return min + Math.floor(random() * (max - min + 1));
}

export function oneByteChunks(body: Buffer): Buffer[] {
  const chunks: Buffer[] = [];
  for (let i = 0; i < body.length; i++) chunks.push(body.subarray(i, i + 1));
  return chunks;
}

/** Chunks of random sizes (1..maxChunk bytes), each a copy so no two chunks share memory. */
export function randomChunks(body: Buffer, seed: number, maxChunk = 17): Buffer[] {
  const random = mulberry32(seed);
  const chunks: Buffer[] = [];
  for (let i = 0; i < body.length; ) {
    const size = randomInt(random, 1, maxChunk);
    chunks.push(Buffer.from(body.subarray(i, i + size)));
    i += size;
  }
  return chunks;
}

export interface Chunking {
  readonly label: string;
  readonly chunks: readonly Buffer[];
}

/**
 * Every way we feed a body: whole, one byte at a time, split in two at every offset, and a few
 * seeded random chunkings. `thorough: false` keeps only whole, a few splits and random chunkings
 * (for bodies too large to split at every offset).
 */
export function* chunkings(body: Buffer, thorough = true): Generator<Chunking> {
  yield { label: 'whole', chunks: [body] };
  if (thorough) {
    yield { label: 'one byte at a time', chunks: oneByteChunks(body) };
    for (let i = 1; i < body.length; i++) {
      yield { label: `split at ${i}`, chunks: [body.subarray(0, i), body.subarray(i)] };
    }
  } else {
    for (const i of [1, Math.floor(body.length / 2), body.length - 1]) {
      if (i > 0 && i < body.length) yield { label: `split at ${i}`, chunks: [body.subarray(0, i), body.subarray(i)] };
    }
  }
  for (const seed of [1, 2, 3, 0xc0ffee]) {
    yield { label: `random chunks, seed ${seed}`, chunks: randomChunks(body, seed, thorough ? 17 : 4096) };
  }
}

// ---------------------------------------------------------------------------------------------
// Feeding a parser

export interface CollectedPart {
  readonly info: PartInfo;
  /** The concatenation of the part's 'data' events (kept by reference until the end, so a parser
   * that recycles a buffer it already handed out shows up as corrupt data). */
  readonly data: Buffer;
  /** Whether the parser reported 'part-end' for it. */
  readonly ended: boolean;
}

export interface Collected {
  readonly parts: readonly CollectedPart[];
  /** The error the stream failed with, or null when it ended cleanly. */
  readonly error: unknown;
}

/**
 * The parser yields the events of each input chunk as one array (`MultipartEvent[]`, never
 * empty; see multipart/events.ts). A lone event is accepted too.
 */
export function eventsOf(item: MultipartEvent | readonly MultipartEvent[]): readonly MultipartEvent[] {
  if (!Array.isArray(item)) return [item as MultipartEvent];
  assert.ok(item.length > 0, 'the parser yielded an empty batch');
  return item;
}

/** Records events into parts, checking their order: part, data*, part-end, part, ... */
class EventRecorder {
  private readonly parts: { info: PartInfo; data: Buffer[]; ended: boolean }[] = [];
  private open = false;

  record(item: MultipartEvent | readonly MultipartEvent[]): void {
    for (const event of eventsOf(item)) {
      switch (event.type) {
        case 'part':
          assert.equal(this.open, false, "'part' before the previous part's 'part-end'");
          this.parts.push({ info: event.part, data: [], ended: false });
          this.open = true;
          break;
        case 'data': {
          const last = this.parts.at(-1);
          assert.ok(this.open && last !== undefined, "'data' outside a part");
          assert.ok(Buffer.isBuffer(event.data), "'data' without a Buffer");
          last.data.push(event.data);
          break;
        }
        case 'part-end': {
          const last = this.parts.at(-1);
          assert.ok(this.open && last !== undefined, "'part-end' outside a part");
          last.ended = true;
          this.open = false;
          break;
        }
        default:
          assert.fail(`unknown event ${JSON.stringify(event)}`);
      }
    }
  }

  result(error: unknown): Collected {
    if (error === null) assert.equal(this.open, false, 'the stream ended cleanly inside a part');
    return { parts: this.parts.map((p) => ({ info: p.info, data: Buffer.concat(p.data), ended: p.ended })), error };
  }
}

/**
 * Feeds `chunks` to `parser` and reads its events until it ends or fails; asserts the event
 * order as it goes. An array of chunks is written directly (fast: the every-offset tables run
 * thousands of these); any other iterable goes through `pipeline(Readable.from(chunks), parser)`
 * and `for await`, the way the upload handler reads it, with backpressure and lazy sources.
 */
export function collect(parser: Duplex, chunks: readonly Buffer[] | Iterable<Buffer> | AsyncIterable<Buffer>): Promise<Collected> {
  return Array.isArray(chunks) ? collectDirect(parser, chunks as readonly Buffer[]) : collectPiped(parser, chunks);
}

/** `collect` through pipeline and `for await`, whatever `chunks` is. */
export async function collectPiped(parser: Duplex, chunks: Iterable<Buffer> | AsyncIterable<Buffer>): Promise<Collected> {
  const recorder = new EventRecorder();
  const piping = pipeline(Readable.from(chunks), parser);
  let error: unknown = null;
  try {
    for await (const item of parser as AsyncIterable<MultipartEvent | readonly MultipartEvent[]>) recorder.record(item);
  } catch (err) {
    if (err instanceof assert.AssertionError) {
      parser.destroy();
      await piping.catch(() => undefined);
      throw err;
    }
    error = err;
  }
  const [outcome] = await Promise.allSettled([piping]);
  if (error === null && outcome.status === 'rejected') error = outcome.reason;
  return recorder.result(error);
}

async function collectDirect(parser: Duplex, chunks: readonly Buffer[]): Promise<Collected> {
  const recorder = new EventRecorder();
  let error: unknown = null;
  let violation: unknown = null;
  const closed = new Promise<void>((resolve) => parser.once('close', resolve));
  parser.on('error', (err: unknown) => {
    error ??= err;
  });
  parser.on('data', (item: MultipartEvent | readonly MultipartEvent[]) => {
    if (violation !== null) return;
    try {
      recorder.record(item);
    } catch (err) {
      violation = err;
      parser.destroy();
    }
  });
  for (const chunk of chunks) {
    if (parser.destroyed) break;
    parser.write(chunk);
  }
  if (!parser.destroyed) parser.end();
  await closed;
  if (violation !== null) throw violation;
  return recorder.result(error);
}

// ---------------------------------------------------------------------------------------------
// Table-driven cases

/** The boundary cases use unless they say otherwise. */
export const BOUNDARY = 'boundary';

export interface ExpectedPart {
  readonly name: string;
  /** Default null (a field). */
  readonly filename?: string | null;
  /** Default null (no Content-Type sent). */
  readonly contentType?: string | null;
  readonly data: string | Buffer;
  /** Headers that must be present with these values (names lower-case); others may exist. */
  readonly headers?: Readonly<Record<string, string>>;
}

export type CaseOptions = Omit<ParserOptions, 'boundary'>;

export interface ValidCase {
  /** What the case proves. */
  readonly what: string;
  readonly boundary?: string;
  readonly options?: CaseOptions;
  readonly body: Buffer;
  readonly parts: readonly ExpectedPart[];
  /** Split at every offset and one byte at a time (default: when the body is under 4 KiB). */
  readonly thorough?: boolean;
}

export interface ErrorCase {
  readonly what: string;
  readonly boundary?: string;
  readonly options?: CaseOptions;
  readonly body: Buffer;
  /** The expected `err.code`, or the codes any of which is acceptable. */
  readonly code: string | readonly string[];
  readonly status: 400 | 413;
  readonly thorough?: boolean;
}

interface ComparablePart {
  name: string;
  filename: string | null;
  contentType: string | null;
  /** latin1, so that a diff shows every byte. */
  data: string;
  ended: boolean;
}

function comparable(part: CollectedPart): ComparablePart {
  return {
    name: part.info.name,
    filename: part.info.filename,
    contentType: part.info.contentType,
    data: part.data.toString('latin1'),
    ended: part.ended,
  };
}

function expectedComparable(part: ExpectedPart): ComparablePart {
  return {
    name: part.name,
    filename: part.filename ?? null,
    contentType: part.contentType ?? null,
    data: bytes(part.data).toString('latin1'),
    ended: true,
  };
}

export function newParser(boundary: string, options: CaseOptions = {}): MultipartParser {
  return new MultipartParser({ ...options, boundary });
}

function describeError(error: unknown): string {
  if (error instanceof SluiceError) return `${error.name} ${error.code} (${error.status}): ${error.message}`;
  return error instanceof Error ? `${error.name}: ${error.message}` : String(error);
}

/** The whole body and the random chunkings also go through pipeline + for await. */
const piped = (label: string): boolean => label === 'whole' || label.startsWith('random');

/** Runs a case that must parse, through every chunking, expecting the same parts each time. */
export async function runValidCase(c: ValidCase): Promise<void> {
  const boundary = c.boundary ?? BOUNDARY;
  const expected = c.parts.map(expectedComparable);
  for (const { label, chunks } of chunkings(c.body, c.thorough ?? c.body.length < 4096)) {
    const result = await (piped(label) ? collectPiped : collect)(newParser(boundary, c.options), chunks);
    assert.equal(result.error, null, `${label}: failed with ${describeError(result.error)}`);
    assert.deepEqual(result.parts.map(comparable), expected, label);
    result.parts.forEach((part, i) => {
      assert.equal(Object.getPrototypeOf(part.info.headers), null, `${label}: part ${i} headers has a prototype`);
      for (const [name, value] of Object.entries(c.parts[i]?.headers ?? {})) {
        assert.ok(Object.hasOwn(part.info.headers, name), `${label}: part ${i} has no header ${name}`);
        assert.equal(part.info.headers[name], value, `${label}: part ${i} header ${name}`);
      }
      for (const name of Object.keys(part.info.headers)) {
        assert.equal(name, name.toLowerCase(), `${label}: header name ${name} not lower-cased`);
      }
    });
  }
}

/** Asserts that `error` is the SluiceError the case expects. */
export function assertSluiceError(error: unknown, code: string | readonly string[], status: number, label: string): void {
  assert.ok(error instanceof SluiceError, `${label}: expected a SluiceError ${String(code)}, got ${describeError(error)}`);
  const codes = typeof code === 'string' ? [code] : code;
  assert.ok(codes.includes(error.code), `${label}: expected ${codes.join(' or ')}, got ${describeError(error)}`);
  assert.equal(error.status, status, `${label}: status of ${error.code}`);
}

/** Runs a case that must fail, through every chunking, expecting the same error each time. */
export async function runErrorCase(c: ErrorCase): Promise<void> {
  const boundary = c.boundary ?? BOUNDARY;
  for (const { label, chunks } of chunkings(c.body, c.thorough ?? c.body.length < 4096)) {
    // Written directly, not piped: see the 'an error raised while buffered writes drain' test in
    // parser.test.ts for why a piped failing parser can stall the whole process.
    const result = await collect(newParser(boundary, c.options), chunks);
    assertSluiceError(result.error, c.code, c.status, label);
  }
}
