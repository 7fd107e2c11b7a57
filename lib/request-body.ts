import type { IncomingMessage } from 'node:http';

/**
 * The request body as a pipeline source that a failure downstream does not destroy.
 * `stream.pipeline(req, ...)` destroys `req` on any error, and destroying an unfinished
 * IncomingMessage destroys its socket, so the 400/413/507 answer would never reach the client.
 * With this source the socket survives, and the error answer can be sent.
 */
export function requestBody(req: IncomingMessage): AsyncIterable<Buffer> {
  return req.iterator({ destroyOnReturn: false });
}
