/**
 * Parser micro-benchmark, in one process: the same multipart bodies (one 256 MiB part of
 * random bytes; 2,000 parts of 1 KiB), fed in 16 KiB and 64 KiB chunks to sluice's
 * MultipartParser (read with a 'data' listener, data discarded), busboy and @fastify/busboy, and
 * to a floor that only scans the chunks for the delimiter with Buffer.indexOf (the least work
 * any parser must do).
 *
 * Each contender runs in a child process of its own ("in process": no sockets, the parser fed
 * straight from memory). Sharing one process skews the result: once Writable.prototype.write
 * and the stream internals have seen three different stream classes their call sites go
 * megamorphic, and sluice's parser measured 2.2 GB/s there against 7.2 GB/s alone on the same
 * 64 KiB chunks. The children run in `--rounds` passes that cycle through the contenders, so
 * a slow patch of the machine hits all of them alike; each child warms up, then measures
 * twice; the figure is the median over all passes.
 *
 *   node --expose-gc --import tsx bench/parser.ts [--rounds 3] [--json file] [--quiet]
 */
import { Busboy as FastifyBusboy } from '@fastify/busboy';
import busboy from 'busboy';
import { randomFillSync } from 'node:crypto';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import type { Writable } from 'node:stream';
import { MultipartParser } from '../multipart/parser.js';
import type { MultipartEvent } from '../multipart/events.js';
import { median } from './lib/summary.js';
import { formatParserTable } from './lib/parser-table.js';
import type { ParserContender, ParserReport, ParserRow } from './lib/parser-types.js';

const LARGE_BYTES = 256 * 1024 * 1024;
const SMALL_PARTS = 2000;
const SMALL_PART_BYTES = 1024;
const CHUNK_SIZES = [16 * 1024, 64 * 1024];
/** The small body is ~2.3 MB: parse it this many bytes' worth per measurement, for a stable clock. */
const SMALL_TARGET_BYTES = 64 * 1024 * 1024;
const BOUNDARY = '----sluice-parser-bench-4f1c9a2b7e8d';
/**
 * Uncounted rounds first: V8 needs a few passes before every contender's hot loop is optimised
 * (sluice's parser measured 1.2, 1.3, 2.0 then 2.9 GB/s on its first four 256 MiB passes).
 */
const WARMUP_ROUNDS = 3;
/** Measured rounds per child, per body and chunk size. */
const CHILD_ROUNDS = 2;
const CONTENT_TYPE = `multipart/form-data; boundary=${BOUNDARY}`;

interface Body {
  readonly kind: ParserRow['body'];
  readonly bytes: Buffer;
  readonly parts: number;
}

function makeBody(kind: Body['kind'], parts: number, partBytes: number): Body {
  const pieces: Buffer[] = [];
  for (let i = 0; i < parts; i += 1) {
    pieces.push(
      Buffer.from(
        `--${BOUNDARY}\r\nContent-Disposition: form-data; name="file${i}"; filename="f${i}.bin"\r\n` +
          'Content-Type: application/octet-stream\r\n\r\n',
      ),
    );
    pieces.push(randomFillSync(Buffer.allocUnsafe(partBytes)));
    pieces.push(Buffer.from('\r\n'));
  }
  pieces.push(Buffer.from(`--${BOUNDARY}--\r\n`));
  return { kind, bytes: Buffer.concat(pieces), parts };
}

/** Views into the body, no copies: every contender gets exactly the same chunks. */
function chunksOf(body: Buffer, size: number): Buffer[] {
  const out: Buffer[] = [];
  for (let i = 0; i < body.length; i += size) out.push(body.subarray(i, Math.min(i + size, body.length)));
  return out;
}

/** Writes the chunks with backpressure, as a socket would deliver them. */
async function feed(sink: Writable, chunks: readonly Buffer[]): Promise<void> {
  for (const chunk of chunks) if (!sink.write(chunk)) await once(sink, 'drain');
  sink.end();
}

