import { createHash } from 'node:crypto';
import type { Readable } from 'node:stream';
import { finished } from 'node:stream/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  ChecksumMismatchError,
  LimitExceededError,
  MalformedRequestError,
  OffsetMismatchError,
  TooManyPendingUploadsError,
  UploadCompleteError,
  UploadExistsError,
  UploadLengthExceededError,
  UploadLengthMismatchError,
} from '../../lib/errors.js';
import { pumpBody } from '../body-pump.js';
import { isFileId, newFileId } from '../file-id.js';
import type { FileRecord } from '../store.js';
import { fileUploadState, uploadNotFound } from '../upload-states.js';
import { UploadTurns, type Turn } from '../upload-turns.js';
import type { AppendOptions, AppendResult, CreateUploadOptions, NewUpload, UploadState, UploadStore } from '../uploads.js';
import type { S3Client } from './client.js';
import { hasS3Code } from './errors.js';
import { MAX_PARTS, safeContentType } from './multipart-writer.js';
import { completeFile, completePartial, removeUploadObjects, type ReadBackStats } from './resumable-complete.js';
import { concatenate } from './resumable-concat.js';
import { UploadKeys } from './resumable-keys.js';
import { Sessions, type Session } from './resumable-sessions.js';
import { answerOf, lookUpUpload, stateOf, type Found } from './resumable-lookup.js';
import { serializeDoc, type UploadDoc } from './resumable-state.js';
import { sweepUploads } from './resumable-sweep.js';
import type { UploadView } from './resumable-view.js';
import { ResumableWriter } from './resumable-writer.js';

export interface S3UploadsOptions {
  readonly client: S3Client;
  /** S3_PREFIX. */
  readonly prefix: string;
  /** S3_PART_BYTES when an upload is created (each upload keeps its own). */
  readonly partBytes: number;
  /** UPLOAD_EXPIRY_MS: an upload without a new byte for this long expires. */
  readonly expiryMs: number;
  /** Bytes of idle uploads' tails kept in memory between PATCHes (all uploads together). */
  readonly tailCacheBytes: number;
  /** The record of a stored file. */
  readonly stat: (id: string) => Promise<FileRecord | null>;
}

/**
 * Resumable uploads on S3, shared by every sluice instance on the bucket with no lock service
 * and nothing on local disk. An upload is an S3 multipart upload plus small objects under
 * `<prefix>.sluice/uploads/` (see `resumable-keys.ts`): its state, written once, and the tail of
 * the last PATCH as pieces. The offset is derived from what S3 lists (`resumable-view.ts`), so
 * any instance answers it truthfully and continues the upload; parts are numbered by offset, so a
 * second writer of the same bytes writes the same part. In this process, one request at a time
 * per upload (`UploadTurns`: a newer one ends the running append), and per upload a `Session`
 * that saves S3 requests and the re-hash while the upload stays here.
 */
export class S3Uploads implements UploadStore {
  readonly keys: UploadKeys;
  readonly sessions: Sessions;
  /** What reading files back for their sha256 cost (uploads that moved between processes, concatenation). */
  readonly readBack: ReadBackStats = { files: 0, bytes: 0, ms: 0 };
  private readonly o: S3UploadsOptions;
  private readonly turns = new UploadTurns();

  constructor(options: S3UploadsOptions) {
    this.o = options;
    this.keys = new UploadKeys(`${options.prefix}.sluice/uploads/`, options.prefix);
    this.sessions = new Sessions(options.tailCacheBytes);
  }

  /** S3 requests sent by this store so far, by operation (the client is the store's: files' requests count too). */
  get requests(): ReadonlyMap<string, number> {
    return this.o.client.requestCounts;
  }

  /** The largest upload the part size allows: S3 takes 10,000 parts. */
  get maxUploadBytes(): number {
    return this.o.partBytes * MAX_PARTS;
  }

