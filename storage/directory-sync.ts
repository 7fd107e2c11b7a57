import { open } from 'node:fs/promises';

/**
 * fsync of a directory, so that the names created and renamed in it survive a crash (a file's
 * own fdatasync covers its bytes, not its name). Grouped: callers that arrive while a sync runs
 * share the next one, so eight files committed at once cost two directory syncs, not eight.
 */
export class DirectorySync {
  readonly #dir: string;
  readonly #syncDirectory: (dir: string) => Promise<void>;
  #running: Promise<void> | null = null;
  #next: Promise<void> | null = null;

  /** `syncDirectory`: what one sync does (the tests count them). */
  constructor(dir: string, syncDirectory: (dir: string) => Promise<void> = fsyncDirectory) {
    this.#dir = dir;
    this.#syncDirectory = syncDirectory;
  }

  /** Resolves once a sync that started after this call has finished. */
  sync(): Promise<void> {
    // A sync in flight may have started before the caller's renames: wait for the next one.
    if (this.#next !== null) return this.#next;
    if (this.#running === null) return this.#start();
    this.#next = this.#running.catch(() => {}).then(() => {
      this.#next = null;
      return this.#start();
    });
    return this.#next;
  }

  #start(): Promise<void> {
    const running = this.#syncDirectory(this.#dir).finally(() => {
      if (this.#running === running) this.#running = null;
    });
    this.#running = running;
    return running;
  }
}

export async function fsyncDirectory(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}
