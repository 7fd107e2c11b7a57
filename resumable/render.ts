import type { ServerResponse } from 'node:http';
import type { Config } from '../lib/config.js';
import type { RequestContext } from '../lib/context.js';
import { OffsetMismatchError, ProblemError, SluiceError } from '../lib/errors.js';
import { sendJson } from '../lib/respond.js';
import { setStickyHeader } from '../lib/sticky-headers.js';
import { uploadAnswer } from '../lib/upload-answer.js';
import { resumableFileLimit } from '../handlers/upload-limits.js';
import type { UploadState } from '../storage/uploads.js';
import { lifetimeLimitKey, TUS_VERSION, type Dialect, type InteropVersion } from './dialect.js';
import type { Outcome } from './execute.js';
import { CHECKSUM_ALGORITHMS } from './fields.js';
import { uploadLocation } from './location.js';
import { formatUploadMetadata } from './metadata.js';
import type { Operation } from './operation.js';

/**
 * Answers in the request's dialect. The statuses, per outcome and dialect, each from its text:
 *
 * | outcome   | tus 1.0.0                        | draft, interop 6 (-05)            | draft, interop 7 and 8               |
 * |-----------|----------------------------------|-----------------------------------|--------------------------------------|
 * | options   | 204 (core "OPTIONS")             | 204                               | 204                                  |
 * | created   | 201 (creation "POST")            | 201 ("Upload Creation")           | 201                                  |
 * | offset    | 200 (core "HEAD": 200 or 204)    | 204 ("Offset Retrieval")          | 204                                  |
 * | appended  | 204 (core "PATCH": MUST be 204)  | 201 ("Upload Append": 201, also   | 204 incomplete, Upload-Complete: ?0; |
 * |           |                                  |  while incomplete)                | 201 once complete                    |
 * | terminated| 204 (termination "DELETE")       | 204 ("Upload Cancellation")       | 204                                  |
 *
 * A draft answer that completes the upload carries what `POST /upload` answers (201 and the stored
 * file): the draft's "response that matches what the resource ... would have generated".
 */
const TUS_STATUS = { options: 204, created: 201, offset: 200, appended: 204, terminated: 204 } as const;

/** tus extensions offered (protocol.md "Protocol Extensions"); concatenation-unfinished is not. */
export const TUS_EXTENSIONS = ['creation', 'creation-with-upload', 'creation-defer-length', 'termination', 'checksum', 'expiration', 'concatenation'];

/** The media type a draft append carries, for `Accept-Patch` (drafts -10, -11 require it on OPTIONS; harmless elsewhere). */
const PARTIAL_UPLOAD = 'application/partial-upload';

export function renderOutcome(ctx: RequestContext, dialect: Dialect | null, op: Operation, outcome: Outcome): void {
  const { res, config } = ctx;
  if (outcome.kind === 'options') return renderOptions(res, config, dialect, resumableFileLimit(ctx));
  if (dialect === null) throw new Error('only OPTIONS is answered without a dialect');
  if (outcome.kind === 'terminated') return end(res, 204);
  if (dialect.kind === 'tus') {
    const upload = outcome.upload;
    res.setHeader('upload-offset', String(upload.offset));
    const expires = uploadExpires(upload);
    // tus expiration: "MUST be included in every PATCH response if the upload is going to expire"
    // and in the creation's answer when known.
    if (expires !== null) res.setHeader('upload-expires', expires);
    if (outcome.kind === 'created') res.setHeader('location', uploadLocation(ctx, upload.id));
    if (outcome.kind === 'offset') describeForHead(ctx, upload);
    return end(res, TUS_STATUS[outcome.kind]);
  }
  const { interop } = dialect;
  const upload = outcome.upload;
  res.setHeader('upload-offset', String(upload.offset));
  res.setHeader('upload-complete', upload.complete ? '?1' : '?0');
  res.setHeader('upload-limit', uploadLimit(config, upload, interop, resumableFileLimit(ctx)));
  if (outcome.kind === 'offset') {
    // "Offset Retrieval": Upload-Offset, Upload-Complete, Upload-Length when known, limits, and
    // Cache-Control: no-store.
    if (upload.length !== null) res.setHeader('upload-length', String(upload.length));
    res.setHeader('cache-control', 'no-store');
    return end(res, 204);
  }
  if (outcome.kind === 'created') res.setHeader('location', uploadLocation(ctx, upload.id));
  const file = outcome.file;
  if (upload.complete && file !== null) return sendJson(res, 201, uploadAnswer([file]));
  return end(res, outcome.kind === 'created' || interop === 6 ? 201 : 204);
}

/** tus HEAD: length (or that it is deferred), metadata, concatenation, and no caching (core "HEAD"). */
function describeForHead(ctx: RequestContext, upload: UploadState): void {
  const { res } = ctx;
  if (upload.length === null) res.setHeader('upload-defer-length', '1');
  else res.setHeader('upload-length', String(upload.length));
  const metadata = formatUploadMetadata(upload.meta, upload.metadata);
  if (metadata !== null) res.setHeader('upload-metadata', metadata);
  const parts = upload.parts;
  if (upload.partial) res.setHeader('upload-concat', 'partial');
  else if (parts !== null) res.setHeader('upload-concat', `final;${parts.map((id) => uploadLocation(ctx, id)).join(' ')}`);
  res.setHeader('cache-control', 'no-store');
}

/**
 * OPTIONS: tus core ("MUST contain the Tus-Version header"; Tus-Extension, Tus-Max-Size,
 * Tus-Checksum-Algorithm) and the draft ("MUST include the Upload-Limit header field"), both at
 * once unless the request named its dialect.
 */