  async createUpload(init: NewUpload, options: CreateUploadOptions = {}): Promise<UploadState> {
    const { client } = this.o;
    if (init.length !== null && !isCount(init.length)) throw new MalformedRequestError('BAD_UPLOAD_LENGTH', `Upload length ${init.length} is not a byte count`);
    if (init.length !== null && init.length > this.maxUploadBytes) throw tooLarge(this.maxUploadBytes);
    const id = options.id ?? newFileId();
    if (!isFileId(id)) throw new MalformedRequestError('BAD_UPLOAD_ID', 'An upload id is 22 base64url characters');
    // Counted from a listing: instances creating at the same moment may pass the limit by a few.
    if (options.maxPending !== undefined && (await this.pendingIds()).length >= options.maxPending) throw new TooManyPendingUploadsError(options.maxPending);
    if (options.id !== undefined && ((await client.headObject(this.keys.state(id))) !== null || (await this.o.stat(id)) !== null)) throw new UploadExistsError(id);
    const dataKey = init.partial ? this.keys.partialData(id) : this.keys.fileData(id);
    const uploadId = await client.createMultipartUpload(dataKey, { contentType: safeContentType(init.meta.contentType) });
    const doc: UploadDoc = {
      v: 1,
      id,
      uploadId,
      dataKey,
      partBytes: this.o.partBytes,
      length: init.length,
      meta: init.meta,
      metadata: init.metadata,
      partial: init.partial,
      completesOnLast: init.completesOnLast ?? false,
      created: new Date().toISOString(),
    };
    let etag: string | null;
    try {
      const put = await client.putObjectIfAbsent(this.keys.state(id), serializeDoc(doc), { contentType: 'application/json' });
      if (!put.written) throw new UploadExistsError(id);
      etag = put.etag;
    } catch (err) {
      await client.abortMultipartUpload(dataKey, uploadId).catch(() => false);
      throw err;
    }
    this.sessions.forget(id);
    const session = this.sessions.get(id);
    session.doc = doc;
    session.docEtag = etag;
    session.chain = doc.partial ? null : { hash: createHash('sha256'), at: 0 };
    // tus: an upload of length 0 is complete as soon as it exists.
    if (init.length === 0 && !doc.completesOnLast) {
      const turn = await this.turns.take(id, false);
      try {
        return (await this.complete(session, doc, 0, undefined)).upload;
      } finally {
        turn.release();
      }
    }
    return stateOf(doc, 0, doc.length, Date.now() + this.o.expiryMs, false);
  }

