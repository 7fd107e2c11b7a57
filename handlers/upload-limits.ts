import type { Config } from '../lib/config.js';
import type { RequestContext } from '../lib/context.js';
import { LimitExceededError } from '../lib/errors.js';
import { MAX_PADDING_BYTES, MAX_PREAMBLE_BYTES } from '../multipart/parser.js';

/** RFC 2046 5.1.1: a boundary is 1 to 70 characters. */
const MAX_BOUNDARY_CHARS = 70;
/** A delimiter line: CRLF `--` boundary, transport padding (as much as the parser allows), CRLF. */
const MAX_DELIMITER_LINE_BYTES = 2 + 2 + MAX_BOUNDARY_CHARS + MAX_PADDING_BYTES + 2;
/**
 * Bytes after the close delimiter counted as acceptable. RFC 2046 5.1.1 lets a body carry an
 * epilogue, which the parser ignores; real clients send a CRLF at most. The same allowance as
 * the preamble's.
 */
const EPILOGUE_ALLOWANCE_BYTES = MAX_PREAMBLE_BYTES;

/**
 * The largest multipart/form-data body that could still be accepted: `MAX_FILES` files of
 * `maxFileBytes`, field values up to `MAX_TOTAL_FIELD_BYTES` (or `MAX_FIELDS` × `MAX_FIELD_BYTES`
 * if that is less), and the envelope: for each of the `MAX_FILES + MAX_FIELDS` parts a delimiter
 * line and a header block of `MAX_PART_HEADER_BYTES`, then the close delimiter, the longest
 * preamble the parser skips and as long an epilogue. A body declared longer cannot succeed (its
 * files, fields or parts would break a limit on the way), so it is refused before it is sent.
 *
 * Parts in a Content-Transfer-Encoding (base64, quoted-printable; RFC 7578 4.7 deprecates them)
 * take more bytes on the wire than they store and are not counted so: such bodies are sent by
 * scripts (Python's email package), which may send them chunked.
 */
export function multipartBodyBound(config: Config, maxFileBytes: number): number {
  const parts = config.maxFiles + config.maxFields;
  const fieldBytes = Math.min(config.maxTotalFieldBytes, config.maxFields * config.maxFieldBytes);
  const envelope = parts * (MAX_DELIMITER_LINE_BYTES + config.maxPartHeaderBytes) + MAX_DELIMITER_LINE_BYTES + MAX_PREAMBLE_BYTES + EPILOGUE_ALLOWANCE_BYTES;
  return config.maxFiles * maxFileBytes + fieldBytes + envelope;
}

/**
 * Checks a declared Content-Length against the limits of an upload, before its body is read.
 * A raw body is one file; a multipart body is bounded by what could still be accepted (above).
 * `maxFileBytes` is MAX_FILE_BYTES, or less when a signed link grants less.
 */
export function checkDeclaredUpload(declared: number, multipart: boolean, config: Config, maxFileBytes: number): void {
  if (!multipart && declared > maxFileBytes) {
    throw new LimitExceededError('FILE_TOO_LARGE', `The file (${declared} bytes) is over ${limitName(config, maxFileBytes)} (${maxFileBytes} bytes)`, maxFileBytes);
  }
  if (declared > config.maxRequestBytes) {
    throw new LimitExceededError('REQUEST_TOO_LARGE', `The body (${declared} bytes) is over MAX_REQUEST_BYTES (${config.maxRequestBytes} bytes)`, config.maxRequestBytes);
  }
  if (!multipart) return;
  const bound = multipartBodyBound(config, maxFileBytes);
  if (declared > bound) {
    throw new LimitExceededError(
      'REQUEST_TOO_LARGE',
      `The body (${declared} bytes) is over ${bound} bytes, more than any acceptable multipart body (MAX_FILES ${config.maxFiles} × ${limitName(config, maxFileBytes)} ${maxFileBytes} bytes, field values and part headers)`,
      bound,
    );
  }
}

/** What limits a file: MAX_FILE_BYTES, or the signed link the request came with. */
function limitName(config: Config, maxFileBytes: number): string {
  return maxFileBytes < config.maxFileBytes ? "the signed link's maxBytes" : 'MAX_FILE_BYTES';
}

/** The largest file this upload may store: MAX_FILE_BYTES, or less when a signed link grants less. */
export function fileLimit(ctx: Pick<RequestContext, 'config' | 'grant'>): number {
  return Math.min(ctx.config.maxFileBytes, ctx.grant?.maxBytes ?? Infinity);
}

/** The largest resumable upload: `fileLimit`, or less when the store cannot hold more (S3: 10,000 parts). */
export function resumableFileLimit(ctx: Pick<RequestContext, 'config' | 'grant' | 'store'>): number {
  return Math.min(fileLimit(ctx), ctx.store.maxUploadBytes ?? Infinity);
}

/** What sets `resumableFileLimit` for this request, for messages. */
export function resumableLimitName(ctx: Pick<RequestContext, 'config' | 'grant' | 'store'>): string {
  const limit = resumableFileLimit(ctx);
  if (limit === ctx.store.maxUploadBytes && limit < fileLimit(ctx)) return 'the largest upload the store can hold';
  return limitName(ctx.config, limit);
}

/**
 * MAX_REQUEST_BYTES while an upload's body is read: a chunked body declares no length to check
 * up front, so it is cut with 413 REQUEST_TOO_LARGE once it grows past it.
 */
export function requestBodyLimit(config: Config): { readonly bytes: number; readonly error: () => Error } {
  return {
    bytes: config.maxRequestBytes,
    error: () => new LimitExceededError('REQUEST_TOO_LARGE', `The body is over MAX_REQUEST_BYTES (${config.maxRequestBytes} bytes)`, config.maxRequestBytes),
  };
}
