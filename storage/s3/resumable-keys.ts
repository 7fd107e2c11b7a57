/**
 * Where a resumable upload lives in the bucket (all under S3_PREFIX, `<p>`; `<u>` is
 * `<p>.sluice/uploads/`, beside the documents of `S3Store`, never a file id so `list()` skips it):
 *
 *   <p><id>                              the bytes: the multipart upload's key, then the file's
 *   <p><id>.json                         the file's record, once complete (as for any file)
 *   <u><id>.json                         the upload's state, written once at creation
 *   <u><id>/piece/<start>-<end>          bytes [start, end) not yet in a part (what a PATCH left)
 *   <u><id>/length/<n>                   a deferred length, declared later (tus Upload-Length on PATCH)
 *   <u><id>/final/<n>                    every byte is in, the upload ends at n: complete it
 *   <u><id>/unverified                   the caller's verify() refused the bytes: never publish them
 *   <u><id>/data                         a partial upload's bytes (its multipart upload's key)
 *   <u><id>/pending/<token>/<part>       a checksummed PATCH's full parts, until its digest is checked
 *
 * Facts are in key names, so one ListObjectsV2 of `<u><id>` tells the state, the tail and the
 * markers without reading any of them. Numbers are zero-padded so keys sort by value.
 */

/** 10^15 bytes is more than S3's 5 TiB object limit: 15 digits hold every offset. */
const DIGITS = 15;

export type UploadObject =
  | { readonly kind: 'state' }
  | { readonly kind: 'piece'; readonly start: number; readonly end: number }
  | { readonly kind: 'length'; readonly value: number }
  | { readonly kind: 'final'; readonly value: number }
  | { readonly kind: 'unverified' }
  | { readonly kind: 'data' }
  | { readonly kind: 'pending'; readonly token: string; readonly part: number }
  | { readonly kind: 'unknown' };

export class UploadKeys {
  /** `<u>`: every upload's objects are under it. */
  readonly root: string;
  /** `<p>`: files' keys. */
  private readonly prefix: string;

  constructor(root: string, prefix: string) {
    this.root = root;
    this.prefix = prefix;
  }

  /** What ListObjectsV2 takes to list one upload's objects: its state and its folder. */
  listing(id: string): string {
    return `${this.root}${id}`;
  }

  state(id: string): string {
    return `${this.root}${id}.json`;
  }

  folder(id: string): string {
    return `${this.root}${id}/`;
  }

  piece(id: string, start: number, end: number): string {
    return `${this.folder(id)}piece/${pad(start)}-${pad(end)}`;
  }

  length(id: string, value: number): string {
    return `${this.folder(id)}length/${pad(value)}`;
  }

  final(id: string, value: number): string {
    return `${this.folder(id)}final/${pad(value)}`;
  }

  unverified(id: string): string {
    return `${this.folder(id)}unverified`;
  }

  partialData(id: string): string {
    return `${this.folder(id)}data`;
  }

  pending(id: string, token: string, part: number): string {
    return `${this.folder(id)}pending/${token}/${pad(part)}`;
  }

  fileData(id: string): string {
    return `${this.prefix}${id}`;
  }

  record(id: string): string {
    return `${this.prefix}${id}.json`;
  }

  /** The upload id a key under `root` belongs to, or null (22 characters, as file ids). */
  idOf(key: string): string | null {
    if (!key.startsWith(this.root)) return null;
    const id = key.slice(this.root.length, this.root.length + 22);
    const next = key.charAt(this.root.length + 22);
    return /^[A-Za-z0-9_-]{22}$/.test(id) && (next === '/' || key === this.state(id)) ? id : null;
  }

  /** What a listed key of upload `id` is. */
  classify(id: string, key: string): UploadObject {
    if (key === this.state(id)) return { kind: 'state' };
    const folder = this.folder(id);
    if (!key.startsWith(folder)) return { kind: 'unknown' };
    const rest = key.slice(folder.length);
    if (rest === 'unverified') return { kind: 'unverified' };
    if (rest === 'data') return { kind: 'data' };
    let m = /^piece\/(\d{15})-(\d{15})$/.exec(rest);
    if (m) return { kind: 'piece', start: Number(m[1]), end: Number(m[2]) };
    m = /^(length|final)\/(\d{15})$/.exec(rest);
    if (m) return { kind: m[1] as 'length' | 'final', value: Number(m[2]) };
    m = /^pending\/([A-Za-z0-9_-]{1,64})\/(\d{15})$/.exec(rest);
    if (m) return { kind: 'pending', token: m[1] as string, part: Number(m[2]) };
    return { kind: 'unknown' };
  }
}

function pad(n: number): string {
  return String(n).padStart(DIGITS, '0');
}
