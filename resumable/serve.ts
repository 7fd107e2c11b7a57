import type { IncomingMessage, ServerResponse } from 'node:http';
import type { RequestContext } from '../lib/context.js';
import { MalformedRequestError } from '../lib/errors.js';
import { parseContentDigest } from '../handlers/content-digest.js';
import { resumableFileLimit } from '../handlers/upload-limits.js';
import { setStickyHeader } from '../lib/sticky-headers.js';
import type { UploadState } from '../storage/uploads.js';
import { claimedDialect, INTEROP_VERSIONS, TUS_VERSION, type Dialect, type InteropVersion } from './dialect.js';
import { execute, type Outcome } from './execute.js';
import { writeInterimResponse } from './interim.js';
import { uploadLocation } from './location.js';
import { parseOperation, type Operation, type Target } from './operation.js';
import { ProtocolError } from './protocol-errors.js';
import { dressError, renderOutcome, uploadLimit } from './render.js';

/**
 * One request to `/uploads` or `/uploads/<id>` (or an upgraded `POST /upload`): which dialect it
 * speaks, what operation it asks for, that operation run once against the store, the answer in
 * the dialect. Errors leave dressed in the dialect for the server to answer (lib/app.ts).
 */
export async function serveResumable(ctx: RequestContext, target: Target, check?: (outcome: Outcome) => Promise<void>): Promise<void> {
  const dialect = chooseDialect(ctx);
  if (dialect?.kind === 'tus') {
    // tus core "Tus-Resumable": "MUST be included in every request and response", errors too.
    setStickyHeader(ctx.res, 'tus-resumable', TUS_VERSION);
  }
  let op: Operation | null = null;
  let created: UploadState | null = null;
  let stopProgress = (): void => {};
  try {
    if (dialect === null && ctx.method !== 'OPTIONS') throw new Error('a dialect is chosen for everything but OPTIONS');
    const uploads = ctx.store;
    op = parseOperation(ctx.req, ctx.url, ctx.method, dialect ?? { kind: 'tus' }, target);
    const outcome = await execute(op, ctx, dialect ?? { kind: 'tus' }, uploads, {
      beforeBody: (upload) => {
        ctx.sendContinue();
        if (dialect?.kind === 'ietf' && upload !== null) stopProgress = reportProgress(ctx, dialect.interop, upload);
      },
      created: (upload) => {
        created = upload;
        if (dialect?.kind === 'ietf') announceUpload(ctx, dialect.interop, upload);
      },
    });
    await check?.(outcome);
    renderOutcome(ctx, dialect, op, outcome);
  } catch (err) {
    // An append ended by a newer request on the same upload (quick takeover): its client is
    // presumed gone, and whatever is still in flight is unwanted. Hang up (the draft: "the server
    // MAY abruptly terminate the previous HTTP connection").
    if ((err as { code?: unknown } | null)?.code === 'UPLOAD_INTERRUPTED') ctx.req.socket.destroy();
    throw dressError(err, ctx, dialect, op, created);
  } finally {
    stopProgress();
  }
}

/** How often a draft append's durable offset is looked at for a progress 104. */
const PROGRESS_INTERVAL_MS = 1_000;

/**
 * The draft's progress reports: "While the request content is being processed, the server
 * SHOULD [MAY until draft -08] send interim responses with a 104 (Upload Resumption Supported)
 * status code and the Upload-Offset header field set to the current offset", without Location.
 * Only durable offsets are told (the store's checkpoints, every 64 MiB by default), so none is
 * ever taken back, and only when it moved. Returns the function that stops it.
 */
function reportProgress(ctx: RequestContext, interop: InteropVersion, upload: UploadState): () => void {
  let told = upload.offset;
  let looking = false;
  const timer = setInterval(() => {
    if (looking || ctx.res.headersSent) return;
    looking = true;
    ctx.store
      .getUpload(upload.id)
      .then((now) => {
        if (now === null || now.complete || now.offset <= told) return;
        told = now.offset;
        writeInterimResponse(ctx.res, 104, 'Upload Resumption Supported', [
          ['Upload-Draft-Interop-Version', String(interop)],
          ['Upload-Offset', String(now.offset)],
        ]);
      })
      .catch(() => {})
      .finally(() => (looking = false));
  }, PROGRESS_INTERVAL_MS).unref();
  return () => clearInterval(timer);
}

/**
 * The route's prelude (lib/routes.ts): a request that speaks tus, or names no dialect, gets
 * `Tus-Resumable` on every answer, those the server gives before the handler runs (401, 503,
 * 413) included (tus core: "MUST be included in every request and response except for OPTIONS").
 */
export function markDialect(req: IncomingMessage, res: ServerResponse): void {
  const claim = claimedDialect(req);
  if (claim.kind !== 'dialect' || claim.dialect.kind === 'tus') setStickyHeader(res, 'tus-resumable', TUS_VERSION);
}

