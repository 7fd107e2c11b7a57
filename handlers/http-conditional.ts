import type { IncomingHttpHeaders } from 'node:http';
import { headerValue } from '../lib/header-value.js';

/**
 * Conditional requests (RFC 9110 13) against a stored file's validators: its ETag (the sha256,
 * strong) and its Last-Modified (the commit time, at one-second resolution, strong too: a stored
 * file never changes).
 */
export interface Validators {
  /** The ETag as sent, quotes included: `"<sha256>"`. */
  readonly etag: string;
  /** Last-Modified in ms since the epoch, truncated to whole seconds as the header carries it. */
  readonly lastModified: number;
}

/** What the preconditions say: go on, answer 304, or answer 412. */
export type Precondition = 'proceed' | 'not-modified' | 'failed';

interface EntityTag {
  readonly weak: boolean;
  /** The opaque-tag, quotes included. */
  readonly opaque: string;
}

/** `"x"` or `W/"x"` (RFC 9110 8.8.3); null when the text is not one entity-tag. */
function parseEntityTag(text: string): EntityTag | null {
  const m = /^(W\/)?("[\x21\x23-\x7e\x80-\xff]*")$/.exec(text.trim());
  return m === null ? null : { weak: m[1] !== undefined, opaque: m[2] as string };
}

/** `*`, or the entity-tags of a list (`"a", W/"b"`); members that are not entity-tags are dropped. */
function parseEntityTagList(text: string): '*' | EntityTag[] {
  if (text.trim() === '*') return '*';
  const tags: EntityTag[] = [];
  // An entity-tag may hold a comma, so the members are found by their quotes, not split on commas.
  for (const m of text.matchAll(/(?:W\/)?"[^"]*"/g)) {
    const tag = parseEntityTag(m[0]);
    if (tag !== null) tags.push(tag);
  }
  return tags;
}

/** RFC 9110 8.8.3.2: strong comparison, both strong and the same opaque-tag. */
function strongMatch(a: EntityTag, b: EntityTag): boolean {
  return !a.weak && !b.weak && a.opaque === b.opaque;
}

/** RFC 9110 8.8.3.2: weak comparison, the same opaque-tag whatever the W/. */
function weakMatch(a: EntityTag, b: EntityTag): boolean {
  return a.opaque === b.opaque;
}

function listMatches(header: string, current: EntityTag, match: (a: EntityTag, b: EntityTag) => boolean): boolean {
  const list = parseEntityTagList(header);
  return list === '*' || list.some((tag) => match(tag, current));
}

/**
 * RFC 9110 13.2.2, in its order: If-Match (strong), else If-Unmodified-Since, → 412; then
 * If-None-Match (weak) → 304 for GET/HEAD, 412 otherwise; else If-Modified-Since (GET/HEAD only)
 * → 304. A date that is not an HTTP-date is ignored, as the RFC says.
 */
export function evaluatePreconditions(headers: IncomingHttpHeaders, method: string, validators: Validators): Precondition {
  const current = parseEntityTag(validators.etag) as EntityTag;
  const safe = method === 'GET' || method === 'HEAD';
  const ifMatch = headerValue(headers['if-match']);
  if (ifMatch !== undefined) {
    if (!listMatches(ifMatch, current, strongMatch)) return 'failed';
  } else {
    const since = parseHttpDate(headerValue(headers['if-unmodified-since']));
    if (since !== null && validators.lastModified > since) return 'failed';
  }
  const ifNoneMatch = headerValue(headers['if-none-match']);
  if (ifNoneMatch !== undefined) {
    if (listMatches(ifNoneMatch, current, weakMatch)) return safe ? 'not-modified' : 'failed';
  } else if (safe) {
    const since = parseHttpDate(headerValue(headers['if-modified-since']));
    if (since !== null && validators.lastModified <= since) return 'not-modified';
  }
  return 'proceed';
}

/**
 * RFC 9110 13.1.5: If-Range holds when its entity-tag strongly matches (a weak one never does),
 * or when its HTTP-date is exactly Last-Modified. Anything else (another tag, another date, junk)
 * is false: the whole file is sent.
 */
export function ifRangeHolds(value: string, validators: Validators): boolean {
  const text = value.trim();
  if (text.startsWith('"') || text.startsWith('W/')) {
    const tag = parseEntityTag(text);
    return tag !== null && strongMatch(tag, parseEntityTag(validators.etag) as EntityTag);
  }
  return parseHttpDate(text) === validators.lastModified;
}

const MONTHS = ['jan', 'feb', 'mar', 'apr', 'may', 'jun', 'jul', 'aug', 'sep', 'oct', 'nov', 'dec'];
const MONTH = '(jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)';
const TIME = '(\\d{2}):(\\d{2}):(\\d{2})';
/** `Sun, 06 Nov 1994 08:49:37 GMT` */
const IMF_FIXDATE = new RegExp(`^(?:mon|tue|wed|thu|fri|sat|sun), (\\d{2}) ${MONTH} (\\d{4}) ${TIME} GMT$`, 'i');
/** `Sunday, 06-Nov-94 08:49:37 GMT` (obsolete) */
const RFC850_DATE = new RegExp(`^(?:monday|tuesday|wednesday|thursday|friday|saturday|sunday), (\\d{2})-${MONTH}-(\\d{2}) ${TIME} GMT$`, 'i');
/** `Sun Nov  6 08:49:37 1994` (obsolete, ANSI C asctime) */
const ASCTIME_DATE = new RegExp(`^(?:mon|tue|wed|thu|fri|sat|sun) ${MONTH} ([ \\d]\\d) ${TIME} (\\d{4})$`, 'i');

/**
 * An HTTP-date (RFC 9110 5.6.7: IMF-fixdate and the two obsolete forms, always GMT) in ms since
 * the epoch; null for anything else. Unlike Date.parse it takes neither ISO dates nor bare numbers,
 * and reads asctime as GMT rather than local time.
 */
export function parseHttpDate(text: string | undefined): number | null {
  if (text === undefined) return null;
  const t = text.trim();
  let m = IMF_FIXDATE.exec(t);
  if (m !== null) return utc(Number(m[3]), m[2] as string, Number(m[1]), m.slice(4, 7));
  m = RFC850_DATE.exec(t);
  if (m !== null) return utc(fullYear(Number(m[3])), m[2] as string, Number(m[1]), m.slice(4, 7));
  m = ASCTIME_DATE.exec(t);
  if (m !== null) return utc(Number(m[6]), m[1] as string, Number((m[2] as string).trim()), m.slice(3, 6));
  return null;
}

/** RFC 9110 5.6.7: a two-digit year more than 50 years ahead is the most recent such year past. */
function fullYear(yy: number): number {
  const now = new Date().getUTCFullYear();
  let year = Math.floor(now / 100) * 100 + yy;
  if (year > now + 50) year -= 100;
  return year;
}

function utc(year: number, monthName: string, day: number, time: string[]): number | null {
  const month = MONTHS.indexOf(monthName.toLowerCase());
  const [hour, minute, second] = time.map(Number) as [number, number, number];
  if (day < 1 || hour > 23 || minute > 59 || second > 60) return null;
  const ms = Date.UTC(year, month, day, hour, minute, Math.min(second, 59));
  // Feb 30 and the like roll over into the next month: not a date.
  return new Date(ms).getUTCDate() === day ? ms : null;
}
