import { SluiceError } from '../lib/errors.js';

/**
 * Every protocol error the resumable routes answer, in one table, with the rule beside it
 * (tusd keeps its errors the same way, at the top of unrouted_handler.go). "tus" is protocol.md
 * of tus-resumable-upload-protocol 1.0.0; "draft" is draft-ietf-httpbis-resumable-upload (the
 * section names are the same from -05 to the newest text). Errors that are not about the protocol
 * (OffsetMismatchError 409, ChecksumMismatchError 460, the limits, the store's own) live in
 * lib/errors.ts; render.ts dresses all of them per dialect.
 */
export const PROTOCOL_ERRORS = {
  // tus core, "Tus-Resumable": "If the version specified by the Client is not supported by the
  // Server, it MUST respond with the 412 Precondition Failed status and MUST include the
  // Tus-Version header". A missing header is no supported version either (tusd does the same).
  TUS_VERSION_UNSUPPORTED: 412,
  // draft "Draft Version Identification": only interop versions this server implements are
  // spoken; the draft gives no status, a client error it is.
  INTEROP_VERSION_UNSUPPORTED: 400,
  // tus core, "PATCH": "All PATCH requests MUST use Content-Type: application/offset+octet-stream,
  // otherwise the server SHOULD return a 415"; tus creation-with-upload likewise for a POST body.
  // draft "Upload Append": "MUST use ... the application/partial-upload media type", and RFC 5789
  // 2.2 answers a patch document in a format not supported with 415.
  PATCH_MEDIA_TYPE_UNSUPPORTED: 415,
  // tus core "Upload-Offset": "MUST be a non-negative integer"; draft "Offset": an sf-integer,
  // and a PATCH MUST carry it.
  UPLOAD_OFFSET_INVALID: 400,
  // draft-05 "Upload Creation": "The request MUST NOT include the Upload-Offset header field";
  // "Offset Retrieval" / "Upload Cancellation": "MUST reject requests with either of these fields
  // by responding with a 400".
  UPLOAD_FIELD_NOT_ALLOWED: 400,
  // tus "Upload-Length": "MUST be a non-negative integer"; creation "MUST include" Upload-Length
  // or Upload-Defer-Length: 1 ("any other value than 1 the server should return 400").
  UPLOAD_LENGTH_INVALID: 400,
  // tus "Upload-Metadata": key and base64 value separated by a space, keys unique, not empty.
  UPLOAD_METADATA_MALFORMED: 400,
  // tus checksum: "Upload-Checksum ... the name of the used checksum algorithm and the Base64
  // encoded checksum separated by a space"; "400 Bad Request if the checksum algorithm is not
  // supported by the server".
  UPLOAD_CHECKSUM_MALFORMED: 400,
  CHECKSUM_ALGORITHM_UNSUPPORTED: 400,
  // tus concatenation "Upload-Concat": `partial`, or `final;` and space-separated upload URLs.
  UPLOAD_CONCAT_MALFORMED: 400,
  // tus concatenation: "The Server MUST respond with the 403 Forbidden status to PATCH requests
  // against a final upload URL".
  FINAL_UPLOAD_IMMUTABLE: 403,
  // draft "Upload Creation" / "Upload Append": the request MUST include Upload-Complete (an
  // sf-boolean, ?0 or ?1).
  UPLOAD_COMPLETE_INVALID: 400,
  // The draft's "Length": the `Upload-Length` and `Upload-Complete: ?1` + Content-Length of one
  // request disagree (problem type inconsistent-upload-length). The same code as the store's
  // UploadLengthMismatchError, which refuses a length that contradicts the recorded one.
  UPLOAD_LENGTH_MISMATCH: 400,
} as const;

/*
 * The upload's state, judged by the store (lib/errors.ts), with the rule each enforces:
 * - UPLOAD_NOT_FOUND 404 (NotFoundError): tus core HEAD/PATCH "SHOULD return either the 404 Not
 *   Found, 410 Gone"; draft "If the server does not consider the upload resource to be active, it
 *   MUST respond with a 404".
 * - OFFSET_MISMATCH 409 (OffsetMismatchError): tus core PATCH "MUST respond with the 409 Conflict
 *   status without modifying the upload resource"; draft "MUST reject the request with a 409".
 * - CHECKSUM_MISMATCH 460 (ChecksumMismatchError): tus checksum "460 Checksum Mismatch".
 * - UPLOAD_LENGTH_EXCEEDED 413 (UploadLengthExceededError): tus core PATCH, the offset may not
 *   pass the length (tusd's ERR_UPLOAD_SIZE_EXCEEDED 413); draft-05 "Upload Append": "reject the
 *   request with a 400" (render.ts answers 400 in the draft).
 * - UPLOAD_LENGTH_MISMATCH 400 (UploadLengthMismatchError): tus creation-defer-length "Once set
 *   the length MUST NOT be changed"; draft "Length" (inconsistent-upload-length).
 * - UPLOAD_COMPLETE 400 (UploadCompleteError): draft-05 "If the upload is already complete, the
 *   server MUST NOT modify the upload resource and MUST respond with a 400" (completed-upload).
 * - UPLOAD_NOT_PARTIAL / UPLOAD_INCOMPLETE 400: tus concatenation takes complete partial uploads
 *   (concatenation-unfinished is not offered; tusd's ERR_UPLOAD_NOT_FINISHED is a 400 too).
 * - UPLOAD_INTERRUPTED 409 (UploadInterruptedError): an append ended by a newer request on the
 *   same upload; serve.ts closes that connection (draft "Concurrency").
 * - TOO_MANY_PENDING_UPLOADS 503 + Retry-After: MAX_PENDING_UPLOADS.
 */

export type ProtocolErrorCode = keyof typeof PROTOCOL_ERRORS;

/** One protocol error: code and status from the table above. */
export class ProtocolError extends SluiceError {
  constructor(code: ProtocolErrorCode, message: string, headers?: Record<string, string>) {
    super(code, message, PROTOCOL_ERRORS[code], headers === undefined ? undefined : { headers });
  }
}
