import { createHash } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { BadGatewayError, NotFoundError } from '../../lib/errors.js';
import { S3ResponseError, mapS3Response } from './errors.js';
import { S3Transport, type TransportOptions } from './transport.js';
import { escapeXml, xmlBlocks, xmlText } from './xml.js';

export type S3ClientOptions = TransportOptions;

export interface ObjectHead {
  readonly size: number;
  readonly etag: string | null;
  readonly contentType: string | null;
  /** `x-amz-meta-*` headers, names without the prefix. */
  readonly metadata: Readonly<Record<string, string>>;
}

export interface ListedObject {
  readonly key: string;
  readonly size: number;
  readonly etag: string | null;
  readonly lastModified: string | null;
}

export interface PendingUpload {
  readonly key: string;
  readonly uploadId: string;
  readonly initiated: string | null;
}

export interface CompletedPart {
  readonly partNumber: number;
  readonly etag: string;
}

/** A part S3 holds for a pending multipart upload (ListParts). */
export interface UploadedPart extends CompletedPart {
  readonly size: number;
  readonly lastModified: string | null;
}

/** DeleteObjects takes at most this many keys a request (API reference, DeleteObjects). */
const DELETE_BATCH = 1000;

export interface WriteOptions {
  readonly contentType?: string;
  readonly signal?: AbortSignal;
}

/**
 * The handful of S3 operations sluice needs, over node:http(s) only. Keys are full object keys
 * (the store adds its prefix). Errors are SluiceErrors (see `errors.ts`); "not there" answers
 * that callers expect are values (`null`, `false`), not errors.
 */
export class S3Client {
  private readonly transport: S3Transport;

  constructor(options: S3ClientOptions) {
    this.transport = new S3Transport(options);
  }

  get bucket(): string {
    return this.transport.bucket;
  }

  /** Requests sent so far, by S3 operation (bench and tests: requests per GiB). */
  get requestCounts(): ReadonlyMap<string, number> {
    return this.transport.counts;
  }

  /** Resolves with the object's ETag (null if the store sent none). */
  async putObject(key: string, body: Buffer, options: WriteOptions = {}): Promise<string | null> {
    const res = await this.transport.request({
      operation: 'PutObject',
      method: 'PUT',
      key,
      headers: contentTypeHeader(options.contentType),
      body,
      signal: options.signal,
      idempotent: true,
    });
    res.resume();
    return res.headers.etag ?? null;
  }

  /**
   * PutObject with `If-None-Match: *`: `written` false, and nothing written, when the key exists
   * already. Engines without conditional writes ignore the header (then this is a plain PutObject
   * and answers true); see the README's S3 section for what holds where.
   */
  async putObjectIfAbsent(key: string, body: Buffer, options: WriteOptions = {}): Promise<{ written: boolean; etag: string | null }> {
    const res = await this.transport.request({
      operation: 'PutObject',
      method: 'PUT',
      key,
      headers: { ...contentTypeHeader(options.contentType), 'if-none-match': '*' },
      body,
      signal: options.signal,
      // A retry after a lost answer would meet our own object and say 412: harmless, the object is there.
      idempotent: true,
      expect: [412],
    });
    res.resume();
    return { written: res.statusCode !== 412, etag: res.statusCode === 412 ? null : (res.headers.etag ?? null) };
  }

  async createMultipartUpload(key: string, options: WriteOptions = {}): Promise<string> {
    const res = await this.transport.request({
      operation: 'CreateMultipartUpload',
      method: 'POST',
      key,
      query: [['uploads', '']],
      headers: contentTypeHeader(options.contentType),
      signal: options.signal,
      // A retry after a lost answer leaves an orphan upload; the store's abort cannot see it, so
      // only the stale-socket case (request never processed) is retried.
      idempotent: false,
    });
    const uploadId = xmlText(await this.transport.readText(res, 'CreateMultipartUpload'), 'UploadId');
    if (uploadId === null || uploadId === '') throw new BadGatewayError('S3_BAD_RESPONSE', 'CreateMultipartUpload answered without an UploadId');
    return uploadId;
  }

