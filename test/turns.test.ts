/** Turns: a limit on operations at once, the rest served in order. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Turns } from '../storage/turns.js';

test('at most `limit` operations run at once; the others start in the order they came, as turns free up', () => {
  const turns = new Turns(2);
  const started: number[] = [];
  const dones = new Map<number, () => void>();
  for (let i = 0; i < 5; i += 1) {
    turns.take((done) => {
      started.push(i);
      dones.set(i, done);
    });
  }
  assert.deepEqual(started, [0, 1]);
  dones.get(1)?.();
  assert.deepEqual(started, [0, 1, 2]);
  dones.get(0)?.();
  assert.deepEqual(started, [0, 1, 2, 3]);
  // A second call of the same done gives no extra turn.
  dones.get(0)?.();
  assert.deepEqual(started, [0, 1, 2, 3]);
  dones.get(2)?.();
  dones.get(3)?.();
  dones.get(4)?.();
  // All turns are free again: the next two start at once, a third waits.
  turns.take(() => started.push(5));
  turns.take(() => started.push(6));
  turns.take(() => started.push(7));
  assert.deepEqual(started, [0, 1, 2, 3, 4, 5, 6]);
});

test('an operation that finishes at once hands its turn straight on', () => {
  const turns = new Turns(1);
  const order: string[] = [];
  let release: () => void = () => {};
  turns.take((done) => {
    order.push('a');
    release = done;
  });
  turns.take((done) => {
    order.push('b');
    done();
  });
  turns.take((done) => {
    order.push('c');
    done();
  });
  assert.deepEqual(order, ['a']);
  release();
  assert.deepEqual(order, ['a', 'b', 'c']);
  turns.take(() => order.push('d'));
  assert.deepEqual(order, ['a', 'b', 'c', 'd']);
});
