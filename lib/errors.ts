/**
 * One base error class with a stable `code` per kind and the HTTP status it maps to.
 * `toHttpError` (the one place where any thrown value becomes an HTTP answer) lives
 * in `lib/respond.ts`.
 */
export class SluiceError extends Error {
  /** Stable, machine-readable identifier, SCREAMING_SNAKE (`PART_HEADER_TOO_LARGE`). */
  readonly code: string;
  /** HTTP status this kind of error maps to. */
  readonly status: number;
  /** Extra response headers (`Allow`, `Retry-After`, `WWW-Authenticate`, ...). */
  readonly headers: Readonly<Record<string, string>>;

  constructor(
    code: string,
    message: string,
    status: number,
    options?: { cause?: unknown; headers?: Record<string, string> },
  ) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.status = status;
    this.headers = options?.headers ?? {};
  }
}

/**
 * An error answered as RFC 9457 problem details (`application/problem+json`), for protocols that
 * define problem types (draft-ietf-httpbis-resumable-upload's mismatching-upload-offset, ...). The
 * body carries the problem's members and, as every sluice error, `error: {code, message}`.
 */
export class ProblemError extends SluiceError {
  /** `type`, `title` and the type's extension members. */
  readonly problem: Readonly<Record<string, unknown>>;
  constructor(code: string, message: string, status: number, problem: Record<string, unknown>, options?: { cause?: unknown; headers?: Record<string, string> }) {
    super(code, message, status, options);
    this.problem = problem;
  }
}

/** 400: the client sent something we cannot parse (bad multipart framing, bad header, bad JSON). */
export class MalformedRequestError extends SluiceError {
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(code, message, 400, options);
  }
}

/** 413: a size or count limit was exceeded. */
export class LimitExceededError extends SluiceError {
  /** The limit that was hit, in its own unit (bytes or a count). */
  readonly limit: number;
  constructor(code: string, message: string, limit: number) {
    super(code, message, 413);
    this.limit = limit;
  }
}

/** 404 */
export class NotFoundError extends SluiceError {
  constructor(message = 'Not found', code = 'NOT_FOUND') {
    super(code, message, 404);
  }
}

/** 405, with the `Allow` header listing what the route accepts. */
export class MethodNotAllowedError extends SluiceError {
  constructor(allowed: readonly string[]) {
    super('METHOD_NOT_ALLOWED', `Method not allowed; use ${allowed.join(', ')}`, 405, {
      headers: { allow: allowed.join(', ') },
    });
  }
}

/** 401, with `WWW-Authenticate: Bearer`. */
export class UnauthorizedError extends SluiceError {
  constructor(message = 'A valid bearer token is required') {
    super('UNAUTHORIZED', message, 401, { headers: { 'www-authenticate': 'Bearer realm="sluice"' } });
  }
}

/** 403: refused by policy (the SSRF guard). */
export class ForbiddenError extends SluiceError {
  constructor(code: string, message: string) {
    super(code, message, 403);
  }
}

/** 408: the client stopped sending the body. */
export class RequestTimeoutError extends SluiceError {
  constructor(message: string) {
    super('IDLE_TIMEOUT', message, 408);
  }
}

/** 415: a content type a route does not take. */
export class UnsupportedMediaTypeError extends SluiceError {
  constructor(message: string) {
    super('UNSUPPORTED_MEDIA_TYPE', message, 415);
  }
}

/** 412: a precondition of the request (`If-Match`, `If-Unmodified-Since`, `If-None-Match`) is false. */
export class PreconditionFailedError extends SluiceError {
  constructor(message: string) {
    super('PRECONDITION_FAILED', message, 412);
  }
}

/** 416: a `Range` that the stored file cannot satisfy; `size` null when the length is unknown (an origin's 416 without it). */
export class RangeNotSatisfiableError extends SluiceError {
  constructor(size: number | null) {
    super('RANGE_NOT_SATISFIABLE', 'Requested range not satisfiable', 416, {
      headers: size === null ? {} : { 'content-range': `bytes */${size}` },
    });
  }
}

/** 502: an upstream (origin, proxy destination, object store) failed or answered badly. */
export class BadGatewayError extends SluiceError {
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(code, message, 502, options);
  }
}

/** 502 `UPSTREAM_STATUS`: the origin answered with a status we do not relay; `upstreamStatus` says which. */
export class UpstreamStatusError extends BadGatewayError {
  readonly upstreamStatus: number;
  constructor(upstreamStatus: number, message: string) {
    super('UPSTREAM_STATUS', message);
    this.upstreamStatus = upstreamStatus;
  }
}

/** 503: not available now (not configured, too many uploads, shutting down, throttled). */
export class ServiceUnavailableError extends SluiceError {
  constructor(code: string, message: string, retryAfterSeconds?: number) {
    super(
      code,
      message,
      503,
      retryAfterSeconds === undefined ? undefined : { headers: { 'retry-after': String(retryAfterSeconds) } },
    );
  }
}