  async getUpload(id: string): Promise<UploadState | null> {
    if (!isFileId(id)) return null;
    const found = await this.lookup(id, this.sessions.peek(id) ?? null);
    if (found === null) return this.completedUpload(id);
    return answerOf(found, this.o.expiryMs);
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
      const session = this.sessions.get(id);
      const found = await this.lookup(id, session);
      if (found === null) {
        if ((await this.completedUpload(id)) !== null) throw new UploadCompleteError(id);
        throw uploadNotFound(id);
      }
      return await this.append(turn, session, found, body, options);
    } catch (err) {
      // The multipart upload went away under this append: another instance completed the
      // upload (a dead PATCH's twin finishing first), or it was terminated.
      if (!isUploadGone(err)) throw err;
      const done = await this.completedElsewhere(id);
      if (done !== null) return done;
      throw uploadNotFound(id);
    } finally {
      turn.release();
    }
  }

  /**
   * The upload, completed by another request or instance, as an append's result (with its file
   * once the completer wrote the record, which it is given a few seconds for); null when it is gone.
   */
  private async completedElsewhere(id: string): Promise<AppendResult | null> {
    this.sessions.forget(id);
    let last: UploadState | null = null;
    for (let waited = 0; waited < COMPLETER_WAIT_MS; waited += 100) {
      const record = await this.o.stat(id);
      if (record !== null) return { upload: fileUploadState(record), file: record };
      const found = await this.lookup(id, null);
      last = found === null ? null : answerOf(found, this.o.expiryMs);
      if (last === null) return null;
      if (last.partial && last.complete) return { upload: last, file: null };
      await sleep(100);
    }
    return last?.complete === true ? { upload: last, file: null } : null;
  }

  private async append(turn: Turn, session: Session, found: Found, body: Readable | AsyncIterable<Buffer>, options: AppendOptions): Promise<AppendResult> {
    const { doc, view } = found;
    if (!view.open) {
      // The multipart upload is complete: a partial upload waiting for its final, or a file
      // whose completion another request (or instance) is finishing.
      if (!doc.partial) await this.finishCompleted(session, doc, view).catch(() => null);
      throw new UploadCompleteError(doc.id);
    }
    // tus core, PATCH: "If the offsets do not match, the Server MUST respond with 409 Conflict
    // without modifying the upload resource."
    if (options.offset !== view.offset) throw new OffsetMismatchError(view.offset, options.offset);
    const start = view.offset;
    const length = await this.lengthFor(doc, view, options);
    const maxBytes = Math.min(options.maxBytes ?? Infinity, this.maxUploadBytes);
    const overError = (): Error => (length !== null ? new UploadLengthExceededError(length) : tooLarge(maxBytes));
    if (start === 0 && session.chain === null && !doc.partial) session.chain = { hash: createHash('sha256'), at: 0 };

    const digest = options.checksum === undefined ? null : createHash(options.checksum.algorithm);
    const writer = new ResumableWriter({ client: this.o.client, keys: this.keys, doc, session }, view, this.sessions.takeTail(session), digest !== null);
    const writerDone = finished(writer).then(
      () => null,
      (err: unknown) => err ?? new Error('upload writer failed'),
    );
    const { end: why } = await pumpBody(body, writer, { limit: (length ?? maxBytes) - start, signals: [options.signal], takeover: { signal: turn.signal, ...TAKEOVER_DRAIN }, digest, onChunk: options.onChunk });
    if (why.kind !== 'writer') writer.end();
    const writeError = await writerDone;
    try {
      if (writeError !== null) {
        // A part did not reach S3: what the buffer holds may still be kept as a piece.
        if (digest === null) await writer.checkpoint().catch(() => {});
        throw writeError;
      }
      if (digest !== null && options.checksum !== undefined) {
        // tus checksum: a mismatch (or a body cut before its end, which cannot be verified):
        // "the Server MUST NOT append the received data".
        if (why.kind !== 'ended' || !digest.digest().equals(options.checksum.digest)) {
          await writer.discard();
          throw why.kind === 'ended' ? new ChecksumMismatchError() : why.kind === 'over' ? overError() : why.error;
        }
        await writer.promote();
      }
      if (why.kind === 'over') {
        await writer.discard();
        throw overError();
      }
      const end = start + writer.bytesTaken;
      if (why.kind === 'cut') {
        await writer.checkpoint();
        throw why.error;
      }
      let finalLength = length;
      if (options.last === true) {
        if (length !== null && end !== length) {
          await writer.checkpoint();
          throw new UploadLengthMismatchError(`The upload ends at ${end} bytes, not at its length of ${length}`);
        }
        finalLength = end;
      }
      if (finalLength === null || end !== finalLength || (doc.completesOnLast && options.last !== true)) {
        await writer.checkpoint();
        return { upload: stateOf(doc, end, finalLength, Date.now() + this.o.expiryMs, false), file: null };
      }
      // Every byte is in. The final marker first: an instance that finds the upload like this
      // after a crash knows it is to be completed, at this length.
      await this.o.client.putObject(this.keys.final(doc.id, finalLength), Buffer.alloc(0));
      await writer.uploadLastPart();
      session.chain = writer.hashChain;
      return await this.complete(session, doc, finalLength, options.verify);
    } finally {
      session.chain = writer.hashChain;
      const tail = writer.tailCache();
      if (tail !== null) this.sessions.keepTail(session, tail);
      await writer.settle();
    }
  }

  /** The length after this append's `length` option (tus Upload-Length on a PATCH), checked and recorded. */
  private async lengthFor(doc: UploadDoc, view: UploadView, options: AppendOptions): Promise<number | null> {
    if (options.length === undefined) return view.length;
    if (!isCount(options.length)) throw new UploadLengthMismatchError(`Upload length ${options.length} is not a byte count`);
    if (view.length !== null && view.length !== options.length) throw new UploadLengthMismatchError(`The upload's length is ${view.length}, not ${options.length}`);
    if (options.length < view.offset) throw new UploadLengthMismatchError(`Length ${options.length} is below the upload's offset ${view.offset}`);
    const max = Math.min(options.maxBytes ?? Infinity, this.maxUploadBytes);
    if (options.length > max) throw tooLarge(max);
    if (view.length === null) await this.o.client.putObject(this.keys.length(doc.id, options.length), Buffer.alloc(0));
    return options.length;
  }

  /** The upload reached its end: a partial one waits for its final upload; any other becomes the file of the same id. */
  private async complete(session: Session, doc: UploadDoc, length: number, verify: AppendOptions['verify']): Promise<AppendResult> {
    const { client } = this.o;
    if (doc.partial) {
      await completePartial({ client, keys: this.keys, doc, session, length });
      return { upload: stateOf(doc, length, length, Date.now() + this.o.expiryMs, true), file: null };
    }
    const record = await completeFile({ client, keys: this.keys, doc, session, length, chain: session.chain, verify, stats: this.readBack });
    this.sessions.forget(doc.id);
    return { upload: fileUploadState(record), file: record };
  }

  /** A file whose multipart upload is complete but whose record is missing (a completer died): finish it. */
  private async finishCompleted(session: Session, doc: UploadDoc, view: UploadView): Promise<FileRecord | null> {
    if (view.listing.unverified || view.length === null) return null;
    if ((await this.o.client.headObject(doc.dataKey))?.size !== view.length) return null;
    return (await this.complete(session, doc, view.length, undefined)).file;
  }

  async concatenateUploads(partIds: readonly string[], init: Omit<NewUpload, 'length' | 'partial'>): Promise<AppendResult> {
    return concatenate(
      { client: this.o.client, keys: this.keys, turns: this.turns, partBytes: this.o.partBytes, stats: this.readBack, find: (id) => this.lookup(id, null) },
      partIds,
      init,
      (id) => this.sessions.forget(id),
    );
  }

  async deleteUpload(id: string): Promise<boolean> {
    if (!isFileId(id)) return false;
    const turn = await this.turns.take(id, true);
    try {
      const found = await this.lookup(id, this.sessions.get(id));
      if (found === null) return false;
      const { doc, view } = found;
      if (!doc.partial && !view.open) {
        // A file (or one another request is completing) is not an upload any more: `delete(id)`
        // removes files. Bytes the caller's verify() refused are the upload's still: they go.
        if (!view.listing.unverified || (await this.o.stat(id)) !== null) return false;
        await this.o.client.deleteObject(doc.dataKey);
      }
      await this.remove(doc, view.open);
      return true;
    } finally {
      turn.release();
    }
  }

  /** Aborts the multipart upload, then removes every object of the upload, its state last. */
  private async remove(doc: UploadDoc, open: boolean): Promise<void> {
    this.sessions.forget(doc.id);
    if (open) await this.o.client.abortMultipartUpload(doc.dataKey, doc.uploadId);
    await removeUploadObjects(this.o.client, this.keys, doc.id);
  }

  async listUploads(): Promise<UploadState[]> {
    const states: UploadState[] = [];
    const ids = await this.pendingIds();
    for (let i = 0; i < ids.length; i += LIST_CONCURRENCY) {
      const batch = await Promise.all(ids.slice(i, i + LIST_CONCURRENCY).map(async (id) => this.lookup(id, this.sessions.peek(id) ?? null).catch(() => null)));
      for (const found of batch) {
        if (found === null) continue;
        const state = answerOf(found, this.o.expiryMs);
        if (state !== null && !(state.complete && !state.partial)) states.push(state);
      }
    }
    return states;
  }

  async expireUploads(now: Date = new Date()): Promise<number> {
    return sweepUploads(
      {
        client: this.o.client,
        keys: this.keys,
        expiryMs: this.o.expiryMs,
        busy: (id) => this.turns.busy(id),
        find: (id) => this.lookup(id, this.sessions.peek(id) ?? null),
        remove: (doc, open) => this.remove(doc, open),
        finish: async (doc, view) => {
          const turn = await this.turns.take(doc.id, false);
          try {
            const session = this.sessions.get(doc.id);
            if (!view.open) return void (await this.finishCompleted(session, doc, view));
            // Every byte is in but the last part may still be pieces: fold them in, then complete.
            const writer = new ResumableWriter({ client: this.o.client, keys: this.keys, doc, session }, view, this.sessions.takeTail(session), false);
            await writer.uploadLastPart();
            session.chain = writer.hashChain;
            await this.complete(session, doc, view.length as number, undefined);
          } finally {
            turn.release();
          }
        },
      },
      now,
    );
  }

  /** Ids with a state object: every pending upload (complete partial ones included). */
  private async pendingIds(): Promise<string[]> {
    const ids: string[] = [];
    for await (const o of this.o.client.listObjects(this.keys.root, '/')) {
      const id = this.keys.idOf(o.key);
      if (id !== null && o.key === this.keys.state(id)) ids.push(id);
    }
    return ids;
  }

  private lookup(id: string, session: Session | null): Promise<Found | null> {
    return lookUpUpload(this.o.client, this.keys, this.sessions, id, session);
  }

  /** A completed non-partial upload, answered from its file's record. */
  private async completedUpload(id: string): Promise<UploadState | null> {
    const record = await this.o.stat(id);
    return record !== null && record.metadata !== undefined ? fileUploadState(record) : null;
  }
}

/**
 * An append taken over reads on only what its body delivers at once (as the local store does):
 * a dead connection stops within 20 ms, the bytes a cut connection still had in its socket
 * buffers are kept instead of sent again.
 */
const TAKEOVER_DRAIN = { idleMs: 20, maxMs: 250, maxBytes: 16 * 1024 * 1024 };
/** Pending uploads looked at at once by listUploads. */
const LIST_CONCURRENCY = 16;
/** How long an append that lost the race to complete waits for the winner's record. */
const COMPLETER_WAIT_MS = 10_000;

/** S3 says the multipart upload is no more (UploadPart, UploadPartCopy). */
function isUploadGone(err: unknown): boolean {
  return hasS3Code(err, 'NoSuchUpload');
}

function tooLarge(limit: number): LimitExceededError {
  return new LimitExceededError('FILE_TOO_LARGE', `The upload is larger than the limit of ${limit} bytes`, limit);
}

function isCount(n: number): boolean {
  return Number.isSafeInteger(n) && n >= 0;
}