  /** Returns the part's ETag, which CompleteMultipartUpload needs. */
  async uploadPart(key: string, uploadId: string, partNumber: number, body: Buffer, options: WriteOptions = {}): Promise<string> {
    const res = await this.transport.request({
      operation: 'UploadPart',
      method: 'PUT',
      key,
      query: [
        ['partNumber', String(partNumber)],
        ['uploadId', uploadId],
      ],
      body,
      signal: options.signal,
      idempotent: true,
    });
    res.resume();
    const etag = res.headers.etag;
    if (etag === undefined || etag === '') throw new BadGatewayError('S3_BAD_RESPONSE', `UploadPart ${partNumber} answered without an ETag`);
    return etag;
  }

  /**
   * UploadPartCopy: part `partNumber` of the upload is `range` (inclusive) of `sourceKey` in the
   * same bucket, copied inside S3. Returns the part's ETag.
   */
  async uploadPartCopy(
    key: string,
    uploadId: string,
    partNumber: number,
    sourceKey: string,
    range: { readonly start: number; readonly end: number },
    options: WriteOptions = {},
  ): Promise<string> {
    const res = await this.transport.request({
      operation: 'UploadPartCopy',
      method: 'PUT',
      key,
      query: [
        ['partNumber', String(partNumber)],
        ['uploadId', uploadId],
      ],
      headers: {
        // URL-encoded `bucket/key` (API reference, UploadPartCopy: x-amz-copy-source).
        'x-amz-copy-source': `${encodeURIComponent(this.transport.bucket)}/${sourceKey.split('/').map(encodeURIComponent).join('/')}`,
        'x-amz-copy-source-range': `bytes=${range.start}-${range.end}`,
      },
      signal: options.signal,
      idempotent: true,
    });
    // Like CompleteMultipartUpload, a copy may answer 200 and fail in the body.
    const body = await this.transport.readText(res, 'UploadPartCopy');
    if (xmlBlocks(body, 'Error').length > 0) {
      const cause = new S3ResponseError('UploadPartCopy', 500, xmlText(body, 'Code') ?? 'InternalError', xmlText(body, 'Message') ?? '', null);
      throw mapS3Response(cause, undefined);
    }
    const etag = xmlText(body, 'ETag');
    if (etag === null || etag === '') throw new BadGatewayError('S3_BAD_RESPONSE', `UploadPartCopy ${partNumber} answered without an ETag`);
    return quoteEtag(etag);
  }

  /**
   * The parts S3 holds for `uploadId`, after part number `after`, in order (ListParts, every
   * page). Null when the upload is gone: completed or aborted (AWS says NoSuchUpload, Ceph 16
   * NoSuchKey, both 404).
   */
  async listParts(key: string, uploadId: string, after = 0, options: { signal?: AbortSignal; pageSize?: number } = {}): Promise<UploadedPart[] | null> {
    const parts: UploadedPart[] = [];
    let marker = after;
    for (;;) {
      const query: Array<[string, string]> = [['uploadId', uploadId]];
      if (options.pageSize !== undefined) query.push(['max-parts', String(options.pageSize)]);
      if (marker > 0) query.push(['part-number-marker', String(marker)]);
      const res = await this.transport.request({ operation: 'ListParts', method: 'GET', key, query, signal: options.signal, idempotent: true, expect: [404] });
      if (res.statusCode === 404) {
        res.resume();
        return null;
      }
      const xml = await this.transport.readText(res, 'ListParts');
      for (const block of xmlBlocks(xml, 'Part')) {
        parts.push({
          partNumber: Number(xmlText(block, 'PartNumber')),
          etag: quoteEtag(xmlText(block, 'ETag') ?? ''),
          size: Number(xmlText(block, 'Size') ?? 0),
          lastModified: xmlText(block, 'LastModified'),
        });
      }
      const next = Number(xmlText(xml, 'NextPartNumberMarker') ?? 0);
      if (xmlText(xml, 'IsTruncated') !== 'true' || !(next > marker)) return parts;
      marker = next;
    }
  }

