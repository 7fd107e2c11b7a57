import { MalformedRequestError } from '../lib/errors.js';
import { parseParameterized } from './header-params.js';

/** RFC 2046 5.1.1 bchars: DIGIT / ALPHA / "'()+_,-./:=?" and space (not as the last char). */
const BCHARS = /^[0-9A-Za-z'()+_,\-./:=? ]{0,69}[0-9A-Za-z'()+_,\-./:=?]$/;

export function isMultipartFormData(header: string | undefined): boolean {
  if (header === undefined) return false;
  return parseParameterized(header)?.value === 'multipart/form-data';
}

/**
 * The boundary of a `multipart/...; boundary=...` Content-Type: quoted or bare, 1-70 bchars
 * (RFC 2046 5.1.1), case-sensitive. Missing → BOUNDARY_MISSING, anything else wrong →
 * BOUNDARY_INVALID (both 400).
 */
export function boundaryFromContentType(header: string | undefined): string {
  const parsed = header === undefined ? null : parseParameterized(header);
  if (parsed === null) {
    if (header !== undefined && /;\s*boundary\s*=/i.test(header)) throw invalidBoundary();
    throw new MalformedRequestError('BOUNDARY_MISSING', 'Content-Type has no boundary parameter');
  }
  const boundary = parsed.params.boundary;
  if (boundary === undefined) throw new MalformedRequestError('BOUNDARY_MISSING', 'Content-Type has no boundary parameter');
  if (!BCHARS.test(boundary)) throw invalidBoundary();
  return boundary;
}

function invalidBoundary(): MalformedRequestError {
  return new MalformedRequestError('BOUNDARY_INVALID', 'The multipart boundary must be 1 to 70 characters from the RFC 2046 set, not ending in a space');
}
