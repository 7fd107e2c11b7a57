import type { S3Client } from './client.js';
import { removeUploadObjects } from './resumable-complete.js';
import type { UploadKeys } from './resumable-keys.js';
import type { UploadDoc } from './resumable-state.js';
import type { UploadView } from './resumable-view.js';

/**
 * Objects of an upload without its state object are what a removal (its state goes last) left
 * behind, or a piece a late writer put after it: gone after this long.
 */
const ORPHAN_GRACE_MS = 60_000;
/**
 * An upload with every byte in (its final marker) that is still not a file after this long lost
 * its completer (a crash between the last part and the record): the sweep completes it. Long
 * enough that a completer still reading a big file back is not doubled (doubling is harmless).
 */
const REPAIR_AFTER_MS = 5 * 60_000;

export interface SweepContext {
  readonly client: S3Client;
  readonly keys: UploadKeys;
  readonly expiryMs: number;
  /** An append (or other turn) runs on the upload in this process: not idle, leave it. */
  busy(id: string): boolean;
  find(id: string): Promise<{ doc: UploadDoc; view: UploadView } | null>;
  remove(doc: UploadDoc, open: boolean): Promise<void>;
  /** Completes an upload whose every byte is in (or finishes one whose completer died). */
  finish(doc: UploadDoc, view: UploadView): Promise<void>;
}

interface Group {
  state: boolean;
  final: boolean;
  newest: number;
  readonly keys: string[];
}

/**
 * One pass over every upload in the bucket, by any instance (several at once do no harm: each
 * step is idempotent). Expired uploads (no new byte for UPLOAD_EXPIRY_MS, parts included) lose
 * their multipart upload and every object; leftovers of removals go; completions that lost their
 * completer are finished. Resolves with how many uploads expired.
 */
export async function sweepUploads(c: SweepContext, now: Date): Promise<number> {
  const { client, keys } = c;
  const t = now.getTime();
  const groups = new Map<string, Group>();
  for await (const o of client.listObjects(keys.root)) {
    const id = keys.idOf(o.key);
    if (id === null) continue;
    let g = groups.get(id);
    if (g === undefined) groups.set(id, (g = { state: false, final: false, newest: 0, keys: [] }));
    g.keys.push(o.key);
    g.newest = Math.max(g.newest, o.lastModified === null ? 0 : Date.parse(o.lastModified) || 0);
    const what = keys.classify(id, o.key);
    if (what.kind === 'state') g.state = true;
    if (what.kind === 'final') g.final = true;
  }
  let expired = 0;
  for (const [id, g] of groups) {
    if (c.busy(id)) continue;
    try {
      if (!g.state) {
        if (g.newest + ORPHAN_GRACE_MS <= t) await client.deleteObjects(g.keys);
        continue;
      }
      const idle = g.newest + c.expiryMs <= t;
      if (!idle && !(g.final && g.newest + REPAIR_AFTER_MS <= t)) continue;
      const found = await c.find(id);
      if (found === null) continue;
      const { doc, view } = found;
      if (!doc.partial && !view.open && (await client.headObject(keys.record(id))) !== null) {
        // A file whose completer stopped before removing the upload's objects.
        await removeUploadObjects(client, keys, id);
        continue;
      }
      if (g.final && !view.listing.unverified && (view.due || !view.open)) {
        await c.finish(doc, view);
        continue;
      }
      if (view.lastActivity + c.expiryMs <= t) {
        await c.remove(doc, view.open);
        expired += 1;
      }
    } catch {
      // One upload's trouble (S3 failing, a race with a request) must not stop the sweep; the next pass tries again.
    }
  }
  // Multipart uploads of partial uploads (under `root`) whose state is gone.
  for await (const u of client.listMultipartUploads(keys.root)) {
    const id = keys.idOf(u.key);
    if (id === null || groups.get(id)?.state === true) continue;
    const started = u.initiated === null ? 0 : Date.parse(u.initiated) || 0;
    if (started + ORPHAN_GRACE_MS <= t) await client.abortMultipartUpload(u.key, u.uploadId).catch(() => false);
  }
  return expired;
}
