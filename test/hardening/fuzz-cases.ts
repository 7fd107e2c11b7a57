/**
 * Seeded fuzz cases for the multipart parser: a valid body from one of several generators
 * (plain forms, boundary look-alikes in data, thousands of tiny parts, huge header lines, a
 * 70-character boundary, non-UTF-8 filenames, odd but legal headers), then zero or more
 * mutations (byte flips, truncations, duplicated and missing CRLFs, inserted look-alikes and
 * delimiters, huge lines, duplicated or deleted slices), and a random chunking. The same seed
 * always gives the same case, so a failure is replayed from its seed alone.
 */
import { mulberry32, pick, randInt } from './helpers.js';

/** The limits a case runs with (the parser's ParserOptions without the boundary). */
export interface CaseLimits {
  readonly maxPartHeaderBytes?: number;
  readonly maxHeaderLines?: number;
  readonly maxParts?: number;
  readonly maxFiles?: number;
  readonly maxFields?: number;
  readonly maxFieldBytes?: number;
  readonly maxFileBytes?: number;
}

export interface ExpectedPart {
  readonly name: string;
  readonly filename: string | null;
  readonly data: Buffer;
}

export interface FuzzCase {
  readonly seed: number;
  /** Generator and mutations, for humans. */
  readonly what: string;
  readonly boundary: string;
  readonly body: Buffer;
  readonly limits: CaseLimits;
  /** Sizes of the chunks the body is fed in (sum = body length). */
  readonly chunkSizes: number[];
  /** Known parts when the body was not mutated (and fits the limits); null otherwise. */
  readonly expected: ExpectedPart[] | null;
}

/** The limits `handlers/multipart-options.ts` derives from the server defaults. */
export const SERVER_LIMITS: CaseLimits = {
  maxPartHeaderBytes: 16 * 1024,
  maxFiles: 100,
  maxFields: 1000,
  maxParts: 1100,
  maxFieldBytes: 1024 * 1024,
};

const BCHARS = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz'()+_,-./:=?";

function randomBoundary(random: () => number, length: number): string {
  let b = '';
  for (let i = 0; i < length; i += 1) {
    // RFC 2046 5.1.1: a space may occur inside, never last.
    b += i < length - 1 && random() < 0.03 ? ' ' : (BCHARS[randInt(random, 0, BCHARS.length - 1)] as string);
  }
  return b;
}

function randomBytes(random: () => number, n: number, text = false): Buffer {
  const out = Buffer.allocUnsafe(n);
  for (let i = 0; i < n; i += 1) out[i] = text ? randInt(random, 0x20, 0x7e) : randInt(random, 0, 255);
  return out;
}

interface PartSpec {
  readonly headers: Buffer[];
  readonly name: string;
  readonly filename: string | null;
  readonly data: Buffer;
}

const CRLF = Buffer.from('\r\n', 'latin1');

function assemble(boundary: string, parts: readonly PartSpec[], extra: { preamble?: Buffer; padding?: string; epilogue?: Buffer } = {}): Buffer {
  const out: Buffer[] = [];
  if (extra.preamble !== undefined) out.push(extra.preamble, CRLF);
  parts.forEach((p, i) => {
    out.push(Buffer.from(`${i === 0 ? '' : '\r\n'}--${boundary}${extra.padding ?? ''}\r\n`, 'latin1'));
    for (const h of p.headers) out.push(h, CRLF);
    out.push(CRLF, p.data);
  });
  out.push(Buffer.from(`${parts.length === 0 ? '' : '\r\n'}--${boundary}--`, 'latin1'));
  out.push(CRLF);
  if (extra.epilogue !== undefined) out.push(extra.epilogue);
  return Buffer.concat(out);
}

function cd(name: string, filename: string | null): Buffer {
  return Buffer.from(`Content-Disposition: form-data; name="${name}"${filename === null ? '' : `; filename="${filename}"`}`, 'utf8');
}

