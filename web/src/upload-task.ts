/**
 * One file's upload through tus: find or create the upload, send the file piece by piece from
 * the server's offset, and heal by itself. When the connection or the server goes away it says
 * so, waits (1, 2, 4, 8, 16, then 30 s between tries), asks the server for its offset and goes on
 * from there: nothing the server already has is sent again.
 */
import { ApiError, apiFetch, errorOf } from './api.js';
import { tokenAccepted } from './auth.js';
import { forgetUpload, rememberedUpload, rememberUpload } from './fingerprints.js';
import { formatBytes } from './format.js';
import { RateMeter } from './rate-meter.js';
import { appendPiece, createUpload, getOffset, terminateUpload, type Append } from './tus-client.js';

/**
 * Bytes per PATCH. Each piece is a `File.slice` the browser streams from disk; a smaller piece
 * would only add round trips (the server keeps whatever part of a cut PATCH it received), a
 * larger one may meet a proxy's body limit on the way.
 */
export const PIECE_BYTES = 64 * 1024 * 1024;

/** Seconds to wait before each try after a failure; the last one repeats. */
const BACKOFF_SECONDS = [1, 2, 4, 8, 16, 30];

export type UploadState = 'waiting' | 'running' | 'retrying' | 'paused' | 'done' | 'failed' | 'cancelled';

/** The server no longer has the upload (404/410: expired or removed). */
class UploadGone extends Error {}

const SHA256_ETAG = /^"([0-9a-f]{64})"$/;

export class UploadTask {
  state: UploadState = 'waiting';
  /** Bytes the server has confirmed (201, HEAD or PATCH's Upload-Offset). */
  confirmed = 0;
  /** Confirmed plus what the PATCH in flight has sent so far: what the bar shows. */
  sent = 0;
  /** The row's status line (role=status). */
  status = 'Waiting';
  /** The upload's URL (`/uploads/<id>`), once created or found again. */
  url: string | null = null;
  /** Set when done: the stored file's id (the upload's id) and sha256. */
  fileId: string | null = null;
  sha256: string | null = null;
  readonly rate = new RateMeter();

  /** Bumped by pause and cancel: a run that sees another generation stops. */
  private generation = 0;
  private append: Append | null = null;
  private stop: AbortController | null = null;
  private wake: (() => void) | null = null;
  private readonly listeners = new Set<() => void>();

  constructor(readonly file: File) {}

  onChange(listener: () => void): void {
    this.listeners.add(listener);
  }

  /** Bytes per second now, or null. */
  get bytesPerSecond(): number | null {
    return this.state === 'running' ? this.rate.rate() : null;
  }

  /** Seconds left at the current rate, or null. */
  get secondsLeft(): number | null {
    const rate = this.bytesPerSecond;
    return rate === null || rate <= 0 ? null : (this.file.size - this.sent) / rate;
  }

  /** Uploads until done, failed, paused or cancelled. The queue calls it when a slot is free. */
  async run(): Promise<void> {
    const generation = ++this.generation;
    const stop = new AbortController();
    this.stop = stop;
    const live = (): boolean => this.generation === generation;
    this.state = 'running';
    this.say('Starting');
    let failures = 0;
    let restarts = 0;
    while (live()) {
      const before = this.confirmed;
      try {
        await this.connect(stop.signal);
        while (live() && this.confirmed < this.file.size) await this.sendPiece();
        if (live()) await this.complete(stop.signal);
        return;
      } catch (err) {
        if (!live()) return;
        if (err instanceof UploadGone && restarts < 2) {
          restarts += 1;
          this.url = null;
          forgetUpload(this.file);
          this.setConfirmed(0);
          this.say('The server no longer has this upload; starting again');
          continue;
        }
        if (err instanceof ApiError && err.status === 401) {
          this.state = 'retrying';
          this.say('Waiting for the token');
          await until(tokenAccepted(), stop.signal);
          this.state = 'running';
          continue;
        }
        if (this.confirmed > before) failures = 0; // it moved: start the backoff again
        // A 409 means our offset was stale: ask again at once, then back off if it repeats.
        const conflict = err instanceof ApiError && err.status === 409;
        if ((err instanceof ApiError && err.retryable) || (conflict && failures > 0)) {
          await this.backoff(BACKOFF_SECONDS[Math.min(failures, BACKOFF_SECONDS.length - 1)] as number, err as ApiError, stop.signal);
          failures += 1;
          continue;
        }
        if (conflict) {
          failures += 1;
          continue;
        }
        this.state = 'failed';
        this.say(`Failed: ${err instanceof Error ? err.message : String(err)}`);
        return;
      }
    }
  }

  /** Stops sending; the server keeps what it received, and Resume goes on from there. */
  pause(): void {
    if (this.state !== 'waiting' && this.state !== 'running' && this.state !== 'retrying') return;
    this.halt();
    this.state = 'paused';
    this.say(`Paused at ${formatBytes(this.sent)}`);
  }

