/**
 * How many ranged pieces may sit in memory at once, process-wide, beyond the one each transfer
 * streams through (see ParallelBody). Without it, every POST /fetch and job could hold
 * FETCH_CONNECTIONS − 1 pieces of FETCH_PIECE_BYTES, and memory would grow with the number of
 * transfers; with it, a transfer that finds the budget spent runs on fewer connections instead.
 */
export class PieceBudget {
  readonly capacity: number;
  private used = 0;

  constructor(capacity: number) {
    this.capacity = capacity;
  }

  get inUse(): number {
    return this.used;
  }

  /** Takes a piece's room when there is any; give it back with release(). */
  tryTake(): boolean {
    if (this.used >= this.capacity) return false;
    this.used += 1;
    return true;
  }

  release(): void {
    this.used -= 1;
  }
}
