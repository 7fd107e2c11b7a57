import type { RequestContext } from '../lib/context.js';

/**
 * THE place where the URL of an upload resource is made: the `Location` of a creation (tus 201,
 * the draft's 104 and 201) and the URLs a final upload's `Upload-Concat` echoes. Relative (tus:
 * "This URL MAY be absolute or relative"; RFC 9110 10.2.2 lets `Location` be relative too), so no
 * client-sent `Host` ever becomes part of it.
 *
 * Signed links (issue 17) plug in here: a creation authorized by a signed link must hand back a
 * URL that is itself authorized (a link derived from the creating one). `ctx` is the creating
 * request, so `lib/signed-links.ts` can derive that link from `ctx.url` and return it instead.
 */
export function uploadLocation(ctx: RequestContext, id: string): string {
  void ctx; // the signed-link derivation needs the creating request; plain URLs do not
  return `/uploads/${encodeURIComponent(id)}`;
}
