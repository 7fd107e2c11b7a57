import { open, unlink } from 'node:fs/promises';
import { join } from 'node:path';

/**
 * Every name the local store uses in DATA_DIR, in one place (the start-up sweep in
 * `local-store.ts` and the upload recovery in `local-uploads.ts` go by these):
 *
 * | name                          | what                                                        | at start-up            |
 * |-------------------------------|-------------------------------------------------------------|------------------------|
 * | `<id>`, `<id>.json`           | a file and its record (a completed upload too)              | kept (bytes without a record: removed) |
 * | `.<id>.partial`               | a file being written by `POST /upload`, `POST /fetch`        | removed                |
 * | `.<id>.json.partial`          | a record being written                                      | removed                |
 * | `.<id>.upload`                | the bytes of a pending resumable upload                     | cut back to its state's offset; removed without a state |
 * | `.<id>.upload-state`          | its state (offsets, length, metadata; see upload-state-file) | repaired or finished (local-uploads) |
 * | `.sluice/<kind>/<id>.json`    | a document (`DocumentStore`: fetch jobs)                    | kept; `.*.partial` in it removed |
 *
 * Ids are 22 base64url characters, so no name of one kind can be a name of another.
 */
export const PARTIAL_SUFFIX = '.partial';
export const UPLOAD_SUFFIX = '.upload';
export const UPLOAD_STATE_SUFFIX = '.upload-state';
export const DOCUMENTS_DIR = '.sluice';

export function partialPath(dir: string, id: string): string {
  return join(dir, `.${id}${PARTIAL_SUFFIX}`);
}

export function recordPath(dir: string, id: string): string {
  return join(dir, `${id}.json`);
}

export function partialRecordPath(dir: string, id: string): string {
  return join(dir, `.${id}.json${PARTIAL_SUFFIX}`);
}

export function uploadDataPath(dir: string, id: string): string {
  return join(dir, `.${id}${UPLOAD_SUFFIX}`);
}

export function uploadStatePath(dir: string, id: string): string {
  return join(dir, `.${id}${UPLOAD_STATE_SUFFIX}`);
}

/** The id in `.<id><suffix>`, or null when `name` is not of that shape. */
export function idOfDotName(name: string, suffix: string): string | null {
  return name.startsWith('.') && name.endsWith(suffix) ? name.slice(1, -suffix.length) : null;
}

export async function unlinkIfPresent(path: string): Promise<boolean> {
  try {
    await unlink(path);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw err;
  }
}

/** `text` in a new file (never an existing one), synced to disk with fsync on. */
export async function writeNewFile(path: string, text: string, fsync: boolean): Promise<void> {
  const handle = await open(path, 'wx', 0o644);
  try {
    await handle.writeFile(text);
    if (fsync) await handle.datasync();
  } finally {
    await handle.close();
  }
}
