/**
 * DirectorySync: every caller is covered by a directory sync that started after it called
 * (a sync already running may predate its renames), and callers that pile up meanwhile share
 * one sync instead of each starting their own.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { DirectorySync, fsyncDirectory } from '../storage/directory-sync.js';

/** A sync that only finishes when told to, and records when each one started. */
function controlledSync(): { syncs: Array<() => void>; run: (dir: string) => Promise<void> } {
  const syncs: Array<() => void> = [];
  return { syncs, run: () => new Promise<void>((resolve) => syncs.push(resolve)) };
}

test('callers arriving during a sync share the next one, and none is released by a sync that started before it', async () => {
  const { syncs, run } = controlledSync();
  const dir = new DirectorySync('/nowhere', run);
  const settled: string[] = [];
  const first = dir.sync().then(() => settled.push('first'));
  assert.equal(syncs.length, 1);
  const waiting = Array.from({ length: 7 }, (_, i) => dir.sync().then(() => settled.push(`late ${i}`)));
  await new Promise((r) => setImmediate(r));
  assert.equal(syncs.length, 1, 'no second sync while the first runs');
  (syncs[0] as () => void)();
  await first;
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(settled, ['first'], 'the late callers wait for a sync of their own');
  assert.equal(syncs.length, 2, 'one more sync for all seven');
  (syncs[1] as () => void)();
  await Promise.all(waiting);
  assert.equal(settled.length, 8);
  assert.equal(syncs.length, 2);
});

test('a failed sync rejects its callers, and the next call starts a fresh one', async () => {
  let calls = 0;
  const dir = new DirectorySync('/nowhere', async () => {
    calls += 1;
    if (calls === 1) throw new Error('EIO');
  });
  await assert.rejects(dir.sync(), /EIO/);
  await dir.sync();
  assert.equal(calls, 2);
});

test('fsyncDirectory syncs a real directory, and fails on a missing one', async () => {
  const path = mkdtempSync(join(tmpdir(), 'sluice-dirsync-'));
  try {
    await fsyncDirectory(path);
    await assert.rejects(fsyncDirectory(join(path, 'missing')), (err: NodeJS.ErrnoException) => err.code === 'ENOENT');
  } finally {
    rmSync(path, { recursive: true, force: true });
  }
});