  async completeMultipartUpload(key: string, uploadId: string, parts: readonly CompletedPart[], options: WriteOptions = {}): Promise<void> {
    const xml =
      '<CompleteMultipartUpload>' +
      parts.map((p) => `<Part><PartNumber>${p.partNumber}</PartNumber><ETag>${escapeXml(p.etag)}</ETag></Part>`).join('') +
      '</CompleteMultipartUpload>';
    const res = await this.transport.request({
      operation: 'CompleteMultipartUpload',
      method: 'POST',
      key,
      query: [['uploadId', uploadId]],
      headers: { 'content-type': 'application/xml' },
      body: Buffer.from(xml, 'utf8'),
      signal: options.signal,
      idempotent: false,
    });
    // S3 may answer 200 and still fail: the error is then in the body (API reference,
    // CompleteMultipartUpload). Ceph 16 answers an empty ETag on success; we do not need it.
    const body = await this.transport.readText(res, 'CompleteMultipartUpload');
    if (xmlBlocks(body, 'Error').length > 0) {
      // Mapped as the 500 it really is (or as throttling/auth when its code says so).
      const cause = new S3ResponseError('CompleteMultipartUpload', 500, xmlText(body, 'Code') ?? 'InternalError', xmlText(body, 'Message') ?? '', null);
      throw mapS3Response(cause, undefined);
    }
  }

  /** False when the upload is already gone (completed or aborted before). */
  async abortMultipartUpload(key: string, uploadId: string): Promise<boolean> {
    const res = await this.transport.request({
      operation: 'AbortMultipartUpload',
      method: 'DELETE',
      key,
      query: [['uploadId', uploadId]],
      idempotent: true,
      expect: [404],
    });
    res.resume();
    return res.statusCode !== 404;
  }

  /** Null when there is no such object. */
  async headObject(key: string): Promise<ObjectHead | null> {
    const res = await this.transport.request({ operation: 'HeadObject', method: 'HEAD', key, idempotent: true, expect: [404] });
    res.resume();
    if (res.statusCode === 404) return null;
    const metadata: Record<string, string> = {};
    for (const [name, value] of Object.entries(res.headers)) {
      if (name.startsWith('x-amz-meta-') && typeof value === 'string') metadata[name.slice('x-amz-meta-'.length)] = value;
    }
    return {
      size: Number(res.headers['content-length'] ?? 0),
      etag: res.headers.etag ?? null,
      contentType: res.headers['content-type'] ?? null,
      metadata,
    };
  }

  /**
   * The object's bytes as a stream (or the inclusive byte range `start`-`end`).
   * Rejects with NotFoundError when there is no such object.
   */
  async getObject(key: string, range?: { readonly start: number; readonly end: number }, signal?: AbortSignal): Promise<IncomingMessage> {
    const res = await this.transport.request({
      operation: 'GetObject',
      method: 'GET',
      key,
      headers: range === undefined ? undefined : { range: `bytes=${range.start}-${range.end}` },
      signal,
      idempotent: true,
      expect: [404],
    });
    if (res.statusCode === 404) {
      res.resume();
      throw new NotFoundError('No such file');
    }
    if (range !== undefined && res.statusCode !== 206) {
      res.destroy();
      throw new BadGatewayError('S3_BAD_RESPONSE', `GetObject ignored the Range (answered ${res.statusCode})`);
    }
    return res;
  }

  /** A small object read whole (sidecars), or null when there is none. */
  async getObjectText(key: string, limit: number): Promise<string | null> {
    let res: IncomingMessage;
    try {
      res = await this.getObject(key);
    } catch (err) {
      if (err instanceof NotFoundError) return null;
      throw err;
    }
    return this.transport.readText(res, 'GetObject', limit);
  }

  /** Succeeds whether or not the object existed (S3 answers 204 either way). */
  async deleteObject(key: string): Promise<void> {
    const res = await this.transport.request({ operation: 'DeleteObject', method: 'DELETE', key, idempotent: true });
    res.resume();
  }

  /** Deletes many keys, 1000 a request (DeleteObjects); keys that do not exist are no error. */
  async deleteObjects(keys: readonly string[]): Promise<void> {
    for (let i = 0; i < keys.length; i += DELETE_BATCH) {
      const batch = keys.slice(i, i + DELETE_BATCH);
      if (batch.length === 1) {
        await this.deleteObject(batch[0] as string);
        continue;
      }
      const xml = Buffer.from(`<Delete><Quiet>true</Quiet>${batch.map((k) => `<Object><Key>${escapeXml(k)}</Key></Object>`).join('')}</Delete>`, 'utf8');
      const res = await this.transport.request({
        operation: 'DeleteObjects',
        method: 'POST',
        query: [['delete', '']],
        // S3 requires a body digest on DeleteObjects; Content-MD5 is the one every engine knows.
        headers: { 'content-type': 'application/xml', 'content-md5': createHash('md5').update(xml).digest('base64') },
        body: xml,
        idempotent: true,
      });
      // Quiet mode lists only the keys that failed.
      const body = await this.transport.readText(res, 'DeleteObjects');
      const failed = xmlBlocks(body, 'Error');
      if (failed.length > 0) {
        const first = failed[0] as string;
        const cause = new S3ResponseError('DeleteObjects', 500, xmlText(first, 'Code') ?? 'InternalError', `${failed.length} keys not deleted, first ${xmlText(first, 'Key') ?? ''}`, null);
        throw mapS3Response(cause, undefined);
      }
    }
  }

