import type { ByteRange } from '../storage/store.js';

/**
 * Reads a `Range` header against a file of `size` bytes (RFC 9110 14.1.2, 14.2):
 *
 * - `{ kind: 'none' }`: send the whole file (200). No header; another unit; a header that is not
 *   a valid ranges-specifier (RFC 9110 14.2 lets a server ignore it, as nginx and send do); or
 *   more parts than we are willing to send (nginx's `max_ranges`).
 * - `{ kind: 'ranges' }`: the satisfiable ranges, overlapping and adjacent ones coalesced (RFC 9110
 *   14.2 allows it; it also defuses the many-overlapping-ranges attack, CVE-2011-3192), kept in the
 *   order the client asked for them. One range → a plain 206; several → multipart/byteranges.
 * - `{ kind: 'unsatisfiable' }`: not one range overlaps the file → 416.
 */
export type RangeRequest = { kind: 'none' } | { kind: 'ranges'; ranges: readonly ByteRange[] } | { kind: 'unsatisfiable' };

/** Range-specs read from one header; a longer list is ignored (the whole file is sent). */
const MAX_RANGE_SPECS = 100;
/** Parts of one multipart/byteranges answer, after coalescing; more and the whole file is sent. */
export const MAX_PARTS = 32;

const NONE: RangeRequest = { kind: 'none' };
/** `bytes=...`: the unit is a token, compared case-insensitively (RFC 9110 14.1). */
const RANGES_SPECIFIER = /^\s*([!#$%&'*+.^_`|~0-9A-Za-z-]+)\s*=(.*)$/s;
const RANGE_SPEC = /^(\d*)\s*-\s*(\d*)$/;

export function parseRange(header: string | undefined, size: number): RangeRequest {
  if (header === undefined) return NONE;
  const specifier = RANGES_SPECIFIER.exec(header);
  if (specifier === null || (specifier[1] as string).toLowerCase() !== 'bytes') return NONE;
  // RFC 9110 5.6.1: a list may carry empty members (`0-1,,5-6`); they are not ranges.
  const specs = (specifier[2] as string).split(',').map((s) => s.trim()).filter((s) => s !== '');
  if (specs.length === 0 || specs.length > MAX_RANGE_SPECS) return NONE;
  const satisfiable: ByteRange[] = [];
  for (const spec of specs) {
    const range = parseRangeSpec(spec, size);
    if (range === 'invalid') return NONE;
    if (range !== 'unsatisfiable') satisfiable.push(range);
  }
  if (satisfiable.length === 0) return { kind: 'unsatisfiable' };
  const ranges = coalesce(satisfiable);
  return ranges.length > MAX_PARTS ? NONE : { kind: 'ranges', ranges };
}

/** One int-range or suffix-range (RFC 9110 14.1.1), clipped to the file. */
function parseRangeSpec(spec: string, size: number): ByteRange | 'invalid' | 'unsatisfiable' {
  const match = RANGE_SPEC.exec(spec);
  if (match === null) return 'invalid';
  const [, first = '', last = ''] = match;
  if (first === '' && last === '') return 'invalid';
  if (first === '') {
    // suffix-range: the last N bytes; a zero-length suffix, or any suffix of an empty file, selects nothing
    const n = Number(last);
    if (n === 0 || size === 0) return 'unsatisfiable';
    return { start: Math.max(0, size - n), end: size - 1 };
  }
  const start = Number(first);
  if (last !== '' && Number(last) < start) return 'invalid';
  if (start >= size) return 'unsatisfiable';
  return { start, end: last === '' ? size - 1 : Math.min(Number(last), size - 1) };
}

/**
 * Merges ranges that overlap or touch (`0-4,5-9` → `0-9`); the merged ranges keep the position of
 * the first range each one absorbed (RFC 9110 14.2: parts in the order requested).
 */
function coalesce(ranges: readonly ByteRange[]): ByteRange[] {
  const byStart = ranges.map((r, index) => ({ start: r.start, end: r.end, index })).sort((a, b) => a.start - b.start);
  const merged: Array<{ start: number; end: number; index: number }> = [];
  for (const r of byStart) {
    const last = merged[merged.length - 1];
    if (last !== undefined && r.start <= last.end + 1) {
      last.end = Math.max(last.end, r.end);
      last.index = Math.min(last.index, r.index);
    } else {
      merged.push({ ...r });
    }
  }
  return merged.sort((a, b) => a.index - b.index).map(({ start, end }) => ({ start, end }));
}

/** One part of a multipart/byteranges body: its header block, then the bytes of `range`. */
export interface BytePart {
  readonly head: Buffer;
  readonly range: ByteRange;
}

/** A multipart/byteranges body (RFC 9110 14.6) laid out ahead, so its length is known before a byte is read. */
export interface ByteRangesLayout {
  /** `multipart/byteranges; boundary=...` */
  readonly contentType: string;
  readonly parts: readonly BytePart[];
  /** The closing delimiter. */
  readonly tail: Buffer;
  /** The exact length of the whole body. */
  readonly length: number;
}

/**
 * Lays out `ranges` of a `size`-byte file of type `contentType` as a multipart/byteranges body:
 * each part `CRLF --boundary CRLF Content-Type CRLF Content-Range CRLF CRLF <bytes>`, then
 * `CRLF --boundary-- CRLF` (the leading CRLF of the first part is an empty preamble, as nginx sends).
 * `boundary` must not occur in the bytes: 24+ random hex characters are safe enough.
 */
export function layoutByteRanges(ranges: readonly ByteRange[], size: number, contentType: string, boundary: string): ByteRangesLayout {
  const parts = ranges.map((range) => ({
    head: Buffer.from(`\r\n--${boundary}\r\ncontent-type: ${contentType}\r\ncontent-range: bytes ${range.start}-${range.end}/${size}\r\n\r\n`, 'latin1'),
    range,
  }));
  const tail = Buffer.from(`\r\n--${boundary}--\r\n`, 'latin1');
  const length = parts.reduce((sum, p) => sum + p.head.length + (p.range.end - p.range.start + 1), tail.length);
  return { contentType: `multipart/byteranges; boundary=${boundary}`, parts, tail, length };
}
