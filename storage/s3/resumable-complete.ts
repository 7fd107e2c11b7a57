import { createHash, type Hash } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { BadGatewayError, NotFoundError } from '../../lib/errors.js';
import { newRecord, parseRecord, serializeRecord } from '../record.js';
import type { FileRecord } from '../store.js';
import type { S3Client, UploadedPart } from './client.js';
import type { UploadKeys } from './resumable-keys.js';
import type { Session } from './resumable-sessions.js';
import type { UploadDoc } from './resumable-state.js';

/** How long a completer that lost the race waits for the winner's record before hashing the file itself. */
const WINNER_WAIT_MS = 3_000;
/** CompleteMultipartUpload attempts while another writer replaces a part or completes at the same time. */
const COMPLETE_ATTEMPTS = 5;
const COMPLETE_BACKOFF_MS = 200;
const MAX_RECORD_BYTES = 64 * 1024;

export interface Completion {
  readonly client: S3Client;
  readonly keys: UploadKeys;
  readonly doc: UploadDoc;
  readonly session: Session;
  readonly length: number;
  /** The sha256 of bytes [0, at) as this process hashed them, or null when it did not see them all. */
  readonly chain: { readonly hash: Hash; readonly at: number } | null;
  readonly verify?: (whole: { readonly size: number; readonly sha256: string }) => void | Promise<void>;
  /** Counts what reading back cost (the store's, for tests and logs). */
  readonly stats: ReadBackStats;
}

export interface ReadBackStats {
  /** Files hashed by reading them back, because no process had seen all their bytes. */
  files: number;
  bytes: number;
  ms: number;
}

/**
 * Makes a non-partial upload whose every byte S3 holds (all parts uploaded) the file of the same
 * id: CompleteMultipartUpload, then the record, then the upload's objects go. Safe against a
 * second instance doing the same at once: S3 completes the multipart upload once (Ceph and AWS
 * check each part's ETag against the list they are given; a loser sees NoSuchUpload or an
 * error and finds the object there), the record is written with `If-None-Match: *` where the
 * engine has it, and the sha256 in the record is always that of the stored bytes: the chain's
 * only if S3's ETag for the object is the one the chain's parts make, else read back once.
 */
export async function completeFile(c: Completion): Promise<FileRecord> {
  const { client, doc, length } = c;
  let sha256: string | null = null;
  let completedParts: readonly UploadedPart[] | null = null;
  let verified = false;
  for (let attempt = 1; completedParts === null; attempt += 1) {
    const parts = await client.listParts(doc.dataKey, doc.uploadId);
    if (parts === null) break; // completed (or aborted) elsewhere: see below
    const counted = checkParts(parts, doc.partBytes, length);
    sha256 = chainDigest(c, counted);
    if (sha256 !== null && c.verify !== undefined && !verified) {
      await verifyOrHold(c, sha256);
      verified = true;
    }
    try {
      if (counted.length === 0) {
        // An empty file: S3 cannot complete a multipart upload without parts.
        await client.putObject(doc.dataKey, Buffer.alloc(0), { contentType: doc.meta.contentType });
        await client.abortMultipartUpload(doc.dataKey, doc.uploadId);
      } else {
        await client.completeMultipartUpload(doc.dataKey, doc.uploadId, counted);
      }
      completedParts = counted;
    } catch (err) {
      // Another instance may have completed it first (NoSuchUpload; Ceph 16 answers 500): the object says.
      if ((await client.headObject(doc.dataKey))?.size === length) break;
      if (attempt >= COMPLETE_ATTEMPTS) throw err;
      // A part replaced between ListParts and now (InvalidPart), or another completer at work
      // (Ceph 16: 500 "multipart completion is already in progress"): look again shortly.
      await sleep(COMPLETE_BACKOFF_MS * attempt);
    }
  }
  const head = await client.headObject(doc.dataKey);
  if (head === null || head.size !== length) {
    const record = await readRecord(c);
    if (record !== null) return record;
    throw new NotFoundError(`Upload ${doc.id} is gone`);
  }
  // The object is the parts this process hashed only if its multipart ETag is the one they make.
  if (sha256 !== null && (completedParts === null || head.etag !== multipartEtag(completedParts))) sha256 = null;
  if (sha256 === null) {
    if (completedParts === null) {
      // Lost the race: the winner writes the record, usually within milliseconds.
      const record = await waitForRecord(c);
      if (record !== null) return record;
    }
    sha256 = await readBackSha256(client, doc.dataKey, length, c.stats);
    if (c.verify !== undefined) await verifyOrHold(c, sha256);
  }
  return writeRecord(c, sha256);
}

/**
 * A partial upload is complete: its multipart upload becomes `resumable/<id>/data`, kept until a
 * final upload takes it or it expires. No digest: a partial upload is never a file of its own.
 */
