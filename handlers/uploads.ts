import type { RequestContext } from '../lib/context.js';
import { serveResumable } from '../resumable/serve.js';

/**
 * Resumable uploads (tus 1.0.0 and draft-ietf-httpbis-resumable-upload): everything is in
 * resumable/; these only say which resource was asked for.
 */

/** `OPTIONS /uploads` (discovery) and `POST /uploads` (creation). */
export function handleUploadsCollection(ctx: RequestContext): Promise<void> {
  return serveResumable(ctx, { kind: 'collection' });
}

/** `HEAD`/`GET` (offset), `PATCH` (append), `DELETE` (termination), `OPTIONS` on `/uploads/<id>`. */
export function handleUploadResource(ctx: RequestContext): Promise<void> {
  // The id as the store takes it; anything odd simply fails its check and is an unknown upload.
  let id: string;
  try {
    id = decodeURIComponent(ctx.url.pathname.slice('/uploads/'.length));
  } catch {
    id = '';
  }
  return serveResumable(ctx, { kind: 'resource', id });
}
