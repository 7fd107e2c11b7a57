import { Agent as HttpAgent, request as httpRequest, type IncomingMessage, type OutgoingHttpHeaders } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import { setTimeout as sleep } from 'node:timers/promises';
import { BadGatewayError, type SluiceError } from '../../lib/errors.js';
import { S3ResponseError, mapS3NetworkError, mapS3Response } from './errors.js';
import { EMPTY_SHA256, Signer, UNSIGNED_PAYLOAD, canonicalQuery, encodePath, sha256Hex } from './sigv4.js';
import { xmlText } from './xml.js';

export interface TransportOptions {
  /** `http(s)://host[:port][/base]`; the bucket goes into the path or the host name. */
  readonly endpoint: URL;
  readonly region: string;
  readonly bucket: string;
  readonly accessKey: string;
  readonly secretKey: string;
  /** `/bucket/key` (Ceph, MinIO) instead of `bucket.host/key` (AWS). */
  readonly pathStyle: boolean;
  /** A request that sees no byte in either direction this long fails with 504. */
  readonly idleTimeoutMs?: number;
  readonly maxSockets?: number;
}

export type Method = 'GET' | 'HEAD' | 'PUT' | 'POST' | 'DELETE';

export interface RequestSpec {
  /** S3 operation name, for errors and logs (`UploadPart`). */
  readonly operation: string;
  readonly method: Method;
  /** Object key (unencoded); absent for bucket-level requests. */
  readonly key?: string;
  /** Unencoded; a valueless parameter (`?uploads`) has the value ''. */
  readonly query?: ReadonlyArray<readonly [string, string]>;
  readonly headers?: Readonly<Record<string, string>>;
  readonly body?: Buffer;
  readonly signal?: AbortSignal;
  /** Safe to send again after a failure. False for CompleteMultipartUpload. */
  readonly idempotent: boolean;
  /** Statuses that are answers, not failures (404 for HeadObject); their body is left unread. */
  readonly expect?: readonly number[];
}

/** A failed attempt, before it becomes a SluiceError: the retry decision needs the raw facts. */
class AttemptFailure extends Error {
  readonly mapped: SluiceError;
  readonly retryable: boolean;
  /** A reset on a kept-alive socket: the server closed it as we reused it; always safe to resend. */
  readonly staleSocket: boolean;

  constructor(mapped: SluiceError, retryable: boolean, staleSocket: boolean) {
    super(mapped.message);
    this.mapped = mapped;
    this.retryable = retryable;
    this.staleSocket = staleSocket;
  }
}

/** Total tries for a retryable failure (5xx, throttling, network), as the AWS SDKs' "standard" mode. */
const MAX_ATTEMPTS = 3;
const BACKOFF_BASE_MS = 100;
/** Kept-alive sockets the server closed meanwhile: each is tried once, then a fresh one is made. */
const MAX_STALE_RETRIES = 8;
/** Free keep-alive sockets are dropped after this, before servers close them (S3 ~20 s, RGW 60 s+). */
const FREE_SOCKET_TIMEOUT_MS = 4_000;
const DEFAULT_IDLE_TIMEOUT_MS = 60_000;
/** Error and listing bodies are read whole; a page of 1000 keys is well under 1 MiB. */
export const MAX_XML_BYTES = 8 * 1024 * 1024;

/**
 * Signed HTTP(S) requests to one bucket over one keep-alive agent: SigV4 on every request,
 * x-amz-content-sha256 always sent (Ceph refuses SigV4 without it), retries with backoff for
 * what is safe to retry, and every failure mapped to a SluiceError in `errors.ts`.
 */
export class S3Transport {
  readonly endpoint: URL;
  readonly bucket: string;
  /** Requests sent, by operation (retries not counted): what a workload costs in S3 requests. */
  readonly counts = new Map<string, number>();
  private readonly pathStyle: boolean;
  private readonly signer: Signer;
  private readonly agent: HttpAgent;
  private readonly secure: boolean;
  private readonly idleTimeoutMs: number;
  /** Over TLS the body is not hashed a second time (integrity is TLS's); over plain HTTP it is signed. */
  private readonly signPayloads: boolean;

  constructor(options: TransportOptions) {
    this.endpoint = options.endpoint;
    this.bucket = options.bucket;
    this.pathStyle = options.pathStyle;
    this.secure = options.endpoint.protocol === 'https:';
    this.signPayloads = !this.secure;
    this.idleTimeoutMs = options.idleTimeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS;
    this.signer = new Signer({ accessKey: options.accessKey, secretKey: options.secretKey }, { region: options.region, service: 's3' });
    const agentOptions = { keepAlive: true, timeout: FREE_SOCKET_TIMEOUT_MS, maxSockets: options.maxSockets ?? 64, scheduling: 'lifo' as const };
    this.agent = this.secure ? new HttpsAgent(agentOptions) : new HttpAgent(agentOptions);
  }

  /** `origin` and path of a request, as sent and as signed. Exported for the URL-style tests. */
  target(key: string | undefined, query: ReadonlyArray<readonly [string, string]> = []): { hostname: string; host: string; path: string } {
    const base = this.endpoint.pathname.replace(/\/+$/, '');
    const hostname = this.endpoint.hostname.replace(/^\[(.*)\]$/, '$1');
    const raw = this.pathStyle ? `${base}/${this.bucket}${key === undefined ? '' : `/${key}`}` : `${base}/${key ?? ''}`;
    const qs = canonicalQuery(query);
    const path = `${encodePath(raw)}${qs === '' ? '' : `?${qs}`}`;
    if (this.pathStyle) return { hostname, host: this.endpoint.host, path };
    return { hostname: `${this.bucket}.${hostname}`, host: `${this.bucket}.${this.endpoint.host}`, path };
  }

