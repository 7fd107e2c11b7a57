import { Transform, type TransformCallback } from 'node:stream';
import { LimitExceededError, MalformedRequestError } from '../lib/errors.js';
import type { MultipartEvent } from './events.js';
import { buildPartInfo, type PartCounts } from './part-info.js';
import { PartHeaderParser } from './part-headers.js';
import { transferDecoder, type TransferDecoder } from './transfer-encoding.js';

export interface ParserOptions {
  /** The boundary from the Content-Type, without the leading `--`. */
  readonly boundary: string;
  /** Bytes of one part's header block. 16 KiB by default, as Node's own HTTP header limit. */
  readonly maxPartHeaderBytes?: number;
  /** Header lines of one part. Real clients send 2 or 3. */
  readonly maxHeaderLines?: number;
  readonly maxParts?: number;
  readonly maxFiles?: number;
  readonly maxFields?: number;
  /** Bytes of one field value. 1 MiB by default. */
  readonly maxFieldBytes?: number;
  readonly maxFileBytes?: number;
}

const DEFAULT_MAX_PART_HEADER_BYTES = 16 * 1024; // Node's default max HTTP header size
const DEFAULT_MAX_HEADER_LINES = 32;
const DEFAULT_MAX_FIELD_BYTES = 1024 * 1024;
/** Bytes of preamble we skip looking for the first delimiter, so a non-multipart body fails fast. */
export const MAX_PREAMBLE_BYTES = 64 * 1024;
/** RFC 2046 5.1.1 transport padding after a delimiter; real clients send none. */
export const MAX_PADDING_BYTES = 256;

const CR = 0x0d;
const LF = 0x0a;
const DASH = 0x2d;
const SP = 0x20;
const HTAB = 0x09;

const PREAMBLE = 0;
const HEADERS = 1;
const BODY = 2;
const EPILOGUE = 3;

/** Every part ends with the same (frozen) event: one allocation fewer per part. */
const PART_END: MultipartEvent = Object.freeze({ type: 'part-end' });

/** What follows a candidate delimiter. */
const TAIL_NEED_MORE = -1;
const TAIL_NOT_DELIMITER = -2;
const TAIL_CLOSE = -3;

/**
 * Incremental multipart/form-data parser (RFC 2046 5.1, RFC 7578): bytes in, arrays of
 * MultipartEvent out (the events each input chunk produced, in order; never empty). Batching
 * keeps thousands of tiny parts cheap: the stream machinery runs once per chunk, not per event.
 * No HTTP in here; it works on any byte stream.
 *
 * The delimiter is searched with native `Buffer.indexOf` over fresh data. The only bytes held
 * back between chunks are those that could still start a delimiter (at most the delimiter, its
 * padding and CRLF); they are re-scanned, joined to the next chunk. Data events are slices of
 * the input, never copies (but for a part with a base64 or quoted-printable
 * Content-Transfer-Encoding, whose data is decoded). Backpressure is that of one object-mode
 * Transform: while the consumer is not reading, `_transform` does not run again and the source
 * stops being read.
 */
export class MultipartParser extends Transform {
  /** `\r\n--boundary`: RFC 2046 5.1.1, the delimiter includes the CRLF before it. */
  private readonly needle: Buffer;
  private readonly headerParser: PartHeaderParser;
  private readonly limits: Required<Omit<ParserOptions, 'boundary'>>;
  private state = PREAMBLE;
  /** Undecided bytes from the end of the previous chunk, re-scanned in front of the next one. */
  private carry: Buffer | null = null;
  private partOpen = false;
  /**
   * At the very start of the body and just after a header block, where a delimiter may stand
   * without a CRLF of its own (RFC 2046 5.1.1: the first one may open the body; a body-part is
   * `MIME-part-headers [CRLF *OCTET]`, so the blank line's CRLF can be the delimiter's).
   */
  private bareDelimiterAllowed = true;
  private failure: Error | null = null;
  private partIsFile = false;
  /** The part's Content-Transfer-Encoding decoder (base64, quoted-printable), null for raw bytes. */
  private decoder: TransferDecoder | null = null;
  private partBytes = 0;
  private preambleBytes = 0;
  /** The body opened with `--boundary` and a bare LF: framed with LFs, not CRLFs (for the error message). */
  private bareLfFraming = false;
  private readonly counts: PartCounts = { parts: 0, files: 0, fields: 0 };
  /** Events found in the current chunk, pushed together when the chunk is done. */
  private batch: MultipartEvent[] = [];

