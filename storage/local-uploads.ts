import { createHash } from 'node:crypto';
import { open, truncate } from 'node:fs/promises';
import { finished } from 'node:stream/promises';
import type { Readable } from 'node:stream';
import {
  ChecksumMismatchError,
  LimitExceededError,
  MalformedRequestError,
  OffsetMismatchError,
  TooManyPendingUploadsError,
  UploadCompleteError,
  UploadExistsError,
  UploadIncompleteError,
  UploadLengthExceededError,
  UploadLengthMismatchError,
  UploadNotPartialError,
} from '../lib/errors.js';
import { pumpBody } from './body-pump.js';
import type { DirectorySync } from './directory-sync.js';
import { isFileId, newFileId } from './file-id.js';
import type { AppendTarget, LocalFileWriter } from './local-file-writer.js';
import { unlinkIfPresent, uploadDataPath, uploadStatePath } from './local-names.js';
import type { FileRecord } from './store.js';
import { concatenateParts } from './upload-concatenation.js';
import { finishCompletion } from './upload-completion.js';
import { keepHash, PrefixHash, UploadHashes } from './upload-hashing.js';
import { createStateFile, readStateFile, writeProgress, type StoredUpload, type UploadProgress } from './upload-state-file.js';
import { fileUploadState, isExpired, toUploadState, uploadNotFound } from './upload-states.js';
import { UploadTurns, type Turn, type UploadEntry } from './upload-turns.js';
import type { AppendOptions, AppendResult, CreateUploadOptions, NewUpload, UploadState, UploadStore } from './uploads.js';

/**
 * An append taken over reads on only what its body delivers at once: a dead connection stops
 * it within `idleMs`, while the bytes a cut connection had already received (socket buffers:
 * megabytes on a fast link) are kept instead of sent again. Bounded so that the takeover still
 * answers well within a second: the newer request waits for this, then for the sync.
 */
const TAKEOVER_DRAIN = { idleMs: 20, maxMs: 250, maxBytes: 16 * 1024 * 1024 };

export interface LocalUploadsOptions {
  readonly dir: string;
  readonly fsync: boolean;
  /** An upload without a new byte for this long expires. */
  readonly expiryMs: number;
  /** During a long append, the durable offset is recorded every this many bytes. */
  readonly checkpointBytes: number;
  readonly directorySync: DirectorySync | null;
  /** The store's one writer, continuing an upload's file. */
  readonly createAppendWriter: (target: AppendTarget) => LocalFileWriter;
  /** The record of a stored file. */
  readonly stat: (id: string) => Promise<FileRecord | null>;
}

/**
 * Resumable uploads in the local directory. An upload is two files (`local-names.ts`): its
 * bytes, `.<id>.upload`, exactly `offset` bytes long between appends, and its state,
 * `.<id>.upload-state` (`upload-state-file.ts`). The state on disk is the truth: an offset is
 * reported only once the bytes up to it are fdatasync'ed and the state saying so is too (fsync
 * on). In memory, per pending upload: the state as last saved, the running sha256 of its bytes
 * (so no byte is hashed twice), and whose turn it is to write (`upload-turns.ts`).
 */
export class LocalUploads implements UploadStore {
  private readonly o: LocalUploadsOptions;
  private readonly turns = new UploadTurns();
  private readonly hashes: UploadHashes;
  /** Ids of the uploads that exist and are not files (MAX_PENDING_UPLOADS, expiry). Bounded by them. */
  private readonly pending = new Set<string>();
  private closed = false;

  constructor(options: LocalUploadsOptions) {
    this.o = options;
    this.hashes = new UploadHashes((id) => uploadDataPath(options.dir, id), (id) => this.turns.busy(id));
  }

  /** Uploads whose sha256 (running or being rebuilt) is held in memory (tests: it never outgrows the pending uploads). */
  get hashesHeld(): number {
    return this.turns.countHashes();
  }

  /** Tests: where the upload's sha256 stands in this process. */
  hashStateOf(id: string): { readonly running: number | null; readonly rebuilt: number | null } {
    const entry = this.turns.peek(id);
    return { running: entry?.hash ? entry.hashOffset : null, rebuilt: entry?.rehash ? entry.rehash.position : null };
  }

  /** Start-up: `ids` are the uploads whose state survived recovery (`upload-recovery.ts`). */
  adopt(ids: Iterable<string>): void {
    for (const id of ids) this.pending.add(id);
  }

