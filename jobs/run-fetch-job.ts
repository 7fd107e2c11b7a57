import type { Readable } from 'node:stream';
import type { Config } from '../lib/config.js';
import { BadGatewayError } from '../lib/errors.js';
import { headerValue } from '../lib/header-value.js';
import { checkDeclaredLength, storedContentType } from '../handlers/fetch-request.js';
import { fetchBody, type FetchSettings } from '../net/fetch-body.js';
import { checkSha256, digestMismatch, wantedSha256s } from '../net/origin-digest.js';
import { resumePointOf, type ResumePoint } from '../net/resume-point.js';
import { filenameFromDisposition, filenameFromUrl } from '../net/upstream-filename.js';
import { openUpstream } from '../net/upstream.js';
import type { FileRecord, Store } from '../storage/store.js';
import type { FetchJob, JobOrigin } from './fetch-job.js';

export interface JobRunDeps {
  readonly config: Config;
  readonly store: Store;
  readonly settings: FetchSettings;
  /** Saves the job's document (its state, and the origin once it answered). */
  readonly persist: (job: FetchJob) => Promise<void>;
}

/**
 * Runs a job until its file is stored, and returns the file. The job is a resumable upload that
 * sluice feeds itself (the store's UploadStore): the bytes it stored survive a restart, and a job
 * that was running when the process stopped goes on from them (`Range` + `If-Range` with the
 * validator of the first answer), or fails when the origin no longer offers that version.
 * Throws on failure; the caller removes what the upload holds.
 */
export async function runFetchJob(job: FetchJob, deps: JobRunDeps, signal: AbortSignal): Promise<FileRecord> {
  const { store } = deps;
  if (job.origin !== null) {
    // A restart: the file may be there already (the process stopped between its commit and the job's document).
    const stored = await store.stat(job.id);
    if (stored !== null) {
      checkSha256(job.origin.wanted, stored.sha256);
      return stored;
    }
    const upload = await store.getUpload(job.id);
    if (upload !== null && upload.offset > 0) return continueJob(job, job.origin, upload.offset, deps, signal);
    // Nothing stored yet (or the upload expired while the process was down): as if new.
    if (upload !== null) await store.deleteUpload(job.id);
  }
  return startJob(job, deps, signal);
}

/** The first request: the origin's answer decides the upload's length, name, type and resume point. */
async function startJob(job: FetchJob, deps: JobRunDeps, signal: AbortSignal): Promise<FileRecord> {
  const { config, settings } = deps;
  const upstream = await openUpstream(new URL(job.url), {
    headers: {},
    timeoutMs: config.fetchTimeoutMs,
    allow: config.fetchAllow,
    signal,
    ...(settings.onBytes === undefined ? {} : { onBytes: settings.onBytes }),
  });
  let origin: JobOrigin;
  let point: ResumePoint | null;
  let resumable;
  try {
    if (upstream.status === 206) throw new BadGatewayError('UPSTREAM_PARTIAL', 'The origin answered 206 to a request without Range');
    await checkDeclaredLength(deps, upstream.body.expectedLength);
    const wanted = wantedSha256s(job.sha256, upstream.headers, upstream.status);
    if (wanted.length > 1) throw digestMismatch(wanted[0] as string, wanted[1] as string);
    resumable = resumePointOf(upstream.url, upstream.status, upstream.headers);
    point = resumable?.point ?? null;
    origin = {
      url: upstream.url.href,
      validator: point?.validator ?? null,
      etag: point?.etag ?? null,
      lastModified: point?.lastModified ?? null,
      total: upstream.body.expectedLength,
      reprDigest: point?.reprDigest ?? null,
      wanted,
      meta: {
        field: null,
        filename: job.filename ?? filenameFromDisposition(headerValue(upstream.headers['content-disposition'])) ?? filenameFromUrl(upstream.url),
        contentType: storedContentType(upstream.headers['content-type'], headerValue(upstream.headers['content-encoding'])),
      },
    };
    job.origin = origin;
    job.total = origin.total;
    // The origin first, then the upload: a restart that finds the upload finds how to go on too.
    await deps.persist(job);
    await deps.store.createUpload({ length: origin.total, meta: origin.meta, metadata: {}, partial: false }, { id: job.id });
  } catch (err) {
    upstream.body.destroy();
    throw err;
  }
  const span = resumable?.span ?? { start: 0, end: Infinity };
  return append(job, origin, 0, fetchBody(upstream.body, span, point, settings, signal), deps, signal);
}

/** After a restart: the rest, from the stored offset, if the origin still has the same version. */
async function continueJob(job: FetchJob, origin: JobOrigin, offset: number, deps: JobRunDeps, signal: AbortSignal): Promise<FileRecord> {
  if (origin.validator === null || origin.total === null) {
    throw new BadGatewayError(
      'UPSTREAM_NOT_RESUMABLE',
      `The process restarted after ${offset} bytes, and the origin offers no byte ranges with a validator to go on from there; the job's bytes were removed`,
    );
  }
  const point: ResumePoint = { url: new URL(origin.url), validator: origin.validator, etag: origin.etag, lastModified: origin.lastModified, total: origin.total, reprDigest: origin.reprDigest };
  const body = fetchBody(null, { start: offset, end: origin.total - 1 }, point, deps.settings, signal);
  return append(job, origin, offset, body, deps, signal);
}

async function append(job: FetchJob, origin: JobOrigin, offset: number, body: Readable, deps: JobRunDeps, signal: AbortSignal): Promise<FileRecord> {
  job.bytes = offset;
  try {
    const result = await deps.store.appendUpload(job.id, body, {
      offset,
      signal,
      // The job's progress, as the store takes the bytes.
      onChunk: (bytes) => (job.bytes += bytes),
      maxBytes: deps.config.maxFileBytes,
      // An unknown length ends with the body; a known one is reached by it (and an append of
      // nothing at the length, after a restart there, completes it).
      ...(origin.total === null || offset === origin.total ? { last: true } : {}),
      // Before the file becomes visible: a wrong digest stores nothing.
      verify: ({ sha256 }) => checkSha256(origin.wanted, sha256),
    });
    if (result.file === null) throw new BadGatewayError('UPSTREAM_BODY_BROKEN', `The origin's body ended after ${job.bytes} of ${origin.total ?? '?'} bytes`);
    return result.file;
  } finally {
    // The store only reads the body; ending it early is ours to do.
    body.destroy();
  }
}
