import { createHash, type Hash } from 'node:crypto';
import { close, constants, fdatasync, ftruncate, open, read, writev } from 'node:fs';
import { rename } from 'node:fs/promises';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { LimitExceededError } from '../lib/errors.js';
import { DIRECT_IO_ALIGNMENT, type AlignedMemoryPool } from './aligned-memory.js';
import type { DirectorySync } from './directory-sync.js';
import { newFileId } from './file-id.js';
import { partialPath, partialRecordPath, recordPath, unlinkIfPresent, writeNewFile } from './local-names.js';
import { newRecord, serializeRecord } from './record.js';
import type { FileRecord, FileWriter, NewFileMeta } from './store.js';
import type { Turns } from './turns.js';
import { AlignedBatches, GatheredBatches, type WriteBatches } from './write-batches.js';

/**
 * With fsync on, start a background fdatasync every this many bytes, so the disk writes back
 * while the network still delivers and the final sync before commit has little left to do.
 */
const SYNC_EVERY_BYTES = 32 * 1024 * 1024;
/**
 * Bytes of one write. Every write is a round trip through libuv's thread pool, and on a VM the
 * thread wake-ups cost more CPU than copying the bytes: measured here (bench/, 1 GiB multipart
 * upload, page-cache writes), one write per 64 KiB socket read ran at 265 MB/s and 4.0
 * CPU-s/GiB, 512 KiB batches at ~390 MB/s and ~3.0 CPU-s/GiB. Larger batches gained nothing
 * more and cost memory in every concurrent upload. One batch is written behind while the next
 * is gathered (so the hash and the socket keep going during the write), so a writer holds up to
 * two batches plus its high-water mark.
 */
export const WRITE_BATCH_BYTES = 512 * 1024;
/**
 * Bytes of one direct write while a writer has the store to itself (see AlignedBatches): a
 * direct write's kernel CPU grows with the number of calls, not only with the bytes. bench:ab,
 * 1 GiB, 3 rounds, against 512 KiB writes: upload-raw 1.16x the MB/s (paired by round) and 1.77
 * -> 1.58 CPU-s/GiB, a one-PATCH resumable upload 1.11x and 1.89 -> 1.67, peak RSS 1.8 to 3.6
 * MiB more. Large writes for every writer made 32 concurrent uploads peak at 289 MiB; for one
 * writer all along (others at work too) they ran at 0.83x to 0.94x, as the large writes held
 * the store's write turns longer; batches sized as each starts, 0.97x (noise), 190 MiB.
 */
export const LARGE_WRITE_BATCH_BYTES = 2 * 1024 * 1024;
/** Writers holding a buffer for large batches at once, store-wide (the others' buffers are for WRITE_BATCH_BYTES). */
export const LARGE_WRITE_BATCHES_AT_ONCE = 1;
/**
 * Bytes a writer takes before write() says wait. Above a socket read (64 KiB), so that a small
 * file's data is taken while its file is still being opened, and the upload goes on to the next
 * part instead of waiting for the open. bench:ab, 64 / 128 / 256 KiB: 2,000 files of 64 KiB
 * 18 / 22 / 30 MB/s, while 32 concurrent uploads peaked at 188.7 / 191.0 / 197.9 MiB (every
 * writer may hold this much more); 128 KiB takes such a file whole at a small cost in memory.
 */
const WRITER_HIGH_WATER_MARK = 128 * 1024;
export const O_DIRECT_CREATE = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_DIRECT;
/** An upload's existing file: read too (the partial block before the offset), never through a symlink. */
const O_DIRECT_APPEND = constants.O_RDWR | constants.O_DIRECT | constants.O_NOFOLLOW;
const O_PAGE_CACHE_APPEND = constants.O_WRONLY | constants.O_NOFOLLOW;

type WriterState = 'writing' | 'finished' | 'committed' | 'aborted';

/** Shared by a store's writers: whether one of them has a background fdatasync in flight. */
export interface BackgroundSyncSlot {
  busy: boolean;
}

/** What a store's writers share. */
export interface WriterIo {
  /** The store's turns for writes: its writers' writev calls, a few at a time. */
  readonly writeTurns: Turns;
  /** fdatasync the file before it can become visible. */
  readonly fsync: boolean;
  /** Page-cache writes with fsync on: the store's background-sync slot; else null. */
  readonly backgroundSync: BackgroundSyncSlot | null;
  /** fsync on: the store directory's sync, run after a commit's renames; else null. */
  readonly directorySync: DirectorySync | null;
  /** O_DIRECT writes: the pool of aligned buffers; page-cache writes: null. */
  readonly directBuffers: AlignedMemoryPool | null;
}

