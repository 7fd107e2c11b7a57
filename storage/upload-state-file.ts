import { createHash } from 'node:crypto';
import { constants } from 'node:fs';
import { open } from 'node:fs/promises';
import { isStringMap } from './record.js';
import type { NewFileMeta } from './store.js';

/**
 * The state of a resumable upload on disk, `.<id>.upload-state`, made so that an update is one
 * 4 KiB pwrite and one fdatasync of a file that never changes size (no journal commit, no
 * rename, no directory sync):
 *
 *   0 ..  4095  slot 0  `<check> <progress JSON>\n`, zero-padded   (written when seq is even)
 *   4096 .. 8191  slot 1  the same                                  (written when seq is odd)
 *   8192 ..     header  `<check> <header JSON>\n`                   (written once, at creation)
 *
 * `<check>` is the first 16 hex digits of the sha256 of the JSON that follows it. An update
 * writes the slot that does not hold the newest state, so a crash that tears the write (a
 * partial page on power loss) leaves the newest durable state intact in the other slot: the
 * reader takes the valid slot with the higher `seq`. A file whose header or both slots do not
 * check out was never finished being created (createUpload had not answered).
 */
const SLOT_BYTES = 4096;
const HEADER_AT = 2 * SLOT_BYTES;
const CHECK_DIGITS = 16;
/** More than any header sluice writes (metadata is bounded by the request's header size); anything larger is not ours. */
const MAX_STATE_FILE_BYTES = HEADER_AT + 1024 * 1024;
/** Opened for an update: never through a symlink, never created. */
const UPDATE_FLAGS = constants.O_WRONLY | constants.O_NOFOLLOW;

/** What never changes after creation. */
export interface UploadHeader {
  readonly id: string;
  readonly meta: NewFileMeta;
  readonly metadata: Readonly<Record<string, string>>;
  readonly partial: boolean;
  readonly completesOnLast: boolean;
  /** ISO 8601. */
  readonly created: string;
  /** A final upload's partial uploads, in order; null otherwise. */
  readonly parts: readonly string[] | null;
  /** A final upload: the partial upload whose file holds its bytes (taken over, not copied); null: its own file. */
  readonly dataFrom: string | null;
}

/** What an update changes. */
export interface UploadProgress {
  /** Which update this is: 0 at creation, +1 each time. */
  readonly seq: number;
  /** Bytes durable in the upload's file. Never goes backwards. */
  readonly offset: number;
  readonly length: number | null;
  /** ISO 8601; null: never. */
  readonly expires: string | null;
  readonly complete: boolean;
  /** A complete non-partial upload: the sha256 of its bytes, for the record (completion finishes from here after a crash). */
  readonly sha256: string | null;
  /** A complete non-partial upload: when it completed (the record's `created`). */
  readonly completed: string | null;
}

export interface StoredUpload {
  readonly header: UploadHeader;
  readonly progress: UploadProgress;
}

/** Creates the file at `path` (never an existing one) with `stored` in slot 0, synced with fsync on. */
export async function createStateFile(path: string, stored: StoredUpload, fsync: boolean): Promise<void> {
  const header = checked(JSON.stringify(stored.header));
  const file = Buffer.alloc(HEADER_AT + Buffer.byteLength(header));
  encodeSlot(stored.progress).copy(file, 0);
  file.write(header, HEADER_AT);
  const handle = await open(path, 'wx', 0o644);
  try {
    await handle.write(file, 0, file.length, 0);
    if (fsync) await handle.datasync();
  } finally {
    await handle.close();
  }
}

/** Writes `progress` into its slot (by its seq) and syncs it with fsync on. */
export async function writeProgress(path: string, progress: UploadProgress, fsync: boolean): Promise<void> {
  const slot = encodeSlot(progress);
  const handle = await open(path, UPDATE_FLAGS);
  try {
    await handle.write(slot, 0, SLOT_BYTES, (progress.seq % 2) * SLOT_BYTES);
    if (fsync) await handle.datasync();
  } finally {
    await handle.close();
  }
}

