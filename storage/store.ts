import type { Readable, Writable } from 'node:stream';
import type { DocumentStore, UploadStore } from './uploads.js';

/** What the server knows of a stored file. Kept as a sidecar (local) or object metadata (S3). */
export interface FileRecord {
  /** Server-made id: 128 random bits, base64url (22 characters). Never derived from client input. */
  readonly id: string;
  /** The form field the file came in, or null for a raw upload / fetch. */
  readonly field: string | null;
  /** The client's filename, metadata only; never a path. Null when none was given. */
  readonly filename: string | null;
  readonly contentType: string;
  readonly size: number;
  /** Lower-case hex SHA-256 of the stored bytes. */
  readonly sha256: string;
  /** ISO 8601 time the file was committed. */
  readonly created: string;
  /** Files made by resumable uploads only: the client's other `Upload-Metadata` pairs (maybe none). */
  readonly metadata?: Readonly<Record<string, string>>;
  /** A final upload's partial uploads, in order (tus concatenation). */
  readonly parts?: readonly string[];
}

export interface NewFileMeta {
  readonly field: string | null;
  readonly filename: string | null;
  readonly contentType: string;
}

export interface WriterOptions {
  /** Fail with `FILE_TOO_LARGE` (413) once more than this many bytes are written. */
  readonly maxBytes?: number;
}

/**
 * A file being written. Data goes in through the ordinary `Writable` interface (respect
 * `write()`'s return value). After `'finish'` the bytes are durable but invisible; `commit()`
 * makes the file visible and returns its record. `abort()` removes everything this writer
 * wrote (temporary or committed) and is safe to call at any time, any number of times.
 */
export interface FileWriter extends Writable {
  readonly id: string;
  /** Bytes accepted so far. */
  readonly bytesWritten: number;
  /** Lower-case hex SHA-256 of the bytes, known once the writer has finished; null before. */
  readonly sha256: string | null;
  commit(): Promise<FileRecord>;
  abort(): Promise<void>;
}

/** An inclusive byte range, already validated against the file size. */
export interface ByteRange {
  readonly start: number;
  readonly end: number;
}

/** Files, plus resumable uploads (`uploads.ts`) and sluice's own small documents, whatever the backend. */
export interface Store extends UploadStore, DocumentStore {
  /** Prepares whatever the store needs (create the directory, sweep leftovers of a crash). */
  open(): Promise<void>;
  createWriter(meta: NewFileMeta, options?: WriterOptions): FileWriter;
  /** The record, or null when the id is unknown. Malformed ids are simply unknown. */
  stat(id: string): Promise<FileRecord | null>;
  /** The file's bytes (or one range of them). Rejects with NotFoundError for an unknown id. */
  read(id: string, range?: ByteRange): Promise<Readable>;
  /** True when something was deleted. */
  delete(id: string): Promise<boolean>;
  list(): Promise<FileRecord[]>;
  /** Free bytes for new files, or null when the store cannot tell (S3). */
  freeBytes(): Promise<number | null>;
  close(): Promise<void>;
}
