import type { Hash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { truncate } from 'node:fs/promises';
import { finished } from 'node:stream/promises';
import { pumpBody } from './body-pump.js';
import type { DirectorySync } from './directory-sync.js';
import { newFileId } from './file-id.js';
import type { AppendTarget, LocalFileWriter } from './local-file-writer.js';
import { uploadDataPath, uploadStatePath } from './local-names.js';
import { finishCompletion } from './upload-completion.js';
import { createStateFile, type StoredUpload } from './upload-state-file.js';
import { fileUploadState } from './upload-states.js';
import type { UploadEntry } from './upload-turns.js';
import type { AppendResult, NewUpload } from './uploads.js';

/** Reads of the parts after the first. */
const PART_READ_BYTES = 1024 * 1024;

/** What a concatenation needs of the upload store. */
export interface ConcatenationContext {
  readonly dir: string;
  readonly fsync: boolean;
  readonly directorySync: DirectorySync | null;
  createAppendWriter(target: AppendTarget): LocalFileWriter;
  /** The sha256 of exactly the upload's first `length` bytes (read back if not in memory). */
  hashUpTo(entry: UploadEntry, length: number): Promise<Hash>;
  /** The part is gone: nothing of it stays in memory. */
  forget(entry: UploadEntry): void;
}

/**
 * tus concatenation of complete partial uploads (their turns held by the caller), in order.
 * The final upload takes over the first part's file (no copy, and no re-hash while its sha256 is
 * in memory) and the other parts are appended to it through the writer, so their bytes are read,
 * hashed and written once: the cost is that of storing every part but the first again.
 * Until the final upload's completing state is durable the first part is intact (its state says
 * where its bytes end: a failure, or the start-up recovery after a crash, cuts the rest off);
 * from then on the final upload is finished even across a crash (upload-recovery), and the
 * parts are removed once its file is committed.
 */
export async function concatenateParts(ctx: ConcatenationContext, entries: readonly UploadEntry[], parts: readonly StoredUpload[], init: Omit<NewUpload, 'length' | 'partial'>): Promise<AppendResult> {
  const first = parts[0] as StoredUpload;
  const firstEntry = entries.find((e) => e.id === first.header.id) as UploadEntry;
  const firstPath = uploadDataPath(ctx.dir, first.header.id);
  const firstLength = first.progress.offset;
  // A copy: the part keeps its own hash should the concatenation fail.
  const hash = (await ctx.hashUpTo(firstEntry, firstLength)).copy();
  const id = newFileId();
  const writer = ctx.createAppendWriter({ id, path: firstPath, offset: firstLength, hash, checkpoint: null });
  const writerDone = finished(writer).then(
    () => null,
    (err: unknown) => err ?? new Error('file writer failed'),
  );
  let taken = false;
  try {
    let total = firstLength;
    for (const part of parts.slice(1)) {
      const length = part.progress.offset;
      if (length === 0) continue;
      const source = createReadStream(uploadDataPath(ctx.dir, part.header.id), { start: 0, end: length - 1, highWaterMark: PART_READ_BYTES });
      const { end, bytes } = await pumpBody(source, writer, { limit: length, signals: [], digest: null });
      source.destroy();
      if (end.kind === 'cut' || end.kind === 'writer') throw end.error;
      if (bytes !== length) throw new Error(`partial upload ${part.header.id} has ${bytes} of its ${length} bytes`);
      total += length;
    }
    writer.end();
    const writeError = await writerDone;
    if (writeError !== null) throw writeError;
    const now = new Date().toISOString();
    const stored: StoredUpload = {
      header: {
        id,
        meta: init.meta,
        metadata: init.metadata,
        partial: false,
        completesOnLast: false,
        created: now,
        parts: parts.map((p) => p.header.id),
        dataFrom: first.header.id,
      },
      progress: { seq: 0, offset: total, length: total, expires: null, complete: true, sha256: hash.digest('hex'), completed: now },
    };
    // Durable (name included) before the first part's file is renamed: from here the start-up
    // recovery finishes this final upload instead of cutting the part back.
    await createStateFile(uploadStatePath(ctx.dir, id), stored, ctx.fsync);
    await ctx.directorySync?.sync();
    taken = true;
    const record = await finishCompletion(ctx.dir, stored, ctx.fsync, ctx.directorySync);
    for (const entry of entries) ctx.forget(entry);
    return { upload: fileUploadState(record), file: record };
  } catch (err) {
    if (!writer.destroyed && !writer.writableFinished) writer.destroy();
    await writerDone;
    if (!taken) await truncate(firstPath, firstLength).catch(() => {});
    throw err;
  }
}
