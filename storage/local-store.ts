import { createHash, type Hash } from 'node:crypto';
import { close, constants, fdatasync, ftruncate, open, writev } from 'node:fs';
import { mkdir, open as openFile, readdir, readFile, rename, statfs, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { Writable, type Readable } from 'node:stream';
import { LimitExceededError, NotFoundError } from '../lib/errors.js';
import { AlignedMemoryPool, DIRECT_IO_ALIGNMENT } from './aligned-memory.js';
import { DirectorySync } from './directory-sync.js';
import { isFileId, newFileId } from './file-id.js';
import { newRecord, parseRecord, serializeRecord } from './record.js';
import type { ByteRange, FileRecord, FileWriter, NewFileMeta, Store, WriterOptions } from './store.js';
import { Turns } from './turns.js';
import { AlignedBatches, GatheredBatches, type WriteBatches } from './write-batches.js';

/** Temporary names start with a dot and end in `.partial`: never listed, swept at start-up. */
const PARTIAL_SUFFIX = '.partial';
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
const WRITE_BATCH_BYTES = 512 * 1024;
/**
 * Page-cache writes in flight at once, store-wide. Many files written together on this 2-vCPU
 * VM made the kernel spend ~3× the system time per GiB (measured in libuv's threads, 32
 * concurrent uploads): their writes contend with each other. Queued, one at a time, they go
 * through faster (A/B, `concurrent`: 2 at a time 419 MB/s and 3.31 CPU-s/GiB, 1 at a time 439
 * and 3.00), and the thread pool keeps room for syncs, opens and renames. A page-cache write of
 * 512 KiB takes a fraction of a millisecond, so the wait for a turn is short.
 */
const PAGE_CACHE_WRITES_AT_ONCE = 1;
/**
 * Direct writes in flight at once, store-wide. A direct write lasts until the device has the
 * bytes, so with one at a time the disk idles while the next is handed over; two keep it busy
 * (A/B, `concurrent`: 496 -> 612 MB/s, 1.77 -> 1.66 CPU-s/GiB, faster in each of 3 rounds;
 * four gained nothing more). One writer still has one write in flight at most.
 */
const DIRECT_WRITES_AT_ONCE = 2;
/**
 * Bytes a writer takes before write() says wait. Above a socket read (64 KiB), so that a small
 * file's data is taken while its file is still being opened, and the upload goes on to the next
 * part instead of waiting for the open. bench:ab, 64 / 128 / 256 KiB: 2,000 files of 64 KiB
 * 18 / 22 / 30 MB/s, while 32 concurrent uploads peaked at 188.7 / 191.0 / 197.9 MiB (every
 * writer may hold this much more); 128 KiB takes such a file whole at a small cost in memory.
 */
const WRITER_HIGH_WATER_MARK = 128 * 1024;
/** Direct-write buffers (two batches each) kept for the next file once their writer is done. */
const IDLE_DIRECT_BUFFERS = 4;
const O_DIRECT_CREATE = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_DIRECT;

export interface LocalStoreOptions {
  /** fdatasync every file before it can become visible (default true). */
  readonly fsync?: boolean;
  /**
   * Write files with O_DIRECT, around the page cache (default true), where the file system
   * takes it: `open()` tries, and falls back to page-cache writes if it is refused.
   */
  readonly directIo?: boolean;
}

/**
 * Files in one local directory: `<id>` holds the bytes, `<id>.json` the record. A file is
 * written to `.<id>.partial`, then renamed into place; the record is renamed in last, so a file
 * exists exactly when its record does.
 */
export class LocalStore implements Store {
  readonly dir: string;
  private readonly fsync: boolean;
  /**
   * One background fdatasync at a time for the whole store. Concurrent uploads reach their
   * next 32 MiB at about the same moment; their syncs at once would fill libuv's four
   * thread-pool threads and stall every write behind them (and on ext4, data=ordered, one
   * sync writes back the other files' dirty pages anyway). Final syncs are not limited.
   */
  private readonly backgroundSync: BackgroundSyncSlot = { busy: false };
  /** fsync on: makes the names a commit creates durable. */
  private readonly directorySync: DirectorySync | null;
  private writeTurns = new Turns(PAGE_CACHE_WRITES_AT_ONCE);
  private readonly directIoWanted: boolean;
  /** Set by open() when the directory's file system takes O_DIRECT writes. */
  private directBuffers: AlignedMemoryPool | null = null;

  constructor(dir: string, options: LocalStoreOptions = {}) {
    this.dir = dir;
    this.fsync = options.fsync ?? true;
    this.directorySync = this.fsync ? new DirectorySync(dir) : null;
    this.directIoWanted = options.directIo ?? true;
  }

  /** Whether files are written with O_DIRECT: asked for, and taken by the file system (known after open()). */
  get writesDirect(): boolean {
    return this.directBuffers !== null;
  }

  async open(): Promise<void> {
    await mkdir(this.dir, { recursive: true });
    // Sweep what a crash left: partial files, and bytes whose record never made it.
    const names = await readdir(this.dir);
    const records = new Set(names.filter((n) => n.endsWith('.json')).map((n) => n.slice(0, -5)));
    for (const name of names) {
      const leftover = (name.startsWith('.') && name.endsWith(PARTIAL_SUFFIX)) || (isFileId(name) && !records.has(name));
      if (leftover) await unlink(join(this.dir, name)).catch(() => {});
    }
    if (this.directIoWanted) {
      const pool = new AlignedMemoryPool(2 * WRITE_BATCH_BYTES, IDLE_DIRECT_BUFFERS);
      if (await takesDirectWrites(this.dir, pool)) {
        this.directBuffers = pool;
        this.writeTurns = new Turns(DIRECT_WRITES_AT_ONCE);
      }
    }
  }

  createWriter(meta: NewFileMeta, options: WriterOptions = {}): FileWriter {
    return new LocalFileWriter(this.dir, meta, options.maxBytes ?? Infinity, {
      writeTurns: this.writeTurns,
      fsync: this.fsync,
      // Direct writes leave no dirty pages behind to write back early.
      backgroundSync: this.fsync && this.directBuffers === null ? this.backgroundSync : null,
      directorySync: this.directorySync,
      directBuffers: this.directBuffers,
    });
  }

  async stat(id: string): Promise<FileRecord | null> {
    if (!isFileId(id)) return null;
    let text: string;
    try {
      text = await readFile(join(this.dir, `${id}.json`), 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw err;
    }
    return parseRecord(text, id);
  }

  async read(id: string, range?: ByteRange): Promise<Readable> {
    if (!isFileId(id)) throw new NotFoundError(`No file ${id}`);
    let handle;
    try {
      handle = await openFile(join(this.dir, id), 'r');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new NotFoundError(`No file ${id}`);
      throw err;
    }
    // An open descriptor keeps reading the bytes even if the file is deleted meanwhile.
    return handle.createReadStream({ start: range?.start, end: range?.end, highWaterMark: 64 * 1024 });
  }

  async delete(id: string): Promise<boolean> {
    if (!isFileId(id)) return false;
    // Record first: from then on the file is gone for readers, whatever happens to the bytes.
    const existed = await unlinkIfPresent(join(this.dir, `${id}.json`));
    await unlinkIfPresent(join(this.dir, id));
    return existed;
  }

  async list(): Promise<FileRecord[]> {
    const names = (await readdir(this.dir)).filter((n) => n.endsWith('.json') && isFileId(n.slice(0, -5)));
    const records: FileRecord[] = [];
    for (const name of names) {
      const record = await this.stat(name.slice(0, -5));
      if (record !== null) records.push(record);
    }
    return records.sort((a, b) => (a.created < b.created ? -1 : a.created > b.created ? 1 : a.id < b.id ? -1 : 1));
  }

  async freeBytes(): Promise<number | null> {
    const s = await statfs(this.dir);
    // A file system of zero blocks (ramfs) does not count its space: unknown, not full.
    return s.blocks === 0 ? null : s.bavail * s.bsize;
  }

  async close(): Promise<void> {}
}

async function unlinkIfPresent(path: string): Promise<boolean> {
  try {
    await unlink(path);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw err;
  }
}

/**
 * Whether the file system of `dir` takes O_DIRECT writes of the alignment the writers use: one
 * aligned block written to a temporary file. Some refuse the flag at open, or the alignment at
 * the write, with EINVAL (ramfs, older tmpfs, some FUSE and network file systems); those get
 * page-cache writes. Any other failure (a full disk, a quota) says nothing about O_DIRECT and
 * must not stop start-up: files can still be read and deleted to make room, and uploads report
 * the condition themselves.
 */
async function takesDirectWrites(dir: string, pool: AlignedMemoryPool): Promise<boolean> {
  const path = join(dir, `.${newFileId()}${PARTIAL_SUFFIX}`);
  const block = pool.take();
  try {
    const handle = await openFile(path, O_DIRECT_CREATE, 0o600);
    try {
      await handle.write(block, 0, DIRECT_IO_ALIGNMENT, 0);
    } finally {
      await handle.close();
    }
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code !== 'EINVAL';
  } finally {
    pool.release(block);
    // A refused open may have created the file before refusing the flag.
    await unlinkIfPresent(path).catch(() => false);
  }
}

type WriterState = 'writing' | 'finished' | 'committed' | 'aborted';

/** Shared by a store's writers: whether one of them has a background fdatasync in flight. */
interface BackgroundSyncSlot {
  busy: boolean;
}

/** What a store's writers share. */
interface WriterIo {
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

class LocalFileWriter extends Writable implements FileWriter {
  readonly id = newFileId();
  bytesWritten = 0;
  sha256: string | null = null;
  private readonly dir: string;
  private readonly meta: NewFileMeta;
  private readonly maxBytes: number;
  private readonly hash: Hash = createHash('sha256');
  private readonly io: WriterIo;
  private fd: number | null = null;
  private state: WriterState = 'writing';
  private abortion: Promise<void> | null = null;
  private syncedUpTo = 0;
  /** Bytes taken but not yet written: they go to disk together, one batch per write. */
  private readonly batches: WriteBatches;
  /** A background fdatasync in flight; the descriptor is not closed under it. */
  private syncing: Promise<void> | null = null;
  /** A writev in flight or waiting for its turn. destroy() does not wait for it by itself; closing under it could hit a reused descriptor. */
  private writing: Promise<void> | null = null;
  /** The finish's truncate, sync and close, once it has taken the descriptor. */
  private closing: Promise<void> | null = null;

  constructor(dir: string, meta: NewFileMeta, maxBytes: number, io: WriterIo) {
    super({ highWaterMark: WRITER_HIGH_WATER_MARK });
    this.dir = dir;
    this.meta = meta;
    this.maxBytes = maxBytes;
    this.io = io;
    this.batches = io.directBuffers !== null ? new AlignedBatches(io.directBuffers) : new GatheredBatches(WRITE_BATCH_BYTES);
  }

  private get partialPath(): string {
    return join(this.dir, `.${this.id}${PARTIAL_SUFFIX}`);
  }

  private get direct(): boolean {
    return this.io.directBuffers !== null;
  }

  override _construct(callback: (err?: Error | null) => void): void {
    // Exclusive create: never follow or reuse anything already at that name.
    open(this.partialPath, this.direct ? O_DIRECT_CREATE : 'wx', 0o644, (err, fd) => {
      if (err) return callback(err);
      this.fd = fd;
      callback();
    });
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (err?: Error | null) => void): void {
    if (this.bytesWritten + chunk.length > this.maxBytes) {
      return callback(new LimitExceededError('FILE_TOO_LARGE', `File is larger than the limit of ${this.maxBytes} bytes`, this.maxBytes));
    }
    this.bytesWritten += chunk.length;
    this.hash.update(chunk);
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
    this.writing = new Promise<void>((written) => {
      this.io.writeTurns.take((turnDone) => {
        const finish = (err?: Error | null): void => {
          turnDone();
          this.writing = null;
          written();
          if (!err) return this.maybeSyncInBackground();
          // The writer fails with it (`errored`); a waiting flush or finish reports it.
          this.destroy(err);
        };
        // Destroyed while waiting for its turn: destroy() closes the descriptor after this.
        const fd = this.fd;
        if (fd === null) return finish(writerClosed());
        writevAll(fd, buffers, finish);
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
            this.sha256 = this.hash.digest('hex');
            this.state = 'finished';
            callback();
          });
        };
        // Durable before it can become visible: a crash must never leave a renamed, half-written file.
        const sync = (): void => (this.io.fsync ? fdatasync(fd, closeFd) : closeFd(null));
        // The last direct write was padded to the alignment: cut the file back to its length.
        if (this.direct && this.bytesWritten % DIRECT_IO_ALIGNMENT !== 0) ftruncate(fd, this.bytesWritten, (err) => (err ? closeFd(err) : sync()));
        else sync();
      });
    });
  }

  override _destroy(err: Error | null, callback: (err?: Error | null) => void): void {
    const fd = this.fd;
    this.fd = null;
    const done = (): void => {
      this.batches.dispose();
      // Destroyed before finishing (an error, an abort upstream): the partial bytes go.
      if (this.state === 'writing') void this.abort();
      callback(err);
    };
    if (fd !== null) this.afterIo(() => close(fd, () => done()));
    else if (this.closing !== null) void this.closing.then(done);
    else done();
  }

  async commit(): Promise<FileRecord> {
    if (this.state !== 'finished') throw new Error(`commit() in state ${this.state}`);
    const record = newRecord(this.id, this.meta, this.bytesWritten, this.sha256 as string);
    const recordPath = join(this.dir, `${this.id}.json`);
    const partialRecord = join(this.dir, `.${this.id}.json${PARTIAL_SUFFIX}`);
    try {
      await writeRecord(partialRecord, serializeRecord(record), this.io.fsync);
      await rename(this.partialPath, join(this.dir, this.id));
      await rename(partialRecord, recordPath);
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

  abort(): Promise<void> {
    if (this.abortion === null) {
      this.state = 'aborted';
      if (!this.destroyed) this.destroy();
      const paths = [
        join(this.dir, `${this.id}.json`),
        join(this.dir, `.${this.id}.json${PARTIAL_SUFFIX}`),
        join(this.dir, this.id),
        this.partialPath,
      ];
      // Wait for the descriptor to close (destroy is async) so nothing is left open either.
      const closed = this.closed ? Promise.resolve() : new Promise<void>((r) => this.once('close', () => r()));
      this.abortion = closed.then(async () => {
        for (const p of paths) await unlinkIfPresent(p).catch(() => false);
      });
    }
    return this.abortion;
  }
}

/** The record's JSON in a new file (never an existing one), synced to disk with fsync on. */
async function writeRecord(path: string, text: string, fsync: boolean): Promise<void> {
  const handle = await openFile(path, 'wx', 0o644);
  try {
    await handle.writeFile(text);
    if (fsync) await handle.datasync();
  } finally {
    await handle.close();
  }
}

function writerClosed(): Error {
  return new Error('file writer closed');
}

function writevAll(fd: number, buffers: Buffer[], callback: (err?: Error | null) => void): void {
  writev(fd, buffers, null, (err, written) => {
    if (err) return callback(err);
    let left = written;
    let i = 0;
    while (i < buffers.length && left >= (buffers[i] as Buffer).length) left -= (buffers[i++] as Buffer).length;
    if (i === buffers.length) return callback();
    const rest = buffers.slice(i);
    rest[0] = (rest[0] as Buffer).subarray(left);
    writevAll(fd, rest, callback);
  });
}
