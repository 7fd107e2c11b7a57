import { createHash } from 'node:crypto';
import { readdir, readFile, stat } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { RequestContext } from '../lib/context.js';
import { NotFoundError, PreconditionFailedError } from '../lib/errors.js';
import { evaluatePreconditions, type Validators } from './http-conditional.js';

/**
 * The web page (`GET /`) and its assets (`GET /ui/<name>`): static files that `npm run build`
 * puts in `dist/web/` (the page's TypeScript compiled by `web/tsconfig.json`, its HTML and CSS
 * copied beside it). They are small, so they are read once and kept in memory with their ETag.
 * The page itself is public; every API call it makes carries the bearer token.
 */

/** Where the built page lives: `dist/web`, whether this module runs from `dist/handlers` or from source under tsx. */
const HERE = dirname(fileURLToPath(import.meta.url));
const WEB_DIR = basename(dirname(HERE)) === 'dist' ? join(HERE, '..', 'web') : join(HERE, '..', 'dist', 'web');

const TYPES: Readonly<Record<string, string>> = {
  '.html': 'text/html; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.png': 'image/png',
};

/** Asset names we serve: one path segment, no dots but the extension's, so nothing can climb out of WEB_DIR. */
const ASSET_NAME = /^[a-z0-9][a-z0-9-]*\.(html|css|js|png)$/;

/**
 * Sent with the page and every asset. `default-src 'self'`: no inline script or style, nothing
 * from another origin (the page needs neither). Framing is refused so the Delete buttons cannot
 * be clicked through another site's page (clickjacking).
 */
export const PAGE_SECURITY_HEADERS: Readonly<Record<string, string>> = {
  'content-security-policy': "default-src 'self'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'x-frame-options': 'DENY',
};

interface Asset {
  readonly body: Buffer;
  readonly type: string;
  readonly validators: Validators;
}

let assets: Promise<ReadonlyMap<string, Asset>> | null = null;

async function loadAssets(): Promise<ReadonlyMap<string, Asset>> {
  const map = new Map<string, Asset>();
  let names: string[];
  try {
    names = await readdir(WEB_DIR);
  } catch {
    return map; // not built: every asset is a 404
  }
  for (const name of names) {
    if (!ASSET_NAME.test(name)) continue;
    const path = join(WEB_DIR, name);
    const [body, info] = await Promise.all([readFile(path), stat(path)]);
    const etag = `"${createHash('sha256').update(body).digest('base64url').slice(0, 22)}"`;
    const type = TYPES[name.slice(name.lastIndexOf('.'))] as string;
    map.set(name, { body, type, validators: { etag, lastModified: Math.floor(info.mtimeMs / 1000) * 1000 } });
  }
  return map;
}

/** `/` → the page; `/ui/<name>` → an asset; anything else null. */
function assetName(pathname: string): string | null {
  if (pathname === '/') return 'index.html';
  if (!pathname.startsWith('/ui/')) return null;
  const name = pathname.slice('/ui/'.length);
  return ASSET_NAME.test(name) ? name : null;
}

/** `GET|HEAD /` and `/ui/*` (with `UI=false` the route table leaves them unknown: 404). */
export async function handleWebPage(ctx: RequestContext): Promise<void> {
  const { req, res, url } = ctx;
  const name = assetName(url.pathname);
  // A failed read is retried at the next request rather than kept as a broken page.
  assets ??= loadAssets().catch((err: unknown) => {
    assets = null;
    throw err;
  });
  const asset = name === null ? undefined : (await assets).get(name);
  if (asset === undefined) throw new NotFoundError(name === 'index.html' ? 'The web page is not built (npm run build)' : `No asset ${url.pathname}`);

  for (const [k, v] of Object.entries(PAGE_SECURITY_HEADERS)) res.setHeader(k, v);
  res.setHeader('etag', asset.validators.etag);
  res.setHeader('last-modified', new Date(asset.validators.lastModified).toUTCString());
  // Names are not content-hashed, so the browser revalidates each time (a 304 when unchanged).
  res.setHeader('cache-control', 'no-cache');
  if (name === 'sw.js') {
    // The download helper (web/src/sw.ts) lives under /ui/ but serves navigations to /files/.
    res.setHeader('service-worker-allowed', '/files/');
  }
  const precondition = evaluatePreconditions(req.headers, req.method ?? 'GET', asset.validators);
  if (precondition === 'failed') throw new PreconditionFailedError("The asset does not match the request's preconditions");
  if (precondition === 'not-modified') {
    res.statusCode = 304;
    res.end();
    return;
  }
  res.statusCode = 200;
  res.setHeader('content-type', asset.type);
  res.setHeader('content-length', asset.body.length);
  res.end(req.method === 'HEAD' ? undefined : asset.body);
}
