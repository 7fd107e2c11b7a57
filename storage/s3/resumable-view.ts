import type { ListedObject, UploadedPart } from './client.js';
import type { UploadKeys } from './resumable-keys.js';
import type { UploadDoc } from './resumable-state.js';

/** Bytes [start, end) of the upload, held in one small object until they go into a part. */
export interface Piece {
  readonly key: string;
  readonly start: number;
  readonly end: number;
  readonly etag: string | null;
}

/** One ListObjectsV2 of an upload's keys, sorted out. */
export interface UploadListing {
  /** The state object's listing entry; null when the upload has none (unknown, gone, or an orphan). */
  readonly state: ListedObject | null;
  readonly pieces: readonly Piece[];
  readonly lengths: readonly number[];
  readonly finals: readonly number[];
  readonly unverified: boolean;
  /** A partial upload's bytes, once its multipart upload is complete. */
  readonly data: ListedObject | null;
  readonly pending: readonly string[];
  /** Every key listed, the state's included (what a removal deletes). */
  readonly keys: readonly string[];
  /** Latest LastModified of any of them, ms since the epoch (0 when none). */
  readonly newest: number;
}

export function sortListing(keys: UploadKeys, id: string, objects: readonly ListedObject[]): UploadListing {
  let state: ListedObject | null = null;
  let data: ListedObject | null = null;
  let unverified = false;
  const pieces: Piece[] = [];
  const lengths: number[] = [];
  const finals: number[] = [];
  const pending: string[] = [];
  let newest = 0;
  for (const o of objects) {
    newest = Math.max(newest, time(o.lastModified));
    const what = keys.classify(id, o.key);
    switch (what.kind) {
      case 'state':
        state = o;
        break;
      case 'piece':
        // A piece's size is its object's: a listing entry that disagrees with its name is not ours.
        if (what.end > what.start && o.size === what.end - what.start) pieces.push({ key: o.key, start: what.start, end: what.end, etag: o.etag });
        break;
      case 'length':
        lengths.push(what.value);
        break;
      case 'final':
        finals.push(what.value);
        break;
      case 'unverified':
        unverified = true;
        break;
      case 'data':
        data = o;
        break;
      case 'pending':
        pending.push(o.key);
        break;
      case 'unknown':
        break;
    }
  }
  return { state, pieces, lengths, finals, unverified, data, pending, keys: objects.map((o) => o.key), newest };
}

/** What S3 holds of one upload, and the offset that follows from it. */
export interface UploadView {
  readonly doc: UploadDoc;
  readonly listing: UploadListing;
  /** False once the multipart upload is completed or aborted (ListParts answers 404). */
  readonly open: boolean;
  /** Parts 1..fullParts exist and hold `partBytes` each. */
  readonly fullParts: number;
  /** Parts 1..fullParts, and the short last part when it exists, in order. */
  readonly parts: readonly UploadedPart[];
  /** The tail: pieces counted toward the offset, in order, all in part slot fullParts + 1. */
  readonly tail: readonly Piece[];
  /** Where the tail starts: fullParts · partBytes (the length, once the short last part is in). */
  readonly tailStart: number;
  /** Bytes S3 holds from 0 without a gap: what the upload's offset is. */
  readonly offset: number;
  /** The length as known now: an append's `last`, else the state's, else a declared deferred one. */
  readonly length: number | null;
  /** Every byte is in and the upload should complete (tus: offset = length; IETF: and `last` was sent). */
  readonly due: boolean;
  /** Latest LastModified of anything of the upload, parts included (expiry counts from it). */
  readonly lastActivity: number;
}

/**
 * The offset from what S3 lists, no lock and no counter: parts are numbered by offset
 * (part n = bytes [(n-1)·P, n·P)), so the full parts from part 1 without a gap, then the pieces
 * that continue them without a gap, are exactly the bytes held. Pieces only ever start where
 * earlier ones (or a part) end, and are only deleted once the part that holds their bytes exists,
 * so this never goes backwards, whichever instance wrote what.
 *
 * The listing must have been taken before the parts were listed: a writer deletes pieces only
 * after their part is acknowledged, so pieces missing from an earlier listing are in the later
 * part list (the other order could miss both).
 */
export function deriveView(doc: UploadDoc, listing: UploadListing, parts: readonly UploadedPart[] | null): UploadView {
  const P = doc.partBytes;
  const length = listing.finals.length > 0 ? Math.min(...listing.finals) : doc.length ?? (listing.lengths.length > 0 ? Math.min(...listing.lengths) : null);
  const byNumber = new Map((parts ?? []).map((p) => [p.partNumber, p]));
  const counted: UploadedPart[] = [];
  let fullParts = 0;
  let lastActivity = listing.newest;
  for (const p of parts ?? []) lastActivity = Math.max(lastActivity, time(p.lastModified));
  for (;;) {
    const part = byNumber.get(fullParts + 1);
    if (part === undefined || part.size !== P) break;
    // A full part past the length cannot be ours (the length was declared smaller later): stop there.
    if (length !== null && (fullParts + 1) * P > length) break;
    counted.push(part);
    fullParts += 1;
  }
  let tailStart = fullParts * P;
  let offset = tailStart;
  const tail: Piece[] = [];
  const short = byNumber.get(fullParts + 1);
  if (short !== undefined && length !== null && short.size < P && tailStart + short.size === length) {
    // The short last part: only uploaded once every byte was in, right before completion.
    counted.push(short);
    offset = length;
    tailStart = length;
  } else {
    const candidates = listing.pieces
      .filter((p) => p.start >= tailStart && p.end <= tailStart + P)
      .sort((a, b) => a.start - b.start || b.end - a.end);
    for (const p of candidates) {
      if (p.start > offset) break;
      if (p.end <= offset) continue; // inside what earlier pieces hold already
      tail.push(p);
      offset = p.end;
    }
  }
  if (length !== null) offset = Math.min(offset, length);
  const due = length !== null && offset === length && (!doc.completesOnLast || listing.finals.length > 0);
  return { doc, listing, open: parts !== null, fullParts, parts: counted, tail, tailStart, offset, length, due, lastActivity };
}

function time(iso: string | null): number {
  const t = iso === null ? Number.NaN : Date.parse(iso);
  return Number.isFinite(t) ? t : 0;
}