function simplePart(random: () => number, i: number, maxData: number, dataFn?: (n: number) => Buffer): PartSpec {
  const isFile = random() < 0.5;
  const name = `f${i}`;
  const filename = isFile ? `file-${i}.bin` : null;
  const n = randInt(random, 0, maxData);
  const data = dataFn?.(n) ?? randomBytes(random, n, !isFile);
  const headers = [cd(name, filename)];
  if (isFile) headers.push(Buffer.from('Content-Type: application/octet-stream'));
  return { headers, name, filename, data };
}

/**
 * A piece of data that looks like a delimiter but is not one: RFC 2046 5.1.1 (and issue 2) count
 * `CRLF--boundary` only when `--`, padding or CRLF follows. (Padding followed by anything but
 * CRLF is a malformed delimiter line for this parser, so it is left to the mutations.)
 */
function lookalike(random: () => number, boundary: string): Buffer {
  const prefix = pick(random, ['\r\n--', '--', '\r\n-', '\n--', '\r--', '\r\n--']);
  const body = pick(random, [boundary, boundary.slice(0, -1), `${boundary}X`, boundary.toUpperCase() === boundary ? `${boundary}z` : boundary.toUpperCase()]);
  // What follows decides: never CRLF, `--` or padding-then-CRLF right after a full boundary.
  const suffix = pick(random, ['X', '-X', '\rX', '-', '\r\r', '\nX', '_']);
  return Buffer.concat([Buffer.from(prefix + body + suffix, 'latin1'), Buffer.from('!')]);
}

type Generated = { what: string; boundary: string; body: Buffer; parts: PartSpec[] | null; limits: CaseLimits };

