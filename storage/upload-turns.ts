import type { Hash } from 'node:crypto';
import { UploadInterruptedError } from '../lib/errors.js';
import type { PrefixHash } from './upload-hashing.js';
import type { StoredUpload } from './upload-state-file.js';

/** What the process holds of one upload: bounded by the pending uploads and the requests in flight. */
export interface UploadEntry {
  readonly id: string;
  /** As last saved; undefined until read from disk; null: no such upload (or a file now). */
  stored: StoredUpload | null | undefined;
  /** The sha256 of exactly the upload's first `hashOffset` bytes; null: not known in this process. */
  hash: Hash | null;
  hashOffset: number;
  /** After a restart: the sha256 being rebuilt from the disk, while `hash` is null. */
  rehash: PrefixHash | null;
  /** The state saves in flight, in order. */
  saving: Promise<void>;
  running: AbortController | null;
  waiting: Set<AbortController>;
  tail: Promise<void>;
  users: number;
}

/** One request's exclusive hold on an upload. `signal` aborts when a newer request takes over. */
export interface Turn {
  readonly entry: UploadEntry;
  readonly signal: AbortSignal;
  release(): void;
}

/**
 * Whose turn it is on each upload: one append (or termination, concatenation, expiry) at a time,
 * never two writers. A request that takes over (an append, an offset request, a termination)
 * aborts the turn that runs (its append stops reading its body at once, makes what it took
 * durable and lets go) and every turn still waiting: the newest request wins, and none waits
 * for a body that delivers nothing.
 */
export class UploadTurns {
  readonly #entries = new Map<string, UploadEntry>();

  /** The entry of `id`, made if there is none. */
  entry(id: string): UploadEntry {
    let entry = this.#entries.get(id);
    if (entry === undefined) {
      entry = { id, stored: undefined, hash: null, hashOffset: 0, rehash: null, saving: Promise.resolve(), running: null, waiting: new Set(), tail: Promise.resolve(), users: 0 };
      this.#entries.set(id, entry);
    }
    return entry;
  }

  peek(id: string): UploadEntry | undefined {
    return this.#entries.get(id);
  }

  /** A turn runs or waits on `id`. */
  busy(id: string): boolean {
    const entry = this.#entries.get(id);
    return entry !== undefined && (entry.running !== null || entry.waiting.size > 0);
  }

  /** Running and rebuilding hashes held (tests: never more than the pending uploads). */
  countHashes(): number {
    let n = 0;
    for (const e of this.#entries.values()) if (e.hash !== null || e.rehash !== null) n += 1;
    return n;
  }

  /** Drops the entry of an upload that does not exist, once nobody holds or waits for it. */
  forgetIfIdle(entry: UploadEntry): void {
    if (entry.users === 0 && !entry.stored && this.#entries.get(entry.id) === entry) this.#entries.delete(entry.id);
  }

  /** Waits for the turn on `id`; `takeover`: first ends the running turn and supersedes the waiting ones. */
  async take(id: string, takeover: boolean): Promise<Turn> {
    const entry = this.entry(id);
    entry.users += 1;
    if (takeover) {
      const reason = new UploadInterruptedError(id);
      entry.running?.abort(reason);
      for (const w of entry.waiting) w.abort(reason);
    }
    const controller = new AbortController();
    entry.waiting.add(controller);
    const previous = entry.tail;
    let done = (): void => {};
    entry.tail = new Promise<void>((resolve) => (done = resolve));
    await previous;
    entry.waiting.delete(controller);
    entry.running = controller;
    let released = false;
    const release = (): void => {
      if (released) return;
      released = true;
      entry.running = null;
      entry.users -= 1;
      done();
      this.forgetIfIdle(entry);
    };
    if (controller.signal.aborted) {
      release();
      throw controller.signal.reason;
    }
    return { entry, signal: controller.signal, release };
  }
}
