/** Calls to sluice's JSON API from the page: same origin only, bearer token attached, errors typed. */
import { authHeaders, tokenRejected } from './auth.js';

/** What went wrong with a request, in the words the retry logic needs. */
export class ApiError extends Error {
  /** HTTP status; 0 when no answer came (network down, server gone, connection cut). */
  readonly status: number;
  /** sluice's stable error code (`{"error":{"code"}}`), when the answer had one. */
  readonly code: string | null;
  constructor(status: number, code: string | null, message: string) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
  }

  /** Worth trying again later: no answer, a server error, or "busy" (503, 423 from a locked upload, 429). */
  get retryable(): boolean {
    return this.status === 0 || this.status >= 500 || this.status === 423 || this.status === 429 || this.status === 408;
  }
}

/** The error an answer carries: sluice's JSON error body if there is one, else the status line. */
export async function errorOf(res: Response): Promise<ApiError> {
  let code: string | null = null;
  let message = `${res.status} ${res.statusText}`.trim();
  try {
    const body = (await res.json()) as { error?: { code?: unknown; message?: unknown } };
    if (typeof body.error?.code === 'string') code = body.error.code;
    if (typeof body.error?.message === 'string') message = body.error.message;
  } catch {
    // not JSON: the status line says enough
  }
  return new ApiError(res.status, code, message);
}

/**
 * `fetch` against this origin with the token. Resolves with any answer but 401, which asks for a
 * token and rejects; rejects with status 0 when no answer came.
 */
export async function apiFetch(path: string, init: RequestInit = {}): Promise<Response> {
  const url = new URL(path, location.href);
  // Never send the token anywhere else (a Location header could name another host).
  if (url.origin !== location.origin) throw new ApiError(0, null, `Refusing to call another origin: ${url.origin}`);
  const headers = new Headers(init.headers);
  for (const [k, v] of Object.entries(authHeaders())) headers.set(k, v);
  let res: Response;
  try {
    res = await fetch(url, { ...init, headers, cache: 'no-store', credentials: 'same-origin' });
  } catch (err) {
    if (init.signal?.aborted) throw err;
    throw new ApiError(0, null, 'No answer from the server');
  }
  if (res.status === 401) {
    tokenRejected();
    throw await errorOf(res);
  }
  return res;
}

/** `apiFetch` for a JSON answer with the wanted status. */
export async function apiJson<T>(path: string, init: RequestInit = {}, expected: readonly number[] = [200]): Promise<T> {
  const res = await apiFetch(path, init);
  if (!expected.includes(res.status)) throw await errorOf(res);
  return (await res.json()) as T;
}

/** A stored file as `GET /files` lists it. */
export interface FileRecord {
  readonly id: string;
  readonly filename: string | null;
  readonly contentType: string;
  readonly size: number;
  readonly sha256: string;
  readonly created: string;
}