  constructor(options: ParserOptions) {
    // A batch holds at most one input chunk's worth of slices; 4 batches bound what waits for the consumer.
    super({ readableObjectMode: true, readableHighWaterMark: 4 });
    this.needle = Buffer.from(`\r\n--${options.boundary}`, 'latin1');
    this.limits = {
      maxPartHeaderBytes: options.maxPartHeaderBytes ?? DEFAULT_MAX_PART_HEADER_BYTES,
      maxHeaderLines: options.maxHeaderLines ?? DEFAULT_MAX_HEADER_LINES,
      maxParts: options.maxParts ?? Infinity,
      maxFiles: options.maxFiles ?? Infinity,
      maxFields: options.maxFields ?? Infinity,
      maxFieldBytes: options.maxFieldBytes ?? DEFAULT_MAX_FIELD_BYTES,
      maxFileBytes: options.maxFileBytes ?? Infinity,
    };
    this.headerParser = new PartHeaderParser({ maxBytes: this.limits.maxPartHeaderBytes, maxLines: this.limits.maxHeaderLines });
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    // Once failed, stay failed: Node may still hand over chunks it had buffered.
    if (this.failure !== null) return callback(this.failure);
    try {
      this.scan(chunk);
    } catch (err) {
      this.batch = [];
      this.failure = err as Error;
      callback(this.failure);
      return;
    }
    this.flushBatch();
    callback();
  }

  /** Hands this chunk's events on as one array: one stream operation per chunk, not per event. */
  private flushBatch(): void {
    if (this.batch.length === 0) return;
    const batch = this.batch;
    this.batch = [];
    this.push(batch);
  }

  override _flush(callback: TransformCallback): void {
    if (this.failure !== null) return callback(this.failure);
    if (this.state === EPILOGUE) return callback();
    if (this.state === PREAMBLE && this.counts.parts === 0) {
      return callback(this.noDelimiter('The body contains no multipart delimiter for the declared boundary'));
    }
    callback(new MalformedRequestError('MULTIPART_TRUNCATED', 'The multipart body ended before its closing delimiter'));
  }

  private scan(chunk: Buffer): void {
    let buf = chunk;
    if (this.carry !== null) {
      // Rare on real data (the chunk must end inside a possible delimiter), and small: the carry
      // is at most a delimiter plus padding.
      buf = Buffer.concat([this.carry, chunk]);
      this.carry = null;
    }
    let pos = 0;
    const len = buf.length;
    while (pos < len) {
      switch (this.state) {
        case HEADERS: {
          const next = this.headerParser.push(buf, pos);
          if (next === -1) return;
          this.openPart();
          pos = next;
          break;
        }
        case BODY:
        case PREAMBLE:
          pos = this.bareDelimiterAllowed ? this.scanBareDelimiter(buf, pos) : this.scanData(buf, pos);
          break;
        default:
          // EPILOGUE: RFC 2046 5.1.1, ignored (and not kept).
          return;
      }
    }
  }

  /** Decides whether `--boundary` stands right at `pos` (see bareDelimiterAllowed), then scans on. */
  private scanBareDelimiter(buf: Buffer, pos: number): number {
    const dashBoundaryLength = this.needle.length - 2;
    const available = buf.length - pos;
    const n = Math.min(available, dashBoundaryLength);
    // Data right after a header block rarely starts with `-`: skip the native compare then.
    if (buf[pos] !== DASH || buf.compare(this.needle, 2, 2 + n, pos, pos + n) !== 0) {
      this.bareDelimiterAllowed = false;
      return this.scanData(buf, pos);
    }
    const after = n < dashBoundaryLength ? TAIL_NEED_MORE : delimiterTail(buf, pos + dashBoundaryLength);
    if (after === TAIL_NEED_MORE) {
      this.carry = buf.subarray(pos);
      return buf.length;
    }
    this.bareDelimiterAllowed = false;
    if (after === TAIL_NOT_DELIMITER) {
      if (this.state === PREAMBLE && buf[pos + dashBoundaryLength] === LF) this.bareLfFraming = true;
      return this.scanData(buf, pos);
    }
    return this.onDelimiter(buf, after);
  }

  /** Scans part data (or preamble) from `pos`; returns where to go on, `buf.length` when done. */
  private scanData(buf: Buffer, pos: number): number {
    const needle = this.needle;
    const len = buf.length;
    let from = pos;
    for (;;) {
      const at = buf.indexOf(needle, from);
      if (at === -1) {
        const keep = partialNeedleStart(buf, Math.max(from, len - needle.length + 1), needle);
        this.emitData(buf, pos, keep === -1 ? len : keep);
        if (keep !== -1) this.carry = buf.subarray(keep);
        return len;
      }
      const after = delimiterTail(buf, at + needle.length);
      if (after === TAIL_NOT_DELIMITER) {
        // `\r\n--boundaryX`: data that merely looks like a delimiter (RFC 2046 5.1.1 requires
        // the boundary to be followed by `--`, padding or CRLF).
        from = at + 1;
        continue;
      }
      this.emitData(buf, pos, at);
      if (after === TAIL_NEED_MORE) {
        this.carry = buf.subarray(at);
        return len;
      }
      return this.onDelimiter(buf, after);
    }
  }