function generate(random: () => number): Generated {
  // Weights: plain forms 3, look-alikes 2, tight limits 2, every other generator 1 (tiny parts cost most).
  const kind = [0, 0, 0, 2, 2, 3, 4, 5, 6, 7, 8, 8][randInt(random, 0, 11)] as number;
  let boundary = randomBoundary(random, randInt(random, 1, 40));
  let limits: CaseLimits = random() < 0.5 ? SERVER_LIMITS : {};
  switch (kind) {
    case 0: {
      // A plain form, sometimes with preamble, padding and epilogue.
      const parts = Array.from({ length: randInt(random, 0, 5) }, (_, i) => simplePart(random, i, 1000));
      const extra = {
        preamble: random() < 0.2 ? randomBytes(random, randInt(random, 0, 200), true) : undefined,
        padding: random() < 0.1 ? ' \t '.slice(0, randInt(random, 1, 3)) : undefined,
        epilogue: random() < 0.2 ? randomBytes(random, randInt(random, 0, 200)) : undefined,
      };
      // A preamble that holds the delimiter would change the parts: keep it out.
      const body = assemble(boundary, parts, extra);
      return { what: 'form', boundary, body, parts: extra.preamble?.includes(`--${boundary}`) === true ? null : parts, limits };
    }
    case 2: {
      // Data full of boundary look-alikes.
      const parts = Array.from({ length: randInt(random, 1, 3) }, (_, i) =>
        simplePart(random, i, 1, () => {
          const pieces: Buffer[] = [];
          for (let k = randInt(random, 1, 12); k > 0; k -= 1) pieces.push(randomBytes(random, randInt(random, 0, 40)), lookalike(random, boundary));
          return Buffer.concat(pieces);
        }),
      );
      return { what: 'lookalikes', boundary, body: assemble(boundary, parts), parts, limits };
    }
    case 3: {
      // Thousands of tiny parts.
      const n = randInt(random, 1000, 2500);
      const parts = Array.from({ length: n }, (_, i) => {
        const isFile = random() < 0.2;
        const data = randomBytes(random, randInt(random, 0, 3), true);
        return { headers: [cd(`t${i}`, isFile ? `t${i}` : null)], name: `t${i}`, filename: isFile ? `t${i}` : null, data };
      });
      return { what: `tiny-parts(${n})`, boundary, body: assemble(boundary, parts), parts, limits };
    }
    case 4: {
      // A header line around the header limit.
      const max = random() < 0.5 ? 16 * 1024 : randInt(random, 64, 4096);
      limits = { ...limits, maxPartHeaderBytes: max };
      const pad = randInt(random, Math.max(0, max - 200), max + 200);
      const line = Buffer.from(`X-Pad: ${'a'.repeat(pad)}`, 'latin1');
      const p = simplePart(random, 0, 100);
      const parts = [{ ...p, headers: random() < 0.5 ? [line, ...p.headers] : [...p.headers, line] }];
      return { what: `huge-header(${pad}/${max})`, boundary, body: assemble(boundary, parts), parts: null, limits };
    }
    case 5: {
      // A boundary of 70 characters (the RFC 2046 maximum).
      boundary = randomBoundary(random, 70);
      const parts = Array.from({ length: randInt(random, 1, 4) }, (_, i) => simplePart(random, i, 500));
      return { what: 'boundary-70', boundary, body: assemble(boundary, parts), parts, limits };
    }
    case 6: {
      // Non-UTF-8 (and odd) filenames: raw high bytes, lone continuation bytes, filename*.
      const parts: PartSpec[] = [];
      for (let i = randInt(random, 1, 4); i > 0; i -= 1) {
        const raw = Buffer.concat([Buffer.from('Content-Disposition: form-data; name="f"; filename="', 'latin1'), randomBytes(random, randInt(random, 1, 30)).map((b) => (b === 0x22 || b === 0x5c || b < 0x20 || b === 0x7f ? 0x80 | b : b)), Buffer.from('"', 'latin1')]);
        const ext = Buffer.from(`Content-Disposition: form-data; name="g"; filename*=${pick(random, ["UTF-8''%FF%FE", "utf-8''%C3%28", "UTF-8''%E2%80%AEtxt.exe", "ISO-8859-1''%E9t%E9", "UTF-8''..%2F..%2Fx", "bogus''x", "UTF-8'en'%", "UTF-8''%00%0D%0A"])}`, 'latin1');
        parts.push({ headers: [random() < 0.5 ? raw : ext], name: 'f', filename: null, data: randomBytes(random, randInt(random, 0, 100)) });
      }
      return { what: 'odd-filenames', boundary, body: assemble(boundary, parts), parts: null, limits };
    }
    case 7: {
      // Odd but legal headers: case, whitespace, quoted escapes, prototype names, many lines.
      const headerSets: string[][] = [
        ['content-disposition:form-data;name=plain'],
        ['CONTENT-DISPOSITION: FORM-DATA; NAME="x"; FILENAME="a.txt"', 'content-type: text/plain; charset=utf-8'],
        ['Content-Disposition: form-data; name="q\\"uote"; filename="b\\\\s"'],
        ['__proto__: polluted', 'constructor: polluted', 'Content-Disposition: form-data; name="__proto__"'],
        ['Content-Disposition: form-data; name="a"', 'Content-Disposition: form-data; name="b"'],
        ['Content-Disposition: form-data; name="x"; filename="a"; filename*=UTF-8\'\'%C3%A9'],
        Array.from({ length: randInt(random, 20, 40) }, (_, k) => `X-H${k}: v`).concat('Content-Disposition: form-data; name="many"'),
      ];
      const parts = [pick(random, headerSets), pick(random, headerSets)].map((hs) => ({ headers: hs.map((h) => Buffer.from(h, 'latin1')), name: '', filename: null, data: randomBytes(random, randInt(random, 0, 50)) }));
      return { what: 'odd-headers', boundary, body: assemble(boundary, parts), parts: null, limits };
    }
    default: {
      // Tight limits around the actual sizes and counts.
      const parts = Array.from({ length: randInt(random, 1, 6) }, (_, i) => simplePart(random, i, 300));
      limits = {
        maxParts: randInt(random, 0, 6),
        maxFiles: randInt(random, 0, 4),
        maxFields: randInt(random, 0, 4),
        maxFieldBytes: randInt(random, 0, 300),
        maxFileBytes: randInt(random, 0, 300),
        maxPartHeaderBytes: randInt(random, 40, 200),
        maxHeaderLines: randInt(random, 1, 3),
      };
      return { what: 'tight-limits', boundary, body: assemble(boundary, parts), parts: null, limits };
    }
  }
}

