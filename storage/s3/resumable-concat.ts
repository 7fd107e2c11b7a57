import { createHash } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { BadGatewayError, LimitExceededError, MalformedRequestError, UploadIncompleteError, UploadNotPartialError } from '../../lib/errors.js';
import { isFileId, newFileId } from '../file-id.js';
import { newRecord, serializeRecord } from '../record.js';
import { uploadNotFound } from '../upload-states.js';
import type { UploadTurns, Turn } from '../upload-turns.js';
import type { AppendResult, NewUpload } from '../uploads.js';
import type { CompletedPart, S3Client } from './client.js';
import { MAX_PARTS, safeContentType } from './multipart-writer.js';
import { removeUploadObjects, type ReadBackStats } from './resumable-complete.js';
import type { UploadKeys } from './resumable-keys.js';
import type { UploadDoc } from './resumable-state.js';
import type { UploadView } from './resumable-view.js';

/** S3's smallest part but the last, and its largest part (API reference, multipart upload limits). */
const MIN_PART_BYTES = 5 * 1024 * 1024;
const MAX_PART_BYTES = 5 * 1024 ** 3;

export interface ConcatContext {
  readonly client: S3Client;
  readonly keys: UploadKeys;
  readonly turns: UploadTurns;
  /** Size of the parts made of small pieces read through this process. */
  readonly partBytes: number;
  readonly stats: ReadBackStats;
  find(id: string): Promise<{ doc: UploadDoc; view: UploadView } | null>;
}

interface Source {
  readonly id: string;
  readonly key: string;
  readonly size: number;
}

/**
 * tus concatenation on S3: the final file is a new multipart upload whose parts are copied inside
 * S3 from the partial uploads' objects (UploadPartCopy), so their bytes do not pass through
 * sluice, except where S3's 5 MiB minimum part forbids a copy: a partial upload smaller than that
 * (and the start of the next one, up to one part) is read and uploaded as a part. Then the file
 * is read back once for its sha256 (digests of the parts cannot be combined), its record written,
 * and the partial uploads removed.
 */
export async function concatenate(
  c: ConcatContext,
  partIds: readonly string[],
  init: Omit<NewUpload, 'length' | 'partial'>,
  forget: (id: string) => void,
): Promise<AppendResult> {
  if (partIds.length === 0) throw new MalformedRequestError('NO_PARTIAL_UPLOADS', 'A final upload is made of at least one partial upload');
  for (const id of partIds) if (!isFileId(id)) throw uploadNotFound(id);
  // Turns in one order (sorted ids), so two concatenations sharing parts cannot wait on each other.
  const turns: Turn[] = [];
  try {
    for (const id of [...new Set(partIds)].sort()) turns.push(await c.turns.take(id, true));
    const sources: Source[] = [];
    for (const id of partIds) {
      const found = await c.find(id);
      if (found === null) throw uploadNotFound(id);
      if (!found.doc.partial) throw new UploadNotPartialError(id);
      const data = found.view.listing.data;
      if (found.view.open || data === null) throw new UploadIncompleteError(id);
      sources.push({ id, key: data.key, size: data.size });
    }
    const id = newFileId();
    const dataKey = c.keys.fileData(id);
    const total = sources.reduce((n, s) => n + s.size, 0);
    const uploadId = await c.client.createMultipartUpload(dataKey, { contentType: safeContentType(init.meta.contentType) });
    try {
      const parts = await copyParts(c, dataKey, uploadId, sources);
      if (parts.length === 0) {
        await c.client.putObject(dataKey, Buffer.alloc(0), { contentType: safeContentType(init.meta.contentType) });
        await c.client.abortMultipartUpload(dataKey, uploadId);
      } else {
        await c.client.completeMultipartUpload(dataKey, uploadId, parts);
      }
    } catch (err) {
      await c.client.abortMultipartUpload(dataKey, uploadId).catch(() => false);
      throw err;
    }
    const sha256 = await hashObject(c, dataKey, total);
    const record = newRecord(id, init.meta, total, sha256, { metadata: init.metadata, parts: [...partIds] });
    await c.client.putObject(c.keys.record(id), Buffer.from(serializeRecord(record)), { contentType: 'application/json' });
    for (const s of new Set(sources.map((s) => s.id))) {
      forget(s);
      await removeUploadObjects(c.client, c.keys, s).catch(() => {});
    }
    return {
      upload: {
        id,
        offset: total,
        length: total,
        meta: init.meta,
        metadata: init.metadata,
        partial: false,
        created: record.created,
        expires: null,
        complete: true,
        completesOnLast: false,
        parts: [...partIds],
      },
      file: record,
    };
  } finally {
    for (const t of turns) t.release();
  }
}

