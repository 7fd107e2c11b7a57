import {
  BadGatewayError,
  GatewayTimeoutError,
  NotFoundError,
  ServiceUnavailableError,
  type SluiceError,
} from '../../lib/errors.js';

/** What S3 answered, kept as the `cause` of the mapped error (for logs; never holds a secret). */
export class S3ResponseError extends Error {
  readonly status: number;
  /** S3's error code (`NoSuchKey`, `SlowDown`...), or `Http<status>` when the body had none (HEAD). */
  readonly s3Code: string;
  readonly requestId: string | null;
  readonly operation: string;

  constructor(operation: string, status: number, s3Code: string, message: string, requestId: string | null) {
    super(`${operation}: ${status} ${s3Code}${message === '' ? '' : `: ${message}`}`);
    this.name = 'S3ResponseError';
    this.operation = operation;
    this.status = status;
    this.s3Code = s3Code;
    this.requestId = requestId;
  }
}

/** Codes S3-compatible stores use for "slow down" (AWS, Ceph, MinIO, GCS interop). */
const THROTTLING = new Set(['SlowDown', 'Throttling', 'ThrottlingException', 'RequestLimitExceeded', 'TooManyRequests', 'RequestThrottled']);
/** Credentials or permissions: our configuration is wrong, not the client's request. */
const AUTH = new Set([
  'SignatureDoesNotMatch',
  'InvalidAccessKeyId',
  'AccessDenied',
  'RequestTimeTooSkewed',
  'InvalidToken',
  'ExpiredToken',
  'AuthorizationHeaderMalformed',
]);
/** Retry-After when S3 throttles without saying how long: AWS suggests backing off about a second. */
const DEFAULT_RETRY_AFTER_S = 1;

/**
 * One place where an S3 answer becomes a SluiceError: unreachable/5xx → 502, throttling → 503
 * with Retry-After, auth → 502 with a message naming the settings to check, NoSuchKey → 404.
 * Messages name the S3 code and operation, never a credential.
 */
export function mapS3Response(cause: S3ResponseError, retryAfter: string | undefined): SluiceError {
  const { status, s3Code, operation } = cause;
  if (THROTTLING.has(s3Code) || status === 429 || (status === 503 && (s3Code === 'Http503' || s3Code === 'ServiceUnavailable'))) {
    const seconds = Number.parseInt(retryAfter ?? '', 10);
    const wait = Number.isFinite(seconds) && seconds >= 0 ? seconds : DEFAULT_RETRY_AFTER_S;
    return new ServiceUnavailableError('S3_THROTTLED', `The object store asks to slow down (${s3Code}); retry in ${wait} s`, wait);
  }
  if (AUTH.has(s3Code) || status === 401 || status === 403) {
    return new BadGatewayError(
      'S3_AUTH_FAILED',
      `The object store refused sluice's credentials (${operation}: ${s3Code}); check S3_ACCESS_KEY, S3_SECRET_KEY, S3_REGION and the clock`,
      { cause },
    );
  }
  if (s3Code === 'NoSuchKey' || (status === 404 && s3Code === 'Http404')) return new NotFoundError('No such file');
  if (s3Code === 'NoSuchBucket') {
    return new BadGatewayError('S3_NO_SUCH_BUCKET', `The bucket does not exist (${operation}); check S3_BUCKET`, { cause });
  }
  if (status >= 500) return new BadGatewayError('S3_ERROR', `The object store failed (${operation}: ${status} ${s3Code})`, { cause });
  return new BadGatewayError('S3_REQUEST_FAILED', `The object store refused a request (${operation}: ${status} ${s3Code})`, { cause });
}

/** A socket-level failure talking to S3 (refused, reset, DNS, TLS, idle timeout). */
export function mapS3NetworkError(operation: string, endpoint: string, err: Error, virtualHost = false): SluiceError {
  const code = (err as NodeJS.ErrnoException).code ?? err.name;
  if (code === 'S3_IDLE_TIMEOUT') return new GatewayTimeoutError('S3_TIMEOUT', `The object store at ${endpoint} stopped answering (${operation})`);
  // <bucket>.<host> rarely resolves for Ceph or MinIO: point at the setting that fixes it.
  const hint = code === 'ENOTFOUND' && virtualHost ? '; with a self-hosted store set S3_FORCE_PATH_STYLE=true' : '';
  return new BadGatewayError('S3_UNREACHABLE', `The object store at ${endpoint} is unreachable (${operation}: ${code})${hint}`, { cause: err });
}

/** True when `err` is a mapped S3 answer with one of these S3 error codes. */
export function hasS3Code(err: unknown, ...codes: string[]): boolean {
  const cause = (err as { cause?: unknown } | null)?.cause;
  return cause instanceof S3ResponseError && codes.includes(cause.s3Code);
}
