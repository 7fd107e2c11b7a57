import { InternalError } from '../lib/errors.js';

/** A kind is sluice's own word (`fetch-job`); an id is a file id or the like. Neither is ever client text. */
const KIND = /^[a-z][a-z0-9-]{0,63}$/;
const ID = /^[A-Za-z0-9_-]{1,64}$/;

/** Throws on a kind or id that could not be a name of ours (a bug of the caller, not the client's). */
export function checkDocumentName(kind: string, id: string | null): void {
  if (!KIND.test(kind)) throw new InternalError(`document kind ${JSON.stringify(kind)} is not a name of ours`);
  if (id !== null && !ID.test(id)) throw new InternalError(`document id ${JSON.stringify(id)} is not a name of ours`);
}

/** A stored document read back; a damaged one is our failure. */
export function parseDocument(text: string, kind: string, id: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    throw new InternalError(`document ${kind}/${id} is not JSON`, { cause: err });
  }
}
