/**
 * At most `limit` operations at once; the others wait for a turn, first come first served. For
 * file-system calls of many files that slow each other down when they run together.
 */
export class Turns {
  readonly #limit: number;
  #running = 0;
  readonly #waiting: Array<(done: () => void) => void> = [];

  constructor(limit: number) {
    this.#limit = limit;
  }

  /** Runs `op` now, or once a turn is free. `op` must call `done` (once) when it has finished. */
  take(op: (done: () => void) => void): void {
    if (this.#running >= this.#limit) {
      this.#waiting.push(op);
      return;
    }
    this.#running += 1;
    op(this.#turnDone());
  }

  #turnDone(): () => void {
    let called = false;
    return () => {
      if (called) return;
      called = true;
      const next = this.#waiting.shift();
      // The turn passes straight to the next in line.
      if (next !== undefined) next(this.#turnDone());
      else this.#running -= 1;
    };
  }
}
