import { LimitExceededError, MalformedRequestError } from '../lib/errors.js';
import { TOKEN_CHAR, decodeHeaderBytes } from './header-params.js';

/**
 * Incremental parser of one part's header block (RFC 2046 5.1.1 / RFC 5322 fields), one byte
 * at a time with lookup tables, as busboy's HeaderParser does: header bytes are few and bounded
 * by the header limit, and a byte machine handles every chunk split for free.
 * Strict on purpose: obsolete line folding (a line starting with SP/HTAB, the input that crashed
 * dicer in CVE-2022-24434), bare CR or LF, NUL and other controls are rejected, never repaired.
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
          if (c === CR) {
            this.state = END_CR;
          } else if (c < 128 && TOKEN_CHAR[c] === 1) {
            if (this.lines >= this.limits.maxLines) {
              throw new LimitExceededError('PART_HEADER_TOO_MANY_LINES', `A part has more than ${this.limits.maxLines} header lines`, this.limits.maxLines);
            }
            this.state = NAME;
            nameStart = i;
          } else if (c === SP || c === HTAB) {
            throw malformed('Folded (obsolete line folding) part header lines are not accepted');
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
          this.value = this.valueParts.length === 0 ? decodeValue(buf, valueStart, i, this.nonAscii) : this.joinValue(buf.subarray(valueStart, i));
          this.state = VALUE_CR;
          i += 1;
          break;
        }
        case VALUE_CR:
          if (c !== LF) throw malformed('Bare CR in a part header');
          this.finishLine();
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

  /** A value that spanned chunks: its pieces joined (rare, and bounded by the header limit). */
  private joinValue(last: Buffer): string {
    this.valueParts.push(last);
    const raw = Buffer.concat(this.valueParts);
    return decodeValue(raw, 0, raw.length, this.nonAscii);
  }

  private finishLine(): void {
    // RFC 9110 5.3: repeated fields combine with commas; none of the part headers we read repeat.
    const previous = this.headers[this.name];
    this.headers[this.name] = previous === undefined ? this.value : `${previous}, ${this.value}`;
    this.lines += 1;
    this.name = '';
    this.value = '';
    this.valueParts = [];
    this.nonAscii = false;
  }
}

/** `buf[from..to]` without leading and trailing SP/HTAB (RFC 9110 5.5), as text. */
function decodeValue(buf: Buffer, from: number, to: number, nonAscii: boolean): string {
  while (from < to && (buf[from] === SP || buf[from] === HTAB)) from += 1;
  while (to > from && (buf[to - 1] === SP || buf[to - 1] === HTAB)) to -= 1;
  // Pure ASCII (the usual case) needs no UTF-8 validation.
  return nonAscii ? decodeHeaderBytes(buf.subarray(from, to)) : buf.toString('latin1', from, to);
}

function malformed(message: string): MalformedRequestError {
  return new MalformedRequestError('PART_HEADER_MALFORMED', message);
}
