import type { RequestContext } from '../lib/context.js';
import {
  LimitExceededError,
  NotFoundError,
  OffsetMismatchError,
  UploadCompleteError,
  UploadIncompleteError,
  UploadLengthExceededError,
  UploadLengthMismatchError,
  UploadNotPartialError,
} from '../lib/errors.js';
import { resumableFileLimit, resumableLimitName } from '../handlers/upload-limits.js';
import type { FileRecord } from '../storage/store.js';
import type { AppendResult, NewUpload, UploadState, UploadStore } from '../storage/uploads.js';
import { speaksDraft12, type Dialect } from './dialect.js';
import { contentLength } from './fields.js';
import type { AppendOperation, CreateOperation, Operation } from './operation.js';
import { ProtocolError } from './protocol-errors.js';

/** What an operation came to; render.ts turns it into the dialect's answer. */
export type Outcome =
  | { readonly kind: 'options' }
  | { readonly kind: 'created'; readonly upload: UploadState; readonly file: FileRecord | null }
  | { readonly kind: 'offset'; readonly upload: UploadState }
  | { readonly kind: 'appended'; readonly upload: UploadState; readonly file: FileRecord | null }
  | { readonly kind: 'terminated' };

export interface ExecuteHooks {
  /**
   * The request's headers passed every check: its body may come now (`100 Continue`), into
   * `upload` (null for a concatenation, which has no body).
   */
  beforeBody(upload: UploadState | null): void;
  /** A creation made its upload, before reading any body (the draft's 104 goes out here). */
  created(upload: UploadState): void;
}

/** Runs one operation against the store, once. Throws SluiceErrors, which render.ts dresses per dialect. */
export async function execute(op: Operation, ctx: RequestContext, dialect: Dialect, uploads: UploadStore, hooks: ExecuteHooks): Promise<Outcome> {
  // A fetch job's upload is fed by sluice itself until the job ends: not the client's to reach.
  if ('id' in op && ctx.fetchJobs.isActive(op.id)) throw notFound();
  if (op.kind === 'concatenate' && op.parts.some((id) => ctx.fetchJobs.isActive(id))) throw notFound();
  switch (op.kind) {
    case 'options':
      return { kind: 'options' };
    case 'create':
      return create(op, ctx, uploads, hooks);
    case 'concatenate':
      return concatenate(op.parts, op.file, ctx, uploads, hooks);
    case 'offset': {
      // Quick takeover: an append still running on this upload (a dead connection the server has
      // not noticed) is ended first, so the offset told is the true one and will be accepted.
      const upload = await uploads.interruptUpload(op.id);
      if (upload === null) throw notFound();
      return { kind: 'offset', upload };
    }
    case 'append':
      return append(op, ctx, dialect, uploads, hooks);
    case 'terminate':
      return terminate(op.id, ctx, uploads);
  }
}

async function create(op: CreateOperation, ctx: RequestContext, uploads: UploadStore, hooks: ExecuteHooks): Promise<Outcome> {
  if (op.length !== null) await checkRoomFor(op.length, ctx);
  const init: NewUpload = {
    length: op.length,
    meta: op.file.meta,
    metadata: op.file.metadata,
    partial: op.partial,
    completesOnLast: op.completesOnLast,
  };
  const upload = await uploads.createUpload(init, { maxPending: ctx.config.maxPendingUploads });
  ctx.metrics.resumableUploads('created');
  // 100 Continue first, then the draft's 104 (RFC 9110 15.2 allows several interim answers; the
  // draft: "the server MUST NOT omit the 100 (Continue) response because it has sent" a 104).
  hooks.beforeBody(upload);
  hooks.created(upload);
  // Content to append, or a draft creation that completes an empty representation
  // (`Upload-Complete: ?1` without content), or a tus upload of length 0 ("immediately complete
  // after its creation") that the store did not complete by itself.
  const completesEmpty = (op.last && !op.body) || (!op.completesOnLast && op.length === 0 && !upload.complete);
  if (!op.body && !completesEmpty) return { kind: 'created', upload, file: null };
  const result = await appendBody(ctx, uploads, upload.id, { offset: 0, length: null, last: op.last, body: op.body, checksum: op.checksum });
  return { kind: 'created', upload: result.upload, file: result.file };
}

async function concatenate(parts: readonly string[], file: CreateOperation['file'], ctx: RequestContext, uploads: UploadStore, hooks: ExecuteHooks): Promise<Outcome> {
  let total = 0;
  for (const id of parts) {
    // The store checks the same, atomically; these say it before any byte is copied.
    const part = await uploads.getUpload(id);
    if (part === null) throw new NotFoundError(`Upload ${JSON.stringify(id.slice(0, 64))} in Upload-Concat is not an upload here`, 'UPLOAD_NOT_FOUND');
    if (!part.partial) throw new UploadNotPartialError(id);
    if (!part.complete) throw new UploadIncompleteError(id);
    total += part.offset;
  }
  await checkRoomFor(total, ctx);
  hooks.beforeBody(null);
  const result = await uploads.concatenateUploads(parts, { meta: file.meta, metadata: file.metadata });
  ctx.metrics.resumableUploads('created');
  hooks.created(result.upload);
  countCompletion(ctx, result);
  return { kind: 'created', upload: result.upload, file: result.file };
}