/** The file's state; null when there is no such file; 'unfinished' when its creation never completed. */
export async function readStateFile(path: string, id: string): Promise<StoredUpload | null | 'unfinished'> {
  let file: Buffer;
  try {
    const handle = await open(path, constants.O_RDONLY | constants.O_NOFOLLOW);
    try {
      const { size } = await handle.stat();
      if (size > MAX_STATE_FILE_BYTES) return 'unfinished';
      file = await handle.readFile();
    } finally {
      await handle.close();
    }
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
  const header = parseHeader(unchecked(file.subarray(HEADER_AT)), id);
  if (header === null) return 'unfinished';
  const slots = [0, 1]
    .map((i) => parseProgress(unchecked(file.subarray(i * SLOT_BYTES, (i + 1) * SLOT_BYTES))))
    .filter((p, i): p is UploadProgress => p !== null && p.seq % 2 === i);
  if (slots.length === 0) return 'unfinished';
  const progress = slots.reduce((a, b) => (b.seq > a.seq ? b : a));
  return { header, progress };
}

function encodeSlot(progress: UploadProgress): Buffer {
  const text = checked(JSON.stringify(progress));
  const slot = Buffer.alloc(SLOT_BYTES);
  if (slot.write(text) < Buffer.byteLength(text)) throw new Error('upload progress does not fit in its slot');
  return slot;
}

function checked(json: string): string {
  return `${check(json)} ${json}\n`;
}

function check(json: string): string {
  return createHash('sha256').update(json).digest('hex').slice(0, CHECK_DIGITS);
}

/** The JSON of `<check> <json>\n` when its check matches, else null (torn, never written, not ours). */
function unchecked(bytes: Buffer): string | null {
  const end = bytes.indexOf(0x0a);
  if (end < CHECK_DIGITS + 1 || bytes[CHECK_DIGITS] !== 0x20) return null;
  const json = bytes.toString('utf8', CHECK_DIGITS + 1, end);
  return bytes.toString('latin1', 0, CHECK_DIGITS) === check(json) ? json : null;
}

function parseJson(json: string | null): Record<string, unknown> | null {
  if (json === null) return null;
  try {
    const value: unknown = JSON.parse(json);
    return typeof value === 'object' && value !== null ? (value as Record<string, unknown>) : null;
  } catch {
    return null;
  }
}

const isCount = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
const isNullableString = (v: unknown): v is string | null => v === null || typeof v === 'string';

function parseHeader(json: string | null, id: string): UploadHeader | null {
  const h = parseJson(json);
  if (h === null || h.id !== id) return null;
  const meta = h.meta as Record<string, unknown> | null;
  const ok =
    typeof meta === 'object' &&
    meta !== null &&
    isNullableString(meta.field) &&
    isNullableString(meta.filename) &&
    typeof meta.contentType === 'string' &&
    isStringMap(h.metadata) &&
    typeof h.partial === 'boolean' &&
    typeof h.completesOnLast === 'boolean' &&
    typeof h.created === 'string' &&
    (h.parts === null || (Array.isArray(h.parts) && h.parts.every((p) => typeof p === 'string'))) &&
    isNullableString(h.dataFrom);
  if (!ok) return null;
  return {
    id,
    meta: { field: meta.field as string | null, filename: meta.filename as string | null, contentType: meta.contentType as string },
    metadata: h.metadata as Record<string, string>,
    partial: h.partial as boolean,
    completesOnLast: h.completesOnLast as boolean,
    created: h.created as string,
    parts: h.parts as string[] | null,
    dataFrom: h.dataFrom as string | null,
  };
}

function parseProgress(json: string | null): UploadProgress | null {
  const p = parseJson(json);
  if (p === null) return null;
  const ok =
    isCount(p.seq) &&
    isCount(p.offset) &&
    (p.length === null || isCount(p.length)) &&
    isNullableString(p.expires) &&
    typeof p.complete === 'boolean' &&
    isNullableString(p.sha256) &&
    isNullableString(p.completed);
  if (!ok) return null;
  return {
    seq: p.seq as number,
    offset: p.offset as number,
    length: p.length as number | null,
    expires: p.expires as string | null,
    complete: p.complete as boolean,
    sha256: p.sha256 as string | null,
    completed: p.completed as string | null,
  };
}
