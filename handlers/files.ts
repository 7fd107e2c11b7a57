import { pipeline } from 'node:stream/promises';
import type { RequestContext } from '../lib/context.js';
import { NotFoundError, RangeNotSatisfiableError } from '../lib/errors.js';
import { sendJson } from '../lib/respond.js';
import { formatContentDisposition } from '../multipart/content-disposition.js';
import type { FileRecord } from '../storage/store.js';
import { parseRange } from './http-range.js';

/**
 * Types a browser may show inline; everything else is served as an attachment, so that a
 * stored HTML or SVG file can never run as a page of this origin (as pillarjs/send and tus do).
 */
const INLINE_TYPES = new Set(['image/png', 'image/jpeg', 'image/gif', 'image/webp', 'application/pdf', 'text/plain', 'video/mp4', 'audio/mpeg']);

/** A media type we are willing to echo back: `type/subtype` with optional parameters, no controls. */
const SANE_MEDIA_TYPE = /^[A-Za-z0-9!#$&^_.+-]+\/[A-Za-z0-9!#$&^_.+-]+(?:\s*;[\x20-\x7e]*)?$/;

/** `/files/<id>` → `<id>` (anything odd simply fails the store's id check → 404). */
function fileId(ctx: RequestContext): string {
  return ctx.url.pathname.slice('/files/'.length);
}

async function recordOr404(ctx: RequestContext): Promise<FileRecord> {
  const id = fileId(ctx);
  const record = await ctx.store.stat(id);
  if (record === null) throw new NotFoundError(`No file with id ${JSON.stringify(id.slice(0, 64))}`);
  return record;
}

/** `GET|HEAD /files/:id`: the bytes, with validators and one `Range` (RFC 9110 14, 13). */
export async function handleGetFile(ctx: RequestContext): Promise<void> {
  const { req, res } = ctx;
  const record = await recordOr404(ctx);
  const etag = `"${record.sha256}"`;
  const lastModified = new Date(record.created).toUTCString();
  const contentType = SANE_MEDIA_TYPE.test(record.contentType) ? record.contentType : 'application/octet-stream';
  const baseType = (contentType.split(';')[0] as string).trim().toLowerCase();

  res.setHeader('etag', etag);
  res.setHeader('last-modified', lastModified);
  res.setHeader('accept-ranges', 'bytes');
  res.setHeader('x-content-type-options', 'nosniff');
  res.setHeader('content-disposition', formatContentDisposition(INLINE_TYPES.has(baseType) ? 'inline' : 'attachment', record.filename));

  if (notModified(req.headers['if-none-match'], req.headers['if-modified-since'], etag, record.created)) {
    res.statusCode = 304;
    res.end();
    return;
  }

  // RFC 9110 13.1.5: a Range applies only while If-Range still matches the current version.
  const ifRange = req.headers['if-range'];
  const rangeApplies = ifRange === undefined || ifRange === etag || ifRange === lastModified;
  const range = rangeApplies ? parseRange(req.headers.range, record.size) : { kind: 'none' as const };
  if (range.kind === 'unsatisfiable') throw new RangeNotSatisfiableError(record.size);

  res.setHeader('content-type', contentType);
  if (range.kind === 'range') {
    const { start, end } = range.range;
    res.statusCode = 206;
    res.setHeader('content-range', `bytes ${start}-${end}/${record.size}`);
    res.setHeader('content-length', end - start + 1);
  } else {
    res.statusCode = 200;
    res.setHeader('content-length', record.size);
  }
  if (req.method === 'HEAD' || record.size === 0) {
    res.end();
    return;
  }
  const body = await ctx.store.read(record.id, range.kind === 'range' ? range.range : undefined);
  await pipeline(body, res, { signal: ctx.signal });
}

/** `DELETE /files/:id` → 204. */
export async function handleDeleteFile(ctx: RequestContext): Promise<void> {
  const id = fileId(ctx);
  if (!(await ctx.store.delete(id))) throw new NotFoundError(`No file with id ${JSON.stringify(id.slice(0, 64))}`);
  ctx.res.statusCode = 204;
  ctx.res.end();
}

/** `GET /files` → `{"files":[record...]}`, oldest first. */
export async function handleListFiles(ctx: RequestContext): Promise<void> {
  sendJson(ctx.res, 200, { files: await ctx.store.list() });
}

/** RFC 9110 13.1.2 / 13.1.3: If-None-Match (weak comparison) wins over If-Modified-Since. */
function notModified(ifNoneMatch: string | undefined, ifModifiedSince: string | undefined, etag: string, created: string): boolean {
  if (ifNoneMatch !== undefined) {
    return ifNoneMatch
      .split(',')
      .map((t) => t.trim().replace(/^W\//, ''))
      .some((t) => t === '*' || t === etag);
  }
  if (ifModifiedSince !== undefined) {
    const since = Date.parse(ifModifiedSince);
    // Compare at one-second resolution: HTTP dates have no fractions.
    return !Number.isNaN(since) && Math.floor(Date.parse(created) / 1000) * 1000 <= since;
  }
  return false;
}
