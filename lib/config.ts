import { parseSize } from './size.js';

/** Effective settings. Every one comes from an environment variable and a matching flag. */
export interface Config {
  readonly port: number;
  readonly host: string;
  /** PEM certificate (chain) and key files: HTTPS on PORT when set (lib/tls.ts reads them). */
  readonly tlsCert: string | null;
  readonly tlsKey: string | null;
  readonly dataDir: string;
  /** Largest single file, in bytes; Infinity = no limit besides the disk. */
  readonly maxFileBytes: number;
  /** Largest body of an upload request, declared or streamed; Infinity (the default) = no limit of its own. */
  readonly maxRequestBytes: number;
  readonly maxFiles: number;
  readonly maxFields: number;
  readonly maxFieldBytes: number;
  /** All field values of one request together. */
  readonly maxTotalFieldBytes: number;
  readonly maxPartHeaderBytes: number;
  readonly minFreeBytes: number;
  /** fdatasync each file before it becomes visible (a 201 means the bytes are on disk). */
  readonly fsync: boolean;
  /** Write files with O_DIRECT where DATA_DIR's file system takes it (page-cache writes elsewhere). */
  readonly directIo: boolean;
  readonly maxConcurrentUploads: number;
  readonly authToken: string | null;
  /** Key material for signed links; null: derived from authToken (lib/signed-links.ts). */
  readonly linkSecret: string | null;
  /** The base of the URLs `POST /links` hands out; null: the request's Host. */
  readonly publicUrl: URL | null;
  readonly idleTimeoutMs: number;
  readonly headersTimeoutMs: number;
  readonly shutdownGraceMs: number;
  readonly logLevel: LogLevel;
  /** `auto`: text lines when stdout is a terminal, JSON otherwise (lib/log.ts). */
  readonly logFormat: 'auto' | 'json' | 'text';
  readonly fetchTimeoutMs: number;
  /** `host` or `host:port` entries (lower-case) exempt from the SSRF guard. */
  readonly fetchAllow: readonly string[];
  /** Times a broken origin body is asked again for the rest before the transfer fails (the count restarts after progress). */
  readonly fetchRetries: number;
  /** Connections one POST /fetch or fetch job may use for consecutive ranges (1-16). */
  readonly fetchConnections: number;
  /** Bytes of one range fetched over its own connection when fetchConnections > 1. */
  readonly fetchPieceBytes: number;
  /** Fetch jobs running at once; the rest wait in order. */
  readonly maxFetchJobs: number;
  /** How long a finished fetch job is kept. */
  readonly fetchJobTtlMs: number;
  readonly proxyTarget: URL | null;
  readonly proxyTimeoutMs: number;
  readonly store: 'local' | 's3';
  readonly s3: S3Config;
  /** Incomplete resumable uploads at once; creating one more is refused (503). */
  readonly maxPendingUploads: number;
  /** An incomplete resumable upload is removed this long after its last byte arrived. */
  readonly uploadExpiryMs: number;
  /** Origins allowed to call sluice from a browser: empty = no CORS headers at all; `['*']` = any. */
  readonly corsOrigins: readonly string[];
  /** Serve the web page at `/` (and its assets under `/ui/`). */
  readonly ui: boolean;
}

export interface S3Config {
  readonly endpoint: string | null;
  readonly region: string;
  readonly bucket: string | null;
  readonly accessKey: string | null;
  readonly secretKey: string | null;
  readonly prefix: string;
  readonly forcePathStyle: boolean;
  readonly partBytes: number;
}

export type LogLevel = 'debug' | 'info' | 'warn' | 'error' | 'silent';

/** Thrown for an invalid setting; `server.ts` prints the message and exits with code 2. */
export class ConfigError extends Error {
  readonly setting: string;
  constructor(setting: string, message: string) {
    super(`${setting}: ${message}`);
    this.setting = setting;
  }
}

type Kind = 'port' | 'string' | 'size' | 'size-or-unlimited' | 'count' | 'ms' | 'bool' | 'url' | 'list' | 'enum';

interface Setting {
  readonly env: string;
  readonly kind: Kind;
  readonly fallback: string;
  readonly help: string;
  readonly choices?: readonly string[];
  /** Never printed (the start-up line and --help show `<redacted>`). */
  readonly secret?: boolean;
}

const S3_MIN_PART_BYTES = 5 * 1024 * 1024; // S3's smallest allowed part (all but the last)