  /**
   * After a restart: rebuilds the sha256 of every pending upload that has not expired, one
   * upload at a time, in the background (the store's open() starts it and does not wait). An
   * upload whose client comes back has its hash ready the sooner, so its completion does not
   * wait for the read-back; one whose append comes first simply continues this one.
   */
  async rebuildHashes(): Promise<void> {
    for (const id of [...this.pending]) {
      if (this.closed) return;
      const entry = this.turns.entry(id);
      const stored = await this.loaded(entry).catch(() => null);
      this.turns.forgetIfIdle(entry);
      if (stored === null || entry.hash !== null || entry.rehash !== null || isExpired(stored, new Date())) continue;
      const rehash = new PrefixHash();
      entry.rehash = rehash;
      // Up to the durable offset as it is now; the chase goes on from there as it moves.
      await rehash.catchUp(uploadDataPath(this.o.dir, id), stored.progress.offset).catch(() => {});
      this.hashes.chase(entry);
    }
  }

  /** Stops the background work: rebuilt hashes being read. */
  close(): void {
    this.closed = true;
    for (const id of this.pending) this.turns.peek(id)?.rehash?.cancel();
  }

  async createUpload(init: NewUpload, options: CreateUploadOptions = {}): Promise<UploadState> {
    if (options.maxPending !== undefined && this.pending.size >= options.maxPending) throw new TooManyPendingUploadsError(options.maxPending);
    if (init.length !== null && !isCount(init.length)) throw new MalformedRequestError('BAD_UPLOAD_LENGTH', `Upload length ${init.length} is not a byte count`);
    const id = options.id ?? newFileId();
    if (!isFileId(id)) throw new MalformedRequestError('BAD_UPLOAD_ID', 'An upload id is 22 base64url characters');
    // Taken before the first await, so two creations cannot both pass the limit or take one id.
    if (this.pending.has(id)) throw new UploadExistsError(id);
    this.pending.add(id);
    const now = Date.now();
    const stored: StoredUpload = {
      header: {
        id,
        meta: init.meta,
        metadata: init.metadata,
        partial: init.partial,
        completesOnLast: init.completesOnLast ?? false,
        created: new Date(now).toISOString(),
        parts: null,
        dataFrom: null,
      },
      progress: { seq: 0, offset: 0, length: init.length, expires: this.expiresAfter(now), complete: false, sha256: null, completed: null },
    };
    const dataPath = uploadDataPath(this.o.dir, id);
    let dataCreated = false;
    try {
      if (options.id !== undefined && (await this.o.stat(id)) !== null) throw new UploadExistsError(id);
      // The bytes' file first: a state never points at nothing (a crash between leaves bytes
      // without a state, which the start-up sweep removes).
      await (await open(dataPath, 'wx', 0o644).catch(existsAs(id))).close();
      dataCreated = true;
      await createStateFile(uploadStatePath(this.o.dir, id), stored, this.o.fsync);
      await this.o.directorySync?.sync();
    } catch (err) {
      this.pending.delete(id);
      if (dataCreated) await unlinkIfPresent(dataPath).catch(() => false);
      throw err;
    }
    const entry = this.turns.entry(id);
    entry.stored = stored;
    entry.hash = createHash('sha256');
    entry.hashOffset = 0;
    // tus: an upload of length 0 is complete as soon as it exists.
    if (init.length === 0 && !stored.header.completesOnLast) {
      const turn = await this.turns.take(id, false);
      try {
        return (await this.complete(turn.entry, 0, undefined)).upload;
      } finally {
        turn.release();
      }
    }
    return toUploadState(stored);
  }

  async getUpload(id: string): Promise<UploadState | null> {
    if (!isFileId(id)) return null;
    const entry = this.turns.peek(id);
    const stored = entry?.stored ?? (await this.readStored(id));
    // A completing state (its file being put in place right now) already answers complete.
    if (stored !== null) return toUploadState(stored);
    return this.completedUpload(id);
  }

  async interruptUpload(id: string): Promise<UploadState | null> {
    if (!isFileId(id)) return null;
    if (this.turns.busy(id)) (await this.turns.take(id, true)).release();
    return this.getUpload(id);
  }