async function append(op: AppendOperation, ctx: RequestContext, dialect: Dialect, uploads: UploadStore, hooks: ExecuteHooks): Promise<Outcome> {
  const upload = await uploads.getUpload(op.id);
  if (upload === null) throw notFound();
  if (dialect.kind === 'tus' && upload.parts !== null) {
    throw new ProtocolError('FINAL_UPLOAD_IMMUTABLE', 'A final upload (Upload-Concat: final) cannot be appended to');
  }
  // An offset only grows: one below the durable offset can never become right. (One above it may:
  // an append still running could reach it before the store takes it over, so that is left to the
  // store's own check.)
  if (op.offset < upload.offset) throw new OffsetMismatchError(upload.offset, op.offset);
  if (upload.complete) {
    if (dialect.kind === 'ietf') {
      // Draft -12 on: the final answer lost on its way may be asked for again by the request that
      // completed the upload (an empty append with ?1 at the final offset), and is replayed.
      const valid = op.last && !op.body && op.offset === upload.offset && (op.length === null || op.length === upload.length);
      if (speaksDraft12(dialect.interop) && valid && !upload.partial) {
        const file = await ctx.store.stat(op.id);
        if (file !== null) return { kind: 'appended', upload, file };
      }
      throw new UploadCompleteError(op.id);
    }
    if (op.offset !== upload.offset) throw new OffsetMismatchError(upload.offset, op.offset);
    // tus: an empty PATCH at the end of a complete upload changes nothing and says so (204).
    if (!op.body) return { kind: 'appended', upload, file: null };
    throw new UploadLengthExceededError(upload.offset);
  }
  if (op.length !== null) {
    if (upload.length !== null && op.length !== upload.length) {
      throw new UploadLengthMismatchError(`The upload's length is ${upload.length}, not ${op.length} ("Once set the length MUST NOT be changed")`);
    }
    if (op.length < op.offset) throw new UploadLengthMismatchError(`Upload-Length ${op.length} is below the offset ${op.offset}`);
    if (upload.length === null) await checkRoomFor(op.length - upload.offset, ctx, op.length);
  }
  const length = op.length ?? upload.length;
  const declared = contentLength(ctx.req);
  // (Only at the durable offset: an Upload-Offset past it is the store's to judge, 409 first.)
  if (length !== null && declared !== null && op.offset === upload.offset && op.offset + declared > length) {
    throw new UploadLengthExceededError(length);
  }
  hooks.beforeBody(upload);
  const result = await appendBody(ctx, uploads, op.id, op);
  return { kind: 'appended', upload: result.upload, file: result.file };
}

async function terminate(id: string, ctx: RequestContext, uploads: UploadStore): Promise<Outcome> {
  // Ends an append still running on it first (draft "Upload Cancellation": "SHOULD terminate any
  // in-flight requests to the upload resource before sending the response").
  const upload = await uploads.interruptUpload(id);
  if (upload === null) throw notFound();
  // tus termination covers "completed and unfinished uploads": a completed one is the stored file.
  const removed = upload.complete && !upload.partial ? await ctx.store.delete(id) : await uploads.deleteUpload(id);
  if (!removed) throw notFound();
  ctx.metrics.resumableUploads('terminated');
  return { kind: 'terminated' };
}

/** Streams the request body into the upload at `offset`, counting what the store took. */
async function appendBody(
  ctx: RequestContext,
  uploads: UploadStore,
  id: string,
  op: Pick<AppendOperation, 'offset' | 'length' | 'last' | 'body' | 'checksum'>,
): Promise<AppendResult> {
  const { metrics } = ctx;
  const body = op.body ? ctx.req : emptyBody();
  const result = await uploads.appendUpload(id, body, {
    offset: op.offset,
    signal: ctx.signal,
    onChunk: (bytes) => metrics.resumableBytes(bytes),
    last: op.last,
    ...(op.length === null ? {} : { length: op.length }),
    ...(op.checksum === null ? {} : { checksum: op.checksum }),
    ...(Number.isFinite(resumableFileLimit(ctx)) ? { maxBytes: resumableFileLimit(ctx) } : {}),
  });
  countCompletion({ metrics }, result);
  return result;
}

function countCompletion(ctx: Pick<RequestContext, 'metrics'>, result: AppendResult): void {
  if (!result.upload.complete) return;
  ctx.metrics.resumableUploads('completed');
  if (result.file !== null) ctx.metrics.filesStored(1);
}

// eslint-disable-next-line require-yield
async function* emptyBody(): AsyncGenerator<Buffer> {
  return;
}

/**
 * MAX_FILE_BYTES (tus: "If the length of the upload exceeds the maximum, which MAY be specified
 * using the Tus-Max-Size header, the Server MUST respond with the 413") and the free space of the
 * store (as for POST /upload: a length that cannot fit is refused before any byte is sent).
 */
async function checkRoomFor(bytes: number, ctx: RequestContext, wholeLength = bytes): Promise<void> {
  const { minFreeBytes } = ctx.config;
  // MAX_FILE_BYTES, or less when the upload was created through a signed link with maxBytes or
  // the store holds less (S3).
  const maxFileBytes = resumableFileLimit(ctx);
  if (wholeLength > maxFileBytes) {
    throw new LimitExceededError('FILE_TOO_LARGE', `The upload's length (${wholeLength} bytes) is over ${resumableLimitName(ctx)} (${maxFileBytes} bytes)`, maxFileBytes);
  }
  const free = await ctx.store.freeBytes();
  if (free !== null && bytes > free - minFreeBytes) {
    const usable = Math.max(0, free - minFreeBytes);
    throw new LimitExceededError('NOT_ENOUGH_SPACE', `The upload (${bytes} bytes) does not fit in the free space of the store (${usable} bytes usable)`, usable);
  }
}

function notFound(): NotFoundError {
  return new NotFoundError('No such upload (unknown, terminated or expired)', 'UPLOAD_NOT_FOUND');
}