/** The one table of settings: `--help`, env parsing and flag parsing all read it. */
export const SETTINGS: readonly Setting[] = [
  { env: 'PORT', kind: 'port', fallback: '8080', help: 'TCP port to listen on (0 = any free port)' },
  { env: 'HOST', kind: 'string', fallback: '127.0.0.1', help: 'address to listen on (0.0.0.0 for all)' },
  { env: 'TLS_CERT', kind: 'string', fallback: '', help: 'PEM certificate file (a chain is served whole): HTTPS on PORT, reloaded on SIGHUP' },
  { env: 'TLS_KEY', kind: 'string', fallback: '', help: 'PEM private key file of TLS_CERT' },
  { env: 'DATA_DIR', kind: 'string', fallback: './data', help: 'directory for stored files (created if missing)' },
  { env: 'MAX_FILE_BYTES', kind: 'size-or-unlimited', fallback: 'unlimited', help: 'largest file accepted' },
  { env: 'MAX_REQUEST_BYTES', kind: 'size-or-unlimited', fallback: 'unlimited', help: 'largest upload request body, all files and fields together' },
  { env: 'MAX_FILES', kind: 'count', fallback: '100', help: 'files per request' },
  { env: 'MAX_FIELDS', kind: 'count', fallback: '1000', help: 'non-file fields per request' },
  { env: 'MAX_FIELD_BYTES', kind: 'size', fallback: '1MiB', help: 'bytes of one field value' },
  { env: 'MAX_TOTAL_FIELD_BYTES', kind: 'size', fallback: '8MiB', help: 'bytes of all field values of one request' },
  { env: 'MAX_PART_HEADER_BYTES', kind: 'size', fallback: '16KiB', help: "bytes of one part's header block" },
  { env: 'MIN_FREE_BYTES', kind: 'size', fallback: '0', help: 'space to keep free in DATA_DIR' },
  { env: 'FSYNC', kind: 'bool', fallback: 'true', help: 'fdatasync each file before answering 201 (false: faster, not crash-safe)' },
  { env: 'DIRECT_IO', kind: 'bool', fallback: 'true', help: 'write files with O_DIRECT, around the page cache, where the file system takes it' },
  { env: 'MAX_CONCURRENT_UPLOADS', kind: 'count', fallback: '64', help: 'uploads in flight before 503' },
  { env: 'AUTH_TOKEN', kind: 'string', fallback: '', help: 'bearer token required on every route but /healthz', secret: true },
  { env: 'LINK_SECRET', kind: 'string', fallback: '', help: 'key for signed links (POST /links); unset: derived from AUTH_TOKEN; changing it revokes every link', secret: true },
  { env: 'PUBLIC_URL', kind: 'url', fallback: '', help: "base URL of the links POST /links hands out (unset: the request's Host)" },
  { env: 'IDLE_TIMEOUT_MS', kind: 'ms', fallback: '60000', help: 'abort a request body idle this long (408)' },
  { env: 'HEADERS_TIMEOUT_MS', kind: 'ms', fallback: '10000', help: 'time allowed to send the request headers' },
  { env: 'SHUTDOWN_GRACE_MS', kind: 'ms', fallback: '30000', help: 'on SIGTERM, time in-flight transfers get to finish' },
  { env: 'LOG_LEVEL', kind: 'enum', fallback: 'info', help: 'log level', choices: ['debug', 'info', 'warn', 'error', 'silent'] },
  { env: 'LOG_FORMAT', kind: 'enum', fallback: 'auto', help: 'log lines: json, text (short lines for a person), auto (text on a terminal, else json)', choices: ['auto', 'json', 'text'] },
  { env: 'FETCH_TIMEOUT_MS', kind: 'ms', fallback: '30000', help: 'wait this long for an origin to answer /fetch, or for its next bytes (504)' },
  { env: 'FETCH_ALLOW', kind: 'list', fallback: '', help: 'comma-separated host or host:port exempt from the SSRF guard' },
  { env: 'FETCH_RETRIES', kind: 'count', fallback: '5', help: 'times a broken origin body is resumed (Range + If-Range) before giving up' },
  { env: 'FETCH_CONNECTIONS', kind: 'count', fallback: '1', help: 'connections per POST /fetch or fetch job, for origins with ranges (1-16)' },
  { env: 'FETCH_PIECE_BYTES', kind: 'size', fallback: '8MiB', help: 'bytes of one ranged piece with FETCH_CONNECTIONS > 1' },
  { env: 'MAX_FETCH_JOBS', kind: 'count', fallback: '4', help: 'fetch jobs (/fetches) running at once' },
  { env: 'FETCH_JOB_TTL_MS', kind: 'ms', fallback: '86400000', help: 'how long a finished fetch job is kept' },
  { env: 'PROXY_TARGET', kind: 'url', fallback: '', help: 'destination URL of POST /proxy (unset: 503)' },
  { env: 'PROXY_TIMEOUT_MS', kind: 'ms', fallback: '30000', help: 'wait this long for the proxy destination (504)' },
  { env: 'MAX_PENDING_UPLOADS', kind: 'count', fallback: '1000', help: 'incomplete resumable uploads at once (503 beyond)' },
  { env: 'UPLOAD_EXPIRY_MS', kind: 'ms', fallback: '86400000', help: 'remove an incomplete resumable upload this long after its last byte' },
  { env: 'CORS_ORIGINS', kind: 'list', fallback: '', help: 'comma-separated origins (or *) allowed from browsers; unset: no CORS headers' },
  { env: 'STORE', kind: 'enum', fallback: 'local', help: 'where files live', choices: ['local', 's3'] },
  { env: 'S3_ENDPOINT', kind: 'url', fallback: '', help: 'S3 endpoint (unset: AWS for S3_REGION)' },
  { env: 'S3_REGION', kind: 'string', fallback: 'us-east-1', help: 'S3 region (SigV4 scope)' },
  { env: 'S3_BUCKET', kind: 'string', fallback: '', help: 'S3 bucket (required with STORE=s3)' },
  { env: 'S3_ACCESS_KEY', kind: 'string', fallback: '', help: 'S3 access key id' },
  { env: 'S3_SECRET_KEY', kind: 'string', fallback: '', help: 'S3 secret access key', secret: true },
  { env: 'S3_PREFIX', kind: 'string', fallback: '', help: 'key prefix for objects in the bucket' },
  { env: 'S3_FORCE_PATH_STYLE', kind: 'bool', fallback: 'false', help: 'path-style URLs (Ceph, MinIO)' },
  { env: 'S3_PART_BYTES', kind: 'size', fallback: '8MiB', help: 'multipart upload part size (at least 5 MiB)' },
  { env: 'UI', kind: 'bool', fallback: 'true', help: 'serve the web page at / (false: / is a 404)' },
];

