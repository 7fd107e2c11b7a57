/**
 * Runs one body through a MultipartParser, in process, and checks everything that must hold
 * whatever the input: events in order (part, data*, part-end), never more data for a part than
 * its limit allows, never more parts/files/fields than allowed, header records without a
 * prototype, at most one error and then nothing else, an error that is a typed SluiceError with
 * a 4xx status, the stream ending (or failing) within a time bound, and the parser's own
 * buffering bounded (what it carries between chunks, what it holds of a header block, its
 * stream buffers) however the input is chunked.
 */
import { createHash } from 'node:crypto';
import { setImmediate as nextMacrotask } from 'node:timers/promises';
import { SluiceError } from '../../lib/errors.js';
import type { MultipartEvent, PartInfo } from '../../multipart/events.js';
import { MultipartParser } from '../../multipart/parser.js';
import type { CaseLimits } from './fuzz-cases.js';

export interface OutPart {
  readonly name: string;
  readonly filename: string | null;
  readonly contentType: string | null;
  readonly size: number;
  /** The part's bytes, with `keepData` only. */
  readonly data: Buffer | null;
}

export type Outcome =
  /** `digest`: sha256 over every part's headers and data, to compare runs cheaply. */
  | { readonly kind: 'parts'; readonly parts: readonly OutPart[]; readonly digest: string }
  | { readonly kind: 'error'; readonly code: string; readonly status: number };

export interface RunResult {
  /** Null when the run never settled (a hang). */
  readonly outcome: Outcome | null;
  /** Everything that broke a rule; empty when the run was sound. */
  readonly violations: string[];
  readonly ms: number;
}

/** RFC 2046 5.1.1 transport padding the parser accepts after a delimiter (MAX_PADDING_BYTES). */
const MAX_PADDING_BYTES = 256;
/** Node's default writable high-water mark: what a well-behaved source may have queued. */
const WRITABLE_HWM = 16 * 1024;
/** The parser's readable high-water mark, in batches. */
const READABLE_HWM = 4;

let introspectionWarned = false;

interface Internals {
  readonly carry: number;
  readonly headerHeld: number;
}

/**
 * What the parser holds between chunks, read from its private fields (TypeScript-private only).
 * If a refactor renames them, the public bounds still apply and a warning says so once.
 */
function internals(parser: MultipartParser): Internals | null {
  const p = parser as unknown as { carry?: unknown; headerParser?: { valueParts?: unknown; name?: unknown; value?: unknown; headers?: unknown } };
  const hp = p.headerParser;
  if (!('carry' in p) || hp === undefined || !Array.isArray(hp.valueParts) || typeof hp.name !== 'string') {
    if (!introspectionWarned) {
      introspectionWarned = true;
      console.log('fuzz: the parser has no `carry`/`headerParser.valueParts` fields any more; only its public buffers are checked');
    }
    return null;
  }
  const carry = Buffer.isBuffer(p.carry) ? p.carry.length : 0;
  let pieces = 0;
  for (const v of hp.valueParts as unknown[]) if (Buffer.isBuffer(v)) pieces += v.length;
  // Between the value's end and its LF, the value is held both as pieces and joined: count it once.
  let headerHeld = hp.name.length + Math.max(pieces, typeof hp.value === 'string' ? hp.value.length : 0);
  // The finished lines of the block so far (decoded: never more characters than their bytes).
  if (typeof hp.headers === 'object' && hp.headers !== null) {
    for (const [k, v] of Object.entries(hp.headers)) headerHeld += k.length + (typeof v === 'string' ? v.length : 0);
  }
  return { carry, headerHeld };
}

const ERROR_CODE = /^[A-Z][A-Z0-9_]+$/;

export interface RunOptions {
  readonly timeoutMs?: number;
  /** Keep each part's bytes (for exact comparisons); otherwise only size and sha256. */
  readonly keepData?: boolean;
  /** Read the events with a delay now and then, so that backpressure kicks in. */
  readonly slowConsumer?: boolean;
}

