import type { Readable } from 'node:stream';
import type { FileRecord, NewFileMeta } from './store.js';

/**
 * Resumable uploads in the store (tus 1.0, draft-ietf-httpbis-resumable-upload): the one set of
 * operations both protocols are parsed into, whatever the store. State lives beside the bytes (a
 * sidecar on disk, small objects on S3), never only in a process, so a restart or another
 * instance continues an upload. The protocol layer (`resumable/`) checks headers and renders
 * answers; everything here is about bytes, offsets and durability.
 */

/** Digests a client may send for one PATCH body (tus checksum extension, `Upload-Checksum`). */
export type ChecksumAlgorithm = 'sha1' | 'md5' | 'sha256' | 'sha512';

/** What the client says of a new resumable upload. */
export interface NewUpload {
  /** The whole upload's length in bytes; null while deferred (tus `Upload-Defer-Length`, IETF without a known length). */
  readonly length: number | null;
  /** Name and type as for any file (`field` is null); taken from the `filename`/`filetype` metadata keys. */
  readonly meta: NewFileMeta;
  /** The other `Upload-Metadata` pairs, decoded; kept in the file's record under `metadata`. */
  readonly metadata: Readonly<Record<string, string>>;
  /** tus concatenation: a partial upload never becomes a file of its own; it waits to be part of a final upload. */
  readonly partial: boolean;
  /**
   * IETF draft (-05 §4, "Upload-Complete"): the upload completes only on an append with
   * `last: true`; reaching the length is not enough (the length is then a bound). Absent or
   * false (tus): it completes when the offset reaches the length.
   */
  readonly completesOnLast?: boolean;
}

/** A resumable upload as the store has it. */
export interface UploadState {
  readonly id: string;
  /** Bytes the store holds durably (with FSYNC on: synced; on S3: acknowledged). Never goes backwards. */
  readonly offset: number;
  /** Null while deferred. */
  readonly length: number | null;
  readonly meta: NewFileMeta;
  readonly metadata: Readonly<Record<string, string>>;
  readonly partial: boolean;
  /** ISO 8601 time of creation. */
  readonly created: string;
  /**
   * ISO 8601 time after which the upload is gone unless more bytes arrive (UPLOAD_EXPIRY_MS after
   * the last byte received); null once a non-partial upload is complete (it is a file). A complete
   * partial upload keeps expiring until a final upload takes it.
   */
  readonly expires: string | null;
  /** The upload is complete. A complete non-partial upload is the stored file of the same id. */
  readonly complete: boolean;
  /** As created (see NewUpload). */
  readonly completesOnLast: boolean;
  /** A final upload's partial uploads, in order (tus concatenation: HEAD echoes `Upload-Concat`); null otherwise. */
  readonly parts: readonly string[] | null;
}

export interface AppendOptions {
  /**
   * The client's `Upload-Offset`. Unless it equals the durable offset nothing is written and the
   * append rejects with `OffsetMismatchError` (409), which carries the true offset.
   */
  readonly offset: number;
  /** Aborts the append; what was taken so far is still made durable and counted (see appendUpload). */
  readonly signal?: AbortSignal;
  /** Sets a deferred length with this append (tus `Upload-Length` on a PATCH). */
  readonly length?: number;
  /** This body ends the upload (IETF `Upload-Complete: ?1`): the length becomes offset + the body's bytes. */
  readonly last?: boolean;
  /**
   * tus checksum extension: the digest of this body. On a mismatch, or a body cut before its end,
   * the body's bytes are discarded, the offset stays where it was, and the append rejects with
   * `ChecksumMismatchError` (460) or the cut's error.
   */
  readonly checksum?: { readonly algorithm: ChecksumAlgorithm; readonly digest: Buffer };
  /**
   * MAX_FILE_BYTES: an upload never grows past it. A body that would is rejected with
   * `FILE_TOO_LARGE` (413) and, as with a body past the length (`UPLOAD_LENGTH_EXCEEDED`, 413),
   * none of its bytes past the last durable offset are kept.
   */
  readonly maxBytes?: number;
  /**
   * Called when this append completes a non-partial upload, with the size and sha256 of every
   * byte, before it becomes a file (fetch jobs: the digest a model hub publishes). If it throws,
   * nothing becomes visible, the bytes stay durable and counted (offset = length, not complete),
   * and the append rejects with that error.
   */
  readonly verify?: (whole: { readonly size: number; readonly sha256: string }) => void | Promise<void>;
  /** Told the length of every chunk of the body as the store takes it (the bytes-received metric). */
  readonly onChunk?: (bytes: number) => void;
}

export interface AppendResult {
  readonly upload: UploadState;
  /** The stored file, when this append (or concatenation) completed a non-partial upload. */
  readonly file: FileRecord | null;
}

