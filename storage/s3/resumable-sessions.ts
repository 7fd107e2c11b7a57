import type { Hash } from 'node:crypto';
import type { UploadedPart } from './client.js';
import type { UploadDoc } from './resumable-state.js';

/**
 * What one process remembers of an upload between requests. Nothing here is needed for
 * correctness (S3 is the truth; another instance has none of it): it saves work while the upload
 * stays in this process.
 *
 * - `doc`: the state object never changes, so it is read once; `knownParts` likewise.
 * - `chain`: the sha256 of bytes [0, chain.at), hashed as they became durable here. While every
 *   byte passes through this process the file's digest needs no second read; the chain breaks
 *   (null) as soon as another instance took bytes.
 * - `parts` / `pieces`: the ETags S3 gave this process for what it wrote, to check at completion
 *   that what S3 holds is what the chain hashed.
 * - `tail`: the bytes of the unfinished part after a PATCH, kept (within a byte budget) so the
 *   next PATCH does not read its own pieces back.
 */
export interface Session {
  readonly id: string;
  doc: UploadDoc | null;
  /** The state object's ETag when `doc` was read: another ETag is another upload of the same id (a fetch job made again). */
  docEtag: string | null;
  /** Full parts 1..n known to exist (they never go while the multipart upload does): ListParts starts after them. */
  knownParts: UploadedPart[];
  chain: { hash: Hash; at: number } | null;
  /** Part number → ETag of the part this process uploaded (and hashed). */
  readonly parts: Map<number, string>;
  /** Piece key → ETag, for pieces of the current tail this process wrote (and hashed). */
  readonly pieces: Map<string, string>;
  tail: TailCache | null;
  /** Last use, for eviction. */
  touched: number;
}

export interface TailCache {
  /** Bytes [start, start + filled) of the upload, in a buffer of one part at most. */
  readonly start: number;
  readonly filled: number;
  readonly buffer: Buffer;
}

/** Sessions kept; the oldest idle one goes first (each is small without its tail). */
const MAX_SESSIONS = 4096;

/**
 * The sessions of this process, with the tail caches held to a byte budget: at most one part per
 * upload, and at most `tailBudget` bytes for all idle uploads together (the least recently used
 * tail is dropped first; its upload then reads its pieces back once).
 */
export class Sessions {
  private readonly map = new Map<string, Session>();
  private readonly tailBudget: number;
  private tailBytes = 0;

  constructor(tailBudget: number) {
    this.tailBudget = tailBudget;
  }

  get(id: string): Session {
    let s = this.map.get(id);
    if (s === undefined) {
      s = { id, doc: null, docEtag: null, knownParts: [], chain: null, parts: new Map(), pieces: new Map(), tail: null, touched: Date.now() };
      this.map.set(id, s);
      this.evictSessions();
    } else {
      // Map order is insertion order: re-insert to keep it least-recently-used first.
      this.map.delete(id);
      this.map.set(id, s);
      s.touched = Date.now();
    }
    return s;
  }

  peek(id: string): Session | undefined {
    return this.map.get(id);
  }

  /** Takes the tail out of the cache (an append holds it while it runs). */
  takeTail(s: Session): TailCache | null {
    const tail = s.tail;
    if (tail !== null) {
      this.tailBytes -= tail.buffer.length;
      s.tail = null;
    }
    return tail;
  }

  /** Keeps `tail` for the next append on this upload if the budget allows. */
  keepTail(s: Session, tail: TailCache): void {
    this.takeTail(s);
    if (tail.buffer.length > this.tailBudget) return;
    s.tail = tail;
    this.tailBytes += tail.buffer.length;
    for (const other of this.map.values()) {
      if (this.tailBytes <= this.tailBudget) break;
      if (other !== s) this.takeTail(other);
    }
  }

  /** Forgets what `s` knew of its upload (the id now names another one), keeping the object its users hold. */
  reset(s: Session): void {
    this.takeTail(s);
    s.doc = null;
    s.docEtag = null;
    s.knownParts = [];
    s.chain = null;
    s.parts.clear();
    s.pieces.clear();
  }

  forget(id: string): void {
    const s = this.map.get(id);
    if (s === undefined) return;
    this.takeTail(s);
    this.map.delete(id);
  }

  clear(): void {
    this.map.clear();
    this.tailBytes = 0;
  }

  /** Bytes held by idle tails (for tests and metrics). */
  get cachedTailBytes(): number {
    return this.tailBytes;
  }

  private evictSessions(): void {
    // An append holding an evicted session keeps using it; only what it saves is lost.
    for (const id of this.map.keys()) {
      if (this.map.size <= MAX_SESSIONS) break;
      this.forget(id);
    }
  }
}
