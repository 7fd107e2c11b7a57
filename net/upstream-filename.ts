import { dispositionFilename, formatContentDisposition, lastPathSegment, parseContentDisposition } from '../multipart/content-disposition.js';
import { decodeHeaderBytes } from '../multipart/header-params.js';

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
  const disposition = parseContentDisposition(headerText(header));
  const name = disposition === null ? null : dispositionFilename(disposition);
  return name === null ? null : cleanFilename(name);
}

/**
 * An origin's Content-Disposition as we can pass it on: unchanged when it is plain ASCII; else
 * (a raw UTF-8 or Latin-1 `filename="..."`, which many servers send) rebuilt from the name it
 * carries as RFC 6266's ASCII `filename` plus RFC 8187's `filename*`, the form every client reads.
 * Bytes past ASCII cannot be relayed as they came: Node re-decodes a Content-Disposition value
 * as UTF-8 when a Content-Length was set before it (nodejs/node#46528), which turns them into
 * U+FFFD or other bytes, and leaves them alone otherwise. Null when the header cannot be read.
 */
export function relayableDisposition(header: string): string | null {
  if (/^[\t\x20-\x7e]*$/.test(header)) return header;
  const disposition = parseContentDisposition(headerText(header));
  if (disposition === null) return null;
  // RFC 6266 4.2: an unknown disposition type is handled as attachment.
  const type = disposition.type === 'inline' ? 'inline' : 'attachment';
  const name = dispositionFilename(disposition);
  return formatContentDisposition(type, name === null ? null : cleanFilename(name));
}

/**
 * A header value as Node hands it over (one char per byte, Latin-1) read the way browsers read
 * a raw filename, and the way part headers are read (`decodeHeaderBytes`): as UTF-8 when the
 * bytes are valid UTF-8, else as windows-1252.
 */
function headerText(value: string): string {
  return /^[\x00-\x7f]*$/.test(value) ? value : decodeHeaderBytes(Buffer.from(value, 'latin1'));
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
