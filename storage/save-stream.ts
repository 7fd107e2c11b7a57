import { finished } from 'node:stream/promises';
import type { Readable } from 'node:stream';
import { pumpBody } from './body-pump.js';
import type { FileRecord, NewFileMeta, Store } from './store.js';

export interface SaveOptions {
  /** The file's limit: the writer fails with its own error past it. */
  readonly maxBytes?: number;
  /** The body's limit (MAX_REQUEST_BYTES), and the error past it. */
  readonly bodyLimit?: { readonly bytes: number; readonly error: () => Error };
  readonly signal?: AbortSignal;
  /** Checked after the bytes are durable and before they become visible (Content-Digest). */
  readonly verify?: (written: { size: number; sha256: string }) => void;
}

/**
 * Streams one body into the store as one file: temp-then-commit, sha256 and size on the way,
 * the limits enforced while streaming. On any failure the file is removed and the error
 * rethrown. A Readable body (the request) is never destroyed: when the save fails it is left
 * paused, the rest of it the caller's. Used by raw uploads and `POST /fetch`.
 */
export async function saveStream(store: Store, source: Readable | AsyncIterable<Buffer>, meta: NewFileMeta, options: SaveOptions = {}): Promise<FileRecord> {
  const writer = store.createWriter(meta, { maxBytes: options.maxBytes });
  try {
    const { end } = await pumpBody(source, writer, { limit: options.bodyLimit?.bytes ?? Infinity, signals: [options.signal], digest: null });
    if (end.kind === 'over') throw (options.bodyLimit as NonNullable<SaveOptions['bodyLimit']>).error();
    if (end.kind !== 'ended') throw end.error;
    writer.end();
    // The final sync may take a while: a client gone meanwhile still fails the save.
    const signal = options.signal;
    await finished(writer, signal === undefined ? {} : { signal }).catch((err: unknown) => {
      throw signal?.aborted === true ? signal.reason : err;
    });
    options.verify?.({ size: writer.bytesWritten, sha256: writer.sha256 as string });
    return await writer.commit();
  } catch (err) {
    await writer.abort();
    throw err;
  }
}