export interface CreateUploadOptions {
  /**
   * MAX_PENDING_UPLOADS: creation fails with `TOO_MANY_PENDING_UPLOADS` (503, Retry-After)
   * while this many uploads are pending (incomplete ones, and complete partial ones that no final
   * upload has taken yet: they hold disk space just the same).
   */
  readonly maxPending?: number;
  /**
   * An id the caller made with `newFileId()` (fetch jobs: the job's id is the upload's and the
   * file's). Rejects with `UPLOAD_EXISTS` (409) when an upload or a file has it already.
   */
  readonly id?: string;
}

/** Resumable uploads, the part of a `Store` that the protocol layer and fetch jobs use. */
export interface UploadStore {
  /**
   * The largest upload this store can hold, when it has a bound of its own (S3: 10,000 parts of
   * S3_PART_BYTES); undefined when only MAX_FILE_BYTES and the space left bound it. The protocol
   * layer advertises and enforces the smaller of the two (`Tus-Max-Size`, `Upload-Limit`, 413).
   */
  readonly maxUploadBytes?: number;
  /** A new, empty upload, durable before this resolves; it expires after UPLOAD_EXPIRY_MS without bytes. */
  createUpload(init: NewUpload, options?: CreateUploadOptions): Promise<UploadState>;
  /**
   * The upload's state, or null when it is unknown, terminated or expired. A completed
   * non-partial upload is answered from its file (`complete: true`, offset = length; only files
   * that a resumable upload made, whose record has `metadata`). No side effect. While an append
   * runs, the offset is the durable one (the append's last checkpoint).
   */
  getUpload(id: string): Promise<UploadState | null>;
  /**
   * Quick takeover: ends an append on `id` that is still running in this process (a dead
   * connection the server has not noticed yet), waits until what it took is durable, and returns
   * the state, within a second. Null when the upload does not exist. An append waiting for its
   * turn on the same upload is superseded too: the newest request wins.
   */
  interruptUpload(id: string): Promise<UploadState | null>;
  /**
   * Appends `body` at `options.offset`, through the same writer as every other upload (hash,
   * batches, O_DIRECT, limits). One append per upload at a time: an append that finds another
   * running interrupts it first (as interruptUpload), then checks the offset. Resolves once the
   * bytes are durable and the state records them; when the offset reaches the length the upload
   * completes (a non-partial one becomes the file of the same id, with the sha256 of every byte).
   * When `body` fails or the signal aborts, the bytes already taken are made durable and counted
   * before it rejects with that error: the client re-sends only what was still in flight. An
   * append ended by a newer request rejects with `UPLOAD_INTERRUPTED` (409), its bytes counted
   * the same way. A Readable `body` (the request itself) is only read, never destroyed: when the
   * append stops early it is left paused and the rest of it is the caller's.
   * Errors: `OFFSET_MISMATCH` 409, `UPLOAD_COMPLETE` 400, `UPLOAD_LENGTH_MISMATCH` 400,
   * `UPLOAD_LENGTH_EXCEEDED` 413, `FILE_TOO_LARGE` 413, `CHECKSUM_MISMATCH` 460, NotFound 404.
   */
  appendUpload(id: string, body: Readable | AsyncIterable<Buffer>, options: AppendOptions): Promise<AppendResult>;
  /**
   * tus concatenation: a new upload made of complete partial uploads, in the order given,
   * complete at once (a file with its own id and the sha256 of all its bytes). The partial
   * uploads are removed once the file is committed. A part that is unknown rejects with
   * `UPLOAD_NOT_FOUND` (404), not partial `UPLOAD_NOT_PARTIAL` (400), not complete
   * `UPLOAD_INCOMPLETE` (400).
   */
  concatenateUploads(partIds: readonly string[], init: Omit<NewUpload, 'length' | 'partial'>): Promise<AppendResult>;
  /**
   * Termination: interrupts a running append (as interruptUpload), then removes every byte and
   * the state of an incomplete upload (or of a complete partial one). True when one existed. A
   * completed non-partial upload is a file: this leaves it alone and answers false (`delete(id)`
   * removes files).
   */
  deleteUpload(id: string): Promise<boolean>;
  /** Pending uploads (incomplete ones, and complete partial ones), in no particular order (fetch jobs after a restart). */
  listUploads(): Promise<UploadState[]>;
  /** Removes the uploads whose expiry has passed, bytes and state; resolves with how many. */
  expireUploads(now?: Date): Promise<number>;
}

/**
 * Small JSON documents sluice keeps for itself beside the files (fetch jobs): a sidecar on disk,
 * an object under S3_PREFIX. `kind` and `id` are sluice's own (never client text); ids are file ids.
 */
export interface DocumentStore {
  putDocument(kind: string, id: string, value: unknown): Promise<void>;
  /** Null when there is none. */
  getDocument(kind: string, id: string): Promise<unknown>;
  listDocuments(kind: string): Promise<unknown[]>;
  deleteDocument(kind: string, id: string): Promise<void>;
}
