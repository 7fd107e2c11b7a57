import { NotFoundError } from '../lib/errors.js';
import type { FileRecord } from './store.js';
import type { StoredUpload } from './upload-state-file.js';
import type { UploadState } from './uploads.js';

/** What the contract says of an upload, from its stored state. */
export function toUploadState(stored: StoredUpload): UploadState {
  const { header, progress } = stored;
  return {
    id: header.id,
    offset: progress.offset,
    length: progress.length,
    meta: header.meta,
    metadata: header.metadata,
    partial: header.partial,
    created: header.created,
    expires: progress.complete && !header.partial ? null : progress.expires,
    complete: progress.complete,
    completesOnLast: header.completesOnLast,
    parts: header.parts,
  };
}

/** A completed non-partial upload, from its file's record. */
export function fileUploadState(record: FileRecord): UploadState {
  return {
    id: record.id,
    offset: record.size,
    length: record.size,
    meta: { field: record.field, filename: record.filename, contentType: record.contentType },
    metadata: record.metadata ?? {},
    partial: false,
    created: record.created,
    expires: null,
    complete: true,
    // Not kept in the record: how it completed no longer matters.
    completesOnLast: false,
    parts: record.parts ?? null,
  };
}

/** Past its expiry: an incomplete upload, or a complete partial one no final upload took. */
export function isExpired(stored: StoredUpload, now: Date): boolean {
  const { expires, complete } = stored.progress;
  if (complete && !stored.header.partial) return false;
  return expires !== null && Date.parse(expires) <= now.getTime();
}

export function uploadNotFound(id: string): NotFoundError {
  return new NotFoundError(`No upload with id ${JSON.stringify(id.slice(0, 64))}`, 'UPLOAD_NOT_FOUND');
}
