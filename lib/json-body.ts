import type { IncomingMessage } from 'node:http';
import { LimitExceededError, MalformedRequestError, UnsupportedMediaTypeError } from './errors.js';
import { requestBody } from './request-body.js';
import { mediaTypeEssence } from '../multipart/content-type.js';

/** RFC 8259 / RFC 6839 3.1: `application/json` or any `+json` type, parameters aside. */
export function isJsonMediaType(header: string | undefined): boolean {
  const type = mediaTypeEssence(header ?? '');
  return type === 'application/json' || (type.startsWith('application/') && type.endsWith('+json'));
}

/**
 * A small request body read whole as JSON: 413 BODY_TOO_LARGE past `limit`, 415 unless its
 * Content-Type is JSON (`route` names the request in that message), 400 BAD_JSON unless it
 * is valid UTF-8 JSON.
 */
export async function readJsonBody(req: IncomingMessage, limit: number, route: string): Promise<unknown> {
  if (!isJsonMediaType(req.headers['content-type'])) throw new UnsupportedMediaTypeError(`${route} takes an application/json body`);
  const tooLarge = (): LimitExceededError => new LimitExceededError('BODY_TOO_LARGE', `The JSON body is over ${limit} bytes`, limit);
  const declared = Number(req.headers['content-length']);
  if (Number.isSafeInteger(declared) && declared > limit) throw tooLarge();
  const chunks: Buffer[] = [];
  let size = 0;
  // requestBody: leaving the loop early must not destroy the socket the 413 goes out on.
  for await (const chunk of requestBody(req)) {
    size += chunk.length;
    if (size > limit) throw tooLarge();
    chunks.push(chunk);
  }
  let text: string;
  try {
    // RFC 8259 8.1: JSON between systems is UTF-8.
    text = new TextDecoder('utf-8', { fatal: true }).decode(Buffer.concat(chunks, size));
  } catch (err) {
    throw new MalformedRequestError('BAD_JSON', 'The body is not UTF-8', { cause: err });
  }
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    throw new MalformedRequestError('BAD_JSON', 'The body is not valid JSON', { cause: err });
  }
}
