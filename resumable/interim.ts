import type { ServerResponse } from 'node:http';

/**
 * Interim (1xx) responses Node has no public API for, such as draft-ietf-httpbis-resumable-upload's
 * `104 Upload Resumption Supported`. Node writes its own (100 Continue, 102, 103 Early Hints) with
 * the response's internal `_writeRaw` (lib/_http_server.js, writeEarlyHints): the bytes go straight
 * to the socket when this response owns it, and otherwise wait in the response's output queue and
 * are flushed in order once the responses ahead of it on a keep-alive connection are done. Writing
 * to the socket ourselves would break that order for pipelined requests, so this does the same.
 */

interface RawWriter {
  _writeRaw?: (data: string, encoding: BufferEncoding, callback?: () => void) => boolean;
}

/** Header values we write as they are: visible ASCII and spaces, no CR or LF. */
const FIELD_VALUE = /^[\x20-\x7e]*$/;
const FIELD_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

/**
 * Writes `HTTP/1.1 <status> <reason>` and `headers` before the final answer. False (nothing
 * written) when that is not allowed or possible: the final answer has begun, the client speaks
 * HTTP/1.0 (RFC 9110 15.2: "A server MUST NOT send a 1xx response to an HTTP/1.0 client"), or the
 * connection is gone.
 */
export function writeInterimResponse(res: ServerResponse, status: number, reason: string, headers: ReadonlyArray<readonly [string, string]>): boolean {
  if (status < 100 || status > 199 || status === 101) throw new Error(`not an interim status: ${status}`);
  const req = res.req;
  if (res.headersSent || res.writableEnded || res.destroyed) return false;
  if (req.httpVersionMajor < 1 || (req.httpVersionMajor === 1 && req.httpVersionMinor < 1)) return false;
  // No socket yet is fine: this response waits behind an earlier one on its connection, and so
  // will the interim answer. A destroyed one reads nothing.
  if (res.socket?.destroyed === true) return false;
  let head = `HTTP/1.1 ${status} ${reason}\r\n`;
  for (const [name, value] of headers) {
    if (!FIELD_NAME.test(name) || !FIELD_VALUE.test(value)) throw new Error(`interim header ${name} is not fit for the wire`);
    head += `${name}: ${value}\r\n`;
  }
  head += '\r\n';
  const writer = res as unknown as RawWriter;
  if (typeof writer._writeRaw === 'function') {
    writer._writeRaw(head, 'latin1');
    return true;
  }
  // A Node without _writeRaw: write only when this response owns the socket (no answer of an
  // earlier request still queued ahead of it).
  const socket = res.socket as (typeof res.socket & { _httpMessage?: unknown }) | null;
  if (socket === null || socket._httpMessage !== res) return false;
  socket.write(head, 'latin1');
  return true;
}
