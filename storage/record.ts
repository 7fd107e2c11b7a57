import { InternalError } from '../lib/errors.js';
import type { FileRecord, NewFileMeta } from './store.js';

/** The record of a file committed now: what the client said of it, its size and hash, the time. */
export function newRecord(id: string, meta: NewFileMeta, size: number, sha256: string): FileRecord {
  return { id, field: meta.field, filename: meta.filename, contentType: meta.contentType, size, sha256, created: new Date().toISOString() };
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
    typeof r.created === 'string';
  if (!ok) throw new InternalError(`Record of ${id} is malformed`);
  return {
    id,
    field: r.field as string | null,
    filename: r.filename as string | null,
    contentType: r.contentType as string,
    size: r.size as number,
    sha256: r.sha256 as string,
    created: r.created as string,
  };
}