  /**
   * Sends one request (retrying when allowed) and resolves with the response once its status is
   * a 2xx or one of `spec.expect`; the caller must consume or destroy it. Failures reject with a
   * SluiceError; an abort through `spec.signal` rejects with the signal's reason unmapped.
   */
  async request(spec: RequestSpec): Promise<IncomingMessage> {
    this.counts.set(spec.operation, (this.counts.get(spec.operation) ?? 0) + 1);
    const payloadHash = spec.body === undefined ? EMPTY_SHA256 : this.signPayloads ? sha256Hex(spec.body) : UNSIGNED_PAYLOAD;
    for (let attempt = 1; ; attempt += 1) {
      try {
        return await this.attempt(spec, payloadHash);
      } catch (err) {
        if (spec.signal?.aborted) throw spec.signal.reason;
        if (!(err instanceof AttemptFailure)) throw err;
        const failure = err;
        const again = attempt < MAX_STALE_RETRIES && (failure.staleSocket || (failure.retryable && spec.idempotent && attempt < MAX_ATTEMPTS));
        if (!again) throw failure.mapped;
        if (!failure.staleSocket) {
          // Exponential backoff with full jitter (AWS Architecture Blog, "Exponential Backoff And Jitter").
          await sleep(Math.random() * BACKOFF_BASE_MS * 4 ** (attempt - 1), undefined, { signal: spec.signal }).catch(() => {});
          if (spec.signal?.aborted) throw spec.signal.reason;
        }
      }
    }
  }

  /** Reads a whole (small) response body as text, failing past `limit` bytes. */
  async readText(res: IncomingMessage, operation: string, limit = MAX_XML_BYTES): Promise<string> {
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of res as AsyncIterable<Buffer>) {
      size += chunk.length;
      if (size > limit) {
        res.destroy();
        throw new BadGatewayError('S3_BAD_RESPONSE', `The object store answered ${operation} with more than ${limit} bytes`);
      }
      chunks.push(chunk);
    }
    return Buffer.concat(chunks).toString('utf8');
  }

  close(): void {
    this.agent.destroy();
  }

  private attempt(spec: RequestSpec, payloadHash: string): Promise<IncomingMessage> {
    const { hostname, host, path } = this.target(spec.key, spec.query);
    const qIndex = path.indexOf('?');
    const signed = this.signer.sign({
      method: spec.method,
      path: qIndex === -1 ? path : path.slice(0, qIndex),
      query: spec.query ?? [],
      headers: { host, ...spec.headers },
      payloadHash,
    });
    const headers: OutgoingHttpHeaders = { host, ...spec.headers, ...signed };
    if (spec.body !== undefined) headers['content-length'] = spec.body.length;
    else if (spec.method === 'PUT' || spec.method === 'POST') headers['content-length'] = 0;
    const send = this.secure ? httpsRequest : httpRequest;
    const endpoint = this.endpoint.origin;

    return new Promise<IncomingMessage>((resolve, reject) => {
      let settled = false;
      let response: IncomingMessage | null = null;
      const req = send({
        agent: this.agent,
        protocol: this.endpoint.protocol,
        hostname,
        port: this.endpoint.port === '' ? undefined : Number(this.endpoint.port),
        method: spec.method,
        path,
        headers,
        signal: spec.signal,
      });
      const fail = (err: Error): void => {
        if (settled) return;
        settled = true;
        const staleSocket = req.reusedSocket && (err as NodeJS.ErrnoException).code === 'ECONNRESET';
        reject(new AttemptFailure(mapS3NetworkError(spec.operation, endpoint, err, !this.pathStyle), true, staleSocket));
      };
      req.setTimeout(this.idleTimeoutMs, () => {
        const res = response;
        // A response the caller is not reading fast enough (backpressure, a slow client) is not
        // S3's fault: only a stall with nothing buffered is.
        if (res !== null && (res.readableLength > 0 || res.isPaused())) return;
        const err = Object.assign(new Error(`${spec.operation}: idle for ${this.idleTimeoutMs} ms`), { code: 'S3_IDLE_TIMEOUT' });
        if (res === null) return void req.destroy(err);
        // Mid-body: the reader sees the mapped error (504), not a bare socket error.
        res.destroy(mapS3NetworkError(spec.operation, endpoint, err));
        req.destroy();
      });
      req.on('error', fail);
      req.once('response', (res) => {
        response = res;
        const status = res.statusCode ?? 0;
        if ((status >= 200 && status < 300) || spec.expect?.includes(status)) {
          settled = true;
          // Errors after this point reach the caller through `res`.
          req.off('error', fail);
          req.on('error', (err) => res.destroy(err));
          resolve(res);
          return;
        }
        this.readText(res, spec.operation, 64 * 1024)
          .catch(() => '')
          .then((body) => {
            if (settled) return;
            settled = true;
            const cause = new S3ResponseError(
              spec.operation,
              status,
              xmlText(body, 'Code') ?? `Http${status}`,
              xmlText(body, 'Message') ?? '',
              (res.headers['x-amz-request-id'] as string | undefined) ?? null,
            );
            const mapped = mapS3Response(cause, res.headers['retry-after'] as string | undefined);
            reject(new AttemptFailure(mapped, status >= 500 || mapped.code === 'S3_THROTTLED', false));
          });
      });
      req.end(spec.body);
    });
  }
}
