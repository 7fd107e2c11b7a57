import { stat, truncate } from 'node:fs/promises';
import type { DirectorySync } from './directory-sync.js';
import { isFileId } from './file-id.js';
import { idOfDotName, unlinkIfPresent, UPLOAD_STATE_SUFFIX, UPLOAD_SUFFIX, uploadDataPath, uploadStatePath } from './local-names.js';
import { finishCompletion } from './upload-completion.js';
import { readStateFile, writeProgress, type StoredUpload } from './upload-state-file.js';

/** What the recovery did, one line each (the store's open() returns them for the log and the tests). */
export interface UploadRecovery {
  /** Uploads that exist after it. */
  readonly pending: string[];
  readonly actions: string[];
}

/**
 * Start-up, before the sweep of files: puts every upload back in a state a client can continue
 * from, whatever step a crash (kill -9, power loss) stopped:
 *
 * | found                                              | cause                                   | done                                   |
 * |----------------------------------------------------|-----------------------------------------|----------------------------------------|
 * | state whose header or both slots do not check out  | crash inside createUpload               | state and bytes removed (never answered) |
 * | bytes without a state                               | crash inside createUpload, or after a termination/expiry removed the state | bytes removed |
 * | state complete, not partial                         | crash during completion (or a final upload's concatenation) after its state said complete | completion finished: bytes renamed, record written, parts removed, state removed |
 * | state incomplete, bytes longer than its offset      | crash mid-append (bytes past the last checkpoint), O_DIRECT padding, a discarded checksummed body | bytes cut back to the offset |
 * | state incomplete, bytes shorter than its offset     | only without fsync (power loss lost written bytes) | offset set back to the bytes there (logged) |
 * | state without bytes                                 | nothing sluice does (bytes removed by hand) | state removed (logged)            |
 *
 * Completions run first: a final upload's bytes are its first part's file, which the part's own
 * state would otherwise cut back.
 */
export async function recoverUploads(dir: string, names: readonly string[], fsync: boolean, directorySync: DirectorySync | null): Promise<UploadRecovery> {
  const actions: string[] = [];
  const found = new Map<string, StoredUpload>();
  for (const name of names) {
    const id = idOfDotName(name, UPLOAD_STATE_SUFFIX);
    if (id === null || !isFileId(id)) continue;
    const stored = await readStateFile(uploadStatePath(dir, id), id);
    if (stored === null) continue;
    if (stored === 'unfinished') {
      await unlinkIfPresent(uploadStatePath(dir, id));
      await unlinkIfPresent(uploadDataPath(dir, id));
      actions.push(`${id}: state never finished being created; removed`);
      continue;
    }
    found.set(id, stored);
  }
  /** Uploads whose files a completion that could not be finished may still need: left as they are. */
  const untouched = new Set<string>();
  for (const [id, stored] of found) {
    if (!stored.progress.complete || stored.header.partial) continue;
    found.delete(id);
    // Its parts are gone with it, or (if it fails) left for the next attempt, never cut back.
    for (const part of stored.header.parts ?? []) found.delete(part);
    try {
      await finishCompletion(dir, stored, fsync, directorySync);
      actions.push(`${id}: completion finished`);
    } catch (err) {
      for (const kept of [id, ...(stored.header.parts ?? [])]) untouched.add(kept);
      actions.push(`${id}: completion could not be finished (${(err as Error).message}); left as it is`);
    }
  }
  const pending: string[] = [];
  for (const [id, stored] of found) {
    const dataPath = uploadDataPath(dir, id);
    const size = await stat(dataPath).then(
      (s) => s.size,
      (err: NodeJS.ErrnoException) => {
        if (err.code === 'ENOENT') return null;
        throw err;
      },
    );
    if (size === null) {
      await unlinkIfPresent(uploadStatePath(dir, id));
      actions.push(`${id}: state without bytes; removed`);
      continue;
    }
    const { offset } = stored.progress;
    if (size > offset) {
      await truncate(dataPath, offset);
      actions.push(`${id}: bytes cut back from ${size} to the durable offset ${offset}`);
    } else if (size < offset) {
      const progress = { ...stored.progress, seq: stored.progress.seq + 1, offset: size, complete: false };
      await writeProgress(uploadStatePath(dir, id), progress, fsync);
      actions.push(`${id}: only ${size} of ${offset} bytes survived (fsync off?); offset set back`);
    }
    pending.push(id);
  }
  const kept = new Set([...pending, ...untouched]);
  for (const name of names) {
    const id = idOfDotName(name, UPLOAD_SUFFIX);
    if (id === null || !isFileId(id) || kept.has(id)) continue;
    if (await unlinkIfPresent(uploadDataPath(dir, id))) actions.push(`${id}: bytes without a state; removed`);
  }
  if (actions.length > 0) await directorySync?.sync();
  return { pending, actions };
}
