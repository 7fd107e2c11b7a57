/** Bytes per second over the last few seconds of progress, for "rate" and "time left". */

/** Long enough to smooth the bursts of a progress event every few ms, short enough to follow a change. */
const WINDOW_MS = 5_000;

export class RateMeter {
  private samples: { at: number; bytes: number }[] = [];

  /** `bytes`: the running total (not an increment). */
  add(bytes: number, at = performance.now()): void {
    this.samples.push({ at, bytes });
    while (this.samples.length > 2 && at - (this.samples[1]?.at ?? at) > WINDOW_MS) this.samples.shift();
  }

  /** Forget the history (after a pause or a reconnect the old pace says nothing). */
  reset(): void {
    this.samples = [];
  }

  /** Bytes per second, or null while there is too little to tell. */
  rate(): number | null {
    const first = this.samples[0];
    const last = this.samples[this.samples.length - 1];
    if (first === undefined || last === undefined || last.at - first.at < 250) return null;
    return ((last.bytes - first.bytes) * 1000) / (last.at - first.at);
  }
}
