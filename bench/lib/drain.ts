/**
 * Waits for a writable to drain, or to close (then resolves too: the caller checks
 * `destroyed`). Plain listeners, both removed either way: `Promise.race` over two
 * `events.once` would leave one listener behind per wait, thousands over a large transfer.
 */
import type { Writable } from 'node:stream';

export function drainOrClose(stream: Writable): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      stream.off('drain', done);
      stream.off('close', done);
      resolve();
    };
    stream.on('drain', done);
    stream.on('close', done);
  });
}