  async appendUpload(id: string, body: Readable | AsyncIterable<Buffer>, options: AppendOptions): Promise<AppendResult> {
    if (!isFileId(id)) throw uploadNotFound(id);
    const turn = await this.turns.take(id, true);
    try {
      const stored = await this.loaded(turn.entry);
      if (stored === null) {
        if ((await this.completedUpload(id)) !== null) throw new UploadCompleteError(id);
        throw uploadNotFound(id);
      }
      return await this.append(turn, stored, body, options);
    } finally {
      turn.release();
      this.hashes.chase(turn.entry);
    }
  }

  private async append(turn: Turn, stored: StoredUpload, body: Readable | AsyncIterable<Buffer>, options: AppendOptions): Promise<AppendResult> {
    const { entry } = turn;
    const { header, progress } = stored;
    if (progress.complete) throw new UploadCompleteError(header.id);
    // tus core, PATCH: "If the offsets do not match, the Server MUST respond with 409 Conflict
    // without modifying the upload resource."
    if (options.offset !== progress.offset) throw new OffsetMismatchError(progress.offset, options.offset);
    const start = progress.offset;
    const length = this.lengthFor(progress, options);
    const maxBytes = options.maxBytes ?? Infinity;
    const overError = (): Error =>
      length !== null ? new UploadLengthExceededError(length) : new LimitExceededError('FILE_TOO_LARGE', `The upload is larger than the limit of ${maxBytes} bytes`, maxBytes);

    // The running sha256, when it is that of exactly the durable bytes; from 0 a new one; else
    // (after a restart) none: this append writes without hashing while the bytes on disk are
    // read back behind it (upload-hashing.ts).
    let hash = entry.hash !== null && entry.hashOffset === start ? entry.hash : null;
    if (hash === null && start === 0) hash = createHash('sha256');
    if (hash === null && entry.rehash === null) {
      entry.rehash = new PrefixHash();
      this.hashes.chase(entry);
    }
    // Until this append settles the hash is the writer's; it goes back to the entry only where
    // it matches the durable bytes again.
    entry.hash = null;
    const before = hash?.copy() ?? null;
    const path = uploadDataPath(this.o.dir, header.id);
    const digest = options.checksum === undefined ? null : createHash(options.checksum.algorithm);
    const writer = this.o.createAppendWriter({
      id: header.id,
      path,
      offset: start,
      hash,
      // A checksummed body counts only once verified whole: no checkpoint inside it.
      checkpoint: digest !== null ? null : { everyBytes: this.o.checkpointBytes, reached: (end) => this.checkpointReached(entry, end, length) },
    });
    const writerDone = finished(writer).then(
      () => null,
      (err: unknown) => err ?? new Error('file writer failed'),
    );
    const { end: why } = await pumpBody(body, writer, { limit: (length ?? maxBytes) - start, signals: [options.signal], takeover: { signal: turn.signal, ...TAKEOVER_DRAIN }, digest, onChunk: options.onChunk });
    if (why.kind !== 'writer') writer.end();
    const writeError = await writerDone;
    const durable = await this.settledOffset(entry);
    if (writeError !== null) {
      // What reached the disk is unknown: back to the durable offset; the hash may count bytes
      // that are not there: dropped, and the bytes read back later.
      await truncate(path, durable).catch(() => {});
      throw writeError;
    }
    const end = start + writer.bytesWritten;
    const discard = (restoreTo: number): Promise<void> => {
      if (restoreTo === start && before !== null) keepHash(entry, before, start);
      return truncate(path, restoreTo);
    };
    if (digest !== null && options.checksum !== undefined) {
      // tus checksum: a mismatch (or a body cut before its end, which cannot be verified) and
      // "the Server MUST NOT append the received data": cut back to where it started.
      if (why.kind !== 'ended' || !digest.digest().equals(options.checksum.digest)) {
        await discard(start);
        throw why.kind === 'ended' ? new ChecksumMismatchError() : why.kind === 'over' ? overError() : why.error;
      }
    }
    if (why.kind === 'over') {
      await discard(durable);
      throw overError();
    }
    if (hash !== null) keepHash(entry, hash, end);
    if (why.kind === 'cut') {
      await this.record(entry, end, length);
      throw why.error;
    }
    let finalLength = length;
    if (options.last === true) {
      if (length !== null && end !== length) {
        await this.record(entry, end, length);
        throw new UploadLengthMismatchError(`The upload ends at ${end} bytes, not at its length of ${length}`);
      }
      finalLength = end;
    }
    if (finalLength === null || end !== finalLength || (header.completesOnLast && options.last !== true)) {
      const saved = await this.record(entry, end, finalLength);
      return { upload: toUploadState(saved), file: null };
    }
    return this.complete(entry, finalLength, options.verify);
  }

