/**
 * Streaming decoders for a part's `Content-Transfer-Encoding` (RFC 2045 6). RFC 7578 4.7 tells
 * senders not to use one, but some do: Python's email package (`MIMEApplication`, `MIMEText`
 * with UTF-8) writes base64, and Go's reader was taught quoted-printable for a real client.
 * undici decodes base64, Go quoted-printable, Python both. `7bit`, `8bit` and `binary` are the
 * identity; so is an unknown encoding (RFC 2045 6.4: treat the part as opaque bytes).
 */
export interface TransferDecoder {
  /** The decoded bytes of `chunk`; what cannot be decoded yet is kept for the next call. */
  write(chunk: Buffer): Buffer;
  /** The bytes still held at the end of the part. */
  end(): Buffer;
}

/** The decoder for a Content-Transfer-Encoding value, or null when the bytes are to be kept as they are. */
export function transferDecoder(encoding: string | undefined): TransferDecoder | null {
  if (encoding === undefined) return null;
  switch (encoding.trim().toLowerCase()) {
    case 'base64':
      return new Base64Decoder();
    case 'quoted-printable':
      return new QuotedPrintableDecoder();
    default:
      return null;
  }
}

const EMPTY = Buffer.alloc(0);

/** Base64 and base64url letters; everything else (line breaks) is skipped, as decoders do. */
const NOT_BASE64 = /[^A-Za-z0-9+/_-]+/g;

/**
 * RFC 2045 6.8: four letters make three bytes; up to three letters wait for the next chunk.
 * `=` pads the last group and ends the data: whatever follows it in the part is ignored, as
 * Python's and Node's own decoders do (not read on as more letters, which would shift every
 * byte after it).
 */
class Base64Decoder implements TransferDecoder {
  private held = '';
  private ended = false;

  write(chunk: Buffer): Buffer {
    if (this.ended) return EMPTY;
    let text = chunk.toString('latin1');
    const pad = text.indexOf('=');
    if (pad !== -1) {
      text = text.slice(0, pad);
      this.ended = true;
    }
    const letters = this.held + text.replace(NOT_BASE64, '');
    const whole = letters.length - (letters.length % 4);
    this.held = letters.slice(whole);
    return whole === 0 ? EMPTY : Buffer.from(letters.slice(0, whole), 'base64');
  }

  end(): Buffer {
    const tail = this.held;
    this.held = '';
    // Two or three letters are the one or two bytes of an unpadded (or padded) last group; a
    // lone letter carries no whole byte and is dropped, as lenient decoders do.
    return tail.length < 2 ? EMPTY : Buffer.from(tail, 'base64');
  }
}

/**
 * Whitespace kept back at a chunk's end to see whether a line break follows (then it is
 * padding). Lines are at most 76 characters (RFC 2045 6.7); a longer run is data, so that
 * endless whitespace cannot make the decoder hold endless bytes.
 */
const MAX_HELD = 998;

const EQUALS = 0x3d;
const CR = 0x0d;
const LF = 0x0a;
const SP = 0x20;
const HTAB = 0x09;

function hexValue(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  const lower = c | 0x20;
  return lower >= 0x61 && lower <= 0x66 ? lower - 0x61 + 10 : -1;
}

/**
 * RFC 2045 6.7: `=XY` is a byte, `=` at a line end is a soft line break (removed with the line
 * break), and whitespace at the end of a line was added in transport and is removed. A `=` that
 * starts neither is kept as it is, as lenient decoders (Python's) do.
 */
class QuotedPrintableDecoder implements TransferDecoder {
  /** Bytes from the end of the previous chunk whose meaning depends on what follows (`=`, `=X`, whitespace, `=` + whitespace, CR). */
  private held: Buffer = EMPTY;

  write(chunk: Buffer): Buffer {
    const buf = this.held.length === 0 ? chunk : Buffer.concat([this.held, chunk]);
    this.held = EMPTY;
    const out = Buffer.allocUnsafe(buf.length);
    let n = 0;
    let i = 0;
    while (i < buf.length) {
      const c = buf[i] as number;
      if (c === EQUALS) {
        const step = this.escape(buf, i, out, n);
        if (step === null) break;
        [i, n] = step;
      } else if (c === SP || c === HTAB) {
        let j = i;
        while (j < buf.length && (buf[j] === SP || buf[j] === HTAB)) j += 1;
        if ((j === buf.length || (buf[j] === CR && j + 1 === buf.length)) && j - i <= MAX_HELD) {
          this.held = buf.subarray(i);
          i = buf.length;
          break;
        }
        // Whitespace before a line break is transport padding; elsewhere it is data.
        if (!(buf[j] === LF || (buf[j] === CR && buf[j + 1] === LF))) n += buf.copy(out, n, i, j);
        i = j;
      } else {
        out[n++] = c;
        i += 1;
      }
    }
    if (i < buf.length && this.held.length === 0) this.held = Buffer.from(buf.subarray(i));
    else if (this.held.length > 0) this.held = Buffer.from(this.held);
    return out.subarray(0, n);
  }

  /** Decodes the `=` at `i`; returns the next read and write offsets, or null when more bytes are needed. */
  private escape(buf: Buffer, i: number, out: Buffer, n: number): [number, number] | null {
    let j = i + 1;
    while (j < buf.length && (buf[j] === SP || buf[j] === HTAB)) j += 1;
    if (j - i > MAX_HELD) {
      out[n] = EQUALS;
      return [i + 1, n + 1];
    }
    if (j >= buf.length) return null;
    if (buf[j] === LF) return [j + 1, n];
    if (buf[j] === CR) {
      if (j + 1 >= buf.length) return null;
      if (buf[j + 1] === LF) return [j + 2, n];
    }
    if (j === i + 1) {
      if (i + 2 >= buf.length) return null;
      const hi = hexValue(buf[i + 1] as number);
      const lo = hexValue(buf[i + 2] as number);
      if (hi >= 0 && lo >= 0) {
        out[n] = (hi << 4) | lo;
        return [i + 3, n + 1];
      }
    }
    out[n] = EQUALS;
    return [i + 1, n + 1];
  }

  end(): Buffer {
    // Whatever is held (a trailing `=`, whitespace) is what the sender wrote last: keep it,
    // except whitespace, which is transport padding at the end of the last line.
    const tail = this.held;
    this.held = EMPTY;
    let end = tail.length;
    while (end > 0 && (tail[end - 1] === SP || tail[end - 1] === HTAB)) end -= 1;
    return tail.subarray(0, end);
  }
}
