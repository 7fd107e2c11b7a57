import type { RequestContext } from '../lib/context.js';
import { isMultipartFormData, boundaryFromContentType } from '../multipart/content-type.js';
import { receiveMultipart } from './upload-multipart.js';
import { receiveRaw } from './upload-raw.js';
import { sendJson } from '../lib/respond.js';
import type { FileRecord } from '../storage/store.js';
import { filenameFromPath } from './upload-name.js';
import { uploadAnswer } from '../lib/upload-answer.js';
import { serveResumableUpgrade, wantsResumableUpgrade } from '../resumable/serve.js';

export interface UploadResult {
  readonly files: readonly FileRecord[];
  readonly fields: ReadonlyArray<{ readonly name: string; readonly value: string }>;
}

/**
 * `POST /upload`: `multipart/form-data` (each file part streamed to the store, fields
 * collected) or any other body as one file. Answers 201 with what was stored, in order.
 * Either every file of the request is stored, or (on any failure) none is.
 */
export async function handleUpload(ctx: RequestContext): Promise<void> {
  const contentType = ctx.req.headers['content-type'];
  // A raw body offered as a resumable upload (the draft's `Upload-Complete` with an interop version
  // implemented here): made resumable, answered as below when it completes in one go.
  if (!isMultipartFormData(contentType) && wantsResumableUpgrade(ctx)) return serveResumableUpgrade(ctx);
  const result = isMultipartFormData(contentType)
    ? await receiveMultipart(ctx, boundaryFromContentType(contentType))
    : await receiveRaw(ctx);
  answerUpload(ctx, result);
}

/**
 * `PUT /upload/<name>`, what `curl -T weights.bin http://host/upload/` sends (curl appends the
 * file's name to a URL ending in `/`): the body is one file, named after the last path segment,
 * percent-decoded, whatever its Content-Type. The name is metadata only, as `?filename=` is.
 */
export async function handleNamedUpload(ctx: RequestContext): Promise<void> {
  answerUpload(ctx, await receiveRaw(ctx, filenameFromPath(ctx.url.pathname)));
}

/** 201 with the files and fields stored, in the order received. */
function answerUpload(ctx: RequestContext, result: UploadResult): void {
  ctx.metrics.filesStored(result.files.length);
  sendJson(ctx.res, 201, uploadAnswer(result.files, result.fields));
}
