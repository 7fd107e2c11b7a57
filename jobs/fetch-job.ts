import type { FileRecord, NewFileMeta } from '../storage/store.js';
import { isFileId } from '../storage/file-id.js';

/** The states of a fetch job; the last three are final. */
export type JobState = 'queued' | 'running' | 'done' | 'failed' | 'cancelled';
export type FinalState = 'done' | 'failed' | 'cancelled';

export const FINAL_STATES: ReadonlySet<JobState> = new Set(['done', 'failed', 'cancelled']);

/** The document kind jobs are kept under (DocumentStore). */
export const JOB_KIND = 'fetch-job';

/**
 * What the origin's first answer fixed, kept so that a restart can go on from the stored bytes:
 * the resume point (as ResumePoint, URL as text) and what the stored file is to be.
 */
export interface JobOrigin {
  /** The URL that answered, after redirects. */
  readonly url: string;
  /** The If-Range validator, or null when the origin cannot be asked for the rest. */
  readonly validator: string | null;
  readonly etag: string | null;
  readonly lastModified: string | null;
  /** The complete length, or null (chunked, close-delimited). */
  readonly total: number | null;
  readonly reprDigest: string | null;
  /** Every sha256 the whole file must have (the client's, the origin's digests). */
  readonly wanted: readonly string[];
  readonly meta: NewFileMeta;
}

export interface JobError {
  readonly code: string;
  readonly message: string;
}

/** A job as it is kept (one document) and answered (jobView). */
export interface FetchJob {
  /** The job's id is its upload's id and its stored file's id. */
  readonly id: string;
  readonly url: string;
  readonly filename: string | null;
  /** The sha256 the client asked for, or null. */
  readonly sha256: string | null;
  state: JobState;
  /** Bytes stored so far. */
  bytes: number;
  total: number | null;
  retries: number;
  readonly createdAt: string;
  startedAt: string | null;
  finishedAt: string | null;
  file: FileRecord | null;
  error: JobError | null;
  /** Set once the origin answered; null while queued. */
  origin: JobOrigin | null;
}

/** The JSON a client sees (`GET /fetches/<id>`): the job without its resume details, with a rate. */
export function jobView(job: FetchJob, bytesPerSecond: number | null): Record<string, unknown> {
  return {
    id: job.id,
    url: withoutPassword(job.url),
    filename: job.filename,
    sha256: job.sha256,
    state: job.state,
    bytes: job.bytes,
    total: job.total,
    bytesPerSecond,
    retries: job.retries,
    createdAt: job.createdAt,
    startedAt: job.startedAt,
    finishedAt: job.finishedAt,
    file: job.file,
    error: job.error,
  };
}

/** The URL as submitted, but a password in its userinfo (RFC 3986 3.2.1: deprecated anyway) is not shown again. */
function withoutPassword(text: string): string {
  const url = URL.canParse(text) ? new URL(text) : null;
  if (url === null || url.password === '') return text;
  url.password = '***';
  return url.href;
}

const STATES: readonly JobState[] = ['queued', 'running', 'done', 'failed', 'cancelled'];

/**
 * A kept document read back as a job, or null when it is not one (written by another version,
 * damaged): such a document is ignored, never trusted.
 */
export function parseJob(value: unknown): FetchJob | null {
  if (typeof value !== 'object' || value === null) return null;
  const v = value as Record<string, unknown>;
  const str = (x: unknown): x is string => typeof x === 'string';
  const strOrNull = (x: unknown): x is string | null => x === null || typeof x === 'string';
  const count = (x: unknown): x is number => typeof x === 'number' && Number.isSafeInteger(x) && x >= 0;
  if (!str(v.id) || !isFileId(v.id) || !str(v.url) || !strOrNull(v.filename) || !strOrNull(v.sha256)) return null;
  if (!STATES.includes(v.state as JobState) || !count(v.bytes) || !(v.total === null || count(v.total)) || !count(v.retries)) return null;
  if (!str(v.createdAt) || !strOrNull(v.startedAt) || !strOrNull(v.finishedAt)) return null;
  return {
    id: v.id,
    url: v.url,
    filename: v.filename,
    sha256: v.sha256,
    state: v.state as JobState,
    bytes: v.bytes,
    total: v.total,
    retries: v.retries,
    createdAt: v.createdAt,
    startedAt: v.startedAt,
    finishedAt: v.finishedAt,
    file: (v.file ?? null) as FileRecord | null,
    error: (v.error ?? null) as JobError | null,
    origin: (v.origin ?? null) as JobOrigin | null,
  };
}
