import { InternalError } from '../lib/errors.js';
import type { FileRecord, NewFileMeta } from './store.js';

/** What a resumable upload adds to its file's record (absent on files of other routes). */
export interface UploadExtras {
  /** The client's other `Upload-Metadata` pairs. Present (maybe empty) exactly on files made by resumable uploads. */
  readonly metadata: Readonly<Record<string, string>>;
  /** A final upload's partial uploads, in order (tus concatenation); absent otherwise. */
  readonly parts?: readonly string[];
}

/** The record of a file committed now (or at `created`): what the client said of it, its size and hash. */
export function newRecord(id: string, meta: NewFileMeta, size: number, sha256: string, extras?: UploadExtras, created = new Date().toISOString()): FileRecord {
  const record: FileRecord = { id, field: meta.field, filename: meta.filename, contentType: meta.contentType, size, sha256, created };
  if (extras === undefined) return record;
  return { ...record, metadata: extras.metadata, ...(extras.parts === undefined ? {} : { parts: extras.parts }) };
}

/** A record as stored (sidecar file or object): one line of JSON. */
export function serializeRecord(record: FileRecord): string {
  return `${JSON.stringify(record)}\n`;
}

/** Reads a stored record back, checking its shape: a damaged sidecar is our failure, not the client's. */
export function parseRecord(text: string, id: string): FileRecord {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new InternalError(`Record of ${id} is not JSON`, { cause: err });
  }
  const r = value as Record<string, unknown>;
  const ok =
    typeof value === 'object' &&
    value !== null &&
    r.id === id &&
    (r.field === null || typeof r.field === 'string') &&
    (r.filename === null || typeof r.filename === 'string') &&
    typeof r.contentType === 'string' &&
    typeof r.size === 'number' &&
    typeof r.sha256 === 'string' &&
    typeof r.created === 'string' &&
    // Both optional: records written before resumable uploads have neither.
    (r.metadata === undefined || isStringMap(r.metadata)) &&
    (r.parts === undefined || (Array.isArray(r.parts) && r.parts.every((p) => typeof p === 'string')));
  if (!ok) throw new InternalError(`Record of ${id} is malformed`);
  const record: FileRecord = {
    id,
    field: r.field as string | null,
    filename: r.filename as string | null,
    contentType: r.contentType as string,
    size: r.size as number,
    sha256: r.sha256 as string,
    created: r.created as string,
  };
  if (r.metadata === undefined) return record;
  const extras: UploadExtras = { metadata: r.metadata as Record<string, string>, ...(r.parts === undefined ? {} : { parts: r.parts as string[] }) };
  return { ...record, ...extras };
}

/** A plain object whose values are all strings (decoded `Upload-Metadata`). */
export function isStringMap(value: unknown): value is Record<string, string> {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && Object.values(value).every((v) => typeof v === 'string');
}