  /**
   * Every object under `prefix`, page by page (ListObjectsV2, 1000 keys a request). With a
   * `delimiter`, keys that have it after the prefix are rolled up and not listed.
   */
  async *listObjects(prefix: string, delimiter?: string): AsyncGenerator<ListedObject> {
    let token: string | null = null;
    do {
      const query: Array<[string, string]> = [
        ['list-type', '2'],
        ['prefix', prefix],
      ];
      if (delimiter !== undefined) query.push(['delimiter', delimiter]);
      if (token !== null) query.push(['continuation-token', token]);
      const res = await this.transport.request({ operation: 'ListObjectsV2', method: 'GET', query, idempotent: true });
      const xml = await this.transport.readText(res, 'ListObjectsV2');
      for (const block of xmlBlocks(xml, 'Contents')) {
        yield {
          key: xmlText(block, 'Key') ?? '',
          size: Number(xmlText(block, 'Size') ?? 0),
          etag: xmlText(block, 'ETag'),
          lastModified: xmlText(block, 'LastModified'),
        };
      }
      token = xmlText(xml, 'IsTruncated') === 'true' ? xmlText(xml, 'NextContinuationToken') : null;
    } while (token !== null && token !== '');
  }

  /** Multipart uploads started and neither completed nor aborted, under `prefix`. */
  async *listMultipartUploads(prefix: string): AsyncGenerator<PendingUpload> {
    let keyMarker: string | null = null;
    let uploadIdMarker: string | null = null;
    for (;;) {
      const query: Array<[string, string]> = [
        ['uploads', ''],
        ['prefix', prefix],
      ];
      if (keyMarker !== null) query.push(['key-marker', keyMarker]);
      if (uploadIdMarker !== null) query.push(['upload-id-marker', uploadIdMarker]);
      const res = await this.transport.request({ operation: 'ListMultipartUploads', method: 'GET', query, idempotent: true });
      const xml = await this.transport.readText(res, 'ListMultipartUploads');
      for (const block of xmlBlocks(xml, 'Upload')) {
        yield { key: xmlText(block, 'Key') ?? '', uploadId: xmlText(block, 'UploadId') ?? '', initiated: xmlText(block, 'Initiated') };
      }
      if (xmlText(xml, 'IsTruncated') !== 'true') return;
      keyMarker = xmlText(xml, 'NextKeyMarker');
      uploadIdMarker = xmlText(xml, 'NextUploadIdMarker');
      if (!keyMarker) return;
    }
  }

  /** True when the bucket exists and these credentials may use it. */
  async bucketExists(): Promise<boolean> {
    const res = await this.transport.request({ operation: 'HeadBucket', method: 'HEAD', idempotent: true, expect: [404] });
    res.resume();
    return res.statusCode !== 404;
  }

  /** Outside us-east-1, AWS wants the region named in the body (API reference, CreateBucket). */
  async createBucket(region: string): Promise<void> {
    const body =
      region === 'us-east-1'
        ? undefined
        : Buffer.from(`<CreateBucketConfiguration><LocationConstraint>${escapeXml(region)}</LocationConstraint></CreateBucketConfiguration>`);
    const res = await this.transport.request({ operation: 'CreateBucket', method: 'PUT', body, idempotent: true });
    res.resume();
  }

  /** Drops the kept-alive sockets. */
  close(): void {
    this.transport.close();
  }
}

/** ETags as S3 sends them in headers, quoted; some XML answers (Ceph's CopyPartResult) leave the quotes out. */
function quoteEtag(etag: string): string {
  return etag.startsWith('"') ? etag : `"${etag}"`;
}

function contentTypeHeader(contentType: string | undefined): Record<string, string> | undefined {
  return contentType === undefined ? undefined : { 'content-type': contentType };
}
