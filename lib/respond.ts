import type { ServerResponse } from 'node:http';
import {
  ClientAbortedError,
  InsufficientStorageError,
  InternalError,
  MalformedRequestError,
  ProblemError,
  SluiceError,
} from './errors.js';

/** Turns anything thrown into a SluiceError: the one mapping from failures to HTTP statuses. */
export function toSluiceError(err: unknown): SluiceError {
  if (err instanceof SluiceError) return err;
  const code = (err as { code?: unknown } | null)?.code;
  switch (code) {
    case 'ENOSPC':
    case 'EDQUOT':
      return new InsufficientStorageError(undefined, { cause: err });
    case 'ECONNRESET':
    case 'ERR_STREAM_PREMATURE_CLOSE':
    case 'ECONNABORTED':
    case 'EPIPE':
    case 'ERR_STREAM_DESTROYED':
      return new ClientAbortedError();
    case 'HPE_INVALID_CHUNK':
    case 'HPE_INVALID_CONSTANT':
    case 'HPE_UNEXPECTED_CONTENT_LENGTH':
      return new MalformedRequestError('BAD_HTTP_BODY', 'The HTTP request body is malformed', { cause: err });
    default:
      return new InternalError(err instanceof Error ? err.message : String(err), { cause: err });
  }
}

/** The JSON error body every failure gets: `{"error":{"code","message"}}`. */
export function errorBody(err: SluiceError): string {
  // 5xx messages of our own (bugs, system errors) stay in the log, not in the answer.
  const message = err instanceof InternalError ? 'Internal server error' : err.message;
  return JSON.stringify({ error: { code: err.code, message } });
}

export function sendJson(res: ServerResponse, status: number, body: unknown, headers?: Record<string, string>): void {
  const text = `${JSON.stringify(body)}\n`;
  res.statusCode = status;
  if (headers) for (const [k, v] of Object.entries(headers)) res.setHeader(k, v);
  res.setHeader('content-type', 'application/json; charset=utf-8');
  res.setHeader('content-length', Buffer.byteLength(text));
  res.setHeader('cache-control', 'no-store');
  res.end(text);
}

export function sendError(res: ServerResponse, err: SluiceError): void {
  const problem = err instanceof ProblemError;
  const text = problem ? `${JSON.stringify({ ...err.problem, error: { code: err.code, message: err.message } })}\n` : `${errorBody(err)}\n`;
  res.statusCode = err.status;
  for (const [k, v] of Object.entries(err.headers)) res.setHeader(k, v);
  res.setHeader('content-type', problem ? 'application/problem+json' : 'application/json; charset=utf-8');
  res.setHeader('content-length', Buffer.byteLength(text));
  res.setHeader('cache-control', 'no-store');
  res.end(text);
}
