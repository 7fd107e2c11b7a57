import type { Readable } from 'node:stream';
import { ConfigError, type S3Config } from '../lib/config.js';
import { NotFoundError } from '../lib/errors.js';
import { checkDocumentName, parseDocument } from './documents.js';
import { isFileId, newFileId } from './file-id.js';
import { parseRecord } from './record.js';
import { S3Client } from './s3/client.js';
import { MultipartFileWriter } from './s3/multipart-writer.js';
import type { ByteRange, FileRecord, FileWriter, NewFileMeta, Store, WriterOptions } from './store.js';
import { S3Uploads } from './s3/resumable-store.js';
import type { AppendOptions, AppendResult, CreateUploadOptions, NewUpload, UploadState } from './uploads.js';

/** A sidecar is a few hundred bytes; anything near this is not ours. */
const MAX_RECORD_BYTES = 64 * 1024;
/** Sidecars fetched at once by list(). */
const LIST_CONCURRENCY = 16;
/** sluice's own objects under the prefix: never a file id, so list() never takes them for files. */
const DOCUMENTS_PREFIX = '.sluice/';
/** A document is a small JSON object (a fetch job); anything near this is not ours. */
const MAX_DOCUMENT_BYTES = 1024 * 1024;

export interface S3StoreOptions {
  /** UPLOAD_EXPIRY_MS: a resumable upload without a new byte for this long expires (default 24 h). */
  readonly uploadExpiryMs?: number;
  /** Tails of idle resumable uploads kept in memory between PATCHes, all together (default 8 parts). */
  readonly tailCacheBytes?: number;
}

/**
 * Files in an S3-compatible bucket (AWS S3, Ceph RGW, MinIO): `<prefix><id>` holds the bytes,
 * `<prefix><id>.json` the record. As in the local store, the record is written last and deleted
 * first, so a file exists exactly when its record does; several sluice instances can share one
 * bucket because nothing else is kept in memory.
 */
export class S3Store implements Store {
  private readonly client: S3Client;
  private readonly prefix: string;
  private readonly partBytes: number;
  private readonly region: string;
  /** Resumable uploads (`s3/resumable-store.ts`); public for tests and metrics. */
  readonly uploads: S3Uploads;

  constructor(config: S3Config, options: S3StoreOptions = {}) {
    const bucket = required('S3_BUCKET', config.bucket);
    const accessKey = required('S3_ACCESS_KEY', config.accessKey);
    const secretKey = required('S3_SECRET_KEY', config.secretKey);
    // No endpoint: AWS itself, virtual-host style unless told otherwise.
    const endpoint = config.endpoint ?? (config.region === 'us-east-1' ? 'https://s3.amazonaws.com' : `https://s3.${config.region}.amazonaws.com`);
    this.client = new S3Client({
      endpoint: new URL(endpoint),
      region: config.region,
      bucket,
      accessKey,
      secretKey,
      pathStyle: config.forcePathStyle,
    });
    this.prefix = config.prefix;
    this.partBytes = config.partBytes;
    this.region = config.region;
    this.uploads = new S3Uploads({
      client: this.client,
      prefix: this.prefix,
      partBytes: this.partBytes,
      expiryMs: options.uploadExpiryMs ?? 24 * 3600_000,
      tailCacheBytes: options.tailCacheBytes ?? 8 * this.partBytes,
      stat: (id) => this.stat(id),
    });
  }

  /** Checks that the bucket answers with these credentials; creates it when missing. */
  async open(): Promise<void> {
    if (!(await this.client.bucketExists())) await this.client.createBucket(this.region);
  }

  createWriter(meta: NewFileMeta, options: WriterOptions = {}): FileWriter {
    const id = newFileId();
    const target = { client: this.client, dataKey: this.dataKey(id), recordKey: this.recordKey(id), partBytes: this.partBytes };
    return new MultipartFileWriter(id, target, meta, options.maxBytes ?? Infinity);
  }

