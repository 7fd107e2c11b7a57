import type { RequestContext } from '../lib/context.js';
import { uploadLinkQuery } from '../lib/signed-links.js';

/**
 * THE place where the URL of an upload resource is made: the `Location` of a creation (tus 201,
 * the draft's 104 and 201) and the URLs a final upload's `Upload-Concat` echoes. Relative (tus:
 * "This URL MAY be absolute or relative"; RFC 9110 10.2.2 lets `Location` be relative too), so no
 * client-sent `Host` ever becomes part of it.
 *
 * A creation authorized by a signed link for `POST /uploads` gets back a URL that is itself
 * authorized: a link derived from the creating one (lib/signed-links.ts), for HEAD, PATCH, DELETE
 * and OPTIONS on exactly this upload, with the same expiry and maxBytes. With the bearer token
 * (or no AUTH_TOKEN) the plain URL is all the client needs.
 */
export function uploadLocation(ctx: Pick<RequestContext, 'config' | 'grant'>, id: string): string {
  const path = `/uploads/${encodeURIComponent(id)}`;
  const query = uploadLinkQuery(ctx, path);
  return query === null ? path : `${path}?${query}`;
}