/** During a long append: make the bytes written so far durable every so often, and say so. */
export interface Checkpoint {
  readonly everyBytes: number;
  /** The file's bytes up to `end` are written (and, with fsync on, fdatasync'ed). */
  reached(end: number): void;
}

/** A writer that continues an existing file (a resumable upload) instead of creating one. */
export interface AppendTarget {
  readonly id: string;
  /** The file; it exists and is exactly `offset` bytes long. */
  readonly path: string;
  /** Where the new bytes go: the upload's durable offset. */
  readonly offset: number;
  /** The sha256 of the file's first `offset` bytes, updated in place with every byte taken; null: not hashed here. */
  readonly hash: Hash | null;
  readonly checkpoint: Checkpoint | null;
}

/**
 * Writes one file: `POST /upload`'s new files (`.<id>.partial`, then `commit()`), and a
 * resumable upload's appends (its file, at its offset: `append`). Either way the same path:
 * sha256 as the bytes are taken, batches written behind, O_DIRECT where the file system takes
 * it, the store's write turns, positional writes. An append that finishes leaves the file's
 * bytes durable (with fsync on) and exactly `offset + bytesWritten` long; committing is then the
 * upload store's job.
 */
export class LocalFileWriter extends Writable implements FileWriter {
  readonly id: string;
  bytesWritten = 0;
  sha256: string | null = null;
  private readonly dir: string;
  private readonly meta: NewFileMeta;
  private readonly maxBytes: number;
  private readonly hash: Hash | null;
  private readonly io: WriterIo;
  private readonly append: AppendTarget | null;
  /** Where this writer's first new byte goes in the file. */
  private readonly startOffset: number;
  /** Where the next batch is written. Direct appends start at the block that holds startOffset. */
  private position: number;
  /** The file's bytes up to here are written (padding excluded). */
  private writtenEnd: number;
  private checkpointedEnd: number;
  private fd: number | null = null;
  private state: WriterState = 'writing';
  private abortion: Promise<void> | null = null;
  private syncedUpTo = 0;
  /** Bytes taken but not yet written: they go to disk together, one batch per write. */
  private readonly batches: WriteBatches;
  private readonly aligned: AlignedBatches | null;
  /** A background fdatasync (or a checkpoint's) in flight; the descriptor is not closed under it. */
  private syncing: Promise<void> | null = null;
  /** A writev in flight or waiting for its turn. destroy() does not wait for it by itself; closing under it could hit a reused descriptor. */
  private writing: Promise<void> | null = null;
  /** The finish's truncate, sync and close, once it has taken the descriptor. */
  private closing: Promise<void> | null = null;

  constructor(dir: string, meta: NewFileMeta, maxBytes: number, io: WriterIo, append: AppendTarget | null = null) {
    super({ highWaterMark: WRITER_HIGH_WATER_MARK });
    this.id = append?.id ?? newFileId();
    this.dir = dir;
    this.meta = meta;
    this.maxBytes = maxBytes;
    this.io = io;
    this.append = append;
    this.hash = append === null ? createHash('sha256') : append.hash;
    this.startOffset = append?.offset ?? 0;
    // O_DIRECT writes whole blocks at block offsets: an append starts at the block holding its
    // offset, with that block's bytes before the offset read back into the first batch.
    this.position = io.directBuffers !== null ? this.startOffset - (this.startOffset % DIRECT_IO_ALIGNMENT) : this.startOffset;
    this.writtenEnd = this.startOffset;
    this.checkpointedEnd = this.startOffset;
    this.aligned = io.directBuffers !== null ? new AlignedBatches(io.directBuffers) : null;
    this.batches = this.aligned ?? new GatheredBatches(WRITE_BATCH_BYTES);
  }

  private get partialPath(): string {
    return partialPath(this.dir, this.id);
  }

  private get direct(): boolean {
    return this.io.directBuffers !== null;
  }

  override _construct(callback: (err?: Error | null) => void): void {
    if (this.append !== null) return this.openForAppend(this.append.path, callback);
    // Exclusive create: never follow or reuse anything already at that name.
    open(this.partialPath, this.direct ? O_DIRECT_CREATE : 'wx', 0o644, (err, fd) => {
      if (err) return callback(err);
      this.fd = fd;
      callback();
    });
  }

