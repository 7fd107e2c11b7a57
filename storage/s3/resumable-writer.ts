import { randomBytes, type Hash } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { Writable } from 'node:stream';
import { NotFoundError } from '../../lib/errors.js';
import type { S3Client } from './client.js';
import type { UploadKeys } from './resumable-keys.js';
import type { Session, TailCache } from './resumable-sessions.js';
import type { UploadDoc } from './resumable-state.js';
import type { Piece, UploadView } from './resumable-view.js';

/**
 * A slot holding this many pieces is rewritten as one at the next checkpoint, so an upload sent
 * in tiny PATCHes keeps its listing short (1 MiB PATCHes into 8 MiB parts never get here).
 */
export const MAX_TAIL_PIECES = 32;
/** First allocation of the part buffer: an upload sent in small PATCHes never pays for a whole part at once. */
const SMALL_BUFFER_BYTES = 64 * 1024;

/** A tail piece vanished while it was read: another instance put its bytes in a part meanwhile. */
export class TailMovedError extends Error {
  constructor(key: string) {
    super(`Piece ${key} is gone: another writer completed its part`);
  }
}

export interface WriterTarget {
  readonly client: S3Client;
  readonly keys: UploadKeys;
  readonly doc: UploadDoc;
  readonly session: Session;
}

/**
 * Takes one append's bytes for a resumable upload on S3, holding at most one part in memory.
 * Positions are the upload's offsets: the buffer holds part slot [slotStart, slotStart + P), of
 * which `filled` bytes are known. Bytes before the append's offset (the tail earlier PATCHes left
 * as pieces) are read back from their pieces only when a part needs them (`hole`), unless the
 * session kept them in memory.
 *
 * A full part is uploaded as part number slotStart / P + 1 as soon as more bytes come, and the
 * write that needs the room is only called back once S3 has it: backpressure reaches the client's
 * socket. `checkpoint()` makes what is left durable as one piece; `finishUpload()` uploads the
 * short last part. In `checked` mode (the tus checksum extension) full parts go to pending objects
 * instead, promoted with UploadPartCopy by `promote()` once the body's digest is right, or deleted
 * by `discard()`: until then the offset does not move.
 *
 * The sha256 runs on as bytes arrive (as in POST /upload, not on the part upload's path); at each
 * checkpoint a copy of it becomes the session's chain once S3 acknowledged the bytes, so chain.at
 * is always the durable offset and no byte is hashed twice.
 */
export class ResumableWriter extends Writable {
  /** Bytes taken from the body so far. */
  bytesTaken = 0;
  /** The offset S3 holds durably, as far as this writer made it so. */
  durable: number;
  private readonly target: WriterTarget;
  private readonly P: number;
  private slotStart: number;
  private filled: number;
  /** Buffer bytes [0, hole) are not loaded yet: they are in `tail`'s pieces. */
  private hole: number;
  private buffer: Buffer | null;
  /** Counted pieces of the current slot (read back into the hole; deleted once the part exists). */
  private tail: Piece[];
  /** Piece keys to delete once the current slot's part exists (stale ones included). */
  private slotKeys: string[];
  /** The sha256 of [0, durable), when this process hashed every byte S3 holds; what the session keeps. */
  private chain: { hash: Hash; at: number } | null;
  /** The chain running on: the sha256 of [0, position), updated as bytes arrive (off the part upload's path). */
  private working: Hash | null;
  /** Full parts go to pending objects until promote(): the body's tus checksum is not checked yet. */
  private checked: boolean;
  private readonly token = randomBytes(6).toString('base64url');
  private readonly pendingParts: Array<{ part: number; key: string; hash: Hash | null }> = [];
  private pendingSlotKeys: string[] = [];
  /** Background deletions of pieces whose part exists; awaited before the writer is done. */
  private cleanup: Promise<void> = Promise.resolve();

  constructor(target: WriterTarget, view: UploadView, cache: TailCache | null, checked: boolean) {
    super({ highWaterMark: 64 * 1024 });
    this.target = target;
    this.P = target.doc.partBytes;
    this.checked = checked;
    this.durable = view.offset;
    this.slotStart = view.tailStart;
    this.filled = view.offset - view.tailStart;
    this.tail = [...view.tail];
    this.slotKeys = view.listing.pieces.filter((p) => p.start < view.tailStart + this.P).map((p) => p.key);
    const session = target.session;
    const ours = view.tail.every((p) => p.etag !== null && session.pieces.get(p.key) === p.etag);
    if (!ours) session.pieces.clear();
    // The chain goes on only if this process hashed every byte S3 holds, tail included.
    this.chain = session.chain !== null && session.chain.at === view.offset && ours ? session.chain : null;
    this.working = this.chain?.hash.copy() ?? null;
    if (cache !== null && ours && cache.start === view.tailStart && cache.start + cache.filled === view.offset) {
      this.buffer = cache.buffer;
      this.hole = 0;
    } else {
      this.buffer = null;
      this.hole = this.filled;
    }
  }

