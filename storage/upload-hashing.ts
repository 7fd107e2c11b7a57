import { createHash, type Hash } from 'node:crypto';
import { createReadStream, type ReadStream } from 'node:fs';
import type { UploadEntry } from './upload-turns.js';

/** Reads of an upload's bytes to rebuild its sha256 after a restart. */
const REHASH_READ_BYTES = 1024 * 1024;

/**
 * The sha256 of an upload's bytes rebuilt from the disk, for when the running one is not in
 * memory (a restart). It is read up to the durable offset in the background while the appends
 * go on (they then write without hashing), chasing the offset until it has caught up while no
 * append runs; then it becomes the upload's running hash again. So a reconnect after a restart
 * is not held up by reading back 90 GiB, and no byte is hashed twice: the bytes that arrived
 * meanwhile are read back once instead of hashed on the way in. Reads are serialized: the
 * completion that needs the hash at the upload's length continues where the background got to.
 */
export class PrefixHash {
  readonly hash: Hash = createHash('sha256');
  /** The hash covers exactly the file's bytes before this. */
  position = 0;
  /** A background step is under way (see LocalUploads.chaseDurableOffset). */
  chasing = false;
  #reads: Promise<void> = Promise.resolve();
  #reading: ReadStream | null = null;
  #cancelled = false;

  /** Reads `path` from `position` up to `target` into the hash, after the reads already queued. */
  catchUp(path: string, target: number): Promise<void> {
    const read = async (): Promise<void> => {
      if (this.#cancelled) throw new Error('rebuilding the sha256 was cancelled');
      if (target <= this.position) return;
      const stream = createReadStream(path, { start: this.position, end: target - 1, highWaterMark: REHASH_READ_BYTES });
      this.#reading = stream;
      try {
        for await (const chunk of stream) {
          this.hash.update(chunk as Buffer);
          this.position += (chunk as Buffer).length;
        }
      } finally {
        this.#reading = null;
      }
      if (this.position !== target) throw new Error(`${path} ends at ${this.position}, before the upload's ${target} bytes`);
    };
    const reading = this.#reads.then(read);
    this.#reads = reading.catch(() => {});
    return reading;
  }

  /** The upload is gone: stop reading (a 90 GiB read-back must not go on for nothing). */
  cancel(): void {
    this.#cancelled = true;
    this.#reading?.destroy(new Error('rebuilding the sha256 was cancelled'));
  }
}

/** The sha256 of a file's first `length` bytes, read whole (no upload to chase). */
export async function hashFilePrefix(path: string, length: number): Promise<Hash> {
  const prefix = new PrefixHash();
  await prefix.catchUp(path, length);
  return prefix.hash;
}

/** `hash` is the sha256 of exactly the upload's first `offset` bytes: its running hash from now on. */
export function keepHash(entry: UploadEntry, hash: Hash, offset: number): void {
  entry.hash = hash;
  entry.hashOffset = offset;
}

/**
 * Where each pending upload's sha256 comes from: the running hash, or a PrefixHash that reads the
 * durable bytes back and chases the offset (see PrefixHash).
 */
export class UploadHashes {
  readonly #dataPath: (id: string) => string;
  /** A turn runs or waits on the upload (an append may be writing unhashed bytes). */
  readonly #busy: (id: string) => boolean;

  constructor(dataPath: (id: string) => string, busy: (id: string) => boolean) {
    this.#dataPath = dataPath;
    this.#busy = busy;
  }

  /** The sha256 of exactly the upload's first `length` bytes (written and synced): the running one, or read back. */
  async upTo(entry: UploadEntry, length: number): Promise<Hash> {
    if (entry.hash !== null && entry.hashOffset === length) return entry.hash;
    const rehash = entry.rehash ?? new PrefixHash();
    entry.rehash = rehash;
    await rehash.catchUp(this.#dataPath(entry.id), length);
    if (entry.rehash === rehash) entry.rehash = null;
    keepHash(entry, rehash.hash, length);
    return rehash.hash;
  }

  /**
   * One step of reading the upload's durable bytes into its rebuilt hash, in the background.
   * Called when the rebuild starts, after each save (the durable offset moved) and when a turn
   * ends; once it has caught up while no turn runs, the hash is the upload's running one.
   */
  chase(entry: UploadEntry): void {
    const rehash = entry.rehash;
    if (rehash === null || rehash.chasing) return;
    const target = entry.stored?.progress.offset;
    if (target === undefined) return;
    rehash.chasing = true;
    rehash.catchUp(this.#dataPath(entry.id), target).then(
      () => {
        rehash.chasing = false;
        if (entry.rehash !== rehash) return;
        const durable = entry.stored?.progress.offset;
        if (durable === undefined) return;
        if (rehash.position < durable) return this.chase(entry);
        // Exactly the durable bytes, and no append can be writing unhashed ones now.
        if (!this.#busy(entry.id) && rehash.position === durable) {
          entry.rehash = null;
          keepHash(entry, rehash.hash, durable);
        }
      },
      () => {
        // A read failed (the upload went meanwhile, an I/O error): start over when next needed.
        rehash.chasing = false;
        if (entry.rehash === rehash) entry.rehash = null;
      },
    );
  }
}