/** `MAX_FILE_BYTES` → `--max-file-bytes`. */
export function flagName(env: string): string {
  return `--${env.toLowerCase().replaceAll('_', '-')}`;
}

export function helpText(): string {
  const lines = ['Usage: node dist/server.js [--flag value]...', '', 'Every setting is an environment variable or a flag; flags win.', ''];
  for (const s of SETTINGS) {
    const shown = s.choices ? `${s.fallback} (${s.choices.join('|')})` : s.fallback === '' ? '(unset)' : s.fallback;
    lines.push(`  ${flagName(s.env).padEnd(26)} ${s.env.padEnd(24)} ${s.help}; default ${shown}`);
  }
  lines.push('', 'Sizes take suffixes: 512k, 10MiB, 1.5GB (k/m/g/t and KiB/MiB/GiB are binary, KB/MB/GB decimal).');
  return lines.join('\n');
}

export type ParsedArgs = { readonly help: true } | { readonly help: false; readonly config: Config };

/** Reads settings from `env` and `argv` (flags win); throws ConfigError naming the bad setting. */
export function loadConfig(argv: readonly string[], env: NodeJS.ProcessEnv): ParsedArgs {
  const raw = new Map<string, string>();
  for (const s of SETTINGS) {
    const value = env[s.env];
    if (value !== undefined && value !== '') raw.set(s.env, value);
  }
  for (let i = 0; i < argv.length; i += 1) {
    const arg = argv[i] as string;
    if (arg === '--help' || arg === '-h') return { help: true };
    const eq = arg.indexOf('=');
    const flag = eq === -1 ? arg : arg.slice(0, eq);
    const setting = SETTINGS.find((s) => flagName(s.env) === flag);
    if (setting === undefined) throw new ConfigError(arg, 'unknown option (see --help)');
    let value: string | undefined;
    if (eq !== -1) value = arg.slice(eq + 1);
    else {
      value = argv[i + 1];
      i += 1;
    }
    if (value === undefined) throw new ConfigError(setting.env, `${flag} needs a value`);
    raw.set(setting.env, value);
  }
  const get = (name: string): string => {
    const s = SETTINGS.find((x) => x.env === name);
    if (s === undefined) throw new Error(`no setting ${name}`);
    return raw.get(name) ?? s.fallback;
  };
  const parse = <T>(name: string, fn: (text: string, s: Setting) => T): T =>
    fn(get(name), SETTINGS.find((x) => x.env === name) as Setting);

  const s3PartBytes = parse('S3_PART_BYTES', size);
  if (s3PartBytes < S3_MIN_PART_BYTES) throw new ConfigError('S3_PART_BYTES', `must be at least 5MiB (the S3 minimum), got ${get('S3_PART_BYTES')}`);
  if (s3PartBytes > 5 * 1024 ** 3) throw new ConfigError('S3_PART_BYTES', 'must be at most 5GiB (the S3 maximum)');

  const config: Config = {
    port: parse('PORT', port),
    host: parse('HOST', nonEmpty),
    tlsCert: get('TLS_CERT') || null,
    tlsKey: get('TLS_KEY') || null,
    dataDir: parse('DATA_DIR', nonEmpty),
    maxFileBytes: parse('MAX_FILE_BYTES', sizeOrUnlimited),
    maxRequestBytes: parse('MAX_REQUEST_BYTES', sizeOrUnlimited),
    maxFiles: parse('MAX_FILES', count),
    maxFields: parse('MAX_FIELDS', count),
    maxFieldBytes: parse('MAX_FIELD_BYTES', size),
    maxTotalFieldBytes: parse('MAX_TOTAL_FIELD_BYTES', size),
    maxPartHeaderBytes: parse('MAX_PART_HEADER_BYTES', size),
    minFreeBytes: parse('MIN_FREE_BYTES', size),
    fsync: parse('FSYNC', bool),
    directIo: parse('DIRECT_IO', bool),
    maxConcurrentUploads: parse('MAX_CONCURRENT_UPLOADS', positiveCount),
    authToken: get('AUTH_TOKEN') === '' ? null : get('AUTH_TOKEN'),
    linkSecret: get('LINK_SECRET') === '' ? null : get('LINK_SECRET'),
    publicUrl: parse('PUBLIC_URL', baseUrl),
    idleTimeoutMs: parse('IDLE_TIMEOUT_MS', ms),
    headersTimeoutMs: parse('HEADERS_TIMEOUT_MS', positiveMs),
    shutdownGraceMs: parse('SHUTDOWN_GRACE_MS', ms),
    logLevel: parse('LOG_LEVEL', choice) as LogLevel,
    logFormat: parse('LOG_FORMAT', choice) as 'auto' | 'json' | 'text',
    fetchTimeoutMs: parse('FETCH_TIMEOUT_MS', positiveMs),
    fetchAllow: parse('FETCH_ALLOW', list),
    fetchRetries: parse('FETCH_RETRIES', count),
    fetchConnections: parse('FETCH_CONNECTIONS', connections),
    fetchPieceBytes: parse('FETCH_PIECE_BYTES', pieceBytes),
    maxFetchJobs: parse('MAX_FETCH_JOBS', positiveCount),
    fetchJobTtlMs: parse('FETCH_JOB_TTL_MS', ms),
    proxyTarget: parse('PROXY_TARGET', httpUrl),
    proxyTimeoutMs: parse('PROXY_TIMEOUT_MS', positiveMs),
    store: parse('STORE', choice) as 'local' | 's3',
    maxPendingUploads: parse('MAX_PENDING_UPLOADS', positiveCount),
    uploadExpiryMs: parse('UPLOAD_EXPIRY_MS', positiveMs),
    corsOrigins: parse('CORS_ORIGINS', origins),
    s3: {
      endpoint: parse('S3_ENDPOINT', httpUrl)?.href.replace(/\/$/, '') ?? null,
      region: parse('S3_REGION', nonEmpty),
      bucket: get('S3_BUCKET') || null,
      accessKey: get('S3_ACCESS_KEY') || null,
      secretKey: get('S3_SECRET_KEY') || null,
      prefix: get('S3_PREFIX'),
      forcePathStyle: parse('S3_FORCE_PATH_STYLE', bool),
      partBytes: s3PartBytes,
    },
    ui: parse('UI', bool),
  };
  if (config.store === 's3') {
    for (const name of ['S3_BUCKET', 'S3_ACCESS_KEY', 'S3_SECRET_KEY'] as const) {
      if (get(name) === '') throw new ConfigError(name, 'is required with STORE=s3');
    }
  }
  return { help: false, config };
}

