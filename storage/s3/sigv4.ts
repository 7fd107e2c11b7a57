import { createHash, createHmac } from 'node:crypto';

/**
 * AWS Signature Version 4 for the `Authorization` header, with node:crypto only.
 * Spec: "Authenticating Requests (AWS Signature Version 4)" in the S3 API reference, and the
 * general reference's "Create a canonical request" / "Calculate the signature".
 */

export const ALGORITHM = 'AWS4-HMAC-SHA256';
/** sha256('') - the payload hash of every request without a body. */
export const EMPTY_SHA256 = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';
/** Allowed as x-amz-content-sha256 when the body is not hashed (we use it over TLS only). */
export const UNSIGNED_PAYLOAD = 'UNSIGNED-PAYLOAD';

export interface Credentials {
  readonly accessKey: string;
  readonly secretKey: string;
}

export interface SigningRequest {
  readonly method: string;
  /** The path exactly as sent: already URI-encoded by `encodePath` (S3 does not re-encode it). */
  readonly path: string;
  /** Query parameters, unencoded; a valueless one (`?uploads`) has the value ''. */
  readonly query: ReadonlyArray<readonly [string, string]>;
  /** Header names in any case; every one given is signed. Must include `host`. */
  readonly headers: Readonly<Record<string, string>>;
  /** Hex sha256 of the body, or UNSIGNED-PAYLOAD; also sent as x-amz-content-sha256. */
  readonly payloadHash: string;
}

/** What `Signer.sign` adds to a request. */
export interface AuthHeaders {
  readonly 'x-amz-content-sha256': string;
  readonly 'x-amz-date': string;
  readonly authorization: string;
}

export interface Scope {
  readonly region: string;
  readonly service: string;
}

const UNRESERVED = /[A-Za-z0-9\-._~]/;

/**
 * URI-encodes one string the way SigV4 wants: every byte except the unreserved characters
 * (A-Z a-z 0-9 - . _ ~) as %XY with upper-case hex; '/' is kept when `keepSlash` (object keys in
 * paths). Unlike encodeURIComponent, `!'()*` are encoded too.
 */
export function uriEncode(text: string, keepSlash = false): string {
  let out = '';
  for (const ch of text) {
    if (UNRESERVED.test(ch) || (keepSlash && ch === '/')) out += ch;
    else for (const byte of Buffer.from(ch, 'utf8')) out += `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}

/** `/bucket/key` → the encoded path to send and to sign (S3 keys are encoded once, slashes kept). */
export function encodePath(path: string): string {
  return uriEncode(path, true);
}

/** Sorted by encoded name, then value; `name=value` joined with `&` (a bare name gets `name=`). */
export function canonicalQuery(query: ReadonlyArray<readonly [string, string]>): string {
  return query
    .map(([k, v]) => [uriEncode(k), uriEncode(v)] as const)
    .sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : 0))
    .map(([k, v]) => `${k}=${v}`)
    .join('&');
}

/** The canonical request and the `SignedHeaders` list it covers. */
export function canonicalRequest(req: SigningRequest): { readonly text: string; readonly signedHeaders: string } {
  const headers = Object.entries(req.headers)
    // Lower-case names; values trimmed with inner runs of spaces collapsed to one.
    .map(([k, v]) => [k.toLowerCase(), v.trim().replace(/ +/g, ' ')] as const)
    .sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  const signedHeaders = headers.map(([k]) => k).join(';');
  const text = [
    req.method,
    req.path,
    canonicalQuery(req.query),
    ...headers.map(([k, v]) => `${k}:${v}`),
    '',
    signedHeaders,
    req.payloadHash,
  ].join('\n');
  return { text, signedHeaders };
}

/** `20130524T000000Z` */
export function toAmzDate(date: Date): string {
  return date.toISOString().replace(/[-:]/g, '').replace(/\.\d{3}/, '');
}

export function credentialScope(amzDate: string, scope: Scope): string {
  return `${amzDate.slice(0, 8)}/${scope.region}/${scope.service}/aws4_request`;
}

export function stringToSign(amzDate: string, scope: Scope, canonicalRequestText: string): string {
  return [ALGORITHM, amzDate, credentialScope(amzDate, scope), sha256Hex(canonicalRequestText)].join('\n');
}

/** kSigning = HMAC(HMAC(HMAC(HMAC("AWS4" + secret, date), region), service), "aws4_request"). */
export function deriveSigningKey(secretKey: string, date: string, scope: Scope): Buffer {
  const kDate = hmac(`AWS4${secretKey}`, date);
  const kRegion = hmac(kDate, scope.region);
  const kService = hmac(kRegion, scope.service);
  return hmac(kService, 'aws4_request');
}

export function sha256Hex(data: string | Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

function hmac(key: string | Buffer, data: string): Buffer {
  return createHmac('sha256', key).update(data, 'utf8').digest();
}

/**
 * Signs requests for one set of credentials and one scope. The derived key depends only on the
 * day, so it is kept until the date changes; the secret itself never leaves this object.
 */
export class Signer {
  private readonly credentials: Credentials;
  private readonly scope: Scope;
  private cachedDay = '';
  private cachedKey: Buffer = Buffer.alloc(0);

  constructor(credentials: Credentials, scope: Scope) {
    this.credentials = credentials;
    this.scope = scope;
  }

  /**
   * The headers to add to `req` (x-amz-date, x-amz-content-sha256, authorization). `req.headers`
   * must not already contain the first two: they are added here and signed.
   */
  sign(req: SigningRequest, now: Date = new Date()): AuthHeaders {
    const amzDate = toAmzDate(now);
    const extra = { 'x-amz-content-sha256': req.payloadHash, 'x-amz-date': amzDate };
    const { text, signedHeaders } = canonicalRequest({ ...req, headers: { ...req.headers, ...extra } });
    const signature = createHmac('sha256', this.keyFor(amzDate.slice(0, 8)))
      .update(stringToSign(amzDate, this.scope, text), 'utf8')
      .digest('hex');
    const credential = `${this.credentials.accessKey}/${credentialScope(amzDate, this.scope)}`;
    return {
      ...extra,
      authorization: `${ALGORITHM} Credential=${credential},SignedHeaders=${signedHeaders},Signature=${signature}`,
    };
  }

  private keyFor(day: string): Buffer {
    if (day !== this.cachedDay) {
      this.cachedKey = deriveSigningKey(this.credentials.secretKey, day, this.scope);
      this.cachedDay = day;
    }
    return this.cachedKey;
  }

  /** Never print the secret: util.inspect and JSON.stringify see the access key only. */
  toJSON(): Record<string, string> {
    return { accessKey: this.credentials.accessKey, region: this.scope.region, service: this.scope.service };
  }

  [Symbol.for('nodejs.util.inspect.custom')](): string {
    return `Signer(${this.credentials.accessKey}, ${this.scope.region})`;
  }
}