  private openForAppend(path: string, callback: (err?: Error | null) => void): void {
    open(path, this.direct ? O_DIRECT_APPEND : O_PAGE_CACHE_APPEND, (err, fd) => {
      if (err) return callback(err);
      this.fd = fd;
      const tail = this.startOffset - this.position;
      if (tail === 0 || this.aligned === null) return callback();
      // The bytes of the block before the offset, read into the aligned batch so that the first
      // write rewrites that block whole (the same bytes) followed by the new ones.
      const block = this.aligned.seedTail(tail);
      read(fd, block, 0, block.length, this.position, (readErr, n) => {
        if (readErr) return callback(readErr);
        if (n < tail) return callback(new Error(`${path} is shorter (${this.position + n}) than the upload's offset ${this.startOffset}`));
        callback();
      });
    });
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (err?: Error | null) => void): void {
    if (this.bytesWritten + chunk.length > this.maxBytes) {
      return callback(new LimitExceededError('FILE_TOO_LARGE', `File is larger than the limit of ${this.maxBytes} bytes`, this.maxBytes));
    }
    this.bytesWritten += chunk.length;
    this.hash?.update(chunk);
    this.addChunk(chunk, 0, callback);
  }

  /**
   * Adds `chunk` from `from` on to the batches. Below a full batch the chunk is only held (or
   * copied) and the stream asks for the next one at once; a full batch is written first.
   */
  private addChunk(chunk: Buffer, from: number, callback: (err?: Error | null) => void): void {
    const next = this.batches.add(chunk, from);
    if (!this.batches.full) return callback();
    this.flushBatch(false, (err) => {
      if (err) callback(err);
      else if (next < chunk.length) this.addChunk(chunk, next, callback);
      else callback();
    });
  }

  /**
   * Writes the gathered batch behind: the callback runs once the write is under way, so the
   * next batch is hashed and gathered meanwhile. A failed write destroys the writer with its
   * error, which fails the upload: no byte is lost silently.
   */
  private flushBatch(last: boolean, callback: (err?: Error | null) => void): void {
    if (this.writing !== null) {
      // One write at a time: a full batch waits for the one before it, and so does the stream.
      void this.writing.then(() => (this.destroyed ? callback(this.errored ?? writerClosed()) : this.flushBatch(last, callback)));
      return;
    }
    if (this.fd === null) return callback(writerClosed());
    const buffers = this.batches.take(last);
    if (buffers.length === 0) return callback();
    const position = this.position;
    for (const b of buffers) this.position += b.length;
    // Padding (the last direct batch) is not data: the file ends at the bytes taken.
    const dataEnd = Math.min(this.position, this.startOffset + this.bytesWritten);
    this.writing = new Promise<void>((written) => {
      this.io.writeTurns.take((turnDone) => {
        const finish = (err?: Error | null): void => {
          turnDone();
          this.writing = null;
          written();
          if (!err) {
            this.writtenEnd = dataEnd;
            return this.append?.checkpoint ? this.maybeCheckpoint(this.append.checkpoint) : this.maybeSyncInBackground();
          }
          // The writer fails with it (`errored`); a waiting flush or finish reports it.
          this.destroy(err);
        };
        // Destroyed while waiting for its turn: destroy() closes the descriptor after this.
        const fd = this.fd;
        if (fd === null) return finish(writerClosed());
        writevAll(fd, buffers, position, finish);
      });
    });
    callback();
  }

  private maybeSyncInBackground(): void {
    const slot = this.io.backgroundSync;
    const fd = this.fd;
    // fd is null once destroy() has taken the descriptor (it closes it when no I/O is left).
    if (fd === null || slot === null || slot.busy || this.syncing !== null || this.bytesWritten - this.syncedUpTo < SYNC_EVERY_BYTES) return;
    slot.busy = true;
    this.syncedUpTo = this.bytesWritten;
    this.syncing = new Promise<void>((resolve) => fdatasync(fd, () => resolve())).then(() => {
      slot.busy = false;
      this.syncing = null;
    });
  }

  /**
   * An append's checkpoint: every `everyBytes` written, fdatasync (fsync on) and report the
   * written end, so the upload store can record it as the durable offset while the body goes
   * on. Page-cache writers share the store's background-sync slot (one such sync at a time).
   */
  private maybeCheckpoint(checkpoint: Checkpoint): void {
    const fd = this.fd;
    if (fd === null || this.syncing !== null || this.writtenEnd - this.checkpointedEnd < checkpoint.everyBytes) return;
    const slot = this.io.fsync ? this.io.backgroundSync : null;
    if (slot?.busy) return;
    if (slot !== null) slot.busy = true;
    const end = this.writtenEnd;
    this.checkpointedEnd = end;
    this.syncing = new Promise<Error | null>((resolve) => (this.io.fsync ? fdatasync(fd, (err) => resolve(err)) : resolve(null))).then((err) => {
      if (slot !== null) slot.busy = false;
      this.syncing = null;
      // A failed sync is not a checkpoint; the final sync reports the failure.
      if (err === null) checkpoint.reached(end);
    });
  }

  /** Runs `then` once no background sync and no write uses the descriptor any more. */
  private afterIo(then: () => void): void {
    const busy = this.syncing ?? this.writing;
    if (busy === null) then();
    else void busy.then(() => this.afterIo(then));
  }