  /** A delimiter (or the close delimiter) ended the current part; returns where to go on. */
  private onDelimiter(buf: Buffer, after: number): number {
    this.closePart();
    if (after === TAIL_CLOSE) {
      // RFC 2046 5.1.1: whatever follows the close delimiter is epilogue, ignored.
      this.state = EPILOGUE;
      return buf.length;
    }
    this.counts.parts += 1;
    if (this.counts.parts > this.limits.maxParts) {
      throw new LimitExceededError('TOO_MANY_PARTS', `More than ${this.limits.maxParts} parts`, this.limits.maxParts);
    }
    this.headerParser.reset();
    this.state = HEADERS;
    return after;
  }

  private emitData(buf: Buffer, start: number, end: number): void {
    if (end <= start) return;
    if (this.state === PREAMBLE) {
      this.preambleBytes += end - start;
      if (this.preambleBytes > MAX_PREAMBLE_BYTES) {
        throw this.noDelimiter(`No multipart delimiter in the first ${MAX_PREAMBLE_BYTES} bytes of the body`);
      }
      return;
    }
    // The whole chunk is data most of the time in a large part: no view to make then.
    const data = start === 0 && end === buf.length ? buf : buf.subarray(start, end);
    this.emitPartData(this.decoder === null ? data : this.decoder.write(data));
  }

  /** Part data (decoded, when the part has a transfer encoding), counted against its limit. */
  private emitPartData(data: Buffer): void {
    if (data.length === 0) return;
    this.partBytes += data.length;
    if (this.partIsFile) {
      if (this.partBytes > this.limits.maxFileBytes) {
        throw new LimitExceededError('FILE_TOO_LARGE', `A file is larger than the limit of ${this.limits.maxFileBytes} bytes`, this.limits.maxFileBytes);
      }
    } else if (this.partBytes > this.limits.maxFieldBytes) {
      throw new LimitExceededError('FIELD_TOO_LARGE', `A field value is larger than the limit of ${this.limits.maxFieldBytes} bytes`, this.limits.maxFieldBytes);
    }
    this.batch.push({ type: 'data', data });
  }

  /** MULTIPART_NO_DELIMITER; for a body framed with bare LFs (Python's email package by default), saying so. */
  private noDelimiter(message: string): MalformedRequestError {
    return new MalformedRequestError(
      'MULTIPART_NO_DELIMITER',
      this.bareLfFraming ? 'The body starts with a delimiter line ending in a bare LF: multipart lines end in CRLF (RFC 2046 5.1.1)' : message,
    );
  }

  private openPart(): void {
    const part = buildPartInfo(this.headerParser.result(), this.counts, this.limits);
    this.partOpen = true;
    this.partIsFile = part.filename !== null;
    this.partBytes = 0;
    this.decoder = transferDecoder(part.headers['content-transfer-encoding']);
    this.state = BODY;
    this.bareDelimiterAllowed = true;
    this.batch.push({ type: 'part', part });
  }

  private closePart(): void {
    if (!this.partOpen) return;
    if (this.decoder !== null) {
      this.emitPartData(this.decoder.end());
      this.decoder = null;
    }
    this.partOpen = false;
    this.batch.push(PART_END);
  }
}

/**
 * What follows `\r\n--boundary` at `i`: `--` (close delimiter: TAIL_CLOSE), or optional
 * padding then CRLF (a delimiter: the offset after the CRLF); else a TAIL_* verdict.
 */
function delimiterTail(buf: Buffer, i: number): number {
  const len = buf.length;
  if (i >= len) return TAIL_NEED_MORE;
  if (buf[i] === DASH) {
    if (i + 1 >= len) return TAIL_NEED_MORE;
    return buf[i + 1] === DASH ? TAIL_CLOSE : TAIL_NOT_DELIMITER;
  }
  let p = i;
  while (p < len && (buf[p] === SP || buf[p] === HTAB)) {
    p += 1;
    if (p - i > MAX_PADDING_BYTES) throw new MalformedRequestError('MULTIPART_MALFORMED', 'Transport padding after a delimiter is too long');
  }
  if (p >= len) return TAIL_NEED_MORE;
  // After padding the boundary line is a delimiter line, so anything but CRLF is malformed.
  const padded = p > i;
  if (buf[p] !== CR) return padded ? malformedDelimiterLine() : TAIL_NOT_DELIMITER;
  if (p + 1 >= len) return TAIL_NEED_MORE;
  if (buf[p + 1] === LF) return p + 2;
  return padded ? malformedDelimiterLine() : TAIL_NOT_DELIMITER;
}

function malformedDelimiterLine(): never {
  throw new MalformedRequestError('MULTIPART_MALFORMED', 'A delimiter line has something other than transport padding after the boundary');
}

/**
 * The offset of the longest suffix of `buf` that is a proper prefix of `needle`, looking only
 * from `from` on, or -1. The needle starts with CR, so only CR bytes are candidates.
 */
function partialNeedleStart(buf: Buffer, from: number, needle: Buffer): number {
  const len = buf.length;
  // A plain loop: at most a delimiter's length of bytes, cheaper than a native indexOf call.
  for (let k = from; k < len; k += 1) {
    if (buf[k] === CR && buf.compare(needle, 0, len - k, k, len) === 0) return k;
  }
  return -1;
}