/**
 * The final upload's parts, in order: each source copied in chunks of at most 5 GiB that leave
 * nothing or at least 5 MiB behind; what is smaller than 5 MiB (and not the very end) goes into
 * a buffer that is topped up from the next source to a full part and uploaded.
 */
async function copyParts(c: ConcatContext, key: string, uploadId: string, sources: readonly Source[]): Promise<CompletedPart[]> {
  const parts: CompletedPart[] = [];
  const next = (): number => {
    if (parts.length >= MAX_PARTS) throw new LimitExceededError('TOO_MANY_PARTS', `The final upload would need more than ${MAX_PARTS} parts`, MAX_PARTS);
    return parts.length + 1;
  };
  let buffer: Buffer | null = null;
  let filled = 0;
  const flush = async (): Promise<void> => {
    const partNumber = next();
    parts.push({ partNumber, etag: await c.client.uploadPart(key, uploadId, partNumber, (buffer as Buffer).subarray(0, filled)) });
    filled = 0;
  };
  for (let i = 0; i < sources.length; i += 1) {
    const source = sources[i] as Source;
    const lastSource = i === sources.length - 1;
    let pos = 0;
    while (pos < source.size) {
      const remaining = source.size - pos;
      if (filled > 0 || (remaining < MIN_PART_BYTES && !lastSource)) {
        buffer ??= Buffer.allocUnsafeSlow(Math.max(c.partBytes, MIN_PART_BYTES));
        const take = Math.min(remaining, buffer.length - filled);
        await readInto(c.client, source.key, pos, take, buffer, filled);
        pos += take;
        filled += take;
        if (filled === buffer.length) await flush();
        continue;
      }
      let chunk = Math.min(remaining, MAX_PART_BYTES);
      if (remaining - chunk > 0 && remaining - chunk < MIN_PART_BYTES) chunk = remaining - MIN_PART_BYTES;
      const partNumber = next();
      parts.push({ partNumber, etag: await c.client.uploadPartCopy(key, uploadId, partNumber, source.key, { start: pos, end: pos + chunk - 1 }) });
      pos += chunk;
    }
  }
  if (filled > 0) await flush();
  return parts;
}

async function readInto(client: S3Client, key: string, from: number, length: number, buffer: Buffer, at: number): Promise<void> {
  const res: IncomingMessage = await client.getObject(key, { start: from, end: from + length - 1 });
  let got = 0;
  for await (const chunk of res as AsyncIterable<Buffer>) {
    if (got + chunk.length > length) {
      res.destroy();
      break;
    }
    chunk.copy(buffer, at + got);
    got += chunk.length;
  }
  if (got !== length) throw new BadGatewayError('S3_BAD_RESPONSE', `Read ${got} of ${length} bytes of a partial upload`);
}

async function hashObject(c: ConcatContext, key: string, size: number): Promise<string> {
  const started = Date.now();
  const hash = createHash('sha256');
  let got = 0;
  if (size > 0) {
    for await (const chunk of await c.client.getObject(key)) {
      hash.update(chunk as Buffer);
      got += (chunk as Buffer).length;
    }
  }
  if (got !== size) throw new BadGatewayError('S3_BAD_RESPONSE', `Read back ${got} bytes of a final upload of ${size}`);
  c.stats.files += 1;
  c.stats.bytes += size;
  c.stats.ms += Date.now() - started;
  return hash.digest('hex');
}