type Mutation = (random: () => number, body: Buffer, boundary: string) => Buffer;

function positionsOf(body: Buffer, needle: string): number[] {
  const out: number[] = [];
  for (let at = body.indexOf(needle, 0, 'latin1'); at !== -1 && out.length < 10_000; at = body.indexOf(needle, at + 1, 'latin1')) out.push(at);
  return out;
}

const splice = (body: Buffer, at: number, remove: number, insert: Buffer = Buffer.alloc(0)): Buffer =>
  Buffer.concat([body.subarray(0, at), insert, body.subarray(Math.min(body.length, at + remove))]);

const MUTATIONS: ReadonlyArray<[string, Mutation]> = [
  ['flip', (r, b) => {
    const c = Buffer.from(b);
    for (let k = randInt(r, 1, 8); k > 0 && c.length > 0; k -= 1) c[randInt(r, 0, c.length - 1)] = randInt(r, 0, 255);
    return c;
  }],
  ['bitflip', (r, b) => {
    const c = Buffer.from(b);
    if (c.length > 0) {
      const i = randInt(r, 0, c.length - 1);
      c[i] = (c[i] as number) ^ (1 << randInt(r, 0, 7));
    }
    return c;
  }],
  ['truncate', (r, b) => b.subarray(0, randInt(r, 0, Math.max(0, b.length - 1)))],
  ['dup-crlf', (r, b) => {
    const at = positionsOf(b, '\r\n');
    return at.length === 0 ? b : splice(b, pick(r, at), 0, CRLF);
  }],
  ['drop-crlf', (r, b) => {
    const at = positionsOf(b, '\r\n');
    return at.length === 0 ? b : splice(b, pick(r, at), pick(r, [1, 2]));
  }],
  ['drop-lf', (r, b) => {
    const at = positionsOf(b, '\r\n');
    return at.length === 0 ? b : splice(b, pick(r, at) + 1, 1);
  }],
  ['lookalike', (r, b, boundary) => splice(b, randInt(r, 0, b.length), 0, lookalike(r, boundary))],
  ['delimiter', (r, b, boundary) => splice(b, randInt(r, 0, b.length), 0, Buffer.from(pick(r, [`\r\n--${boundary}\r\n`, `\r\n--${boundary}--`, `--${boundary}\r\n`, `\r\n--${boundary}   \r\n`]), 'latin1'))],
  ['huge-line', (r, b) => {
    const at = positionsOf(b, '\r\n');
    const line = Buffer.from(`\r\nX-Huge: ${'h'.repeat(randInt(r, 1000, 40_000))}`, 'latin1');
    return at.length === 0 ? b : splice(b, pick(r, at), 0, line);
  }],
  ['dup-slice', (r, b) => {
    const start = randInt(r, 0, b.length);
    const end = Math.min(b.length, start + randInt(r, 1, 200));
    return splice(b, randInt(r, 0, b.length), 0, Buffer.from(b.subarray(start, end)));
  }],
  ['delete-slice', (r, b) => splice(b, randInt(r, 0, b.length), randInt(r, 1, 64))],
  ['controls', (r, b) => splice(b, randInt(r, 0, b.length), 0, Buffer.from([pick(r, [0, 1, 0x0d, 0x0a, 0x7f, 0x20, 0x09, 0xff])]))],
  ['fold', (r, b) => {
    const at = positionsOf(b, '\r\n');
    return at.length === 0 ? b : splice(b, pick(r, at) + 2, 0, Buffer.from(pick(r, [' folded: x\r\n', '\tcontinued\r\n', ' ']), 'latin1'));
  }],
  ['boundary-case', (r, b, boundary) => {
    const at = positionsOf(b, `--${boundary}`);
    if (at.length === 0) return b;
    const c = Buffer.from(b);
    const i = pick(r, at) + 2 + randInt(r, 0, boundary.length - 1);
    const ch = c[i] as number;
    c[i] = ch >= 0x61 && ch <= 0x7a ? ch - 32 : ch >= 0x41 && ch <= 0x5a ? ch + 32 : ch;
    return c;
  }],
];