  /** The length after this append's `length` option, checked against the recorded one. */
  private lengthFor(progress: UploadProgress, options: AppendOptions): number | null {
    if (options.length === undefined) return progress.length;
    if (!isCount(options.length)) throw new UploadLengthMismatchError(`Upload length ${options.length} is not a byte count`);
    if (progress.length !== null && progress.length !== options.length) {
      throw new UploadLengthMismatchError(`The upload's length is ${progress.length}, not ${options.length}`);
    }
    if (options.length < progress.offset) throw new UploadLengthMismatchError(`Length ${options.length} is below the upload's offset ${progress.offset}`);
    if (options.maxBytes !== undefined && options.length > options.maxBytes) {
      throw new LimitExceededError('FILE_TOO_LARGE', `The upload is larger than the limit of ${options.maxBytes} bytes`, options.maxBytes);
    }
    return options.length;
  }

  /**
   * The upload reached its end: a partial upload is marked complete (it waits for a final
   * upload); any other becomes the file of the same id, with the sha256 of every byte.
   */
  private async complete(entry: UploadEntry, length: number, verify: AppendOptions['verify']): Promise<AppendResult> {
    const stored = entry.stored as StoredUpload;
    const fresh = length > stored.progress.offset ? { expires: this.expiresAfter(Date.now()) } : {};
    if (stored.header.partial) {
      const saved = await this.save(entry, { offset: length, length, complete: true, ...fresh });
      return { upload: toUploadState(saved), file: null };
    }
    const sha256 = (await this.hashes.upTo(entry, length)).copy().digest('hex');
    try {
      await verify?.({ size: length, sha256 });
    } catch (err) {
      // Nothing becomes visible; the bytes stay counted.
      await this.record(entry, length, length);
      throw err;
    }
    // From this save on the upload is complete: a crash before the file is in place is finished
    // by the next start (upload-recovery), never undone.
    const completing = await this.save(entry, { offset: length, length, complete: true, sha256, completed: new Date().toISOString(), expires: null });
    const record = await finishCompletion(this.o.dir, completing, this.o.fsync, this.o.directorySync);
    this.forget(entry);
    return { upload: fileUploadState(record), file: record };
  }

  async concatenateUploads(partIds: readonly string[], init: Omit<NewUpload, 'length' | 'partial'>): Promise<AppendResult> {
    if (partIds.length === 0) throw new MalformedRequestError('NO_PARTIAL_UPLOADS', 'A final upload is made of at least one partial upload');
    for (const id of partIds) if (!isFileId(id)) throw uploadNotFound(id);
    // Turns in one order (sorted ids), so two concatenations sharing parts cannot wait on each other.
    const turns: Turn[] = [];
    try {
      for (const id of [...new Set(partIds)].sort()) turns.push(await this.turns.take(id, true));
      const parts: StoredUpload[] = [];
      for (const id of partIds) {
        const entry = turns.find((t) => t.entry.id === id)?.entry as UploadEntry;
        const stored = await this.loaded(entry);
        if (stored === null) throw uploadNotFound(id);
        if (!stored.header.partial) throw new UploadNotPartialError(id);
        if (!stored.progress.complete) throw new UploadIncompleteError(id);
        parts.push(stored);
      }
      return await concatenateParts(
        {
          ...this.o,
          hashUpTo: (entry, length) => this.hashes.upTo(entry, length),
          forget: (entry) => this.forget(entry),
        },
        turns.map((t) => t.entry),
        parts,
        init,
      );
    } finally {
      for (const t of turns) t.release();
    }
  }

  async deleteUpload(id: string): Promise<boolean> {
    if (!isFileId(id)) return false;
    const turn = await this.turns.take(id, true);
    try {
      const stored = await this.loaded(turn.entry);
      if (stored === null || (stored.progress.complete && !stored.header.partial)) return false;
      await this.remove(turn.entry);
      return true;
    } finally {
      turn.release();
    }
  }

  async listUploads(): Promise<UploadState[]> {
    const states: UploadState[] = [];
    for (const id of [...this.pending]) {
      const entry = this.turns.entry(id);
      const stored = await this.loaded(entry);
      this.turns.forgetIfIdle(entry);
      if (stored !== null && this.pending.has(id)) states.push(toUploadState(stored));
    }
    return states;
  }