/** The parser yields events, in batches per input chunk (arrays) or one by one: take both. */
function eventsOf(item: unknown): readonly MultipartEvent[] {
  return Array.isArray(item) ? (item as MultipartEvent[]) : [item as MultipartEvent];
}

/**
 * Read with a 'data' listener, as busboy's file streams are read below: the same stream
 * interface for every contender. (A `for await` loop costs another ~1 µs per chunk, in the
 * async iterator, whatever it reads; sluice's upload handler pays it, ~16 ms per GiB.)
 */
async function runSluice(chunks: readonly Buffer[]): Promise<number> {
  const parser = new MultipartParser({ boundary: BOUNDARY });
  let data = 0;
  parser.on('data', (item: unknown) => {
    for (const ev of eventsOf(item)) if (ev.type === 'data') data += ev.data.length;
  });
  const ended = once(parser, 'end');
  await feed(parser, chunks);
  await ended;
  return data;
}

async function runBusboy(chunks: readonly Buffer[]): Promise<number> {
  const bb = busboy({ headers: { 'content-type': CONTENT_TYPE } });
  let data = 0;
  bb.on('file', (_name, stream) => stream.on('data', (d: Buffer) => (data += d.length)));
  const done = once(bb, 'close');
  await feed(bb, chunks);
  await done;
  return data;
}

async function runFastifyBusboy(chunks: readonly Buffer[]): Promise<number> {
  const bb = new FastifyBusboy({ headers: { 'content-type': CONTENT_TYPE } });
  let data = 0;
  bb.on('file', (_name: string, stream: NodeJS.ReadableStream) => stream.on('data', (d: Buffer) => (data += d.length)));
  const done = once(bb, 'finish');
  await feed(bb, chunks);
  await done;
  return data;
}

/**
 * The floor: find every `\r\n--boundary` with indexOf, including one split across two chunks
 * (checked in a small buffer of the bytes either side of each edge). Returns delimiters found.
 */
function scanFloor(chunks: readonly Buffer[]): number {
  const needle = Buffer.from(`\r\n--${BOUNDARY}`);
  const keep = needle.length - 1;
  const edge = Buffer.alloc(2 * keep);
  let found = 0;
  let previous: Buffer | null = null;
  for (const chunk of chunks) {
    for (let at = chunk.indexOf(needle); at !== -1; at = chunk.indexOf(needle, at + needle.length)) found += 1;
    if (previous !== null) {
      const tail = previous.subarray(Math.max(0, previous.length - keep));
      tail.copy(edge, 0);
      const head = chunk.copy(edge, tail.length, 0, keep);
      if (edge.subarray(0, tail.length + head).indexOf(needle) !== -1) found += 1;
    }
    previous = chunk;
  }
  return found;
}

type Runner = (chunks: readonly Buffer[]) => Promise<number> | number;

const CONTENDERS: readonly (readonly [ParserContender, Runner])[] = [
  ['sluice', runSluice],
  ['@fastify/busboy', runFastifyBusboy],
  ['busboy', runBusboy],
  ['indexOf floor', scanFloor],
];

/** One measurement: `reps` passes over the body; checks each contender saw what it should. */
async function measure(name: ParserContender, run: Runner, chunks: readonly Buffer[], body: Body, reps: number): Promise<number> {
  const gc = (globalThis as { gc?: () => void }).gc;
  gc?.();
  const expected = name === 'indexOf floor' ? body.parts : body.parts * (body.kind === 'one-large' ? LARGE_BYTES : SMALL_PART_BYTES);
  const started = performance.now();
  for (let i = 0; i < reps; i += 1) {
    const got = await run(chunks);
    if (got !== expected) throw new Error(`${name} on ${body.kind}: got ${got}, expected ${expected}`);
  }
  const seconds = (performance.now() - started) / 1000;
  return (body.bytes.length * reps) / 1e6 / seconds;
}

