/**
 * The few requests of tus 1.0.0 the page needs (protocol.md: core, creation, termination):
 * create an upload (POST /uploads), ask its offset (HEAD), append a piece (PATCH), terminate it
 * (DELETE). Pieces are `File.slice`s sent as request bodies: the browser streams them from disk,
 * nothing here holds the file in memory.
 */
import { ApiError, apiFetch, errorOf } from './api.js';
import { authHeaders, tokenRejected } from './auth.js';

export const TUS_RESUMABLE = '1.0.0';
const UPLOADS_PATH = '/uploads';

/** tus "Upload-Metadata": comma-separated `key base64(value)` pairs (protocol.md, Upload-Metadata). */
export function encodeMetadata(pairs: Readonly<Record<string, string>>): string {
  return Object.entries(pairs)
    .map(([key, value]) => (value === '' ? key : `${key} ${base64Utf8(value)}`))
    .join(',');
}

function base64Utf8(text: string): string {
  let binary = '';
  for (const byte of new TextEncoder().encode(text)) binary += String.fromCharCode(byte);
  return btoa(binary);
}

/** Creation (protocol.md 3.2.1): POST with Upload-Length and Upload-Metadata; the 201's Location is the upload's URL. */
export async function createUpload(file: File, signal?: AbortSignal): Promise<string> {
  const metadata: Record<string, string> = { filename: file.name };
  if (file.type !== '') metadata.filetype = file.type;
  const res = await apiFetch(UPLOADS_PATH, {
    method: 'POST',
    headers: { 'tus-resumable': TUS_RESUMABLE, 'upload-length': String(file.size), 'upload-metadata': encodeMetadata(metadata) },
    ...(signal ? { signal } : {}),
  });
  if (res.status !== 201) throw await errorOf(res);
  const location = res.headers.get('location');
  if (location === null) throw new ApiError(res.status, null, 'The server created the upload but sent no Location');
  const url = new URL(location, res.url);
  // The token goes with every request to this URL: it must be ours.
  if (url.origin !== window.location.origin) throw new ApiError(res.status, null, `The upload's Location is on another origin: ${url.origin}`);
  return url.href;
}

export interface UploadOffset {
  readonly offset: number;
  readonly length: number | null;
}

/** Offset retrieval (protocol.md 3.1, HEAD); null when the server no longer has the upload (404, 410, 403). */
export async function getOffset(url: string, signal?: AbortSignal): Promise<UploadOffset | null> {
  const res = await apiFetch(url, { method: 'HEAD', headers: { 'tus-resumable': TUS_RESUMABLE }, ...(signal ? { signal } : {}) });
  if (res.status === 404 || res.status === 410 || res.status === 403) return null;
  if (res.status !== 200 && res.status !== 204) throw await errorOf(res);
  const offset = Number(res.headers.get('upload-offset'));
  if (!Number.isSafeInteger(offset) || offset < 0) throw new ApiError(res.status, null, 'The server sent no usable Upload-Offset');
  const lengthHeader = res.headers.get('upload-length');
  const length = lengthHeader === null ? null : Number(lengthHeader);
  return { offset, length: length !== null && Number.isSafeInteger(length) ? length : null };
}

/** Termination (protocol.md, termination extension): every byte of the upload is removed. Gone already counts as done. */
export async function terminateUpload(url: string): Promise<void> {
  const res = await apiFetch(url, { method: 'DELETE', headers: { 'tus-resumable': TUS_RESUMABLE } });
  if (res.status !== 204 && res.status !== 404 && res.status !== 410) throw await errorOf(res);
}

/** A PATCH in flight: its outcome (the new offset) and a way to stop it. */
export interface Append {
  readonly done: Promise<number>;
  abort(): void;
}

/**
 * Upload append (protocol.md 3.1, PATCH) of `file[offset, end)`. XMLHttpRequest rather than
 * fetch: it reports upload progress (`onProgress` gets the bytes of this piece sent so far),
 * which fetch cannot. Resolves with the server's new Upload-Offset; rejects with an ApiError
 * (status 0 when the connection failed), or an AbortError after abort().
 */
export function appendPiece(url: string, file: File, offset: number, end: number, onProgress: (sent: number) => void): Append {
  const xhr = new XMLHttpRequest();
  const done = new Promise<number>((resolve, reject) => {
    xhr.open('PATCH', url);
    xhr.setRequestHeader('tus-resumable', TUS_RESUMABLE);
    xhr.setRequestHeader('upload-offset', String(offset));
    xhr.setRequestHeader('content-type', 'application/offset+octet-stream');
    for (const [k, v] of Object.entries(authHeaders())) xhr.setRequestHeader(k, v);
    xhr.upload.onprogress = (e): void => onProgress(e.loaded);
    xhr.onerror = (): void => reject(new ApiError(0, null, 'The connection to the server failed'));
    xhr.ontimeout = xhr.onerror;
    xhr.onabort = (): void => reject(new DOMException('The upload was stopped', 'AbortError'));
    xhr.onload = (): void => {
      if (xhr.status === 204 || xhr.status === 200) {
        const next = Number(xhr.getResponseHeader('upload-offset'));
        if (Number.isSafeInteger(next) && next >= offset) return resolve(next);
        return reject(new ApiError(xhr.status, null, 'The server sent no usable Upload-Offset'));
      }
      if (xhr.status === 401) tokenRejected();
      reject(xhrError(xhr));
    };
    xhr.send(file.slice(offset, end));
  });
  return { done, abort: () => xhr.abort() };
}

function xhrError(xhr: XMLHttpRequest): ApiError {
  let code: string | null = null;
  let message = `${xhr.status} ${xhr.statusText}`.trim();
  try {
    const body = JSON.parse(xhr.responseText) as { error?: { code?: unknown; message?: unknown } };
    if (typeof body.error?.code === 'string') code = body.error.code;
    if (typeof body.error?.message === 'string') message = body.error.message;
  } catch {
    // not JSON
  }
  return new ApiError(xhr.status, code, message);
}