function renderOptions(res: ServerResponse, config: Config, dialect: Dialect | null, maxBytes: number): void {
  if (dialect?.kind !== 'ietf') {
    res.setHeader('tus-resumable', TUS_VERSION);
    res.setHeader('tus-version', TUS_VERSION);
    res.setHeader('tus-extension', TUS_EXTENSIONS.join(','));
    res.setHeader('tus-checksum-algorithm', CHECKSUM_ALGORITHMS.join(','));
    if (Number.isFinite(maxBytes)) res.setHeader('tus-max-size', String(maxBytes));
  }
  if (dialect?.kind !== 'tus') {
    res.setHeader('upload-limit', uploadLimit(config, null, dialect?.interop ?? 8, maxBytes));
    res.setHeader('accept-patch', PARTIAL_UPLOAD);
  }
  end(res, 204);
}

/**
 * The draft's `Upload-Limit` dictionary: `max-size` (`maxBytes`: MAX_FILE_BYTES, or less for a
 * signed link or a store that holds less) and the remaining lifetime (`expires` at interop 6,
 * `max-age` after) of the upload, or of any new upload for OPTIONS.
 */
export function uploadLimit(config: Config, upload: UploadState | null, interop: InteropVersion, maxBytes = config.maxFileBytes): string {
  const limits: string[] = [];
  if (Number.isFinite(maxBytes)) limits.push(`max-size=${maxBytes}`);
  const lifetime = upload === null ? Math.floor(config.uploadExpiryMs / 1000) : secondsLeft(upload);
  if (lifetime !== null) limits.push(`${lifetimeLimitKey(interop)}=${lifetime}`);
  // "If the server does not apply any limits, it MUST use min-size=0 instead of an empty header value."
  return limits.length === 0 ? 'min-size=0' : limits.join(', ');
}

function secondsLeft(upload: UploadState): number | null {
  if (upload.expires === null) return null;
  return Math.max(0, Math.floor((Date.parse(upload.expires) - Date.now()) / 1000));
}

/** tus `Upload-Expires`: an RFC 9110 IMF-fixdate, while the upload is incomplete. */
export function uploadExpires(upload: UploadState): string | null {
  if (upload.complete || upload.expires === null) return null;
  const time = Date.parse(upload.expires);
  return Number.isNaN(time) ? null : new Date(time).toUTCString();
}

function end(res: ServerResponse, status: number): void {
  res.statusCode = status;
  // No content: a 200 or 201 says so with a zero length (204 never carries one).
  if (status !== 204) res.setHeader('content-length', '0');
  res.end();
}

/** The draft's problem types ("Problem Types"), registered under this prefix. */
const PROBLEM_TYPES = 'https://iana.org/assignments/http-problem-types#';

/**
 * Dresses an error in the request's dialect before the server answers it (lib/app.ts, the one
 * place errors become answers): tus adds `Tus-Version` to a 412 and `Tus-Max-Size` to a 413,
 * and the true `Upload-Offset` to a 409; the draft answers a 409 and the completed-upload and
 * inconsistent-length cases with problem details, and every answer to a creation or append that
 * did not complete the upload with `Upload-Complete: ?0` (interop 7 and 8: "any response,
 * successful or not, MUST include the Upload-Complete header field with a false value"). A
 * creation that made its upload before it failed still names it in `Location`, so the client can
 * resume it.
 */
export function dressError(err: unknown, ctx: RequestContext, dialect: Dialect | null, op: Operation | null, created: UploadState | null): unknown {
  if (!(err instanceof SluiceError)) return err;
  const { res, config } = ctx;
  if (created !== null) setStickyHeader(res, 'location', uploadLocation(ctx, created.id));
  if (dialect?.kind === 'ietf' && (op?.kind === 'create' || op?.kind === 'append') && err.code !== 'UPLOAD_COMPLETE') {
    setStickyHeader(res, 'upload-complete', '?0');
  }
  if (err instanceof OffsetMismatchError) {
    setStickyHeader(res, 'upload-offset', String(err.offset));
    if (dialect?.kind === 'ietf') {
      return new ProblemError(err.code, err.message, 409, {
        type: `${PROBLEM_TYPES}mismatching-upload-offset`,
        title: 'offset from request does not match offset of resource',
        'expected-offset': err.offset,
        'provided-offset': err.provided,
      }, { cause: err });
    }
    return err;
  }
  if (dialect?.kind === 'ietf') {
    switch (err.code) {
      case 'UPLOAD_COMPLETE':
        return new ProblemError(err.code, err.message, 400, { type: `${PROBLEM_TYPES}completed-upload`, title: 'upload is already completed' }, { cause: err });
      case 'UPLOAD_LENGTH_MISMATCH':
        return new ProblemError(err.code, err.message, 400, { type: `${PROBLEM_TYPES}inconsistent-upload-length`, title: 'inconsistent length values for upload' }, { cause: err });
      case 'UPLOAD_LENGTH_EXCEEDED':
        // draft-05 "Upload Append": "reject the request with a 400 (Bad Request) status code".
        return new SluiceError(err.code, err.message, 400, { cause: err, headers: { ...err.headers } });
      default:
        return err;
    }
  }
  if (err.code === 'FILE_TOO_LARGE' && Number.isFinite(resumableFileLimit(ctx))) setStickyHeader(res, 'tus-max-size', String(resumableFileLimit(ctx)));
  return err;
}
