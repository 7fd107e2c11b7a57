import { createHash, type Hash } from 'node:crypto';
import { Writable } from 'node:stream';
import { LimitExceededError } from '../../lib/errors.js';
import type { FileRecord, FileWriter, NewFileMeta } from '../store.js';
import { newRecord, serializeRecord } from '../record.js';
import type { CompletedPart, S3Client } from './client.js';

/** S3's ceiling on parts per multipart upload (API reference, "Amazon S3 multipart upload limits"). */
export const MAX_PARTS = 10_000;
/** First allocation of the part buffer: small files never pay for a whole part. */
const SMALL_BUFFER_BYTES = 64 * 1024;

export interface WriterTarget {
  readonly client: S3Client;
  /** Key of the bytes. */
  readonly dataKey: string;
  /** Key of the sidecar record; the file is visible exactly when it exists. */
  readonly recordKey: string;
  readonly partBytes: number;
}

type WriterState = 'writing' | 'finished' | 'committed' | 'aborted';

/**
 * Streams one file into S3 holding at most one part in memory. Bytes are copied into the part
 * buffer; when it is full and more bytes come, the part is uploaded and the write that needs the
 * room is only called back once S3 has it (backpressure reaches the client's socket). At the end
 * a file that fit in one part is a single PutObject; otherwise the last part goes up and the
 * upload is completed. `commit()` writes the sidecar; `abort()` aborts the multipart upload and
 * deletes whatever was written, and is safe at any time.
 */
export class MultipartFileWriter extends Writable implements FileWriter {
  readonly id: string;
  bytesWritten = 0;
  sha256: string | null = null;
  private readonly target: WriterTarget;
  private readonly meta: NewFileMeta;
  private readonly maxBytes: number;
  private readonly hash: Hash = createHash('sha256');
  private readonly controller = new AbortController();
  private buffer: Buffer | null = null;
  private filled = 0;
  private uploadId: string | null = null;
  private readonly parts: CompletedPart[] = [];
  private completed = false;
  private dataMayExist = false;
  private recordMayExist = false;
  private state: WriterState = 'writing';
  /** The S3 request in flight, if any; abort() waits for it before cleaning up. */
  private inflight: Promise<unknown> = Promise.resolve();
  private abortion: Promise<void> | null = null;

  constructor(id: string, target: WriterTarget, meta: NewFileMeta, maxBytes: number) {
    super({ highWaterMark: 64 * 1024 });
    this.id = id;
    this.target = target;
    this.meta = meta;
    // Past 10,000 parts S3 refuses the upload: fail early with the same 413 as any size limit.
    this.maxBytes = Math.min(maxBytes, target.partBytes * MAX_PARTS);
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (err?: Error | null) => void): void {
    if (this.bytesWritten + chunk.length > this.maxBytes) {
      callback(new LimitExceededError('FILE_TOO_LARGE', `File is larger than the limit of ${this.maxBytes} bytes`, this.maxBytes));
      return;
    }
    this.bytesWritten += chunk.length;
    this.hash.update(chunk);
    this.take(chunk, callback);
  }

  /** Copies `chunk` into the part buffer, uploading each full part before making room. */
  private take(chunk: Buffer, callback: (err?: Error | null) => void): void {
    let offset = 0;
    while (offset < chunk.length) {
      if (this.filled === this.target.partBytes) {
        const rest = chunk.subarray(offset);
        this.track(this.uploadFullPart()).then(() => this.take(rest, callback), callback);
        return;
      }
      const buffer = this.room(chunk.length - offset);
      const n = chunk.copy(buffer, this.filled, offset, offset + Math.min(chunk.length - offset, buffer.length - this.filled));
      this.filled += n;
      offset += n;
    }
    callback();
  }

