import { pipeline } from 'node:stream/promises';
import type { Readable } from 'node:stream';
import type { FileRecord, NewFileMeta, Store } from './store.js';

export interface SaveOptions {
  readonly maxBytes?: number;
  readonly signal?: AbortSignal;
  /** Checked after the bytes are durable and before they become visible (Content-Digest). */
  readonly verify?: (written: { size: number; sha256: string }) => void;
}

/**
 * Streams one body into the store as one file: temp-then-commit, sha256 and size on the way,
 * the limit enforced while streaming. On any failure the file is removed and the error rethrown.
 * Used by raw uploads and `POST /fetch`.
 */
export async function saveStream(store: Store, source: Readable | AsyncIterable<Buffer>, meta: NewFileMeta, options: SaveOptions = {}): Promise<FileRecord> {
  const writer = store.createWriter(meta, { maxBytes: options.maxBytes });
  try {
    await pipeline(source, writer, { signal: options.signal });
    options.verify?.({ size: writer.bytesWritten, sha256: writer.sha256 as string });
    return await writer.commit();
  } catch (err) {
    await writer.abort();
    throw err;
  }
}