  /** The byte that the next write lands on. */
  get position(): number {
    return this.slotStart + this.filled;
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (err?: Error | null) => void): void {
    this.bytesTaken += chunk.length;
    this.take(chunk, callback);
  }

  private take(chunk: Buffer, callback: (err?: Error | null) => void): void {
    let offset = 0;
    while (offset < chunk.length) {
      if (this.filled === this.P) {
        const rest = chunk.subarray(offset);
        this.flushPart().then(() => this.take(rest, callback), callback);
        return;
      }
      const buffer = this.room(Math.min(this.P, this.filled + chunk.length - offset));
      const n = chunk.copy(buffer, this.filled, offset, offset + Math.min(chunk.length - offset, this.P - this.filled));
      this.working?.update(chunk.subarray(offset, offset + n));
      this.filled += n;
      offset += n;
    }
    callback();
  }

  override _final(callback: (err?: Error | null) => void): void {
    callback();
  }

  /** The buffer, grown so that `size` bytes fit (a whole part at most). */
  private room(size: number): Buffer {
    if (this.buffer !== null && this.buffer.length >= size) return this.buffer;
    const length = size <= SMALL_BUFFER_BYTES ? SMALL_BUFFER_BYTES : this.P;
    const bigger = length === this.P ? Buffer.allocUnsafeSlow(length) : Buffer.allocUnsafe(length);
    if (this.buffer !== null) this.buffer.copy(bigger, 0, 0, this.filled);
    this.buffer = bigger;
    return bigger;
  }

  /** Reads the tail's pieces back into the hole. */
  private async loadHole(): Promise<void> {
    if (this.hole === 0) return;
    const buffer = this.room(this.filled);
    let at = this.slotStart;
    for (const piece of this.tail) {
      if (at >= this.slotStart + this.hole) break;
      const from = Math.max(at, piece.start);
      const to = Math.min(piece.end, this.slotStart + this.hole);
      let res: IncomingMessage;
      try {
        res = await this.target.client.getObject(piece.key, { start: from - piece.start, end: to - piece.start - 1 });
      } catch (err) {
        if (err instanceof NotFoundError) throw new TailMovedError(piece.key);
        throw err;
      }
      await readExactly(res, buffer, from - this.slotStart, to - from);
      at = to;
    }
    if (at < this.slotStart + this.hole) throw new TailMovedError(this.tail[this.tail.length - 1]?.key ?? '(none)');
    this.hole = 0;
  }

  /** Uploads the full buffer as its part (or, checked, as a pending object) and moves to the next slot. */
  private async flushPart(): Promise<void> {
    const { client, doc, keys, session } = this.target;
    const part = this.slotStart / this.P + 1;
    try {
      await this.loadHole();
    } catch (err) {
      // Another instance folded this slot into its part: with the same bytes (it is the same
      // client's upload), so this writer's copy is not needed. Go on after it.
      if (!(err instanceof TailMovedError) || this.checked || !(await this.partExists(part))) throw err;
      this.chain = null;
      this.working = null;
      this.durable = Math.max(this.durable, this.slotStart + this.P);
      this.nextSlot();
      return;
    }
    const body = (this.buffer as Buffer).subarray(0, this.P);
    if (this.checked) {
      const hash = this.snapshot();
      const key = keys.pending(doc.id, this.token, part);
      await client.putObject(key, body);
      this.pendingParts.push({ part, key, hash });
      this.pendingSlotKeys.push(...this.slotKeys);
    } else {
      const hash = this.snapshot();
      const etag = await client.uploadPart(doc.dataKey, doc.uploadId, part, body);
      session.parts.set(part, etag);
      this.durable = this.slotStart + this.P;
      this.chain = hash === null ? null : { hash, at: this.durable };
      this.deleteLater(this.slotKeys);
    }
    this.nextSlot();
  }

  private nextSlot(): void {
    this.slotStart += this.P;
    this.filled = 0;
    this.hole = 0;
    this.tail = [];
    this.slotKeys = [];
    this.target.session.pieces.clear();
  }

  /**
   * tus checksum: the digest was right. Each pending part becomes its part by UploadPartCopy
   * (inside S3, no bytes through this process), in order, so a crash half-way leaves a shorter
   * offset, never a wrong one.
   */
  async promote(): Promise<void> {
    const { client, doc, session } = this.target;
    for (const p of this.pendingParts) {
      const etag = await client.uploadPartCopy(doc.dataKey, doc.uploadId, p.part, p.key, { start: 0, end: this.P - 1 });
      session.parts.set(p.part, etag);
      this.durable = p.part * this.P;
      this.chain = p.hash === null ? null : { hash: p.hash, at: this.durable };
    }
    this.checked = false;
    if (this.pendingParts.length > 0) {
      // Copies may differ in ETag from the pending object on some engines: then the check at
      // completion falls back to reading the file once, as for an upload that moved.
      this.deleteLater([...this.pendingSlotKeys, ...this.pendingParts.map((p) => p.key)]);
      this.pendingParts.length = 0;
      this.pendingSlotKeys = [];
    }
  }

