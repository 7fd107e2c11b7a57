import type { IncomingMessage } from 'node:http';
import { rawFilename } from '../handlers/upload-raw.js';
import { mediaTypeEssence } from '../multipart/content-type.js';
import type { ChecksumAlgorithm } from '../storage/uploads.js';
import type { Dialect } from './dialect.js';
import { contentLength, field, hasBody, optionalChecksum, optionalLength, parseConcat, requireOffset, requireUploadComplete } from './fields.js';
import { fileMetadata, parseUploadMetadata, saneMediaType, type UploadMetadata } from './metadata.js';
import { ProtocolError } from './protocol-errors.js';

/**
 * One request of either protocol as the one small operation it asks for. Both dialects parse into
 * these; execute.ts runs them against the store once; render.ts answers in the request's dialect.
 */
export type Operation =
  | { readonly kind: 'options' }
  | CreateOperation
  | { readonly kind: 'concatenate'; readonly parts: readonly string[]; readonly file: UploadMetadata; readonly concatHeader: string }
  | { readonly kind: 'offset'; readonly id: string }
  | AppendOperation
  | { readonly kind: 'terminate'; readonly id: string };

export interface Checksum {
  readonly algorithm: ChecksumAlgorithm;
  readonly digest: Buffer;
}

/** Upload creation (tus creation / creation-with-upload / creation-defer-length, draft "Upload Creation"). */
export interface CreateOperation {
  readonly kind: 'create';
  /** Null while unknown (tus `Upload-Defer-Length: 1`, or a draft creation without a length indicator). */
  readonly length: number | null;
  readonly file: UploadMetadata;
  /** tus concatenation `Upload-Concat: partial`. */
  readonly partial: boolean;
  /** The draft: only an append with `Upload-Complete: ?1` completes the upload. */
  readonly completesOnLast: boolean;
  /** The request has content to append at offset 0. */
  readonly body: boolean;
  /** The draft's `Upload-Complete: ?1`: the content is the whole representation. */
  readonly last: boolean;
  readonly checksum: Checksum | null;
}

/** Upload append (tus core PATCH, draft "Upload Append"); with `last` and no body it only completes. */
export interface AppendOperation {
  readonly kind: 'append';
  readonly id: string;
  /** The client's `Upload-Offset`. */
  readonly offset: number;
  /** A length sent with this append (tus deferred length; the draft's `Upload-Length` or `Upload-Complete: ?1` + Content-Length). */
  readonly length: number | null;
  readonly last: boolean;
  readonly body: boolean;
  readonly checksum: Checksum | null;
}

/** The media types of an append body: tus core "PATCH", draft "Media Type application/partial-upload". */
const TUS_BODY_TYPE = 'application/offset+octet-stream';
const DRAFT_BODY_TYPE = 'application/partial-upload';

/** Where the request was sent: `/uploads` (creation, discovery) or `/uploads/<id>`. */
export type Target = { readonly kind: 'collection' } | { readonly kind: 'resource'; readonly id: string };

export function parseOperation(req: IncomingMessage, url: URL, method: string, dialect: Dialect, target: Target): Operation {
  if (method === 'OPTIONS') return { kind: 'options' };
  if (target.kind === 'collection') {
    // The draft's creation works with any method that carries content (POST /uploads; PUT /upload).
    if (method !== 'POST' && method !== 'PUT') throw new Error(`unrouted ${method} on /uploads`);
    return dialect.kind === 'tus' ? parseTusCreation(req) : parseDraftCreation(req, url, dialect.interop);
  }
  const { id } = target;
  switch (method) {
    case 'HEAD':
    case 'GET':
      // draft-05 "Offset Retrieval": "The request MUST NOT include an Upload-Offset, Upload-Complete,
      // or Upload-Length header field. The server MUST reject requests with either of these fields".
      if (dialect.kind === 'ietf' && dialect.interop === 6) refuseFields(req, ['upload-offset', 'upload-complete', 'upload-length'], 'an offset retrieval');
      return { kind: 'offset', id };
    case 'DELETE':
      // draft-05 "Upload Cancellation": "The request MUST NOT include an Upload-Offset or Upload-Complete header field".
      if (dialect.kind === 'ietf' && dialect.interop === 6) refuseFields(req, ['upload-offset', 'upload-complete'], 'a cancellation');
      return { kind: 'terminate', id };
    case 'PATCH':
      return dialect.kind === 'tus' ? parseTusAppend(req, id) : parseDraftAppend(req, id);
    default:
      throw new Error(`unrouted ${method} on /uploads/:id`);
  }
}

