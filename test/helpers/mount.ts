/**
 * Mounting a scratch file system for a test (root only). Where mounting is not allowed the test
 * is skipped with the reason printed, never passed silently.
 */
import { execFileSync } from 'node:child_process';
import type { TestContext } from 'node:test';

/** Mounts a `type` file system (tmpfs, ramfs) at `point`; false (and the test skipped) if it cannot. */
export function mountOrSkip(t: TestContext, type: string, point: string, options: readonly string[] = []): boolean {
  if (process.getuid?.() !== 0) {
    t.skip(`not root: cannot mount a ${type}`);
    return false;
  }
  try {
    execFileSync('mount', ['-t', type, ...options, type, point], { stdio: 'pipe', timeout: 10_000 });
    return true;
  } catch (err) {
    t.skip(`mount -t ${type} failed: ${(err as Error).message.split('\n')[0]}`);
    return false;
  }
}

export function unmount(point: string): void {
  try {
    execFileSync('umount', [point], { stdio: 'pipe', timeout: 10_000 });
  } catch {
    execFileSync('umount', ['-l', point], { stdio: 'pipe', timeout: 10_000 });
  }
}
