import { lastPathSegment } from '../multipart/content-disposition.js';
import type { NewFileMeta } from '../storage/store.js';
import { ProtocolError } from './protocol-errors.js';

/**
 * tus `Upload-Metadata` (protocol.md, Creation, "Upload-Metadata"): comma-separated pairs of a key
 * and a base64 value separated by a space; keys unique, not empty, without spaces or commas; a
 * pair may be the key alone (empty value). Decoded values are UTF-8 text kept as data: they are
 * never written into a response header as they are (HEAD re-encodes them in base64, and a type
 * that is not a media type is dropped), so "header smuggling" (protocol.md) cannot happen.
 */

/** Most pairs one upload may carry (Node's 16 KiB header limit bounds the bytes). */
export const MAX_METADATA_PAIRS = 64;

/** Printable ASCII but space and comma: what a key may hold ("SHOULD be ASCII encoded"). */
const KEY = /^[!-+\--~]+$/;
/** Base64 with or without padding. */
const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;
/** A media type as files.ts serves one; anything else in `filetype` is not used as the type. */
const MEDIA_TYPE = /^[A-Za-z0-9!#$&^_.+-]+\/[A-Za-z0-9!#$&^_.+-]+(?:\s*;[\x20-\x7e]*)?$/;

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** The decoded pairs, in order; throws UPLOAD_METADATA_MALFORMED (400) for anything not as above. */
export function parseUploadMetadata(header: string): Map<string, string> {
  const pairs = new Map<string, string>();
  if (header.trim() === '') return pairs;
  for (const item of header.split(',')) {
    const pair = item.trim();
    const space = pair.indexOf(' ');
    const key = space === -1 ? pair : pair.slice(0, space);
    const encoded = space === -1 ? '' : pair.slice(space + 1);
    if (!KEY.test(key)) throw malformed('a key is empty or holds characters other than printable ASCII');
    if (pairs.has(key)) throw malformed(`the key ${JSON.stringify(key.slice(0, 64))} appears twice ("All keys MUST be unique")`);
    if (!BASE64.test(encoded) || encoded.length % 4 === 1) throw malformed(`the value of ${JSON.stringify(key.slice(0, 64))} is not base64`);
    let value: string;
    try {
      value = utf8.decode(Buffer.from(encoded, 'base64'));
    } catch {
      throw malformed(`the value of ${JSON.stringify(key.slice(0, 64))} is not UTF-8 text`);
    }
    pairs.set(key, value);
    if (pairs.size > MAX_METADATA_PAIRS) throw malformed(`more than ${MAX_METADATA_PAIRS} pairs`);
  }
  return pairs;
}

function malformed(why: string): ProtocolError {
  return new ProtocolError('UPLOAD_METADATA_MALFORMED', `Upload-Metadata is malformed: ${why}`);
}

/** What the store keeps of an upload's metadata: its file's name and type, and the other pairs. */
export interface UploadMetadata {
  readonly meta: NewFileMeta;
  readonly metadata: Readonly<Record<string, string>>;
}

/** The name keys, then the type keys, in the order looked at (Uppy and tus-js-client send `filename`/`filetype`, others `name`/`type`). */
const NAME_KEYS = ['filename', 'name'] as const;
const TYPE_KEYS = ['filetype', 'type', 'contentType'] as const;

/**
 * The file's name is `filename` (else `name`), its type `filetype` (else `type`, `contentType`);
 * the pairs that became neither are kept under `metadata`. `fallback` gives name and type from
 * elsewhere (the draft's Content-Disposition and Content-Type) where the pairs have none.
 */
export function fileMetadata(pairs: ReadonlyMap<string, string>, fallback: { filename: string | null; contentType: string | null } = { filename: null, contentType: null }): UploadMetadata {
  const nameKey = NAME_KEYS.find((k) => pairs.has(k));
  const typeKey = TYPE_KEYS.find((k) => pairs.has(k) && MEDIA_TYPE.test(pairs.get(k) as string));
  const rawName = nameKey === undefined ? fallback.filename : (pairs.get(nameKey) as string);
  // A name is metadata only, never a path: its last segment, as for POST /upload.
  const filename = rawName === null ? null : lastPathSegment(rawName) || null;
  const contentType = typeKey === undefined ? (fallback.contentType ?? 'application/octet-stream') : (pairs.get(typeKey) as string);
  const metadata: Record<string, string> = {};
  for (const [k, v] of pairs) if (k !== nameKey && k !== typeKey) metadata[k] = v;
  return { meta: { field: null, filename, contentType }, metadata };
}

/**
 * The `Upload-Metadata` a HEAD answers with (protocol.md: "MUST include the Upload-Metadata header
 * and its value as specified by the Client"): the name and type under `filename`/`filetype` and
 * the other pairs as they came, every value base64 again. Null when there is nothing to say.
 */
export function formatUploadMetadata(meta: NewFileMeta, metadata: Readonly<Record<string, string>>): string | null {
  const items: string[] = [];
  if (meta.filename !== null) items.push(`filename ${Buffer.from(meta.filename, 'utf8').toString('base64')}`);
  if (meta.contentType !== 'application/octet-stream') items.push(`filetype ${Buffer.from(meta.contentType, 'utf8').toString('base64')}`);
  for (const [k, v] of Object.entries(metadata)) {
    // Keys came through KEY above; a store written by something else could hold others.
    if (!KEY.test(k)) continue;
    items.push(v === '' ? k : `${k} ${Buffer.from(v, 'utf8').toString('base64')}`);
  }
  return items.length === 0 ? null : items.join(',');
}

/** A media type fit to be a file's type, or null (the draft's creation Content-Type, say). */
export function saneMediaType(value: string | undefined): string | null {
  return value !== undefined && MEDIA_TYPE.test(value) ? value : null;
}
