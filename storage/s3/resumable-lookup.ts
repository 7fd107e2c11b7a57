import type { UploadState } from '../uploads.js';
import type { S3Client, UploadedPart } from './client.js';
import type { UploadKeys } from './resumable-keys.js';
import type { Session, Sessions } from './resumable-sessions.js';
import { MAX_DOC_BYTES, parseDoc, type UploadDoc } from './resumable-state.js';
import { deriveView, sortListing, type UploadView } from './resumable-view.js';

/** One look at an upload in S3: its state object, and what its listing and parts say. */
export interface Found {
  readonly doc: UploadDoc;
  readonly view: UploadView;
}

/**
 * What S3 holds of upload `id`: one listing of its keys, then its parts (in that order: see
 * deriveView). The state object is read once per process (again only if the listing shows
 * another one: the id was made again), and ListParts starts after the parts the session saw.
 * Null when the upload has no state object.
 */
export async function lookUpUpload(client: S3Client, keys: UploadKeys, sessions: Sessions, id: string, session: Session | null): Promise<Found | null> {
  const objects = [];
  for await (const o of client.listObjects(keys.listing(id))) if (keys.idOf(o.key) === id) objects.push(o);
  const listing = sortListing(keys, id, objects);
  if (listing.state === null) return null;
  let doc = session?.doc ?? null;
  if (session !== null && doc !== null && session.docEtag !== listing.state.etag) {
    // Another state object under this id: what this process remembered was another upload's.
    sessions.reset(session);
    doc = null;
  }
  if (doc === null) {
    const text = await client.getObjectText(keys.state(id), MAX_DOC_BYTES);
    if (text === null) return null;
    doc = parseDoc(text, id);
    if (session !== null) {
      session.doc = doc;
      session.docEtag = listing.state.etag;
    }
  }
  // Parts never go away while the multipart upload exists: those this process saw are asked after.
  const known = session?.knownParts ?? [];
  const listed = await client.listParts(doc.dataKey, doc.uploadId, known.length);
  const parts: UploadedPart[] | null = listed === null ? null : [...known, ...listed];
  const view = deriveView(doc, listing, parts);
  if (session !== null && view.open) session.knownParts = view.parts.slice(0, view.fullParts);
  return { doc, view };
}

/** The upload as the contract answers it; null when it is gone (terminated, expired) or not an upload any more. */
export function answerOf(found: Found, expiryMs: number): UploadState | null {
  const { doc, view } = found;
  const expires = view.lastActivity + expiryMs;
  if (view.open) return stateOf(doc, view.offset, view.length, expires, false);
  // The multipart upload is complete: a partial upload's bytes are its data object.
  if (doc.partial) return view.listing.data === null ? null : stateOf(doc, view.listing.data.size, view.listing.data.size, expires, true);
  // A file being completed (or whose completer died before its record): every byte is there,
  // and it answers complete as the local store does; bytes verify() refused are not a file.
  if (view.listing.finals.length > 0 && view.length !== null) return stateOf(doc, view.length, view.length, expires, !view.listing.unverified);
  return null;
}

export function stateOf(doc: UploadDoc, offset: number, length: number | null, expires: number, complete: boolean): UploadState {
  return {
    id: doc.id,
    offset,
    length,
    meta: doc.meta,
    metadata: doc.metadata,
    partial: doc.partial,
    created: doc.created,
    expires: new Date(expires).toISOString(),
    complete,
    completesOnLast: doc.completesOnLast,
    parts: null,
  };
}
