import { access, rename } from 'node:fs/promises';
import { join } from 'node:path';
import type { DirectorySync } from './directory-sync.js';
import { partialRecordPath, recordPath, unlinkIfPresent, uploadDataPath, uploadStatePath, writeNewFile } from './local-names.js';
import { newRecord, serializeRecord } from './record.js';
import type { FileRecord } from './store.js';
import type { StoredUpload } from './upload-state-file.js';

/**
 * Turns a complete upload (its state durable with `complete`, `sha256`, `completed`) into the
 * file of its id, exactly like any other file: its bytes renamed to `<id>` (from its own
 * `.<id>.upload`, or a final upload's from its first part's), its record written (temp, sync,
 * rename), the directory synced, then its parts and its state removed. Every step checks what
 * is already done, so the start-up recovery runs it again after a crash at any point and ends
 * in the same place; the record is made from the state alone, so it is the same either way.
 */
export async function finishCompletion(dir: string, stored: StoredUpload, fsync: boolean, directorySync: DirectorySync | null): Promise<FileRecord> {
  const { header, progress } = stored;
  const id = header.id;
  if (!progress.complete || progress.sha256 === null || progress.length === null) throw new Error(`upload ${id} is not complete`);
  const extras = { metadata: header.metadata, ...(header.parts === null ? {} : { parts: header.parts }) };
  const record = newRecord(id, header.meta, progress.length, progress.sha256, extras, progress.completed ?? header.created);
  const target = join(dir, id);
  if (!(await exists(target))) await rename(uploadDataPath(dir, header.dataFrom ?? id), target);
  if (!(await exists(recordPath(dir, id)))) {
    const temp = partialRecordPath(dir, id);
    await unlinkIfPresent(temp);
    await writeNewFile(temp, serializeRecord(record), fsync);
    await rename(temp, recordPath(dir, id));
  }
  // The file's two names are durable before anything that could bring the upload back goes.
  await directorySync?.sync();
  for (const part of header.parts ?? []) {
    if (part === id) continue;
    await unlinkIfPresent(uploadStatePath(dir, part));
    await unlinkIfPresent(uploadDataPath(dir, part));
  }
  await unlinkIfPresent(uploadStatePath(dir, id));
  return record;
}

async function exists(path: string): Promise<boolean> {
  try {
    await access(path);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw err;
  }
}
