import { MalformedRequestError } from '../lib/errors.js';
import { cleanFilename } from '../net/upstream-filename.js';

/**
 * The file name in `PUT /upload/<name>`: the last segment of the path, percent-decoded as
 * UTF-8 (RFC 3986 2.1), then reduced as every client-given name is (its last segment after a
 * decoded `/` or `\`, no control characters, at most 255 characters; `.`, `..` or nothing
 * left: no name). It is metadata only, never a path. Malformed percent-encoding, or a NUL,
 * is a 400 (as pillarjs/send refuses them); `/upload/` alone names nothing.
 */
export function filenameFromPath(pathname: string): string | null {
  const segment = pathname.slice(pathname.lastIndexOf('/') + 1);
  let decoded: string;
  try {
    decoded = decodeURIComponent(segment);
  } catch {
    throw new MalformedRequestError('BAD_FILENAME', 'The file name in the path is not valid percent-encoded UTF-8');
  }
  if (decoded.includes('\u0000')) throw new MalformedRequestError('BAD_FILENAME', 'The file name in the path contains a NUL byte');
  return cleanFilename(decoded);
}
