import { SluiceError } from '../lib/errors.js';
import { dispositionParam, lastPathSegment, parseContentDisposition } from './content-disposition.js';

/**
 * The header block of one multipart/form-data body part, written the way browsers write it.
 *
 * The rules are the HTML standard's "multipart/form-data encoding algorithm"
 * (https://html.spec.whatwg.org/multipage/form-control-infrastructure.html#multipart-form-data):
 * names and filenames go out as raw UTF-8 inside a quoted string, with only three bytes
 * escaped (`"` as `%22`, CR as `%0D`, LF as `%0A`) and no other escape, backslashes included.
 * RFC 7578 4.2 forbids the RFC 5987/8187 `filename*` form inside multipart/form-data, so there is
 * no second, "extended" parameter either: a receiver such as werkzeug that keeps whichever
 * filename parameter comes last would otherwise see a different name than one that keeps the first.
 */

/** What the header block says about a part: the same fields the parser reports in `PartInfo`. */
export interface FormDataPartHeader {
  readonly name: string;
  /** `null` for a plain field; `''` for an empty file input (browsers send `filename=""`). */
  readonly filename: string | null;
  readonly contentType: string | null;
  /** The part's own headers, names lower-cased, when it came from a parser (`PartInfo.headers`). */
  readonly headers?: Readonly<Record<string, string>>;
}

/** A file part without a type of its own is sent as opaque bytes (RFC 7578 4.4, and what browsers send). */
export const DEFAULT_FILE_CONTENT_TYPE = 'application/octet-stream';

/**
 * `"`, CR and LF, each replaced by its percent form (HTML standard, see above). Other control
 * bytes (NUL, ESC, DEL...), which a browser cannot put in a name but `filename*` can, get their
 * percent form too: a raw one would be a malformed header line (RFC 9110 5.5) that careful
 * parsers, ours included, refuse.
 */
const ESCAPED = /["\x00-\x08\x0a-\x1f\x7f]/g;
const escapeChar = (c: string): string => `%${c.charCodeAt(0).toString(16).toUpperCase().padStart(2, '0')}`;

/**
 * A header value may hold VCHAR, obs-text, SP and HTAB (RFC 9110 5.5); any other control byte,
 * CR and LF above all, would end the header line early and let the value forge headers or a
 * boundary of its own.
 */
const FORBIDDEN_IN_FIELD_VALUE = /[\x00-\x08\x0a-\x1f\x7f]/;

/** Escapes a name or filename for the inside of the quoted string (HTML standard). */
export function escapeFormDataParameter(value: string): string {
  return value.replace(ESCAPED, escapeChar);
}

/**
 * The encoder was used wrongly (events out of order, a header it cannot write). Never the
 * client's fault when the events come from our parser, hence 500.
 */
export class MultipartEncodeError extends SluiceError {
  constructor(code: 'MULTIPART_ENCODE_ORDER' | 'MULTIPART_ENCODE_HEADER', message: string) {
    super(code, message, 500);
  }
}

/**
 * The filename as the client sent it, for passing the part on: its `Content-Disposition` read
 * the way the parser reads it (`dispositionParam`: `filename*` decoded and preferred, the HTML
 * standard's escapes undone), without the parser's cut to the last path segment. The parser's
 * `filename` is the safe name for storing a file here (RFC 7578 4.2: the receiver drops
 * directories); a proxy is not that receiver, and the cut loses what the destination is owed:
 * the relative paths browsers send for a directory upload (`photos/2024/a.jpg`, PHP's
 * `full_path`), and the bytes of a file named `..` or `dir/`, whose cut name `""` makes PHP
 * drop the file and busboy read it as a field. The destination applies its own rules, as it
 * would to the client's request. Anything but the directory part added back (no headers, a
 * header that reads differently) keeps `filename`.
 */
export function filenameAsSent(part: FormDataPartHeader): string | null {
  const { filename } = part;
  const header = part.headers?.['content-disposition'];
  if (filename === null || header === undefined) return filename;
  const disposition = parseContentDisposition(header, FORM_DATA);
  const sent = disposition === null ? null : dispositionParam(disposition, 'filename', FORM_DATA);
  // Only ever the directory part added back: whatever else differs, the parser's name stands.
  return sent !== null && lastPathSegment(sent) === filename ? sent : filename;
}

const FORM_DATA = { formData: true } as const;

/**
 * The header block of a part, CRLF after each line and the empty line that ends the block
 * included (RFC 2046 5.1.1: `body-part := MIME-part-headers [CRLF *OCTET]`).
 * Only Content-Disposition and Content-Type: RFC 7578 4.8 says other header fields
 * MUST NOT be included.
 */
export function formatFormDataPartHeader(part: FormDataPartHeader, filename: string | null = part.filename): string {
  let disposition = `form-data; name="${escapeFormDataParameter(part.name)}"`;
  if (filename !== null) disposition += `; filename="${escapeFormDataParameter(filename)}"`;
  // RFC 7578 4.4: a file part's type defaults to application/octet-stream; a field has none
  // unless the sender gave one (curl -F 'a=b;type=text/plain'), and then we keep it.
  const type = part.contentType ?? (filename === null ? null : DEFAULT_FILE_CONTENT_TYPE);
  let block = `Content-Disposition: ${disposition}\r\n`;
  if (type !== null) {
    if (type.trim() === '' || FORBIDDEN_IN_FIELD_VALUE.test(type)) {
      throw new MultipartEncodeError('MULTIPART_ENCODE_HEADER', `Content-Type ${JSON.stringify(type)} cannot be sent as a header value`);
    }
    block += `Content-Type: ${type}\r\n`;
  }
  return `${block}\r\n`;
}
