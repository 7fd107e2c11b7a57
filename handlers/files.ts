import { randomBytes } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { RequestContext } from '../lib/context.js';
import { NotFoundError, PreconditionFailedError, RangeNotSatisfiableError } from '../lib/errors.js';
import { sendJson } from '../lib/respond.js';
import { formatContentDisposition } from '../multipart/content-disposition.js';
import { mediaTypeEssence } from '../multipart/content-type.js';
import { formatSha256Digest } from './content-digest.js';
import type { ByteRange, FileRecord } from '../storage/store.js';
import { evaluatePreconditions, ifRangeHolds, type Validators } from './http-conditional.js';
import { layoutByteRanges, parseRange, type RangeRequest } from './http-range.js';

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

/** `GET|HEAD /files/:id`: the bytes, with validators, conditional requests and ranges (RFC 9110 13, 14). */
export async function handleGetFile(ctx: RequestContext): Promise<void> {
  const { req, res } = ctx;
  const record = await recordOr404(ctx);
  const validators = validatorsOf(record);
  const contentType = SANE_MEDIA_TYPE.test(record.contentType) ? record.contentType : 'application/octet-stream';
  const baseType = mediaTypeEssence(contentType);

  res.setHeader('etag', validators.etag);
  res.setHeader('last-modified', new Date(validators.lastModified).toUTCString());
  res.setHeader('accept-ranges', 'bytes');
  res.setHeader('x-content-type-options', 'nosniff');

  const precondition = evaluatePreconditions(req.headers, req.method ?? 'GET', validators);
  if (precondition === 'failed') throw new PreconditionFailedError("The file does not match the request's preconditions");
  if (precondition === 'not-modified') {
    // RFC 9110 15.4.5: the validators, not the representation's metadata (send drops it too).
    res.statusCode = 304;
    res.end();
    return;
  }
  const range = requestedRange(req, record.size, validators);
  // Before the file's own headers: a 416's JSON body must not go out named as the file.
  if (range.kind === 'unsatisfiable') throw new RangeNotSatisfiableError(record.size);
  res.setHeader('content-disposition', formatContentDisposition(INLINE_TYPES.has(baseType) ? 'inline' : 'attachment', record.filename));
  // RFC 9530 3: the digest of the whole file, whatever range this answer carries.
  res.setHeader('repr-digest', formatSha256Digest(record.sha256));
  const body =
    range.kind === 'none'
      ? await wholeFile(ctx, record, contentType)
      : range.ranges.length === 1
        ? await oneRange(ctx, record, contentType, range.ranges[0] as ByteRange)
        : byteRanges(ctx, record, contentType, range.ranges);
  if (body === null) {
    res.end();
    return;
  }
  await pipeline(body, res, { signal: ctx.signal });
}

/** The ETag (the sha256) and Last-Modified (the commit time, whole seconds as the header has it). */
function validatorsOf(record: FileRecord): Validators {
  return { etag: `"${record.sha256}"`, lastModified: Math.floor(Date.parse(record.created) / 1000) * 1000 };
}

/**
 * The client's `Range`, when it applies: only while `If-Range` still names this file (RFC 9110
 * 13.1.5). HEAD gets GET's answer, 206 included, as from nginx and send.
 */
function requestedRange(req: IncomingMessage, size: number, validators: Validators): RangeRequest {
  const ifRange = req.headers['if-range'];
  if (ifRange !== undefined && !ifRangeHolds(String(ifRange), validators)) return { kind: 'none' };
  return parseRange(req.headers.range, size);
}

/** Whether the answer carries a body: not for HEAD, not for zero bytes. */
function wantsBody(ctx: RequestContext, length: number): boolean {
  return ctx.req.method !== 'HEAD' && length > 0;
}

/** 200 with the whole file; null when there is no body to send. */
async function wholeFile(ctx: RequestContext, record: FileRecord, contentType: string): Promise<Readable | null> {
  const { res } = ctx;
  res.statusCode = 200;
  res.setHeader('content-type', contentType);
  res.setHeader('content-length', record.size);
  // RFC 9530 2: the whole file is this answer's content too.
  res.setHeader('content-digest', formatSha256Digest(record.sha256));
  return wantsBody(ctx, record.size) ? ctx.store.read(record.id) : null;
}

/** 206 with one range (RFC 9110 15.3.7.1). */
async function oneRange(ctx: RequestContext, record: FileRecord, contentType: string, range: ByteRange): Promise<Readable | null> {
  const { res } = ctx;
  const length = range.end - range.start + 1;
  res.statusCode = 206;
  res.setHeader('content-type', contentType);
  res.setHeader('content-range', `bytes ${range.start}-${range.end}/${record.size}`);
  res.setHeader('content-length', length);
  return wantsBody(ctx, length) ? ctx.store.read(record.id, range) : null;
}

/**
 * 206 multipart/byteranges (RFC 9110 14.6, 15.3.7.2), streamed part after part: a range is opened
 * only once the part before it has gone out, so nothing is held beyond the stream's own buffer.
 */
function byteRanges(ctx: RequestContext, record: FileRecord, contentType: string, ranges: readonly ByteRange[]): Readable | null {
  const { res, store } = ctx;
  const layout = layoutByteRanges(ranges, record.size, contentType, randomBytes(16).toString('hex'));
  res.statusCode = 206;
  res.setHeader('content-type', layout.contentType);
  res.setHeader('content-length', layout.length);
  if (!wantsBody(ctx, layout.length)) return null;
  async function* parts(): AsyncGenerator<Buffer> {
    for (const part of layout.parts) {
      yield part.head;
      // Leaving this loop early (the response torn down) destroys the part's file stream.
      for await (const chunk of await store.read(record.id, part.range)) yield chunk as Buffer;
    }
    yield layout.tail;
  }
  return Readable.from(parts(), { objectMode: false });
}

/** `DELETE /files/:id` → 204; 412 when `If-Match`, `If-Unmodified-Since` or `If-None-Match` say no (RFC 9110 13.2). */
export async function handleDeleteFile(ctx: RequestContext): Promise<void> {
  const { req } = ctx;
  const id = fileId(ctx);
  const conditional = ['if-match', 'if-unmodified-since', 'if-none-match'].some((name) => req.headers[name] !== undefined);
  if (conditional && evaluatePreconditions(req.headers, 'DELETE', validatorsOf(await recordOr404(ctx))) !== 'proceed') {
    throw new PreconditionFailedError("The file does not match the request's preconditions; it was not deleted");
  }
  if (!(await ctx.store.delete(id))) throw new NotFoundError(`No file with id ${JSON.stringify(id.slice(0, 64))}`);
  ctx.res.statusCode = 204;
  ctx.res.end();
}

/** `GET /files` → `{"files":[record...]}`, oldest first. */
export async function handleListFiles(ctx: RequestContext): Promise<void> {
  sendJson(ctx.res, 200, { files: await ctx.store.list() });
}
