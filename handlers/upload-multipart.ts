import { finished } from 'node:stream/promises';
import type { RequestContext } from '../lib/context.js';
import { LimitExceededError } from '../lib/errors.js';
import type { MultipartEvent, PartInfo } from '../multipart/events.js';
import { charsetDecoder, parseParameterized } from '../multipart/header-params.js';
import { MultipartParser } from '../multipart/parser.js';
import { pumpBody } from '../storage/body-pump.js';
import type { FileRecord, FileWriter } from '../storage/store.js';
import { parserOptions } from './multipart-options.js';
import { fileLimit, requestBodyLimit } from './upload-limits.js';
import type { UploadResult } from './upload.js';

/**
 * Files finishing (flush, fdatasync, close) while the next part is already being received.
 * Bounded, so a request of thousands of small files keeps a handful of descriptors open.
 */
const MAX_FINISHING = 8;
/** Files committed at once at the end of a request (see commitAll). */
const MAX_COMMITTING = 8;

/** A field's bytes, decoded once the whole body is in (a `_charset_` field may come last). */
interface ReceivedField {
  readonly name: string;
  readonly value: Buffer;
  /** The charset parameter of the part's Content-Type, if any. */
  readonly charset: string | null;
}

/** RFC 7578 4.6: a field of this name holds the charset of the fields that do not name one. */
const CHARSET_FIELD = '_charset_';

/**
 * Receives a multipart/form-data body: each file part streams into its own writer (with
 * backpressure: a slow disk stops the parser, which stops reading the socket), fields are
 * collected and decoded at the end (see decodeFields). Files become visible only after the close delimiter, all together; on any
 * failure every writer of the request is aborted, so nothing of it stays behind.
 */
export async function receiveMultipart(ctx: RequestContext, boundary: string): Promise<UploadResult> {
  const { store, config } = ctx;
  const maxFileBytes = fileLimit(ctx);
  const writers: FileWriter[] = [];
  const finishing: Array<Promise<void>> = [];
  const fields: ReceivedField[] = [];
  let fieldBytesTotal = 0;
  /**
   * Set once the request failed. The body stops as soon as anything fails, while `consume` may
   * still hold a batch of events; it must not open another file for it.
   */
  let failed = false;
  let consuming: Promise<void> = Promise.resolve();

  async function consume(batches: AsyncIterable<MultipartEvent[]>): Promise<void> {
    let part: PartInfo | null = null;
    let writer: FileWriter | null = null;
    let fieldChunks: Buffer[] = [];
    for await (const batch of batches) for (const event of batch) {
      if (failed) return;
      switch (event.type) {
        case 'part':
          part = event.part;
          fieldChunks = [];
          // Fields get no writer; an empty file input (`filename=""`) only once it carries data.
          writer = part.filename === null || part.filename === '' ? null : openWriter(part);
          break;
        case 'data':
          if (part === null) break;
          if (part.filename === null) {
            fieldBytesTotal += event.data.length;
            if (fieldBytesTotal > config.maxTotalFieldBytes) {
              throw new LimitExceededError('FIELDS_TOO_LARGE', `Field values add up to more than ${config.maxTotalFieldBytes} bytes`, config.maxTotalFieldBytes);
            }
            fieldChunks.push(event.data);
            break;
          }
          writer ??= openWriter(part);
          if (!writer.write(event.data)) await drained(writer);
          break;
        case 'part-end':
          if (part?.filename === null) {
            fields.push({ name: part.name, value: Buffer.concat(fieldChunks), charset: charsetOf(part.contentType) });
          } else if (writer !== null) {
            writer.end();
            const finish = finished(writer);
            finish.catch(() => {}); // awaited below; a failure meanwhile must not be an unhandled rejection
            finishing.push(finish);
            if (finishing.length >= MAX_FINISHING) await finishing.shift();
          }
          part = null;
          writer = null;
          fieldChunks = [];
          break;
      }
    }
  }

  function openWriter(part: PartInfo): FileWriter {
    if (failed) throw new Error('upload already failed');
    const writer = store.createWriter(
      { field: part.name, filename: part.filename === '' ? null : part.filename, contentType: part.contentType ?? 'application/octet-stream' },
      { maxBytes: maxFileBytes },
    );
    // A write error (ENOSPC) may come while nobody waits on this writer: keep it from being
    // an uncaught 'error' event. It stays in `writer.errored`, and the next write, the drain
    // wait or the finish wait rejects with it.
    writer.on('error', () => {});
    writers.push(writer);
    return writer;
  }

  const parser = new MultipartParser(parserOptions(config, boundary, maxFileBytes));
  // The request aborted: the parts stop too (consume may be waiting for the parser's next batch).
  const onAbort = (): void => void parser.destroy(ctx.signal.reason as Error);
  ctx.signal.addEventListener('abort', onAbort, { once: true });
  try {
    // The parts are taken as the parser gives them; a failure there (a limit) stops the body.
    const consumeFailed = new AbortController();
    consuming = consume(parser);
    consuming.catch((err: unknown) => consumeFailed.abort(err));
    const { end } = await pumpBody(ctx.req, parser, { limit: config.maxRequestBytes, signals: [ctx.signal, consumeFailed.signal], digest: null });
    if (end.kind === 'over') throw requestBodyLimit(config).error();
    if (end.kind !== 'ended') throw end.error;
    parser.end();
    await consuming;
    await Promise.all(finishing);
    const files = await commitAll(writers);
    return { files, fields: decodeFields(fields) };
  } catch (err) {
    failed = true;
    // Destroying the parser wakes a `consume` waiting for its next batch, aborting the writers
    // one waiting on a writer; once it has returned no writer can appear any more, and a second
    // pass catches any it opened.
    parser.destroy();
    await Promise.all(writers.map((w) => w.abort()));
    await consuming.catch(() => {});
    await Promise.all(writers.map((w) => w.abort()));
    // Every finish promise has settled (the writers are destroyed); keep none unhandled.
    await Promise.allSettled(finishing);
    throw err;
  } finally {
    ctx.signal.removeEventListener('abort', onAbort);
  }
}