/** In a child: every body and chunk size for one contender, warm-up rounds first. */
async function measureContender(contender: ParserContender): Promise<ParserRow[]> {
  const run = CONTENDERS.find(([n]) => n === contender)?.[1];
  if (run === undefined) throw new Error(`unknown contender ${contender}`);
  const bodies = [makeBody('one-large', 1, LARGE_BYTES), makeBody('many-small', SMALL_PARTS, SMALL_PART_BYTES)];
  const rows: ParserRow[] = [];
  for (const body of bodies) {
    const reps = Math.max(1, Math.ceil(SMALL_TARGET_BYTES / body.bytes.length));
    for (const chunkBytes of CHUNK_SIZES) {
      const chunks = chunksOf(body.bytes, chunkBytes);
      const values: number[] = [];
      for (let round = 1 - WARMUP_ROUNDS; round <= CHILD_ROUNDS; round += 1) {
        const mbps = await measure(contender, run, chunks, body, reps);
        if (round > 0) values.push(mbps);
      }
      rows.push({ body: body.kind, chunkBytes, contender, mbps: median(values), roundsMbps: values });
    }
  }
  return rows;
}

/** Runs one contender in a fresh process (same Node flags, tsx included) and reads its rows. */
async function runChild(contender: ParserContender): Promise<ParserRow[]> {
  const child = spawn(process.execPath, [...process.execArgv, process.argv[1] as string, '--child', contender], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout.on('data', (c: Buffer) => (out += c.toString()));
  const timer = setTimeout(() => child.kill('SIGKILL'), 10 * 60_000);
  const [code] = (await once(child, 'exit')) as [number | null];
  clearTimeout(timer);
  if (code !== 0) throw new Error(`parser bench child for ${contender} failed (${code})`);
  return JSON.parse(out) as ParserRow[];
}

async function runParserBench(passes: number, progress: (line: string) => void): Promise<ParserReport> {
  const all: ParserRow[] = [];
  for (let pass = 1; pass <= passes; pass += 1) {
    for (const [contender] of CONTENDERS) {
      all.push(...(await runChild(contender)));
      progress(`parser: pass ${pass}/${passes}, ${contender} done`);
    }
  }
  const rows: ParserRow[] = [];
  for (const first of all.filter((r, i) => all.findIndex((o) => o.body === r.body && o.chunkBytes === r.chunkBytes && o.contender === r.contender) === i)) {
    const values = all.filter((o) => o.body === first.body && o.chunkBytes === first.chunkBytes && o.contender === first.contender).flatMap((o) => o.roundsMbps);
    rows.push({ body: first.body, chunkBytes: first.chunkBytes, contender: first.contender, mbps: median(values), roundsMbps: values });
  }
  return { rounds: passes * CHILD_ROUNDS, largeBytes: LARGE_BYTES, smallParts: SMALL_PARTS, smallPartBytes: SMALL_PART_BYTES, rows };
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  const value = (name: string): string | undefined => {
    const i = argv.indexOf(name);
    return i === -1 ? undefined : argv[i + 1];
  };
  const child = value('--child');
  if (child !== undefined) {
    process.stdout.write(JSON.stringify(await measureContender(child as ParserContender)));
    return;
  }
  const passes = Number(value('--rounds') ?? '3');
  if (!Number.isInteger(passes) || passes < 1 || passes > 100) throw new Error('--rounds: expected 1-100');
  const quiet = argv.includes('--quiet');
  const report = await runParserBench(passes, (line) => process.stderr.write(`${line}\n`));
  const json = value('--json');
  if (json !== undefined) {
    mkdirSync(dirname(json), { recursive: true });
    writeFileSync(json, `${JSON.stringify(report, null, 2)}\n`);
  }
  if (!quiet) process.stdout.write(`${formatParserTable(report)}\n`);
}

main().catch((err: unknown) => {
  process.stderr.write(`parser bench failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exitCode = 1;
});
