import type { Readable } from 'node:stream';
import { ParallelBody, type ParallelSettings } from './parallel-body.js';
import type { ResumePoint, Span } from './resume-point.js';
import { ResumingBody } from './resuming-body.js';
import type { UpstreamBody } from './upstream-body.js';

/** Everything that decides how a stored fetch (POST /fetch, a job) gets its bytes. */
export type FetchSettings = ParallelSettings;

/**
 * The body to store for `span` of a resource: over several connections when the settings ask for
 * them and the span is more than one piece; else over one connection that resumes after breaks;
 * else (no resume point: no ranges, no validator, no length) the first answer's body as it is.
 * `first`, when given, is an open answer whose body starts at `span.start`; without it the span
 * is asked for with `Range` and `If-Range` (a job going on after a restart).
 */
export function fetchBody(first: UpstreamBody | null, span: Span, point: ResumePoint | null, settings: FetchSettings, signal: AbortSignal): Readable {
  if (point === null) {
    if (first === null) throw new Error('fetchBody: nothing to read without a resume point');
    return first;
  }
  if (settings.connections > 1 && span.end + 1 - span.start > settings.pieceBytes) {
    return new ParallelBody(first, span, point, settings, signal);
  }
  if (settings.retries === 0 && first !== null) return first;
  return new ResumingBody(first, span, point, settings, signal);
}