  /** tus checksum failed, or the body was cut: forget this append's bytes past the durable offset. */
  async discard(): Promise<void> {
    this.deleteLater(this.pendingParts.map((p) => p.key));
    this.pendingParts.length = 0;
    this.buffer = null;
    this.working = null;
    this.filled = Math.max(0, this.durable - this.slotStart);
    await this.cleanup;
  }

  /**
   * Makes the bytes taken since the last checkpoint durable: a full buffer as its part, anything
   * less as one piece `[durable, position)` (or, when the slot holds many pieces, one piece for
   * the whole slot, replacing them). Then the next append, here or on any instance, starts at
   * `position`.
   */
  async checkpoint(): Promise<void> {
    const { client, doc, keys, session } = this.target;
    if (this.filled === this.P) await this.flushPart();
    const end = this.position;
    if (end <= this.durable) return;
    let start = this.durable;
    if (this.tail.length + 1 >= MAX_TAIL_PIECES) {
      try {
        await this.loadHole();
        start = this.slotStart;
      } catch (err) {
        if (!(err instanceof TailMovedError)) throw err;
      }
    }
    const hash = this.snapshot();
    const key = keys.piece(doc.id, start, end);
    const body = (this.buffer as Buffer).subarray(start - this.slotStart, end - this.slotStart);
    const etag = await client.putObject(key, body);
    const piece: Piece = { key, start, end, etag };
    if (start === this.slotStart && this.tail.length > 0) {
      this.deleteLater(this.tail.map((p) => p.key));
      this.tail = [piece];
      session.pieces.clear();
    } else {
      this.tail.push(piece);
    }
    this.slotKeys.push(key);
    if (etag !== null) session.pieces.set(key, etag);
    this.durable = end;
    this.chain = hash === null ? null : { hash, at: end };
  }

  /**
   * Every byte is in: uploads the rest of the buffer as the last part (short, or full), so the
   * multipart upload can be completed.
   */
  async uploadLastPart(): Promise<void> {
    const { client, doc, session } = this.target;
    if (this.filled === 0) return;
    await this.loadHole();
    const part = this.slotStart / this.P + 1;
    const end = this.position;
    const hash = this.snapshot();
    const etag = await client.uploadPart(doc.dataKey, doc.uploadId, part, (this.buffer as Buffer).subarray(0, this.filled));
    session.parts.set(part, etag);
    this.durable = end;
    this.chain = hash === null ? null : { hash, at: end };
  }

  /** The session's chain as this writer leaves it (the sha256 of [0, at) if this process saw every byte). */
  get hashChain(): { hash: Hash; at: number } | null {
    return this.chain;
  }

  /** What the next append can reuse: the loaded tail (only when nothing of it is missing). */
  tailCache(): TailCache | null {
    if (this.buffer === null || this.hole > 0 || this.filled === 0 || this.position !== this.durable) return null;
    return { start: this.slotStart, filled: this.filled, buffer: this.buffer };
  }

  /** Waits for background deletions (their failures are left to the sweep). */
  async settle(): Promise<void> {
    await this.cleanup;
  }

  /** The sha256 of [0, position) as it stands (a copy: the working hash runs on); null without a chain. */
  private snapshot(): Hash | null {
    return this.working?.copy() ?? null;
  }

  private deleteLater(keys: readonly string[]): void {
    if (keys.length === 0) return;
    const client = this.target.client;
    this.cleanup = this.cleanup.then(() => client.deleteObjects(keys).catch(() => {}));
  }

  private async partExists(part: number): Promise<boolean> {
    const { client, doc } = this.target;
    const parts = await client.listParts(doc.dataKey, doc.uploadId, part - 1);
    return parts?.some((p) => p.partNumber === part && p.size === this.P) ?? false;
  }
}

/** Reads exactly `length` bytes of `res` into `buffer` at `at`. */
async function readExactly(res: IncomingMessage, buffer: Buffer, at: number, length: number): Promise<void> {
  let got = 0;
  for await (const chunk of res as AsyncIterable<Buffer>) {
    if (got + chunk.length > length) {
      res.destroy();
      throw new Error(`a piece read back is longer than its name says (${length} bytes)`);
    }
    chunk.copy(buffer, at + got);
    got += chunk.length;
  }
  if (got !== length) throw new Error(`a piece read back is shorter than its name says (${got} of ${length} bytes)`);
}
