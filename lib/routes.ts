import type { Config } from './config.js';
import type { Handler } from './context.js';
import { handleHealth } from '../handlers/health.js';
import { handleMetrics } from '../handlers/metrics.js';
import { handleUpload } from '../handlers/upload.js';
import { handleDeleteFile, handleGetFile, handleListFiles } from '../handlers/files.js';
import { handleFetch, handleFetchToStore } from '../handlers/fetch.js';
import { handleProxy } from '../handlers/proxy.js';
import { handleWebPage } from '../handlers/web-page.js';

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
  /** A route a setting can turn off: while off, its paths are unknown paths (404, never 405). */
  readonly enabled?: (config: Config) => boolean;
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
  { name: 'proxy', ...plain, upload: true, match: (p) => p === '/proxy', methods: { POST: handleProxy } },
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

export type RouteMatch =
  | { readonly kind: 'ok'; readonly route: Route; readonly handler: Handler }
  | { readonly kind: 'method'; readonly route: Route; readonly allowed: readonly string[] }
  | { readonly kind: 'not-found'; readonly route: null };

export function routeRequest(method: string, path: string, config: Config): RouteMatch {
  const entry = ROUTES.find((r) => r.match(path) && (r.enabled?.(config) ?? true));
  if (entry === undefined) return { kind: 'not-found', route: null };
  const handler = Object.hasOwn(entry.methods, method) ? entry.methods[method] : undefined;
  if (handler === undefined) return { kind: 'method', route: entry, allowed: Object.keys(entry.methods) };
  const route = entry.uploadMethods?.includes(method) ? { ...entry, upload: true } : entry;
  return { kind: 'ok', route, handler };
}
