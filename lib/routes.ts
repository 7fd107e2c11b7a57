import type { Config } from './config.js';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Handler } from './context.js';
import { markDialect } from '../resumable/serve.js';
import { handleHealth } from '../handlers/health.js';
import { handleMetrics } from '../handlers/metrics.js';
import { handleNamedUpload, handleUpload } from '../handlers/upload.js';
import { handleDeleteFile, handleGetFile, handleListFiles } from '../handlers/files.js';
import { handleFetch, handleFetchToStore } from '../handlers/fetch.js';
import { handleDeleteFetchJob, handleGetFetchJob, handleListFetchJobs, handleSubmitFetchJob } from '../handlers/fetches.js';
import { handleProxy } from '../handlers/proxy.js';
import { handleCreateLink } from '../handlers/links.js';
import { handleWebPage } from '../handlers/web-page.js';
import { handleUploadResource, handleUploadsCollection } from '../handlers/uploads.js';

export interface Route {
  /** Low-cardinality name for logs and metrics (`files`, not `/files/abc...`). */
  readonly name: string;
  readonly auth: boolean;
  /** Counts against MAX_CONCURRENT_UPLOADS and is refused while shutting down. */
  readonly upload: boolean;
  /** Its body is checked against MAX_FILE_BYTES and free space before it is read. */
  readonly storesBody: boolean;
  /** Its body is one file whatever its Content-Type (`PUT /upload/<name>`): never held to the multipart bound. */
  readonly bodyIsOneFile?: boolean;
  /** The handler sends `100 Continue` itself (`ctx.sendContinue`), after judging the headers. */
  readonly deferContinue?: boolean;
  /**
   * Runs first, before authentication and the limits: headers every answer of the route carries,
   * errors of the server included (tus: `Tus-Resumable` on every response).
   */
  readonly prelude?: (req: IncomingMessage, res: ServerResponse) => void;
}

interface RouteEntry extends Route {
  /** Methods that count as uploads when only some of the route's methods do (POST /fetch). */
  readonly uploadMethods?: readonly string[];
  readonly match: (path: string) => boolean;
  /** A route a setting can turn off: while off, its paths are unknown paths (404, never 405). */
  readonly enabled?: (config: Config) => boolean;
  readonly methods: Readonly<Record<string, Handler>>;
  /**
   * `X-HTTP-Method-Override` names the method (tus 1.0.0 core: "MUST be interpreted as the
   * request's method by the Server"), for clients that cannot send PATCH or DELETE.
   */
  readonly methodOverride?: boolean;
}

const plain = { auth: true, upload: false, storesBody: false } as const;

/** The whole API. `/files/:id` ids are validated by the store (malformed ids are unknown ids). */
const ROUTES: readonly RouteEntry[] = [
  { name: 'healthz', ...plain, auth: false, match: (p) => p === '/healthz', methods: { GET: handleHealth, HEAD: handleHealth } },
  { name: 'metrics', ...plain, match: (p) => p === '/metrics', methods: { GET: handleMetrics } },
  { name: 'upload', ...plain, upload: true, storesBody: true, match: (p) => p === '/upload', methods: { POST: handleUpload, PUT: handleUpload } },
  { name: 'upload', ...plain, upload: true, storesBody: true, bodyIsOneFile: true, match: (p) => p.startsWith('/upload/'), methods: { PUT: handleNamedUpload } },
  { name: 'files', ...plain, match: (p) => p === '/files' || p === '/files/', methods: { GET: handleListFiles, HEAD: handleListFiles } },
  {
    name: 'file',
    ...plain,
    match: (p) => p.startsWith('/files/') && p.length > '/files/'.length,
    methods: { GET: handleGetFile, HEAD: handleGetFile, DELETE: handleDeleteFile },
  },
  { name: 'fetch', ...plain, uploadMethods: ['POST'], match: (p) => p === '/fetch', methods: { GET: handleFetch, HEAD: handleFetch, POST: handleFetchToStore } },
  { name: 'fetches', ...plain, match: (p) => p === '/fetches' || p === '/fetches/', methods: { GET: handleListFetchJobs, HEAD: handleListFetchJobs, POST: handleSubmitFetchJob } },
  {
    name: 'fetch-job',
    ...plain,
    match: (p) => p.startsWith('/fetches/') && p.length > '/fetches/'.length,
    methods: { GET: handleGetFetchJob, HEAD: handleGetFetchJob, DELETE: handleDeleteFetchJob },
  },
  { name: 'proxy', ...plain, upload: true, match: (p) => p === '/proxy', methods: { POST: handleProxy } },
  { name: 'links', ...plain, match: (p) => p === '/links', methods: { POST: handleCreateLink } },
  // Resumable uploads (tus 1.0.0 and draft-ietf-httpbis-resumable-upload): see resumable/.
  {
    name: 'uploads',
    ...plain,
    storesBody: true,
    uploadMethods: ['POST'],
    deferContinue: true,
    methodOverride: true,
    prelude: markDialect,
    match: (p) => p === '/uploads' || p === '/uploads/',
    methods: { POST: handleUploadsCollection, OPTIONS: handleUploadsCollection },
  },
  {
    name: 'upload-resource',
    ...plain,
    storesBody: true,
    uploadMethods: ['PATCH'],
    deferContinue: true,
    methodOverride: true,
    prelude: markDialect,
    match: (p) => p.startsWith('/uploads/') && p.length > '/uploads/'.length,
    methods: { HEAD: handleUploadResource, GET: handleUploadResource, PATCH: handleUploadResource, DELETE: handleUploadResource, OPTIONS: handleUploadResource },
  },
  // The page is public (it holds no data); the API calls it makes carry the token. UI=false: 404.
  {
    name: 'ui',
    ...plain,
    auth: false,
    enabled: (c) => c.ui,
    match: (p) => p === '/' || p.startsWith('/ui/'),
    methods: { GET: handleWebPage, HEAD: handleWebPage },
  },
];

/** A method name as RFC 9110 5.6.2 writes tokens; anything else in X-HTTP-Method-Override is ignored. */
const METHOD_TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,32}$/;

export type RouteMatch =
  | { readonly kind: 'ok'; readonly route: Route; readonly handler: Handler; readonly method: string; readonly methods: readonly string[] }
  | { readonly kind: 'method'; readonly route: Route; readonly allowed: readonly string[]; readonly methods: readonly string[] }
  | { readonly kind: 'not-found'; readonly route: null };

/**
 * The route for `path` and the handler for `method`, or for `override` (the request's
 * `X-HTTP-Method-Override`) on routes that honour it. Routes that `config` turns off are unknown
 * paths (without a config, as in unit tests, they count as on).
 */
export function routeRequest(requestMethod: string, path: string, override?: string, config?: Config): RouteMatch {
  const entry = ROUTES.find((r) => r.match(path) && (config === undefined || (r.enabled?.(config) ?? true)));
  if (entry === undefined) return { kind: 'not-found', route: null };
  const wanted = override?.trim();
  const method = entry.methodOverride === true && wanted !== undefined && METHOD_TOKEN.test(wanted) ? wanted.toUpperCase() : requestMethod;
  const methods = Object.keys(entry.methods);
  const handler = Object.hasOwn(entry.methods, method) ? entry.methods[method] : undefined;
  if (handler === undefined) return { kind: 'method', route: entry, allowed: methods, methods };
  const route = entry.uploadMethods?.includes(method) ? { ...entry, upload: true } : entry;
  return { kind: 'ok', route, handler, method, methods };
}