function parseTusCreation(req: IncomingMessage): Operation {
  const metadataHeader = field(req, 'upload-metadata');
  const file = fileMetadata(metadataHeader === undefined ? new Map() : parseUploadMetadata(metadataHeader));
  const concatHeader = field(req, 'upload-concat');
  const concat = concatHeader === undefined ? null : parseConcat(concatHeader);
  const body = hasBody(req);
  if (concat?.kind === 'final') {
    // tus concatenation: "The Client MUST NOT include the Upload-Length header in the final upload
    // creation", and a final upload takes no bytes of its own (PATCH against it is 403).
    if (field(req, 'upload-length') !== undefined) throw new ProtocolError('UPLOAD_LENGTH_INVALID', 'A final upload (Upload-Concat: final) takes no Upload-Length: its length is the sum of its parts');
    if (body) throw new ProtocolError('FINAL_UPLOAD_IMMUTABLE', 'A final upload (Upload-Concat: final) takes no bytes of its own');
    return { kind: 'concatenate', parts: concat.ids, file, concatHeader: concatHeader as string };
  }
  // tus creation "POST": "The request MUST include one of the following headers: a) Upload-Length
  // ... b) Upload-Defer-Length: 1"; "any other value than 1 the server should return a 400".
  const length = optionalLength(req, 'tus');
  const defer = field(req, 'upload-defer-length');
  if (defer !== undefined && defer !== '1') throw new ProtocolError('UPLOAD_LENGTH_INVALID', 'Upload-Defer-Length must be 1');
  if (length !== null && defer !== undefined) throw new ProtocolError('UPLOAD_LENGTH_INVALID', 'Send Upload-Length or Upload-Defer-Length: 1, not both');
  if (length === null && defer === undefined) throw new ProtocolError('UPLOAD_LENGTH_INVALID', 'Upload-Length (or Upload-Defer-Length: 1) is required');
  // creation-with-upload: "The Client MUST include the Content-Type: application/offset+octet-stream header".
  if (body) requireBodyType(req, TUS_BODY_TYPE, true);
  return {
    kind: 'create',
    length,
    file,
    partial: concat?.kind === 'partial',
    completesOnLast: false,
    body,
    last: false,
    checksum: body ? optionalChecksum(req) : null,
  };
}

/**
 * Draft "Upload Creation" on `/uploads` (and, through parseDraftUpgrade, on `POST /upload`). The
 * file's name and type come from `Upload-Metadata` where a client sends it (tus-js-client does in
 * draft mode too), else from `Content-Disposition` and `Content-Type` (draft: "The Content-Type
 * header field ... indicates the media type of the representation"; "Content-Disposition ... can
 * be used to transmit a filename").
 */
export function parseDraftCreation(req: IncomingMessage, url: URL, interop: number): CreateOperation {
  // draft-05 "Upload Creation": "The request MUST NOT include the Upload-Offset header field".
  if (interop === 6) refuseFields(req, ['upload-offset'], 'an upload creation');
  const last = requireUploadComplete(req);
  const length = draftLength(req, 0, last);
  const metadataHeader = field(req, 'upload-metadata');
  const pairs = metadataHeader === undefined ? new Map<string, string>() : parseUploadMetadata(metadataHeader);
  const type = req.headers['content-type'];
  // A body labelled as a protocol's patch document says nothing of the representation's type.
  const representationType = type === undefined || [DRAFT_BODY_TYPE, TUS_BODY_TYPE].includes(mediaTypeEssence(type)) ? null : saneMediaType(type);
  const file = fileMetadata(pairs, { filename: rawFilename(url, req.headers['content-disposition']), contentType: representationType });
  return { kind: 'create', length, file, partial: false, completesOnLast: true, body: hasBody(req), last, checksum: null };
}

function parseTusAppend(req: IncomingMessage, id: string): AppendOperation {
  // tus core "PATCH": every PATCH, even an empty one, carries the media type.
  requireBodyType(req, TUS_BODY_TYPE, false);
  const offset = requireOffset(req, 'tus');
  return { kind: 'append', id, offset, length: optionalLength(req, 'tus'), last: false, body: hasBody(req), checksum: optionalChecksum(req) };
}

function parseDraftAppend(req: IncomingMessage, id: string): AppendOperation {
  // draft "Upload Append": "MUST use the PATCH method with the application/partial-upload media type".
  requireBodyType(req, DRAFT_BODY_TYPE, true);
  const offset = requireOffset(req, 'sf');
  const last = requireUploadComplete(req);
  return { kind: 'append', id, offset, length: draftLength(req, offset, last), last, body: hasBody(req), checksum: null };
}

/**
 * The draft's two length indicators ("Length"): `Upload-Length`, and `Upload-Complete: ?1` with a
 * Content-Length (offset + Content-Length). "If indicators (1) and (2) are both present in the
 * same request, their indicated lengths MUST match" (problem type inconsistent-upload-length).
 */
function draftLength(req: IncomingMessage, offset: number, last: boolean): number | null {
  const declared = optionalLength(req, 'sf');
  const bodyLength = contentLength(req);
  const implied = last && bodyLength !== null ? offset + bodyLength : null;
  if (declared !== null && implied !== null && declared !== implied) {
    throw new ProtocolError('UPLOAD_LENGTH_MISMATCH', `Upload-Length ${declared} does not match the length this request completes the upload at (${implied})`);
  }
  return declared ?? implied;
}

/**
 * The body must be of the protocol's media type: 415 otherwise (tus core "PATCH"; RFC 5789 2.2).
 * `untypedIfEmpty`: a request without content may leave Content-Type out (a draft append that only
 * completes the upload; a tus creation without data).
 */
function requireBodyType(req: IncomingMessage, expected: string, untypedIfEmpty: boolean): void {
  const type = req.headers['content-type'];
  if (untypedIfEmpty && type === undefined && !hasBody(req)) return;
  if (type === undefined || mediaTypeEssence(type) !== expected) {
    throw new ProtocolError('PATCH_MEDIA_TYPE_UNSUPPORTED', `The body must be sent as Content-Type: ${expected}`);
  }
}

function refuseFields(req: IncomingMessage, names: readonly string[], what: string): void {
  const present = names.filter((n) => req.headers[n] !== undefined);
  if (present.length > 0) throw new ProtocolError('UPLOAD_FIELD_NOT_ALLOWED', `${present.join(', ')} must not be sent with ${what}`);
}
