import { randomBytes } from 'node:crypto';
import { mkdir, readdir, readFile, rename } from 'node:fs/promises';
import { join } from 'node:path';
import { DirectorySync } from './directory-sync.js';
import { DOCUMENTS_DIR, PARTIAL_SUFFIX, unlinkIfPresent, writeNewFile } from './local-names.js';
import { checkDocumentName, parseDocument } from './documents.js';
import type { DocumentStore } from './uploads.js';

/**
 * Documents in the local directory: `DATA_DIR/.sluice/<kind>/<id>.json`, apart from files and
 * uploads (a dot-directory: never a file id, never listed, left alone by the sweep of files).
 * Written whole to a temp name, synced, renamed over the old one, and the kind's directory
 * synced (fsync on): a reader sees the old document or the new one, never a mix, and a put that
 * returned survives a crash.
 */
export class LocalDocuments implements DocumentStore {
  private readonly root: string;
  private readonly fsync: boolean;
  private readonly syncs = new Map<string, DirectorySync>();

  constructor(dataDir: string, fsync: boolean) {
    this.root = join(dataDir, DOCUMENTS_DIR);
    this.fsync = fsync;
  }

  /** Start-up: removes the temp files a crash left. */
  async sweep(): Promise<void> {
    let kinds: string[];
    try {
      kinds = await readdir(this.root);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw err;
    }
    for (const kind of kinds) {
      const names = await readdir(join(this.root, kind)).catch(() => [] as string[]);
      for (const name of names) if (name.startsWith('.') && name.endsWith(PARTIAL_SUFFIX)) await unlinkIfPresent(join(this.root, kind, name));
    }
  }

  async putDocument(kind: string, id: string, value: unknown): Promise<void> {
    checkDocumentName(kind, id);
    const dir = join(this.root, kind);
    await mkdir(dir, { recursive: true });
    // A temp name of its own per put: two puts of one document at once never share a file.
    const temp = join(dir, `.${id}.${randomBytes(6).toString('hex')}${PARTIAL_SUFFIX}`);
    try {
      await writeNewFile(temp, `${JSON.stringify(value)}\n`, this.fsync);
      await rename(temp, join(dir, `${id}.json`));
    } catch (err) {
      await unlinkIfPresent(temp).catch(() => false);
      throw err;
    }
    await this.syncOf(dir)?.sync();
  }

  async getDocument(kind: string, id: string): Promise<unknown> {
    checkDocumentName(kind, id);
    try {
      return parseDocument(await readFile(join(this.root, kind, `${id}.json`), 'utf8'), kind, id);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw err;
    }
  }

  async listDocuments(kind: string): Promise<unknown[]> {
    checkDocumentName(kind, null);
    let names: string[];
    try {
      names = await readdir(join(this.root, kind));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw err;
    }
    const documents: unknown[] = [];
    for (const name of names.filter((n) => !n.startsWith('.') && n.endsWith('.json')).sort()) {
      // Deleted between the listing and the read: simply gone.
      const value = await this.getDocument(kind, name.slice(0, -5));
      if (value !== null) documents.push(value);
    }
    return documents;
  }

  async deleteDocument(kind: string, id: string): Promise<void> {
    checkDocumentName(kind, id);
    const dir = join(this.root, kind);
    if (await unlinkIfPresent(join(dir, `${id}.json`))) await this.syncOf(dir)?.sync();
  }

  private syncOf(dir: string): DirectorySync | null {
    if (!this.fsync) return null;
    let sync = this.syncs.get(dir);
    if (sync === undefined) {
      sync = new DirectorySync(dir);
      this.syncs.set(dir, sync);
    }
    return sync;
  }
}