export async function completePartial(c: Omit<Completion, 'chain' | 'verify' | 'stats'>): Promise<void> {
  const { client, doc, length } = c;
  const parts = await client.listParts(doc.dataKey, doc.uploadId);
  if (parts === null) {
    if ((await client.headObject(doc.dataKey))?.size === length) return;
    throw new NotFoundError(`Upload ${doc.id} is gone`);
  }
  const counted = checkParts(parts, doc.partBytes, length);
  try {
    if (counted.length === 0) {
      await client.putObject(doc.dataKey, Buffer.alloc(0));
      await client.abortMultipartUpload(doc.dataKey, doc.uploadId);
    } else {
      await client.completeMultipartUpload(doc.dataKey, doc.uploadId, counted);
    }
  } catch (err) {
    if ((await client.headObject(doc.dataKey))?.size !== length) throw err;
  }
  await removeUploadObjects(client, c.keys, doc.id, { keep: [c.keys.state(doc.id), doc.dataKey] }).catch(() => {});
}

/** Parts 1..N exactly covering [0, length): full parts, the last one what remains. */
function checkParts(parts: readonly UploadedPart[], partBytes: number, length: number): UploadedPart[] {
  const count = Math.ceil(length / partBytes);
  const counted: UploadedPart[] = [];
  for (let n = 1; n <= count; n += 1) {
    const part = parts.find((p) => p.partNumber === n);
    const size = n < count ? partBytes : length - (count - 1) * partBytes;
    if (part === undefined || part.size !== size) {
      throw new BadGatewayError('S3_UPLOAD_INCONSISTENT', `Part ${n} of the upload is ${part === undefined ? 'missing' : `${part.size} bytes, not ${size}`}`);
    }
    counted.push(part);
  }
  return counted;
}

/** The chain's digest if it covers every byte and every part is one this process uploaded (same ETag). */
function chainDigest(c: Completion, parts: readonly UploadedPart[]): string | null {
  if (c.chain === null || c.chain.at !== c.length) return null;
  if (!parts.every((p) => c.session.parts.get(p.partNumber) === p.etag)) return null;
  return c.chain.hash.copy().digest('hex');
}

/** S3's ETag of a multipart object: the MD5 of the parts' MD5s, then `-<parts>` (null if a part's ETag is no MD5). */
export function multipartEtag(parts: readonly UploadedPart[]): string | null {
  const md5 = createHash('md5');
  for (const p of parts) {
    const hex = p.etag.replace(/"/g, '');
    if (!/^[0-9a-f]{32}$/i.test(hex)) return null;
    md5.update(Buffer.from(hex, 'hex'));
  }
  return `"${md5.digest('hex')}-${parts.length}"`;
}

/** Reads the stored object once to hash it: what an upload that moved between processes costs at the end. */
async function readBackSha256(client: S3Client, key: string, length: number, stats: ReadBackStats): Promise<string> {
  const started = Date.now();
  const hash = createHash('sha256');
  let size = 0;
  for await (const chunk of await client.getObject(key)) {
    hash.update(chunk as Buffer);
    size += (chunk as Buffer).length;
  }
  if (size !== length) throw new BadGatewayError('S3_BAD_RESPONSE', `Read back ${size} bytes of an object of ${length}`);
  stats.files += 1;
  stats.bytes += size;
  stats.ms += Date.now() - started;
  return hash.digest('hex');
}

/** The caller's check of the whole file; when it refuses, a marker keeps the sweep from publishing the bytes. */
async function verifyOrHold(c: Completion, sha256: string): Promise<void> {
  try {
    await c.verify?.({ size: c.length, sha256 });
  } catch (err) {
    await c.client.putObject(c.keys.unverified(c.doc.id), Buffer.alloc(0)).catch(() => null);
    throw err;
  }
}

async function readRecord(c: Pick<Completion, 'client' | 'keys' | 'doc'>): Promise<FileRecord | null> {
  const text = await c.client.getObjectText(c.keys.record(c.doc.id), MAX_RECORD_BYTES);
  return text === null ? null : parseRecord(text, c.doc.id);
}

async function waitForRecord(c: Completion): Promise<FileRecord | null> {
  for (let waited = 0; waited < WINNER_WAIT_MS; waited += 100) {
    const record = await readRecord(c);
    if (record !== null) return record;
    await sleep(100);
  }
  return null;
}

/** The record, first writer wins (If-None-Match: *); then the upload's own objects go, its state last. */
async function writeRecord(c: Completion, sha256: string): Promise<FileRecord> {
  const { client, keys, doc } = c;
  let record = newRecord(doc.id, doc.meta, c.length, sha256, { metadata: doc.metadata });
  const { written } = await client.putObjectIfAbsent(keys.record(doc.id), Buffer.from(serializeRecord(record)), { contentType: 'application/json' });
  if (!written) record = (await readRecord(c)) ?? record;
  await removeUploadObjects(client, keys, doc.id, { keep: [doc.dataKey] }).catch(() => {});
  c.session.chain = null;
  return record;
}

/**
 * Deletes every object of an upload under `resumable/` but `keep`, the state object last: while
 * it exists the upload can be found (and removed again by the sweep) if this stops half-way.
 */
export async function removeUploadObjects(client: S3Client, keys: UploadKeys, id: string, options: { keep?: readonly string[] } = {}): Promise<void> {
  const keep = new Set(options.keep ?? []);
  const state = keys.state(id);
  const doomed: string[] = [];
  for await (const o of client.listObjects(keys.listing(id))) {
    if (keys.idOf(o.key) === id && o.key !== state && !keep.has(o.key)) doomed.push(o.key);
  }
  await client.deleteObjects(doomed);
  if (!keep.has(state)) await client.deleteObject(state);
}