  async expireUploads(now: Date = new Date()): Promise<number> {
    let expired = 0;
    for (const id of [...this.pending]) {
      // An upload being written is not idle, whatever its state says.
      if (this.turns.busy(id)) continue;
      // Loaded once and kept (entries of pending uploads stay): the next sweep reads nothing.
      const entry = this.turns.entry(id);
      const stored = await this.loaded(entry);
      this.turns.forgetIfIdle(entry);
      if (stored === null || !isExpired(stored, now)) continue;
      const turn = await this.turns.take(id, false);
      try {
        const current = await this.loaded(turn.entry);
        if (current === null || !isExpired(current, now)) continue;
        await this.remove(turn.entry);
        expired += 1;
      } finally {
        turn.release();
      }
    }
    return expired;
  }

  /** Removes an upload's state (from then on it is unknown), then its bytes. */
  private async remove(entry: UploadEntry): Promise<void> {
    await unlinkIfPresent(uploadStatePath(this.o.dir, entry.id));
    this.forget(entry);
    await unlinkIfPresent(uploadDataPath(this.o.dir, entry.id));
    // A termination answered must not come back after a power loss.
    await this.o.directorySync?.sync();
  }

  /** The upload is gone or a file now: nothing of it stays in memory. */
  private forget(entry: UploadEntry): void {
    entry.stored = null;
    entry.hash = null;
    entry.rehash?.cancel();
    entry.rehash = null;
    this.pending.delete(entry.id);
  }

  /** Records the bytes up to `offset` (written and synced by the writer) and the length, if either changed. */
  private async record(entry: UploadEntry, offset: number, length: number | null): Promise<StoredUpload> {
    await entry.saving;
    const current = entry.stored as StoredUpload;
    const grew = offset > current.progress.offset;
    if (!grew && length === current.progress.length) return current;
    return this.save(entry, { offset, length, ...(grew ? { expires: this.expiresAfter(Date.now()) } : {}) });
  }

  private checkpointReached(entry: UploadEntry, end: number, length: number | null): void {
    // Reaching the length is completion, the append's own business.
    if (length !== null && end >= length) return;
    void this.save(entry, { offset: end, length, expires: this.expiresAfter(Date.now()) }).catch(() => {});
  }

  /** The durable offset once the saves in flight (checkpoints) have settled. */
  private async settledOffset(entry: UploadEntry): Promise<number> {
    await entry.saving;
    return (entry.stored as StoredUpload).progress.offset;
  }

  /**
   * Writes the state with `change` applied (the next seq, the other slot). One save at a time
   * per upload, in order; an offset never goes backwards (a late checkpoint is a no-op).
   */
  private save(entry: UploadEntry, change: Partial<Omit<UploadProgress, 'seq'>>): Promise<StoredUpload> {
    const run = async (): Promise<StoredUpload> => {
      const current = entry.stored;
      if (current === null || current === undefined) throw uploadNotFound(entry.id);
      if (change.offset !== undefined && change.offset < current.progress.offset) return current;
      const progress: UploadProgress = { ...current.progress, ...change, seq: current.progress.seq + 1 };
      await writeProgress(uploadStatePath(this.o.dir, entry.id), progress, this.o.fsync);
      const saved = { header: current.header, progress };
      entry.stored = saved;
      this.hashes.chase(entry);
      return saved;
    };
    const saving = entry.saving.then(run, run);
    entry.saving = saving.then(
      () => {},
      () => {},
    );
    return saving;
  }

  private async loaded(entry: UploadEntry): Promise<StoredUpload | null> {
    if (entry.stored === undefined) entry.stored = await this.readStored(entry.id);
    return entry.stored;
  }

  private async readStored(id: string): Promise<StoredUpload | null> {
    if (!this.pending.has(id)) return null;
    const stored = await readStateFile(uploadStatePath(this.o.dir, id), id);
    return stored === 'unfinished' ? null : stored;
  }

  /** A completed non-partial upload, answered from its file's record. */
  private async completedUpload(id: string): Promise<UploadState | null> {
    const record = await this.o.stat(id);
    return record !== null && record.metadata !== undefined ? fileUploadState(record) : null;
  }

  private expiresAfter(now: number): string {
    return new Date(now + this.o.expiryMs).toISOString();
  }
}

function isCount(n: number): boolean {
  return Number.isSafeInteger(n) && n >= 0;
}

function existsAs(id: string): (err: unknown) => never {
  return (err) => {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') throw new UploadExistsError(id);
    throw err;
  };
}
