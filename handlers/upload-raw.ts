import type { RequestContext } from '../lib/context.js';
import { MalformedRequestError } from '../lib/errors.js';
import { dispositionFilename, lastPathSegment, parseContentDisposition } from '../multipart/content-disposition.js';
import { saveStream } from '../storage/save-stream.js';
import { fileLimit, requestBodyLimit } from './upload-limits.js';
import { parseContentDigest } from './content-digest.js';
import type { UploadResult } from './upload.js';

/**
 * Any body that is not multipart/form-data is one file. Its name is `filename` when given (the
 * path of `PUT /upload/<name>`), else from `?filename=`, else from a `Content-Disposition`
 * request header, else none. With `Content-Digest: sha-256=:...:`
 * or `Repr-Digest` (RFC 9530) the stored bytes are checked before the file becomes visible.
 */
export async function receiveRaw(ctx: RequestContext, filename?: string | null): Promise<UploadResult> {
  const { req, url, store } = ctx;
  // A stored body is never re-coded: its content and its representation are the same bytes,
  // so Content-Digest and Repr-Digest (RFC 9530 2, 3) both check them.
  const expected = [parseContentDigest(req.headers['content-digest']), parseContentDigest(req.headers['repr-digest'])].filter((d) => d !== null);
  const record = await saveStream(
    store,
    ctx.req,
    { field: null, filename: filename === undefined ? rawFilename(url, req.headers['content-disposition']) : filename, contentType: req.headers['content-type'] ?? 'application/octet-stream' },
    {
      maxBytes: fileLimit(ctx),
      bodyLimit: requestBodyLimit(ctx.config),
      signal: ctx.signal,
      verify: ({ sha256 }) => {
        if (expected.some((d) => d !== sha256)) {
          throw new MalformedRequestError('DIGEST_MISMATCH', `The sha-256 of Content-Digest or Repr-Digest does not match the received bytes (got sha-256 ${sha256} in hex)`);
        }
      },
    },
  );
  return { files: [record], fields: [] };
}

/** The client's name for the file; an empty one (`?filename=`, `filename=""`, only `..`) is no name, as in multipart. */
export function rawFilename(url: URL, disposition: string | undefined): string | null {
  const fromQuery = url.searchParams.get('filename');
  if (fromQuery !== null) return lastPathSegment(fromQuery) || null;
  if (disposition === undefined) return null;
  const parsed = parseContentDisposition(disposition);
  if (parsed === null) throw new MalformedRequestError('CONTENT_DISPOSITION_MALFORMED', 'The Content-Disposition request header is malformed');
  return dispositionFilename(parsed) || null;
}