/** The `charset` parameter of a part's Content-Type, or null. */
function charsetOf(contentType: string | null): string | null {
  return contentType === null ? null : (parseParameterized(contentType)?.params.charset ?? null);
}

/**
 * Field values as text (RFC 7578 4.4, 4.6): in the charset the part's Content-Type names, else
 * the one a `_charset_` field names (browsers fill it in for forms with another accept-charset),
 * else UTF-8. An unknown charset falls back to UTF-8; bytes invalid in the charset become U+FFFD.
 */
function decodeFields(fields: readonly ReceivedField[]): Array<{ name: string; value: string }> {
  const named = fields.find((f) => f.name === CHARSET_FIELD);
  const fallback = named === undefined ? null : named.value.toString('latin1').trim();
  return fields.map(({ name, value, charset }) => {
    // The _charset_ field itself names a charset: ASCII, read as UTF-8, not in the charset it names.
    const label = charset ?? (name === CHARSET_FIELD ? null : fallback) ?? 'utf-8';
    const decoder = charsetDecoder(label, false) ?? charsetDecoder('utf-8', false);
    return { name, value: decoder === null ? value.toString('utf8') : decoder.decode(value) };
  });
}

/**
 * Commits several files at once (each is a few small file-system calls, each a round trip
 * through libuv's thread pool): a request of thousands of small files spent most of its time
 * here one file after another. Records come back in the order of the parts. On a failure the
 * caller aborts every writer, committed ones included, so the request still leaves nothing.
 */
async function commitAll(writers: readonly FileWriter[]): Promise<FileRecord[]> {
  const files: FileRecord[] = new Array<FileRecord>(writers.length);
  let next = 0;
  let failed = false;
  const worker = async (): Promise<void> => {
    while (!failed && next < writers.length) {
      const i = next++;
      try {
        files[i] = await (writers[i] as FileWriter).commit();
      } catch (err) {
        failed = true; // the others start no further commits
        throw err;
      }
    }
  };
  const workers = Array.from({ length: Math.min(MAX_COMMITTING, writers.length) }, worker);
  // allSettled: no commit may still be running when the caller starts aborting.
  const results = await Promise.allSettled(workers);
  for (const r of results) if (r.status === 'rejected') throw r.reason;
  return files;
}

/** Waits for 'drain', or rejects if the writer fails or closes first. Plain listeners: this runs per chunk. */
function drained(writer: FileWriter): Promise<void> {
  if (writer.destroyed) return Promise.reject(writer.errored ?? new Error('file writer closed'));
  return new Promise((resolve, reject) => {
    const done = (err?: Error): void => {
      writer.off('drain', onDrain);
      writer.off('error', onError);
      writer.off('close', onClose);
      if (err) reject(err);
      else resolve();
    };
    const onDrain = (): void => done();
    const onError = (err: Error): void => done(err);
    const onClose = (): void => done(writer.errored ?? new Error('file writer closed'));
    writer.on('drain', onDrain);
    writer.on('error', onError);
    writer.on('close', onClose);
  });
}