/** The effective configuration with secrets redacted, for the start-up log line. */
export function describeConfig(config: Config): Record<string, unknown> {
  return {
    ...config,
    maxFileBytes: Number.isFinite(config.maxFileBytes) ? config.maxFileBytes : 'unlimited',
    maxRequestBytes: Number.isFinite(config.maxRequestBytes) ? config.maxRequestBytes : 'unlimited',
    authToken: config.authToken === null ? null : '<redacted>',
    linkSecret: config.linkSecret === null ? null : '<redacted>',
    publicUrl: config.publicUrl?.href ?? null,
    proxyTarget: config.proxyTarget?.href ?? null,
    s3: { ...config.s3, secretKey: config.s3.secretKey === null ? null : '<redacted>' },
  };
}

function fail(s: Setting, text: string, expected: string): never {
  throw new ConfigError(s.env, `invalid value ${JSON.stringify(text)}: expected ${expected}`);
}

function port(text: string, s: Setting): number {
  const n = Number(text);
  if (!/^\d+$/.test(text) || n > 65535) fail(s, text, 'a port number 0-65535');
  return n;
}
function nonEmpty(text: string, s: Setting): string {
  if (text.trim() === '') fail(s, text, 'a non-empty value');
  return text;
}
function size(text: string, s: Setting): number {
  const n = parseSize(text);
  if (n === null) fail(s, text, 'a size such as 1048576, 512k, 10MiB or 1GB');
  return n;
}
function sizeOrUnlimited(text: string, s: Setting): number {
  if (/^(unlimited|none|0)$/i.test(text.trim())) return Infinity;
  return size(text, s);
}
function count(text: string, s: Setting): number {
  if (!/^\d+$/.test(text) || !Number.isSafeInteger(Number(text))) fail(s, text, 'a whole number');
  return Number(text);
}
function positiveCount(text: string, s: Setting): number {
  const n = count(text, s);
  if (n === 0) fail(s, text, 'a whole number above 0');
  return n;
}
/** The bound: more connections than 16 per transfer is what CDNs start to treat as abuse. */
const MAX_FETCH_CONNECTIONS = 16;
function connections(text: string, s: Setting): number {
  const n = count(text, s);
  if (n < 1 || n > MAX_FETCH_CONNECTIONS) fail(s, text, `a whole number from 1 to ${MAX_FETCH_CONNECTIONS}`);
  return n;
}
/** A piece is one request: below 64 KiB the requests cost more than they carry; above 1 GiB it is memory we will not hold. */
function pieceBytes(text: string, s: Setting): number {
  const n = size(text, s);
  if (n < 64 * 1024 || n > 1024 ** 3) fail(s, text, 'a size from 64KiB to 1GiB');
  return n;
}
function ms(text: string, s: Setting): number {
  const n = count(text, s);
  if (n > 2 ** 31 - 1) fail(s, text, 'at most 2147483647 ms');
  return n;
}
function positiveMs(text: string, s: Setting): number {
  const n = ms(text, s);
  if (n === 0) fail(s, text, 'a duration in ms above 0');
  return n;
}
function bool(text: string, s: Setting): boolean {
  if (/^(1|true|yes|on)$/i.test(text)) return true;
  if (/^(0|false|no|off)$/i.test(text)) return false;
  return fail(s, text, 'true or false');
}
function choice(text: string, s: Setting): string {
  if (!s.choices?.includes(text)) fail(s, text, `one of ${s.choices?.join(', ')}`);
  return text;
}
function list(text: string): string[] {
  return text
    .split(',')
    .map((x) => x.trim().toLowerCase())
    .filter((x) => x !== '');
}
/** An http(s) URL that a path can be appended to: no query, no fragment. */
function baseUrl(text: string, s: Setting): URL | null {
  const url = httpUrl(text, s);
  if (url !== null && (url.search !== '' || url.hash !== '' || url.username !== '' || url.password !== '')) {
    fail(s, text, 'an http:// or https:// URL without query, fragment or credentials');
  }
  return url;
}
/** `*`, or origins as browsers send them (`https://app.example.com:8443`, no path), compared exactly. */
function origins(text: string, s: Setting): string[] {
  const items = list(text);
  if (items.includes('*')) {
    if (items.length > 1) fail(s, text, '* alone, or a list of origins');
    return ['*'];
  }
  return items.map((item) => {
    let url: URL;
    try {
      url = new URL(item);
    } catch {
      return fail(s, text, 'origins such as https://app.example.com (scheme, host, optional port)');
    }
    if ((url.protocol !== 'http:' && url.protocol !== 'https:') || url.origin !== item.replace(/\/$/, '')) {
      fail(s, text, 'origins such as https://app.example.com (scheme, host, optional port)');
    }
    return url.origin;
  });
}
function httpUrl(text: string, s: Setting): URL | null {
  if (text === '') return null;
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return fail(s, text, 'an http:// or https:// URL');
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') fail(s, text, 'an http:// or https:// URL');
  return url;
}