/** 504: an upstream did not answer in time. */
export class GatewayTimeoutError extends SluiceError {
  constructor(code: string, message: string) {
    super(code, message, 504);
  }
}

/** 507: the disk (or the store) is full. */
export class InsufficientStorageError extends SluiceError {
  constructor(message = 'Not enough space left to store the file', options?: { cause?: unknown }) {
    super('INSUFFICIENT_STORAGE', message, 507, options);
  }
}

/** 500: our own bug or an unexpected system failure. Its message is never sent to the client. */
export class InternalError extends SluiceError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('INTERNAL', message, 500, options);
  }
}

/** The client went away (aborted, reset). Nobody is left to answer; logged as 499 like nginx. */
export class ClientAbortedError extends SluiceError {
  constructor(message = 'The client closed the connection before the request completed') {
    super('CLIENT_ABORTED', message, 499);
  }
}

/**
 * 409: a resumable append's `Upload-Offset` is not the upload's offset (tus core, IETF draft
 * "offset retrieval"). Nothing was written; `offset` is the true one, for the answer's headers.
 */
export class OffsetMismatchError extends SluiceError {
  readonly offset: number;
  readonly provided: number;
  constructor(offset: number, provided: number) {
    super('OFFSET_MISMATCH', `Upload-Offset ${provided} is not the upload's offset ${offset}`, 409);
    this.offset = offset;
    this.provided = provided;
  }
}

/** 460 (tus checksum extension): the body's digest is not the `Upload-Checksum` sent; its bytes were discarded. */
export class ChecksumMismatchError extends SluiceError {
  constructor(message = 'The body does not match its Upload-Checksum; its bytes were discarded') {
    super('CHECKSUM_MISMATCH', message, 460);
  }
}

/**
 * 503 with `Retry-After`: MAX_PENDING_UPLOADS incomplete uploads exist. 503, not 429: the limit
 * is the server's capacity, shared by every client, not one client's request rate (RFC 6585 4);
 * and tus-js-client retries a 5xx with its `retryDelays` but gives up on any 4xx but 409 and 423.
 */
export class TooManyPendingUploadsError extends ServiceUnavailableError {
  constructor(limit: number) {
    super('TOO_MANY_PENDING_UPLOADS', `${limit} resumable uploads are already pending; finish or delete one, or retry later`, 30);
  }
}

/**
 * 413: an append whose body goes past the upload's length. None of the body's bytes past the
 * upload's last durable offset are kept (the offset is where the append started, or the last
 * checkpoint it made durable), so the upload never holds a byte its client did not mean.
 */
export class UploadLengthExceededError extends SluiceError {
  readonly length: number;
  constructor(length: number) {
    super('UPLOAD_LENGTH_EXCEEDED', `The body goes past the upload's length of ${length} bytes; its bytes were discarded`, 413);
    this.length = length;
  }
}

/** 400: a length that contradicts the recorded one (a second, different length; a last body that ends before it). */
export class UploadLengthMismatchError extends SluiceError {
  constructor(message: string) {
    super('UPLOAD_LENGTH_MISMATCH', message, 400);
  }
}

/** 400: an append to an upload that is already complete (IETF draft: "completed-upload"). */
export class UploadCompleteError extends SluiceError {
  constructor(id: string) {
    super('UPLOAD_COMPLETE', `Upload ${id} is already complete`, 400);
  }
}

/**
 * 409: this append was ended by a newer request on the same upload (quick takeover: another
 * append, an offset request, a termination). Its bytes up to where it stopped are durable and
 * counted; its client, presumed gone, asks for the offset and resumes.
 */
export class UploadInterruptedError extends SluiceError {
  constructor(id: string) {
    super('UPLOAD_INTERRUPTED', `The append to upload ${id} was taken over by a newer request`, 409);
  }
}

/** 400 (tus concatenation): a part of a final upload that is not a partial upload. */
export class UploadNotPartialError extends SluiceError {
  constructor(id: string) {
    super('UPLOAD_NOT_PARTIAL', `Upload ${id} is not a partial upload`, 400);
  }
}

/** 400 (tus concatenation, like tusd's ERR_UPLOAD_NOT_FINISHED): a part that is not complete yet. */
export class UploadIncompleteError extends SluiceError {
  constructor(id: string) {
    super('UPLOAD_INCOMPLETE', `Partial upload ${id} is not complete`, 400);
  }
}

/** 409: an upload (or a file) with the id a caller asked for already exists. */
export class UploadExistsError extends SluiceError {
  constructor(id: string) {
    super('UPLOAD_EXISTS', `An upload or file with id ${id} already exists`, 409);
  }
}
