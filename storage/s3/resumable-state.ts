import { InternalError } from '../../lib/errors.js';
import { isStringMap } from '../record.js';
import type { NewFileMeta } from '../store.js';

/**
 * The state object of a resumable upload on S3 (`<p>resumable/<id>.json`): what creation knew,
 * written once and never changed, so every instance may keep a copy. What changes (offset,
 * a deferred length, completion) is read from S3 itself: parts, tail pieces and marker keys.
 */
export interface UploadDoc {
  readonly v: 1;
  readonly id: string;
  /** The S3 multipart upload that collects the bytes. */
  readonly uploadId: string;
  /** Its key: the file's data key, or `resumable/<id>/data` for a partial upload. */
  readonly dataKey: string;
  /** Part size when created: part n holds bytes [(n-1)·partBytes, n·partBytes). Every instance uses this one. */
  readonly partBytes: number;
  readonly length: number | null;
  readonly meta: NewFileMeta;
  readonly metadata: Readonly<Record<string, string>>;
  readonly partial: boolean;
  readonly completesOnLast: boolean;
  readonly created: string;
}

/** A state object is a few hundred bytes plus the client's metadata (bounded by the protocol layer). */
export const MAX_DOC_BYTES = 256 * 1024;

export function serializeDoc(doc: UploadDoc): Buffer {
  return Buffer.from(`${JSON.stringify(doc)}\n`, 'utf8');
}

/** Reads a state object back, checking its shape: a damaged one is our failure, not the client's. */
export function parseDoc(text: string, id: string): UploadDoc {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new InternalError(`Upload state of ${id} is not JSON`, { cause: err });
  }
  const d = value as Record<string, unknown>;
  const meta = d.meta as Record<string, unknown> | undefined;
  const ok =
    typeof value === 'object' &&
    value !== null &&
    d.v === 1 &&
    d.id === id &&
    typeof d.uploadId === 'string' &&
    typeof d.dataKey === 'string' &&
    Number.isSafeInteger(d.partBytes) &&
    (d.partBytes as number) > 0 &&
    (d.length === null || (Number.isSafeInteger(d.length) && (d.length as number) >= 0)) &&
    typeof meta === 'object' &&
    meta !== null &&
    (meta.field === null || typeof meta.field === 'string') &&
    (meta.filename === null || typeof meta.filename === 'string') &&
    typeof meta.contentType === 'string' &&
    isStringMap(d.metadata) &&
    typeof d.partial === 'boolean' &&
    typeof d.completesOnLast === 'boolean' &&
    typeof d.created === 'string';
  if (!ok) throw new InternalError(`Upload state of ${id} is malformed`);
  return value as UploadDoc;
}