  override _final(callback: (err?: Error | null) => void): void {
    this.flushBatch(true, (err) => (err ? callback(err) : this.finishFile(callback)));
  }

  private finishFile(callback: (err?: Error | null) => void): void {
    this.afterIo(() => {
      const fd = this.fd;
      // Destroyed while the last batch was being written: destroy() closes the descriptor.
      if (fd === null) return callback(this.errored ?? writerClosed());
      // From here the finish owns the descriptor: a destroy() meanwhile waits for `closing`
      // instead of closing it under the truncate and the sync (which would then act on whatever
      // file reused the number).
      this.fd = null;
      this.closing = new Promise<void>((closed) => {
        const closeFd = (err: Error | null): void => {
          close(fd, (closeErr) => {
            closed();
            this.batches.dispose();
            if (err ?? closeErr) return callback(err ?? closeErr);
            if (this.destroyed) return callback(this.errored ?? writerClosed());
            // An append's hash goes on with the upload's next bytes: the upload store digests it.
            if (this.append === null) this.sha256 = (this.hash as Hash).digest('hex');
            this.state = 'finished';
            callback();
          });
        };
        // Durable before it can become visible: a crash must never leave a renamed, half-written file.
        const sync = (): void => (this.io.fsync ? fdatasync(fd, closeFd) : closeFd(null));
        // The last direct write was padded to the alignment: cut the file back to its length. An
        // append always cuts: whatever lay past its end (a body discarded before) is not the upload's.
        const end = this.startOffset + this.bytesWritten;
        if (this.append !== null || (this.direct && end % DIRECT_IO_ALIGNMENT !== 0)) ftruncate(fd, end, (err) => (err ? closeFd(err) : sync()));
        else sync();
      });
    });
  }

  override _destroy(err: Error | null, callback: (err?: Error | null) => void): void {
    const fd = this.fd;
    this.fd = null;
    const done = (): void => {
      this.batches.dispose();
      // Destroyed before finishing (an error, an abort upstream): a new file's partial bytes go.
      // An upload's file stays: the upload store cuts it back to its durable offset.
      if (this.state === 'writing' && this.append === null) void this.abort();
      callback(err);
    };
    if (fd !== null) this.afterIo(() => close(fd, () => done()));
    else if (this.closing !== null) void this.closing.then(done);
    else done();
  }

  async commit(): Promise<FileRecord> {
    if (this.append !== null) throw new Error('commit() of an append: the upload store completes uploads');
    if (this.state !== 'finished') throw new Error(`commit() in state ${this.state}`);
    const record = newRecord(this.id, this.meta, this.bytesWritten, this.sha256 as string);
    const partialRecord = partialRecordPath(this.dir, this.id);
    try {
      await writeNewFile(partialRecord, serializeRecord(record), this.io.fsync);
      await rename(this.partialPath, join(this.dir, this.id));
      await rename(partialRecord, recordPath(this.dir, this.id));
      // With fsync on a 201 means the file survives a crash: its bytes were synced before it
      // finished, its record just now, and this makes both names durable. Without it a crash
      // could keep the bytes but lose the record, and the start-up sweep would remove them.
      await this.io.directorySync?.sync();
      this.state = 'committed';
    } catch (err) {
      await this.abort();
      throw err;
    }
    return record;
  }

  /** A new file: removes everything it wrote. An append: only stops it (the upload's bytes are the upload store's). */
  abort(): Promise<void> {
    if (this.abortion === null) {
      this.state = 'aborted';
      if (!this.destroyed) this.destroy();
      const paths =
        this.append !== null
          ? []
          : [recordPath(this.dir, this.id), partialRecordPath(this.dir, this.id), join(this.dir, this.id), this.partialPath];
      // Wait for the descriptor to close (destroy is async) so nothing is left open either.
      const closed = this.closed ? Promise.resolve() : new Promise<void>((r) => this.once('close', () => r()));
      this.abortion = closed.then(async () => {
        for (const p of paths) await unlinkIfPresent(p).catch(() => false);
      });
    }
    return this.abortion;
  }
}

function writerClosed(): Error {
  return new Error('file writer closed');
}

/** All of `buffers` at `position` (positional: the file's own offset plays no part). */
function writevAll(fd: number, buffers: Buffer[], position: number, callback: (err?: Error | null) => void): void {
  writev(fd, buffers, position, (err, written) => {
    if (err) return callback(err);
    let left = written;
    let i = 0;
    while (i < buffers.length && left >= (buffers[i] as Buffer).length) left -= (buffers[i++] as Buffer).length;
    if (i === buffers.length) return callback();
    const rest = buffers.slice(i);
    rest[0] = (rest[0] as Buffer).subarray(left);
    writevAll(fd, rest, position + written, callback);
  });
}