  async stat(id: string): Promise<FileRecord | null> {
    if (!isFileId(id)) return null;
    const text = await this.client.getObjectText(this.recordKey(id), MAX_RECORD_BYTES);
    return text === null ? null : parseRecord(text, id);
  }

  async read(id: string, range?: ByteRange): Promise<Readable> {
    if (!isFileId(id)) throw new NotFoundError(`No file ${id}`);
    return this.client.getObject(this.dataKey(id), range);
  }

  async delete(id: string): Promise<boolean> {
    if (!isFileId(id)) return false;
    // S3 answers 204 whether or not a key existed: ask first, so the answer means something.
    const existed = (await this.client.headObject(this.recordKey(id))) !== null;
    await this.client.deleteObject(this.recordKey(id));
    await this.client.deleteObject(this.dataKey(id));
    return existed;
  }

  async list(): Promise<FileRecord[]> {
    const ids: string[] = [];
    for await (const object of this.client.listObjects(this.prefix)) {
      const name = object.key.slice(this.prefix.length);
      if (name.endsWith('.json') && isFileId(name.slice(0, -5))) ids.push(name.slice(0, -5));
    }
    const records: FileRecord[] = [];
    for (let i = 0; i < ids.length; i += LIST_CONCURRENCY) {
      // A record deleted between the listing and its read is simply gone.
      const batch = await Promise.all(ids.slice(i, i + LIST_CONCURRENCY).map((id) => this.stat(id)));
      for (const r of batch) if (r !== null) records.push(r);
    }
    return records.sort((a, b) => (a.created < b.created ? -1 : a.created > b.created ? 1 : a.id < b.id ? -1 : 1));
  }

  async freeBytes(): Promise<null> {
    return null;
  }

  async close(): Promise<void> {
    this.uploads.sessions.clear();
    this.client.close();
  }

  // Resumable uploads: storage/s3/resumable-store.ts.
  get maxUploadBytes(): number {
    return this.uploads.maxUploadBytes;
  }
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

  /** Documents: `<prefix>.sluice/<kind>/<id>.json`, one small object each (PutObject replaces it whole). */
  async putDocument(kind: string, id: string, value: unknown): Promise<void> {
    checkDocumentName(kind, id);
    await this.client.putObject(this.documentKey(kind, id), Buffer.from(`${JSON.stringify(value)}\n`), { contentType: 'application/json' });
  }

  async getDocument(kind: string, id: string): Promise<unknown> {
    checkDocumentName(kind, id);
    const text = await this.client.getObjectText(this.documentKey(kind, id), MAX_DOCUMENT_BYTES);
    return text === null ? null : parseDocument(text, kind, id);
  }

  async listDocuments(kind: string): Promise<unknown[]> {
    checkDocumentName(kind, null);
    const prefix = `${this.prefix}${DOCUMENTS_PREFIX}${kind}/`;
    const ids: string[] = [];
    for await (const object of this.client.listObjects(prefix)) {
      const name = object.key.slice(prefix.length);
      if (name.endsWith('.json') && !name.includes('/')) ids.push(name.slice(0, -5));
    }
    const documents: unknown[] = [];
    for (let i = 0; i < ids.length; i += LIST_CONCURRENCY) {
      // A document deleted between the listing and its read is simply gone.
      const batch = await Promise.all(ids.slice(i, i + LIST_CONCURRENCY).map((id) => this.getDocument(kind, id)));
      for (const d of batch) if (d !== null) documents.push(d);
    }
    return documents;
  }

  async deleteDocument(kind: string, id: string): Promise<void> {
    checkDocumentName(kind, id);
    await this.client.deleteObject(this.documentKey(kind, id));
  }

  private documentKey(kind: string, id: string): string {
    return `${this.prefix}${DOCUMENTS_PREFIX}${kind}/${id}.json`;
  }

  private dataKey(id: string): string {
    return `${this.prefix}${id}`;
  }

  private recordKey(id: string): string {
    return `${this.prefix}${id}.json`;
  }
}

function required(setting: string, value: string | null): string {
  if (value === null || value === '') throw new ConfigError(setting, 'is required with STORE=s3');
  return value;
}