  /** Back in the queue (after a pause or a failure). */
  resume(): void {
    if (this.state !== 'paused' && this.state !== 'failed') return;
    this.state = 'waiting';
    this.say('Waiting');
  }

  /** Stops and removes every byte of the upload from the server (termination). */
  async cancel(): Promise<void> {
    if (this.state === 'done' || this.state === 'cancelled') return;
    this.halt();
    this.state = 'cancelled';
    forgetUpload(this.file);
    if (this.url === null) return this.say('Cancelled');
    this.say('Cancelling');
    try {
      await terminateUpload(this.url);
      this.say('Cancelled');
    } catch (err) {
      this.say(`Cancelled here, but the server could not be told (${err instanceof Error ? err.message : String(err)}); it removes the partial upload when it expires`);
    }
  }

  /** Skip the rest of a backoff wait (the browser says it is online again). */
  retryNow(): void {
    this.wake?.();
  }

  private halt(): void {
    this.generation += 1;
    this.append?.abort();
    this.stop?.abort();
    this.wake?.();
  }

  /** Finds the upload's offset: of this run's upload, of one started before a reload, or of a new one. */
  private async connect(signal: AbortSignal): Promise<void> {
    if (this.url !== null) {
      const at = await getOffset(this.url, signal);
      if (at === null) throw new UploadGone();
      this.setConfirmed(at.offset);
      return;
    }
    const remembered = rememberedUpload(this.file);
    if (remembered !== null) {
      const at = await getOffset(remembered, signal);
      if (at !== null && (at.length === null || at.length === this.file.size)) {
        this.url = remembered;
        this.setConfirmed(at.offset);
        if (at.offset > 0) this.say(`Resuming at ${formatBytes(at.offset)} of ${formatBytes(this.file.size)}`);
        return;
      }
      forgetUpload(this.file);
    }
    this.url = await createUpload(this.file, signal);
    rememberUpload(this.file, this.url);
    this.setConfirmed(0);
  }

  private async sendPiece(): Promise<void> {
    const url = this.url as string;
    const start = this.confirmed;
    const end = Math.min(this.file.size, start + PIECE_BYTES);
    // "Resuming at ..." stays up for the first piece after a reload, so it can be read.
    const resuming = this.status.startsWith('Resuming');
    this.state = 'running';
    if (!resuming) this.say('Uploading');
    this.append = appendPiece(url, this.file, start, end, (sent) => {
      this.sent = start + sent;
      this.rate.add(this.sent);
      this.changed();
    });
    try {
      this.setConfirmed(await this.append.done);
    } finally {
      this.append = null;
    }
    if (resuming) this.say('Uploading');
  }

  /** The upload is the stored file of the same id now: read its sha256 (the ETag of /files/<id>). */
  private async complete(signal: AbortSignal): Promise<void> {
    forgetUpload(this.file);
    const id = decodeURIComponent(new URL(this.url as string).pathname.split('/').pop() ?? '');
    this.say('Checking the stored file');
    const res = await apiFetch(`/files/${encodeURIComponent(id)}`, { method: 'HEAD', signal });
    if (!res.ok) throw await errorOf(res);
    const etag = SHA256_ETAG.exec(res.headers.get('etag') ?? '');
    this.fileId = id;
    this.sha256 = etag?.[1] ?? null;
    this.state = 'done';
    this.say(`Done: ${formatBytes(this.file.size)} stored`);
  }

  private async backoff(seconds: number, err: ApiError, signal: AbortSignal): Promise<void> {
    this.state = 'retrying';
    const reason = err.status === 0 ? 'Offline' : `Server answered ${err.status} (${err.message})`;
    for (let left = seconds; left > 0 && !signal.aborted; left -= 1) {
      this.say(`${reason}, retrying in ${left} s`);
      if (await this.sleep(1000, signal)) break;
    }
    this.rate.reset();
    if (!signal.aborted) this.say('Reconnecting');
  }

  /** Resolves after `ms`, or early (true) when woken or stopped. */
  private sleep(ms: number, signal: AbortSignal): Promise<boolean> {
    return new Promise((resolve) => {
      const done = (early: boolean): void => {
        clearTimeout(timer);
        signal.removeEventListener('abort', onAbort);
        this.wake = null;
        resolve(early);
      };
      const onAbort = (): void => done(true);
      const timer = setTimeout(() => done(false), ms);
      signal.addEventListener('abort', onAbort);
      this.wake = () => done(true);
    });
  }

  private setConfirmed(offset: number): void {
    this.confirmed = offset;
    this.sent = offset;
    this.changed();
  }

  private say(status: string): void {
    this.status = status;
    this.changed();
  }

  private changed(): void {
    for (const listener of this.listeners) listener();
  }
}

/** Resolves with `work`, or when the signal aborts. */
function until(work: Promise<void>, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    signal.addEventListener('abort', () => resolve(), { once: true });
    void work.then(resolve);
  });
}
