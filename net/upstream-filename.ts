import { dispositionFilename, lastPathSegment, parseContentDisposition } from '../multipart/content-disposition.js';

/**
 * The name to store a fetched file under: the origin's Content-Disposition filename, else the
 * last segment of the URL's path. Names are metadata only, so they are reduced to a final path
 * segment without control characters, never a path.
 */

/** Longest name kept, in UTF-16 units; common file systems stop at 255 bytes anyway. */
const MAX_FILENAME_LENGTH = 255;
// C0, DEL and C1: invisible, and able to forge lines in logs and listings.
const CONTROL_CHARS = /[\u0000-\u001f\u007f-\u009f]/g;

/** `report.pdf` from `attachment; filename="report.pdf"` (`filename*` wins, RFC 6266 4.3). */
export function filenameFromDisposition(header: string | undefined): string | null {
  if (header === undefined) return null;
  // A malformed header from an origin is not the client's fault: fall back to the URL.
  const disposition = parseContentDisposition(header);
  const name = disposition === null ? null : dispositionFilename(disposition);
  return name === null ? null : cleanFilename(name);
}

/** `data.csv` from `https://host/exports/data.csv?x=1`, percent-decoded; null for `/`. */
export function filenameFromUrl(url: URL): string | null {
  const segment = lastPathSegment(url.pathname);
  try {
    return cleanFilename(decodeURIComponent(segment));
  } catch {
    return cleanFilename(segment); // not valid percent-encoded UTF-8: keep it as written
  }
}

/** The last path segment, without control characters, bounded; null when nothing is left. */
export function cleanFilename(name: string): string | null {
  const clean = lastPathSegment(name).replace(CONTROL_CHARS, '').trim().slice(0, MAX_FILENAME_LENGTH);
  return clean === '' || clean === '.' || clean === '..' ? null : clean;
}
