import { MalformedRequestError } from '../lib/errors.js';
import { parseParameterized } from './header-params.js';

/**
 * A boundary: 1-70 printable ASCII characters, not ending in a space. RFC 2046 5.1.1 allows
 * fewer (bchars: DIGIT / ALPHA / "'()+_,-./:=?" and space), but clients send others
 * (Android's classic `boundary=*****`, formidable's `\/\/\/...` fixture) and undici, Go and
 * formidable take any: the boundary is only a byte string to find. Controls, non-ASCII and
 * more than 70 characters stay out.
 */
const BOUNDARY = /^[\x20-\x7e]{0,69}[\x21-\x7e]$/;

/** The media type alone (RFC 9110 8.3.1: before any `;`, case-insensitive), whatever the parameters look like. */
export function mediaTypeEssence(header: string): string {
  const semi = header.indexOf(';');
  return (semi === -1 ? header : header.slice(0, semi)).trim().toLowerCase();
}

/**
 * Whether the body is multipart/form-data. Decided on the media type alone, so that a
 * form-data request with broken parameters gets its 400 from `boundaryFromContentType` instead
 * of being stored whole as a raw upload.
 */
export function isMultipartFormData(header: string | undefined): boolean {
  return header !== undefined && mediaTypeEssence(header) === 'multipart/form-data';
}

/**
 * The boundary of a `multipart/...; boundary=...` Content-Type: quoted or bare, see BOUNDARY,
 * case-sensitive. Missing → BOUNDARY_MISSING, anything else wrong (malformed or repeated
 * parameters included) → BOUNDARY_INVALID (both 400).
 */
export function boundaryFromContentType(header: string | undefined): string {
  const parsed = header === undefined ? null : parseParameterized(header);
  if (parsed === null) {
    if (header !== undefined && /;\s*boundary\s*=/i.test(header)) {
      throw new MalformedRequestError('BOUNDARY_INVALID', 'The Content-Type parameters are malformed (an unterminated quote, a repeated parameter, junk after a value)');
    }
    throw new MalformedRequestError('BOUNDARY_MISSING', 'Content-Type has no boundary parameter');
  }
  const boundary = parsed.params.boundary;
  if (boundary === undefined) throw new MalformedRequestError('BOUNDARY_MISSING', 'Content-Type has no boundary parameter');
  if (!BOUNDARY.test(boundary)) {
    throw new MalformedRequestError('BOUNDARY_INVALID', 'The multipart boundary must be 1 to 70 printable ASCII characters, not ending in a space');
  }
  return boundary;
}