function chunking(random: () => number, length: number): { label: string; sizes: number[] } {
  const mode = randInt(random, 0, 9);
  if (mode === 0 || length === 0) return { label: 'whole', sizes: length === 0 ? [] : [length] };
  // Tiny chunks only on small bodies: every chunk costs a trip through the stream machinery.
  const max = mode === 1 && length <= 2048 ? 1 : mode <= 4 ? (length <= 4096 ? 17 : length <= 32 * 1024 ? 64 : 512) : mode <= 7 ? 700 : 20_000;
  const sizes: number[] = [];
  for (let left = length; left > 0; ) {
    const n = Math.min(left, randInt(random, 1, max));
    sizes.push(n);
    left -= n;
  }
  return { label: max === 1 ? 'bytes' : `chunks≤${max}`, sizes };
}

/** Whether a valid body of these parts stays within the limits (so its parts are the expected outcome). */
function fits(parts: readonly PartSpec[], limits: CaseLimits): boolean {
  const files = parts.filter((p) => p.filename !== null);
  const fields = parts.filter((p) => p.filename === null);
  return (
    parts.length <= (limits.maxParts ?? Infinity) &&
    files.length <= (limits.maxFiles ?? Infinity) &&
    fields.length <= (limits.maxFields ?? Infinity) &&
    files.every((p) => p.data.length <= (limits.maxFileBytes ?? Infinity)) &&
    fields.every((p) => p.data.length <= (limits.maxFieldBytes ?? 1024 * 1024)) &&
    parts.every((p) => p.headers.reduce((n, h) => n + h.length + 2, 2) <= (limits.maxPartHeaderBytes ?? 16 * 1024))
  );
}

/** The case of this seed. `limits` overrides the generator's; `pristineRate` is the share left unmutated. */
export function makeCase(seed: number, options: { limits?: CaseLimits; pristineRate?: number } = {}): FuzzCase {
  const random = mulberry32(seed);
  const g = generate(random);
  const limits = options.limits ?? g.limits;
  let body = g.body;
  const applied: string[] = [];
  if (random() >= (options.pristineRate ?? 0.15)) {
    for (let k = randInt(random, 1, 3); k > 0; k -= 1) {
      const [name, mutation] = pick(random, MUTATIONS);
      body = mutation(random, body, g.boundary);
      applied.push(name);
    }
  }
  const { label, sizes } = chunking(random, body.length);
  const expected = applied.length === 0 && g.parts !== null && fits(g.parts, limits) ? g.parts.map((p) => ({ name: p.name, filename: p.filename, data: p.data })) : null;
  return { seed, what: `${g.what}${applied.length > 0 ? ` +${applied.join('+')}` : ''} [${label}]`, boundary: g.boundary, body, limits, chunkSizes: sizes, expected };
}

/** Splits `body` by `sizes` (copies, so no two chunks share memory with each other or with the body). */
export function chunksOf(body: Buffer, sizes: readonly number[]): Buffer[] {
  const out: Buffer[] = [];
  let at = 0;
  for (const n of sizes) {
    out.push(Buffer.from(body.subarray(at, at + n)));
    at += n;
  }
  if (at < body.length) out.push(Buffer.from(body.subarray(at)));
  return out;
}
