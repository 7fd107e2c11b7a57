import { Readable } from 'node:stream';
import type { PieceBudget } from './piece-budget.js';
import type { ResumePoint, Span } from './resume-point.js';
import { destroyOnAbort, ResumingBody, type ResumeSettings } from './resuming-body.js';
import type { UpstreamBody } from './upstream-body.js';

export interface ParallelSettings extends ResumeSettings {
  /** FETCH_CONNECTIONS: pieces fetched at once. */
  readonly connections: number;
  /** FETCH_PIECE_BYTES */
  readonly pieceBytes: number;
  /** Room for pieces held in memory, shared by every transfer of the process. */
  readonly budget: PieceBudget;
}

interface Piece {
  readonly body: ResumingBody;
  /** Bytes received before this piece's turn came, in order. */
  readonly chunks: Buffer[];
  ended: boolean;
  /** Holds one unit of the budget until its buffered bytes are passed on. */
  holdsRoom: boolean;
}

/**
 * The bytes `span` of a resource as one stream, fetched as consecutive pieces of `pieceBytes`
 * over up to `connections` connections at once (like `aria2c -x`, `hf_transfer`), delivered in
 * order, so that they can be hashed and written by the ordinary store writer.
 *
 * Memory: the piece whose turn it is streams straight through with backpressure (its connection
 * waits while our reader does); only the pieces after it are held, each at most `pieceBytes`, and
 * each only with a unit of `budget`. So one transfer holds at most `connections − 1` pieces and
 * the process at most `budget.capacity`, however many transfers run. Each piece is a
 * ResumingBody: a broken connection is asked again for the rest of its piece.
 *
 * `first`: an open answer whose body starts at `span.start` (a `200` for the whole resource): it
 * serves the first piece and is then closed.
 */
export class ParallelBody extends Readable {
  private readonly span: Span;
  private readonly point: ResumePoint;
  private readonly settings: ParallelSettings;
  private first: UpstreamBody | null;
  private readonly count: number;
  private readonly pieces = new Map<number, Piece>();
  /** The piece being delivered. */
  private head = 0;
  /** The next piece to start. */
  private next = 0;
  private readonly controller = new AbortController();

  constructor(first: UpstreamBody | null, span: Span, point: ResumePoint, settings: ParallelSettings, signal: AbortSignal) {
    super({ highWaterMark: 64 * 1024 });
    // As in ResumingBody: readers see our error; one after they stopped must not crash the process.
    this.on('error', () => {});
    this.span = span;
    this.point = point;
    this.settings = settings;
    this.first = first;
    this.count = Math.max(1, Math.ceil((span.end + 1 - span.start) / settings.pieceBytes));
    if (!destroyOnAbort(this, signal)) {
      first?.destroy();
      return;
    }
    this.startPieces();
  }

  private pieceSpan(index: number): Span {
    const start = this.span.start + index * this.settings.pieceBytes;
    return { start, end: Math.min(start + this.settings.pieceBytes - 1, this.span.end) };
  }

  /** Starts pieces up to `connections` ahead of the head, as far as the budget allows. */
  private startPieces(): void {
    while (!this.destroyed && this.next < this.count && this.next - this.head < this.settings.connections) {
      const isHead = this.next === this.head;
      // The head needs no room: it streams. A piece ahead of it may be held whole.
      if (!isHead && !this.settings.budget.tryTake()) return;
      const index = this.next;
      const first = index === 0 ? this.first : null;
      this.first = null;
      const body = new ResumingBody(first, this.pieceSpan(index), this.point, this.settings, this.controller.signal);
      const piece: Piece = { body, chunks: [], ended: false, holdsRoom: !isHead };
      this.pieces.set(index, piece);
      body.on('data', (chunk: Buffer) => this.onData(index, piece, chunk));
      body.once('end', () => {
        piece.ended = true;
        if (index === this.head) this.pump();
      });
      body.once('error', (err: Error) => this.destroy(err));
      this.next += 1;
    }
  }

  private onData(index: number, piece: Piece, chunk: Buffer): void {
    if (this.destroyed) return;
    if (index === this.head && piece.chunks.length === 0) {
      if (!this.push(chunk)) piece.body.pause();
    } else {
      piece.chunks.push(chunk);
    }
  }

  /** Passes on what the head piece holds, then streams it; moves to the next piece when it ends. */
  private pump(): void {
    while (!this.destroyed) {
      const piece = this.pieces.get(this.head);
      if (piece === undefined) return;
      while (piece.chunks.length > 0) {
        if (!this.push(piece.chunks.shift() as Buffer)) return;
      }
      if (piece.holdsRoom) {
        piece.holdsRoom = false;
        this.settings.budget.release();
      }
      if (!piece.ended) return void piece.body.resume();
      this.pieces.delete(this.head);
      this.head += 1;
      if (this.head === this.count) return void this.push(null);
      this.startPieces();
    }
  }

  override _read(): void {
    this.pump();
  }

  override _destroy(err: Error | null, callback: (err?: Error | null) => void): void {
    this.controller.abort(err ?? new Error('destroyed'));
    this.first?.destroy();
    this.first = null;
    for (const piece of this.pieces.values()) {
      if (piece.holdsRoom) this.settings.budget.release();
      piece.holdsRoom = false;
      piece.chunks.length = 0;
      piece.body.destroy();
    }
    this.pieces.clear();
    callback(err);
  }
}
