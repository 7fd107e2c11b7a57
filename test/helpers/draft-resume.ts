/**
 * A draft creation cut after its 104 and resumed, with node:http: what URLSession does when its
 * connection drops mid-body. Shared by the draft tests of every interop version.
 */
import { request } from 'node:http';
import { rawRequest, type RawResponse } from './http.js';

/**
 * Sends `POST <path>` with `Upload-Complete: ?1` and the whole length of `data`, writes the first
 * `cut` bytes once the 104 came, then goes away. The 104's headers (`location`,
 * `upload-draft-interop-version`); empty when none came.
 */
export async function createThenCut(base: string, path: string, version: string, data: Buffer, cut: number): Promise<Record<string, string>> {
  const { port } = new URL(base);
  let announced: Record<string, string> = {};
  await new Promise<void>((resolve) => {
    const req = request({ host: '127.0.0.1', port, method: 'POST', path, headers: { 'upload-draft-interop-version': version, 'upload-complete': '?1', 'content-length': String(data.length) } });
    req.on('information', (info) => {
      if (info.statusCode !== 104) return;
      announced = Object.fromEntries(Object.entries(info.headers).map(([k, v]) => [k, String(v)]));
      // The client goes away after sending part of the body.
      req.write(data.subarray(0, cut), () => setTimeout(() => (req.destroy(), resolve()), 200));
    });
    req.on('error', () => resolve());
    req.flushHeaders();
  });
  return announced;
}

/** The upload's offset by HEAD, once the server has noticed the cut (-1 if it never answers 204). */
export async function offsetAfterCut(base: string, location: string, version: string): Promise<number> {
  for (let i = 0; i < 50; i += 1) {
    const h = await rawRequest(base, location, { method: 'HEAD', headers: { 'upload-draft-interop-version': version } });
    if (h.status === 204) return Number(h.headers['upload-offset']);
    await new Promise((r) => setTimeout(r, 50));
  }
  return -1;
}

/** The rest of `data` from `offset`, completing the upload (`Upload-Complete: ?1`). */
export function appendRest(base: string, location: string, version: string, data: Buffer, offset: number): Promise<RawResponse> {
  return rawRequest(base, location, {
    method: 'PATCH',
    headers: { 'upload-draft-interop-version': version, 'upload-offset': String(offset), 'upload-complete': '?1', 'content-type': 'application/partial-upload' },
    body: data.subarray(offset),
  });
}
