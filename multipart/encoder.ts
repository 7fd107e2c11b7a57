import { randomBytes } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';
import type { MultipartEvent } from './events.js';
import { filenameAsSent, formatFormDataPartHeader, MultipartEncodeError } from './form-data-header.js';

export { MultipartEncodeError } from './form-data-header.js';

export interface EncoderOptions {
  /**
   * A fixed boundary, for tests and reproducible output. The default, a fresh random one per
   * encoder, is the only safe choice for bytes we do not scan (see `randomBoundary`).
   */
  readonly boundary?: string;
}

/**
 * Writes held on the writable side. Each is one event or one parser batch, and either holds at
 * most one input chunk's worth of data (a socket read, up to 64 KiB), so this bounds the
 * encoder's input buffer to a few hundred KiB whatever the part sizes.
 */
const WRITES_IN_FLIGHT = 4;

/** 24 random bytes = 192 bits = 32 base64url characters, all of them RFC 2046 bchars. */
const BOUNDARY_RANDOM_BYTES = 24;
const BOUNDARY_PREFIX = '----sluice';

// RFC 2046 5.1.1: boundary := 0*69<bchars> bcharsnospace, with
// bchars := bcharsnospace / " " and bcharsnospace := DIGIT / ALPHA / "'" / "(" / ")" / "+" /
// "_" / "," / "-" / "." / "/" / ":" / "=" / "?". So 1 to 70 characters, not ending in a space.
const VALID_BOUNDARY = /^[0-9A-Za-z'()+_,\-./:=? ]{0,69}[0-9A-Za-z'()+_,\-./:=?]$/;
// RFC 9110 5.6.2 token characters: a boundary made only of these needs no quotes in Content-Type.
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

/**
 * A fresh boundary. The file bytes are passed through unscanned (no copy, no search), which is
 * safe because the boundary is chosen here, after the client sent its body, and is never shown to
 * it: a client cannot plant a delimiter it does not know, and 192 random bits do not turn up in
 * data by chance.
 */
export function randomBoundary(): string {
  return BOUNDARY_PREFIX + randomBytes(BOUNDARY_RANDOM_BYTES).toString('base64url');
}

/**
 * Turns the parser's events (`part`, `data`*, `part-end`, ...) back into a multipart/form-data
 * body. The writable side takes `MultipartEvent` objects or arrays of them (the parser's
 * batches, so `pipeline(parser, encoder, ...)` just works); the readable side gives bytes.
 *
 * Nothing is buffered here beyond the stream's own high-water marks: `data` buffers are pushed
 * as they came (no copy), and a full readable side holds back the next `_transform` call, which
 * is how a slow reader slows whoever writes the events.
 */
export class MultipartEncoder extends Transform {
  readonly boundary: string;
  /** The value for the outgoing `Content-Type` header. */
  readonly contentType: string;
  #inPart = false;
  #parts = 0;

  constructor(options: EncoderOptions = {}) {
    super({ writableObjectMode: true, readableObjectMode: false, writableHighWaterMark: WRITES_IN_FLIGHT });
    const boundary = options.boundary ?? randomBoundary();
    if (!VALID_BOUNDARY.test(boundary)) {
      throw new MultipartEncodeError('MULTIPART_ENCODE_HEADER', `Invalid multipart boundary ${JSON.stringify(boundary)} (RFC 2046 5.1.1)`);
    }
    this.boundary = boundary;
    this.contentType = `multipart/form-data; boundary=${TOKEN.test(boundary) ? boundary : `"${boundary}"`}`;
  }

  /** Body parts started so far. */
  get parts(): number {
    return this.#parts;
  }

  override _transform(chunk: MultipartEvent | readonly MultipartEvent[], _encoding: BufferEncoding, callback: TransformCallback): void {
    // The parser hands its events over in arrays, one per input chunk; single events work too.
    if (!Array.isArray(chunk)) return callback(this.#encode(chunk as MultipartEvent));
    for (const event of chunk as readonly MultipartEvent[]) {
      const err = this.#encode(event);
      if (err !== null) return callback(err);
    }
    callback();
  }

  /** Pushes the bytes of one event; returns the error instead when the event does not fit here. */
  #encode(event: MultipartEvent): MultipartEncodeError | null {
    switch (event?.type) {
      case 'part': {
        if (this.#inPart) return orderError('a part started before the previous one ended');
        let header: string;
        try {
          // The client's filename with its directories (see filenameAsSent), not the parser's cut one.
          header = formatFormDataPartHeader(event.part, filenameAsSent(event.part));
        } catch (err) {
          return err as MultipartEncodeError;
        }
        // RFC 2046 5.1.1: the delimiter must not occur inside an encapsulated part. Names are
        // escaped so that no header line can start with it; this check makes that certain even
        // for a caller-chosen boundary.
        if (header.includes(`--${this.boundary}`)) {
          return new MultipartEncodeError('MULTIPART_ENCODE_HEADER', 'A part header contains the multipart boundary');
        }
        this.#inPart = true;
        this.#parts += 1;
        // RFC 2046 5.1.1: dash-boundary CRLF, then the part's headers and the empty line.
        this.push(Buffer.from(`--${this.boundary}\r\n${header}`, 'utf8'));
        return null;
      }
      case 'data':
        if (!this.#inPart) return orderError('data came before any part started');
        if (!Buffer.isBuffer(event.data)) return orderError('a data event carried no Buffer');
        // A zero-length push would be a no-op at best; skip it.
        if (event.data.length > 0) this.push(event.data);
        return null;
      case 'part-end':
        if (!this.#inPart) return orderError('part-end came without a part');
        this.#inPart = false;
        // RFC 2046 5.1.1: the CRLF before the next "--boundary" belongs to the delimiter, not the data.
        this.push(CRLF);
        return null;
      default:
        return orderError(`unknown event ${JSON.stringify((event as { type?: unknown } | null)?.type)}`);
    }
  }

  override _flush(callback: TransformCallback): void {
    if (this.#inPart) return callback(orderError('the events ended inside a part (no part-end)'));
    // RFC 2046 5.1.1: close-delimiter := delimiter "--". With no part at all this is the whole
    // body, as browsers send for an empty form.
    this.push(Buffer.from(`--${this.boundary}--\r\n`, 'latin1'));
    callback();
  }
}

const CRLF = Buffer.from('\r\n', 'latin1');

function orderError(what: string): MultipartEncodeError {
  return new MultipartEncodeError('MULTIPART_ENCODE_ORDER', `Multipart events out of order: ${what}`);
}