export async function runParserCase(boundary: string, limits: CaseLimits, chunks: readonly Buffer[], options: RunOptions = {}): Promise<RunResult> {
  const started = performance.now();
  const violations: string[] = [];
  const fail = (message: string): void => {
    if (violations.length < 20) violations.push(message);
  };
  let parser: MultipartParser;
  try {
    parser = new MultipartParser({ boundary, ...limits });
  } catch (err) {
    // The constructor may refuse a boundary; that too must be a typed 4xx error.
    return { outcome: classifyError(err, fail), violations, ms: performance.now() - started };
  }
  const maxFieldBytes = limits.maxFieldBytes ?? 1024 * 1024;
  const maxFileBytes = limits.maxFileBytes ?? Infinity;
  const maxHeader = limits.maxPartHeaderBytes ?? 16 * 1024;
  const carryBound = 4 + Buffer.byteLength(boundary, 'latin1') + MAX_PADDING_BYTES + 4;

  const parts: Array<{ info: PartInfo; size: number; data: Buffer[]; ended: boolean }> = [];
  const digest = createHash('sha256');
  let maxChunk = 0;
  let files = 0;
  let fields = 0;
  const errors: unknown[] = [];
  let ended = false;
  let lastChunk = 0;

  const onBatch = (batch: unknown): void => {
    if (errors.length > 0) fail('events after the error');
    if (ended) fail('events after the end');
    if (!Array.isArray(batch) || batch.length === 0) return void fail(`a batch that is not a non-empty array: ${typeof batch}`);
    let batchBytes = 0;
    for (const ev of batch as MultipartEvent[]) {
      const current = parts[parts.length - 1];
      switch (ev?.type) {
        case 'part': {
          if (current !== undefined && !current.ended) fail('a part started before the previous part ended');
          const info = ev.part;
          if (typeof info.name !== 'string') fail('part name is not a string');
          if (info.filename !== null && typeof info.filename !== 'string') fail('filename neither string nor null');
          if (Object.getPrototypeOf(info.headers) !== null) fail('part headers record has a prototype');
          if (info.filename !== null && /[/\\]/.test(info.filename)) fail(`filename keeps a path separator: ${JSON.stringify(info.filename)}`);
          if (info.filename === null) fields += 1;
          else files += 1;
          if (parts.length + 1 > (limits.maxParts ?? Infinity)) fail(`part ${parts.length + 1} reported past maxParts ${limits.maxParts}`);
          if (files > (limits.maxFiles ?? Infinity)) fail(`file ${files} reported past maxFiles ${limits.maxFiles}`);
          if (fields > (limits.maxFields ?? Infinity)) fail(`field ${fields} reported past maxFields ${limits.maxFields}`);
          parts.push({ info, size: 0, data: [], ended: false });
          digest.update(`\0part ${JSON.stringify([info.name, info.filename, info.contentType])}\0`);
          break;
        }
        case 'data': {
          if (current === undefined || current.ended) fail('data outside a part');
          if (!Buffer.isBuffer(ev.data)) return void fail('data event without a Buffer');
          if (current === undefined) break;
          current.size += ev.data.length;
          batchBytes += ev.data.length;
          digest.update(ev.data);
          if (options.keepData === true) current.data.push(ev.data);
          const max = current.info.filename === null ? maxFieldBytes : maxFileBytes;
          if (current.size > max) fail(`${current.info.filename === null ? 'field' : 'file'} data ${current.size} bytes reported past its limit ${max}`);
          break;
        }
        case 'part-end':
          if (current === undefined || current.ended) fail('part-end without an open part');
          else current.ended = true;
          digest.update('\0end\0');
          break;
        default:
          fail(`unknown event ${JSON.stringify((ev as { type?: unknown } | null)?.type)}`);
      }
    }
    // A batch is made of slices of one input chunk plus what was carried over. (A slow consumer
    // reads batches late, so compare with the largest chunk so far.)
    const chunkBound = options.slowConsumer === true ? maxChunk : lastChunk;
    if (batchBytes > chunkBound + carryBound) fail(`a batch of ${batchBytes} data bytes from a ${lastChunk}-byte chunk`);
  };

  let settle: () => void = () => {};
  const settled = new Promise<void>((r) => (settle = r));
  parser.on('error', (err: unknown) => {
    errors.push(err);
    settle();
  });
  parser.on('end', () => {
    ended = true;
    settle();
  });
  parser.on('close', () => settle());

  let timer: NodeJS.Timeout | undefined;
  let timedOut = false;
  const deadline = new Promise<void>((r) => {
    timer = setTimeout(() => {
      timedOut = true;
      r();
    }, options.timeoutMs ?? 2_000);
  });

  const checkBounds = (): void => {
    const inner = internals(parser);
    if (inner !== null) {
      if (inner.carry > carryBound) fail(`carries ${inner.carry} bytes between chunks (bound ${carryBound})`);
      if (inner.headerHeld > maxHeader) fail(`holds ${inner.headerHeld} bytes of a header block (limit ${maxHeader})`);
    }
    if (parser.writableLength > WRITABLE_HWM + lastChunk) fail(`writable buffer ${parser.writableLength} bytes`);
    if (parser.readableLength > READABLE_HWM + 1) fail(`readable buffer ${parser.readableLength} batches`);
  };

  const feed = async (): Promise<void> => {
    let n = 0;
    for (const chunk of chunks) {
      if (parser.destroyed || timedOut) return;
      lastChunk = chunk.length;
      maxChunk = Math.max(maxChunk, chunk.length);
      const ok = parser.write(chunk);
      checkBounds();
      n += 1;
      if (!ok && !parser.destroyed) {
        // Backpressure, as a real source sees it: wait for drain (or the end of the parser).
        await new Promise<void>((r) => {
          const done = (): void => {
            parser.off('drain', done);
            parser.off('close', done);
            r();
          };
          parser.on('drain', done);
          parser.on('close', done);
        });
      }
      if (options.slowConsumer === true && n % 7 === 0) await nextMacrotask();
    }
    if (!parser.destroyed && !timedOut) parser.end();
  };

  if (options.slowConsumer === true) {
    // Paused mode: read in bursts, so that the readable side fills and write() says false.
    const reader = async (): Promise<void> => {
      while (!ended && errors.length === 0 && !timedOut && !parser.destroyed) {
        let batch: unknown;
        while ((batch = parser.read()) !== null) onBatch(batch);
        if (ended || parser.destroyed) break;
        await Promise.race([new Promise((r) => parser.once('readable', r)), settled, deadline]);
      }
    };
    void reader();
  } else {
    parser.on('data', onBatch);
  }
  await Promise.race([feed(), deadline]);
  await Promise.race([settled, deadline]);
  clearTimeout(timer);
  // Let any late second error or event show up.
  await nextMacrotask();
  await nextMacrotask();

  const ms = performance.now() - started;
  if (timedOut) {
    fail(`no end and no error within ${options.timeoutMs ?? 2_000} ms (a hang)`);
    parser.destroy();
    return { outcome: null, violations, ms };
  }
  if (errors.length > 1) fail(`${errors.length} errors`);
  if (errors.length > 0) {
    if (ended) fail('both ended and failed');
    return { outcome: classifyError(errors[0], fail), violations, ms };
  }
  if (!ended) {
    fail('closed without end or error');
    return { outcome: null, violations, ms };
  }
  const open = parts.find((p) => !p.ended);
  if (open !== undefined) fail(`ended cleanly with part ${JSON.stringify(open.info.name)} never closed`);
  return {
    outcome: {
      kind: 'parts',
      parts: parts.map((p) => ({
        name: p.info.name,
        filename: p.info.filename,
        contentType: p.info.contentType,
        size: p.size,
        data: options.keepData === true ? Buffer.concat(p.data) : null,
      })),
      digest: digest.digest('hex'),
    },
    violations,
    ms,
  };
}

function classifyError(err: unknown, fail: (m: string) => void): Outcome {
  if (!(err instanceof SluiceError)) {
    fail(`an untyped error: ${err instanceof Error ? `${err.name}: ${err.message}` : String(err)}`);
    return { kind: 'error', code: 'UNTYPED', status: 0 };
  }
  if (!ERROR_CODE.test(err.code)) fail(`error code ${JSON.stringify(err.code)}`);
  if (err.status !== 400 && err.status !== 413) fail(`error ${err.code} has status ${err.status}, not 400/413`);
  return { kind: 'error', code: err.code, status: err.status };
}

/** A comparable text of an outcome (parts by name, filename, type, size and hash; or the error code). */
export function describeOutcome(o: Outcome | null): string {
  if (o === null) return 'none';
  if (o.kind === 'error') return `error ${o.code}`;
  return `${o.parts.length} parts, digest ${o.digest}: ${JSON.stringify(o.parts.slice(0, 5).map((p) => [p.name, p.filename, p.contentType, p.size]))}`;
}