/**
 * The dialect of the request (null: an OPTIONS that named none, answered in both). tus 1.0.0 when
 * it carries `Tus-Resumable`, the draft when it carries `Upload-Draft-Interop-Version` (the draft
 * first when both). A version not implemented here is refused: tus with 412 and `Tus-Version`
 * (tus core: "MUST NOT process the request"), except on OPTIONS, where "the Server MUST ignore
 * the header"; a missing one too, except on HEAD and GET, which browsers and tools send bare.
 */
function chooseDialect(ctx: RequestContext): Dialect | null {
  const claim = claimedDialect(ctx.req);
  const lenient = ctx.method === 'OPTIONS' || ctx.method === 'HEAD' || ctx.method === 'GET';
  switch (claim.kind) {
    case 'dialect':
      return claim.dialect;
    case 'unknown-interop':
      if (ctx.method === 'OPTIONS') return null;
      throw new ProtocolError(
        'INTEROP_VERSION_UNSUPPORTED',
        `Upload-Draft-Interop-Version ${JSON.stringify(claim.value.slice(0, 16))} is not implemented here; use ${INTEROP_VERSIONS.join(', ')}`,
      );
    case 'unknown-tus':
      if (ctx.method === 'OPTIONS') return null;
      setStickyHeader(ctx.res, 'tus-resumable', TUS_VERSION);
      throw new ProtocolError('TUS_VERSION_UNSUPPORTED', `Tus-Resumable ${JSON.stringify(claim.value.slice(0, 16))} is not supported; use ${TUS_VERSION}`, {
        'tus-version': TUS_VERSION,
      });
    case 'none':
      if (ctx.method === 'OPTIONS') return null;
      if (lenient) return { kind: 'tus' };
      setStickyHeader(ctx.res, 'tus-resumable', TUS_VERSION);
      throw new ProtocolError(
        'TUS_VERSION_UNSUPPORTED',
        `Send Tus-Resumable: ${TUS_VERSION} (tus) or Upload-Draft-Interop-Version: ${INTEROP_VERSIONS.join(' | ')} (draft-ietf-httpbis-resumable-upload)`,
        { 'tus-version': TUS_VERSION },
      );
  }
}

/**
 * The draft's `104 (Upload Resumption Supported)` with the new upload's `Location` and limits,
 * before the body is read, so that a cut connection can be resumed ("Upload Creation": "SHOULD
 * announce the upload resource by sending an interim response ... MUST include Location ... and
 * the Upload-Limit header field"; "Draft Version Identification": the interop version in it).
 */
function announceUpload(ctx: RequestContext, interop: InteropVersion, upload: UploadState): void {
  writeInterimResponse(ctx.res, 104, 'Upload Resumption Supported', [
    ['Upload-Draft-Interop-Version', String(interop)],
    ['Location', uploadLocation(ctx, upload.id)],
    ['Upload-Limit', uploadLimit(ctx.config, upload, interop, resumableFileLimit(ctx))],
  ]);
}

/**
 * `POST /upload` (or PUT) that carries `Upload-Draft-Interop-Version` (a version implemented here)
 * and `Upload-Complete` asks to be made resumable: the draft's "Upgrading To Resumable Uploads"
 * (what URLSession does). Other requests stay ordinary uploads: "A resource that does not support
 * resumable uploads or does not want to upgrade ... ignores the Upload-Complete: ?1 header".
 */
export function wantsResumableUpgrade(ctx: RequestContext): boolean {
  const claim = claimedDialect(ctx.req);
  return claim.kind === 'dialect' && claim.dialect.kind === 'ietf' && ctx.req.headers['upload-complete'] !== undefined;
}

/**
 * The upgraded `POST /upload`: a draft creation on the collection. A `Content-Digest` or
 * `Repr-Digest` (RFC 9530) is checked as for an ordinary raw upload when the upload completes in
 * this one request (a mismatch removes the file: 400 DIGEST_MISMATCH); an upload completed by
 * later appends is not checked against the first request's digest.
 */
export function serveResumableUpgrade(ctx: RequestContext): Promise<void> {
  const expected = [parseContentDigest(ctx.req.headers['content-digest']), parseContentDigest(ctx.req.headers['repr-digest'])].filter((d) => d !== null);
  return serveResumable(ctx, { kind: 'collection' }, async (outcome) => {
    if (outcome.kind !== 'created' || outcome.file === null) return;
    const { sha256, id } = outcome.file;
    if (expected.every((d) => d === sha256)) return;
    await ctx.store.delete(id);
    throw new MalformedRequestError('DIGEST_MISMATCH', `The sha-256 of Content-Digest or Repr-Digest does not match the received bytes (got sha-256 ${sha256} in hex)`);
  });
}
