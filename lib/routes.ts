import type { Handler } from './context.js';
import { handleHealth } from '../handlers/health.js';
import { handleMetrics } from '../handlers/metrics.js';
import { handleUpload } from '../handlers/upload.js';
import { handleDeleteFile, handleGetFile, handleListFiles } from '../handlers/files.js';
import { handleFetch, handleFetchToStore } from '../handlers/fetch.js';
import { handleDeleteFetchJob, handleGetFetchJob, handleListFetchJobs, handleSubmitFetchJob } from '../handlers/fetches.js';
import { handleProxy } from '../handlers/proxy.js';

export interface Route {
  /** Low-cardinality name for logs and metrics (`files`, not `/files/abc...`). */
  readonly name: string;
  readonly auth: boolean;
  /** Counts against MAX_CONCURRENT_UPLOADS and is refused while shutting down. */
  readonly upload: boolean;
  /** Its body is checked against MAX_FILE_BYTES and free space before it is read. */
  readonly storesBody: boolean;
}

interface RouteEntry extends Route {
  /** Methods that count as uploads when only some of the route's methods do (POST /fetch). */
  readonly uploadMethods?: readonly string[];
  readonly match: (path: string) => boolean;
  readonly methods: Readonly<Record<string, Handler>>;
}

const plain = { auth: true, upload: false, storesBody: false } as const;

/** The whole API. `/files/:id` ids are validated by the store (malformed ids are unknown ids). */
const ROUTES: readonly RouteEntry[] = [
  { name: 'healthz', ...plain, auth: false, match: (p) => p === '/healthz', methods: { GET: handleHealth, HEAD: handleHealth } },
  { name: 'metrics', ...plain, match: (p) => p === '/metrics', methods: { GET: handleMetrics } },
  { name: 'upload', ...plain, upload: true, storesBody: true, match: (p) => p === '/upload', methods: { POST: handleUpload, PUT: handleUpload } },
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
];

export type RouteMatch =
  | { readonly kind: 'ok'; readonly route: Route; readonly handler: Handler }
  | { readonly kind: 'method'; readonly route: Route; readonly allowed: readonly string[] }
  | { readonly kind: 'not-found'; readonly route: null };

export function routeRequest(method: string, path: string): RouteMatch {
  const entry = ROUTES.find((r) => r.match(path));
  if (entry === undefined) return { kind: 'not-found', route: null };
  const handler = Object.hasOwn(entry.methods, method) ? entry.methods[method] : undefined;
  if (handler === undefined) return { kind: 'method', route: entry, allowed: Object.keys(entry.methods) };
  const route = entry.uploadMethods?.includes(method) ? { ...entry, upload: true } : entry;
  return { kind: 'ok', route, handler };
}
