/**
 * A writer destroyed while it finishes (its truncate and fdatasync under way, descriptor no
 * longer in any write) must not close that descriptor under them: the number could by then belong
 * to another file, which the finish would truncate, sync or close. The file system calls are
 * slowed down here (this file runs in a process of its own) so that the abort lands in that window.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { syncBuiltinESMExports } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';

const SLOW_MS = 150;
const calls: string[] = [];
const real = { close: fs.close, fdatasync: fs.fdatasync, ftruncate: fs.ftruncate };
const patched = fs as unknown as Record<string, unknown>;
patched.close = (fd: number, cb: (err: NodeJS.ErrnoException | null) => void): void => {
  calls.push(`close ${fd}`);
  real.close(fd, cb);
};
patched.fdatasync = (fd: number, cb: (err: NodeJS.ErrnoException | null) => void): void => {
  calls.push(`fdatasync ${fd}`);
  setTimeout(() => real.fdatasync(fd, cb), SLOW_MS);
};
patched.ftruncate = (fd: number, len: number, cb: (err: NodeJS.ErrnoException | null) => void): void => {
  calls.push(`ftruncate ${fd}`);
  setTimeout(() => real.ftruncate(fd, len, cb), SLOW_MS);
};
syncBuiltinESMExports();
const { LocalStore } = await import('../storage/local-store.js');

const dir = fs.mkdtempSync(join(tmpdir(), 'sluice-finish-race-'));
after(() => fs.rmSync(dir, { recursive: true, force: true }));

for (const directIo of [true, false]) {
  test(`${directIo ? 'O_DIRECT' : 'page-cache'} writes: aborted mid-finish, the descriptor is closed once, after its sync, and nothing is left`, async () => {
    const store = new LocalStore(join(dir, String(directIo)), { fsync: true, directIo });
    await store.open();
    const writer = store.createWriter({ field: 'f', filename: 'a.bin', contentType: 'application/octet-stream' });
    writer.on('error', () => {});
    // Unaligned: with O_DIRECT the finish truncates the padding off, then syncs.
    writer.end(Buffer.alloc(100_003, 1));
    const sync = directIo ? 'ftruncate' : 'fdatasync';
    while (!calls.some((c) => c.startsWith(sync))) await new Promise((r) => setTimeout(r, 5));
    const fd = Number((calls.find((c) => c.startsWith(sync)) as string).split(' ')[1]);
    const aborted = writer.abort();
    // Whatever opens a file now may be handed a number the writer let go of too early.
    await new Promise((r) => setTimeout(r, 20));
    const victim = fs.openSync(join(dir, `victim-${directIo}`), 'w');
    await aborted;
    // Let anything still scheduled on the old number run before looking.
    await new Promise((r) => setTimeout(r, 3 * SLOW_MS));
    assert.deepEqual(calls.filter((c) => c === `close ${fd}`), [`close ${fd}`], 'closed exactly once');
    assert.ok(calls.includes(`fdatasync ${fd}`) && calls.indexOf(`close ${fd}`) > calls.indexOf(`fdatasync ${fd}`), 'closed after its sync, not under it');
    assert.equal(fs.writeSync(victim, 'still mine'), 10, 'the other file keeps its descriptor');
    fs.closeSync(victim);
    assert.deepEqual(fs.readdirSync(store.dir), []);
    calls.length = 0;
  });
}