  /** The part buffer, grown to a whole part once the bytes no longer fit the small one. */
  private room(wanted: number): Buffer {
    const partBytes = this.target.partBytes;
    if (this.buffer === null) {
      this.buffer = Buffer.allocUnsafe(Math.min(partBytes, Math.max(SMALL_BUFFER_BYTES, wanted)));
    } else if (this.buffer.length - this.filled < wanted && this.buffer.length < partBytes) {
      const bigger = Buffer.allocUnsafeSlow(partBytes);
      this.buffer.copy(bigger, 0, 0, this.filled);
      this.buffer = bigger;
    }
    return this.buffer;
  }

  private async uploadFullPart(): Promise<void> {
    const { client, dataKey } = this.target;
    // Not abortable: if we are aborted meanwhile we still learn the id, so abort() can abort it.
    this.uploadId ??= await client.createMultipartUpload(dataKey, { contentType: safeContentType(this.meta.contentType) });
    this.controller.signal.throwIfAborted();
    await this.uploadBuffered(this.uploadId);
  }

  private async uploadBuffered(uploadId: string): Promise<void> {
    const partNumber = this.parts.length + 1;
    const body = (this.buffer as Buffer).subarray(0, this.filled);
    const etag = await this.target.client.uploadPart(this.target.dataKey, uploadId, partNumber, body, { signal: this.controller.signal });
    this.parts.push({ partNumber, etag });
    this.filled = 0;
  }

  override _final(callback: (err?: Error | null) => void): void {
    this.track(this.finish()).then(() => callback(), callback);
  }

  private async finish(): Promise<void> {
    const { client, dataKey } = this.target;
    const signal = this.controller.signal;
    this.dataMayExist = true;
    if (this.uploadId === null) {
      const body = this.buffer === null ? Buffer.alloc(0) : this.buffer.subarray(0, this.filled);
      await client.putObject(dataKey, body, { contentType: safeContentType(this.meta.contentType), signal });
    } else {
      // A part is only uploaded when more bytes follow, so the last one is never empty.
      await this.uploadBuffered(this.uploadId);
      await client.completeMultipartUpload(dataKey, this.uploadId, this.parts, { signal });
      this.completed = true;
    }
    this.buffer = null;
    this.sha256 = this.hash.digest('hex');
    this.state = 'finished';
  }

  override _destroy(err: Error | null, callback: (err?: Error | null) => void): void {
    // Destroyed before finishing (an error, a client abort upstream): what was written goes.
    if (this.state === 'writing') void this.abort();
    this.buffer = null;
    callback(err);
  }

  async commit(): Promise<FileRecord> {
    if (this.state !== 'finished') throw new Error(`commit() in state ${this.state}`);
    const record = newRecord(this.id, this.meta, this.bytesWritten, this.sha256 as string);
    this.recordMayExist = true;
    try {
      // Tracked, so an abort() meanwhile deletes the record only after this PUT has landed.
      await this.track(this.target.client.putObject(this.target.recordKey, Buffer.from(serializeRecord(record)), { contentType: 'application/json' }));
      if (this.state !== 'finished') throw new Error('aborted during commit()');
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
      this.controller.abort();
      if (!this.destroyed) this.destroy();
      this.abortion = this.removeAll();
    }
    return this.abortion;
  }

  /** Record first (the file disappears for readers), then the upload and the bytes. Best effort. */
  private async removeAll(): Promise<void> {
    await this.inflight;
    const { client, dataKey, recordKey } = this.target;
    if (this.recordMayExist) await client.deleteObject(recordKey).catch(() => {});
    if (this.uploadId !== null && !this.completed) await client.abortMultipartUpload(dataKey, this.uploadId).catch(() => false);
    if (this.dataMayExist) await client.deleteObject(dataKey).catch(() => {});
  }

  private track<T>(work: Promise<T>): Promise<T> {
    this.inflight = work.catch(() => {});
    return work;
  }
}

/** The stored Content-Type header: printable ASCII only (anything else is not a valid header). */
export function safeContentType(contentType: string): string {
  return /^[\x20-\x7e]{1,255}$/.test(contentType) ? contentType : 'application/octet-stream';
}
