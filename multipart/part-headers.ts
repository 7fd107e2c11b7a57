import { LimitExceededError, MalformedRequestError } from '../lib/errors.js';
import { TOKEN_CHAR, decodeHeaderBytes } from './header-params.js';

/**
 * Incremental parser of one part's header block (RFC 2046 5.1.1 / RFC 5322 fields), one byte
 * at a time with lookup tables, as busboy's HeaderParser does: header bytes are few and bounded
 * by the header limit, and a byte machine handles every chunk split for free.
 * Folded lines (RFC 5322 2.2.3: a line starting with SP/HTAB continues the field before it) are
 * unfolded, as busboy, Go and Python do: MIME part headers are not HTTP headers, and Python's
 * email package and JavaMail fold long Content-Disposition lines. A block that starts with
 * whitespace (the input that crashed dicer in CVE-2022-24434) has nothing to continue and is
 * rejected, as are bare CR or LF, NUL and other controls, and a second Content-Disposition,
 * Content-Type or Content-Transfer-Encoding (peers keep different copies).
 */

/** RFC 9110 5.5 field-value bytes: HTAB, SP, VCHAR and obs-text. Everything else is refused. */
const VALUE_CHAR: Uint8Array = (() => {
  const t = new Uint8Array(256);
  t[0x09] = 1;
  for (let c = 0x20; c <= 0x7e; c += 1) t[c] = 1;
  for (let c = 0x80; c <= 0xff; c += 1) t[c] = 1;
  return t;
})();

const CR = 0x0d;
const LF = 0x0a;
const SP = 0x20;
const HTAB = 0x09;
const COLON = 0x3a;

const LINE_START = 0;
const NAME = 1;
const VALUE = 2;
const VALUE_CR = 3;
const END_CR = 4;
const DONE = 5;

export interface HeaderLimits {
  readonly maxBytes: number;
  readonly maxLines: number;
}

export class PartHeaderParser {
  private state = LINE_START;
  private bytes = 0;
  private lines = 0;
  private name = '';
  private valueParts: Buffer[] = [];
  private value = '';
  private nonAscii = false;
  /** A line was read and is kept open: the next line may continue it (folding). */
  private pending = false;
  /** The value being read continues the previous line's. */
  private continuation = false;
  private headers: Record<string, string> = Object.create(null) as Record<string, string>;
  private readonly limits: HeaderLimits;

  constructor(limits: HeaderLimits) {
    this.limits = limits;
  }

  /** Starts a new header block. */
  reset(): void {
    this.state = LINE_START;
    this.bytes = 0;
    this.lines = 0;
    this.name = '';
    this.valueParts = [];
    this.nonAscii = false;
    this.pending = false;
    this.continuation = false;
    this.headers = Object.create(null) as Record<string, string>;
  }

  /** Headers of the finished block (names lower-cased). Only valid once `push` returned an offset. */
  result(): Record<string, string> {
    return this.headers;
  }

