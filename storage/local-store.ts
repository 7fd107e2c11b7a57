import type { Readable } from 'node:stream';
import { mkdir, open as openFile, readdir, readFile, statfs, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { NotFoundError } from '../lib/errors.js';
import { AlignedMemoryPool, DIRECT_IO_ALIGNMENT } from './aligned-memory.js';
import { DirectorySync } from './directory-sync.js';
import { isFileId, newFileId } from './file-id.js';
import { LocalDocuments } from './local-documents.js';
import {
  LARGE_WRITE_BATCHES_AT_ONCE,
  LARGE_WRITE_BATCH_BYTES,
  LocalFileWriter,
  O_DIRECT_CREATE,
  WRITE_BATCH_BYTES,
  type AppendTarget,
  type BackgroundSyncSlot,
  type WriterIo,
} from './local-file-writer.js';
import { PARTIAL_SUFFIX, partialPath, unlinkIfPresent } from './local-names.js';
import { LocalUploads } from './local-uploads.js';
import { parseRecord } from './record.js';
import type { ByteRange, FileRecord, FileWriter, NewFileMeta, Store, WriterOptions } from './store.js';
import { Turns } from './turns.js';
import { recoverUploads } from './upload-recovery.js';
import type { AppendOptions, AppendResult, CreateUploadOptions, NewUpload, UploadState } from './uploads.js';
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
/** Direct-write buffers (two batches each) kept for the next file once their writer is done. */
const IDLE_DIRECT_BUFFERS = 4;
/** UPLOAD_EXPIRY_MS's default: a day after an upload's last byte (tusd and @tus/server leave it to the operator). */
const DEFAULT_UPLOAD_EXPIRY_MS = 24 * 60 * 60 * 1000;
/**
 * During a long append the durable offset is recorded every this many bytes, so a crash
 * mid-PATCH costs the client at most this much again. Each checkpoint is one fdatasync of the
 * upload's bytes and one 4 KiB state write + fdatasync (see the README for what it costs).
 */
const DEFAULT_CHECKPOINT_BYTES = 64 * 1024 * 1024;

export interface LocalStoreOptions {
  /** fdatasync every file before it can become visible (default true). */
  readonly fsync?: boolean;
  /**
   * Write files with O_DIRECT, around the page cache (default true), where the file system
   * takes it: `open()` tries, and falls back to page-cache writes if it is refused.
   */
  readonly directIo?: boolean;
  /** A resumable upload without a new byte for this long expires (default 24 h). */
  readonly uploadExpiryMs?: number;
  /** A long append records its durable offset every this many bytes (default 64 MiB). */
  readonly checkpointBytes?: number;
}

/**
 * Files in one local directory: `<id>` holds the bytes, `<id>.json` the record. A file is
 * written to `.<id>.partial`, then renamed into place; the record is renamed in last, so a file
 * exists exactly when its record does. Resumable uploads (`local-uploads.ts`) and documents
 * (`local-documents.ts`) live beside them under names of their own (`local-names.ts`).
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
  readonly uploads: LocalUploads;
  private readonly documents: LocalDocuments;
  /** What open()'s recovery of resumable uploads did, one line each. */
  recovered: readonly string[] = [];

  constructor(dir: string, options: LocalStoreOptions = {}) {
    this.dir = dir;
    this.fsync = options.fsync ?? true;
    this.directorySync = this.fsync ? new DirectorySync(dir) : null;
    this.directIoWanted = options.directIo ?? true;
    this.uploads = new LocalUploads({
      dir,
      fsync: this.fsync,
      expiryMs: options.uploadExpiryMs ?? DEFAULT_UPLOAD_EXPIRY_MS,
      checkpointBytes: options.checkpointBytes ?? DEFAULT_CHECKPOINT_BYTES,
      directorySync: this.directorySync,
      createAppendWriter: (target) => this.createAppendWriter(target),
      stat: (id) => this.stat(id),
    });
    this.documents = new LocalDocuments(dir, this.fsync);
  }

  /** Whether files are written with O_DIRECT: asked for, and taken by the file system (known after open()). */
  get writesDirect(): boolean {
    return this.directBuffers !== null;
  }

  async open(): Promise<void> {
    await mkdir(this.dir, { recursive: true });
    // Uploads first: a completion a crash interrupted leaves `<id>` bytes whose record the
    // recovery writes, which the sweep below would otherwise remove.
    const recovery = await recoverUploads(this.dir, await readdir(this.dir), this.fsync, this.directorySync);
    this.uploads.adopt(recovery.pending);
    void this.uploads.rebuildHashes();
    this.recovered = recovery.actions;
    await this.documents.sweep();
    // Sweep what a crash left: partial files, and bytes whose record never made it.
    const names = await readdir(this.dir);
    const records = new Set(names.filter((n) => n.endsWith('.json')).map((n) => n.slice(0, -5)));
    for (const name of names) {
      const leftover = (name.startsWith('.') && name.endsWith(PARTIAL_SUFFIX)) || (isFileId(name) && !records.has(name));
      if (leftover) await unlink(join(this.dir, name)).catch(() => {});
    }
    if (this.directIoWanted) {
      // Two batches per writer: one written while the next is gathered.
      const sizes = { bytes: 2 * WRITE_BATCH_BYTES, largeBytes: 2 * LARGE_WRITE_BATCH_BYTES, largeAtOnce: LARGE_WRITE_BATCHES_AT_ONCE };
      const pool = new AlignedMemoryPool(sizes, IDLE_DIRECT_BUFFERS);
      if (await takesDirectWrites(this.dir, pool)) {
        this.directBuffers = pool;
        this.writeTurns = new Turns(DIRECT_WRITES_AT_ONCE);
      }
    }
  }

  createWriter(meta: NewFileMeta, options: WriterOptions = {}): FileWriter {
    return new LocalFileWriter(this.dir, meta, options.maxBytes ?? Infinity, this.writerIo());
  }

  /** The same writer, continuing a resumable upload's file at its offset. */
  private createAppendWriter(target: AppendTarget): LocalFileWriter {
    return new LocalFileWriter(this.dir, { field: null, filename: null, contentType: 'application/octet-stream' }, Infinity, this.writerIo(), target);
  }

  private writerIo(): WriterIo {
    return {
      writeTurns: this.writeTurns,
      fsync: this.fsync,
      // Direct writes leave no dirty pages behind to write back early.
      backgroundSync: this.fsync && this.directBuffers === null ? this.backgroundSync : null,
      directorySync: this.directorySync,
      directBuffers: this.directBuffers,
    };
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

  async close(): Promise<void> {
    this.uploads.close();
  }

  // Resumable uploads (`uploads.ts`): see local-uploads.ts.
  createUpload(init: NewUpload, options?: CreateUploadOptions): Promise<UploadState> {
    return this.uploads.createUpload(init, options);
  }
  getUpload(id: string): Promise<UploadState | null> {
    return this.uploads.getUpload(id);
  }
  interruptUpload(id: string): Promise<UploadState | null> {
    return this.uploads.interruptUpload(id);
  }
  appendUpload(id: string, body: Readable | AsyncIterable<Buffer>, options: AppendOptions): Promise<AppendResult> {
    return this.uploads.appendUpload(id, body, options);
  }
  concatenateUploads(partIds: readonly string[], init: Omit<NewUpload, 'length' | 'partial'>): Promise<AppendResult> {
    return this.uploads.concatenateUploads(partIds, init);
  }
  deleteUpload(id: string): Promise<boolean> {
    return this.uploads.deleteUpload(id);
  }
  listUploads(): Promise<UploadState[]> {
    return this.uploads.listUploads();
  }
  expireUploads(now?: Date): Promise<number> {
    return this.uploads.expireUploads(now);
  }

  // Documents (`uploads.ts`): see local-documents.ts.
  putDocument(kind: string, id: string, value: unknown): Promise<void> {
    return this.documents.putDocument(kind, id, value);
  }
  getDocument(kind: string, id: string): Promise<unknown> {
    return this.documents.getDocument(kind, id);
  }
  listDocuments(kind: string): Promise<unknown[]> {
    return this.documents.listDocuments(kind);
  }
  deleteDocument(kind: string, id: string): Promise<void> {
    return this.documents.deleteDocument(kind, id);
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
  const path = partialPath(dir, newFileId());
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