  /**
   * Consumes `buf[start..]`. Returns the offset just past the block's closing empty line, or
   * -1 when every byte was consumed and the block is not finished yet. Throws on bad input.
   */
  push(buf: Buffer, start: number): number {
    const end = buf.length;
    // Only look as far as the limit allows, so an endless header line fails at the limit.
    const room = this.limits.maxBytes - this.bytes;
    const stop = end - start > room ? start + room : end;
    let i = start;
    let nameStart = -1;
    let valueStart = -1;
    if (this.state === NAME) nameStart = start;
    else if (this.state === VALUE) valueStart = start;
    while (i < stop) {
      const c = buf[i] as number;
      switch (this.state) {
        case LINE_START:
          if (c === SP || c === HTAB) {
            if (!this.pending) throw malformed('A part header block starts with whitespace: a folded line with no line to continue');
            this.countLine();
            this.continuation = true;
            this.state = VALUE;
            // The whitespace stays: unfolding removes only the CRLF (RFC 5322 2.2.3).
            valueStart = i;
            i += 1;
            break;
          }
          if (this.pending) this.finishLine();
          if (c === CR) {
            this.state = END_CR;
          } else if (c < 128 && TOKEN_CHAR[c] === 1) {
            this.countLine();
            this.state = NAME;
            nameStart = i;
          } else {
            throw malformed(`Unexpected byte 0x${c.toString(16)} at the start of a part header line`);
          }
          i += 1;
          break;
        case NAME: {
          let b = c;
          while (b < 128 && TOKEN_CHAR[b] === 1 && ++i < stop) b = buf[i] as number;
          if (i === stop) break;
          // Anything but a colon here, whitespace included, is invalid (RFC 9110 5.1).
          if (b !== COLON) throw malformed(`Invalid byte 0x${b.toString(16)} in a part header name`);
          this.name += buf.toString('latin1', nameStart, i).toLowerCase();
          this.state = VALUE;
          i += 1;
          valueStart = i;
          break;
        }
        case VALUE: {
          // Tight loop over the value; remember whether any byte was non-ASCII for decoding.
          let b = c;
          let high = 0;
          while (VALUE_CHAR[b] === 1 && ++i < stop) {
            high |= b;
            b = buf[i] as number;
          }
          high |= b;
          if (high >= 0x80) this.nonAscii = true;
          if (i === stop) break;
          if (b !== CR) throw malformed(b === LF ? 'Bare LF in a part header' : `Control byte 0x${b.toString(16)} in a part header value`);
          this.readValue(buf, valueStart, i);
          this.state = VALUE_CR;
          i += 1;
          break;
        }
        case VALUE_CR:
          if (c !== LF) throw malformed('Bare CR in a part header');
          // Finished at the next line's first byte, unless that line continues this one.
          this.pending = true;
          this.state = LINE_START;
          i += 1;
          break;
        case END_CR:
          if (c !== LF) throw malformed('Bare CR in a part header block');
          this.state = DONE;
          this.bytes += i + 1 - start;
          return i + 1;
        default:
          // DONE: only reset() starts another block. Never spin here.
          throw new Error('PartHeaderParser.push() after the block ended');
      }
    }
    this.bytes += i - start;
    if (this.state === NAME) this.name += buf.toString('latin1', nameStart, i).toLowerCase();
    else if (this.state === VALUE) this.valueParts.push(buf.subarray(valueStart, i));
    if (i < end) {
      throw new LimitExceededError('PART_HEADER_TOO_LARGE', `A part's header block is larger than ${this.limits.maxBytes} bytes`, this.limits.maxBytes);
    }
    return -1;
  }

  /** The value (or, folded, the continuation) in `buf[from..to]` plus any pieces from earlier chunks. */
  private readValue(buf: Buffer, from: number, to: number): void {
    let text: string;
    // A continuation keeps its leading whitespace, unless nothing came before it (`Name:` CRLF SP value).
    const trimStart = !this.continuation || this.value === '';
    if (this.valueParts.length === 0) {
      text = decodeValue(buf, from, to, this.nonAscii, trimStart);
    } else {
      // A value that spanned chunks: its pieces joined (rare, and bounded by the header limit).
      this.valueParts.push(buf.subarray(from, to));
      const raw = Buffer.concat(this.valueParts);
      this.valueParts = [];
      text = decodeValue(raw, 0, raw.length, this.nonAscii, trimStart);
    }
    this.value = this.continuation ? this.value + text : text;
    this.continuation = false;
  }

  private countLine(): void {
    if (this.lines >= this.limits.maxLines) {
      throw new LimitExceededError('PART_HEADER_TOO_MANY_LINES', `A part has more than ${this.limits.maxLines} header lines`, this.limits.maxLines);
    }
    this.lines += 1;
  }

  private finishLine(): void {
    const previous = this.headers[this.name];
    if (previous === undefined) {
      this.headers[this.name] = this.value;
    } else if (SINGLE.has(this.name)) {
      throw malformed(`A part has more than one ${this.name} header`);
    } else {
      // RFC 9110 5.3: repeated fields combine with commas.
      this.headers[this.name] = `${previous}, ${this.value}`;
    }
    this.pending = false;
    this.name = '';
    this.value = '';
    this.valueParts = [];
    this.nonAscii = false;
  }
}

/** Headers a part may carry once: which copy counts would be a guess. */
const SINGLE = new Set(['content-disposition', 'content-type', 'content-transfer-encoding']);

/** `buf[from..to]` without trailing (and, unless continued, leading) SP/HTAB (RFC 9110 5.5), as text. */
function decodeValue(buf: Buffer, from: number, to: number, nonAscii: boolean, trimStart: boolean): string {
  while (trimStart && from < to && (buf[from] === SP || buf[from] === HTAB)) from += 1;
  while (to > from && (buf[to - 1] === SP || buf[to - 1] === HTAB)) to -= 1;
  // Pure ASCII (the usual case) needs no UTF-8 validation.
  return nonAscii ? decodeHeaderBytes(buf.subarray(from, to)) : buf.toString('latin1', from, to);
}

function malformed(message: string): MalformedRequestError {
  return new MalformedRequestError('PART_HEADER_MALFORMED', message);
}
