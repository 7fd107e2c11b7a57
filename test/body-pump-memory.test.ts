/**
 * pumpBody keeps no chunk it has handed on. Regression: it raced every read against one promise
 * that lived as long as the pump (the "stopped" and "taken over" wake-ups); each race left a
 * reaction on it holding that read's chunk, so a PATCH body stayed whole in memory until the
 * append ended (a 512 MiB PATCH peaked at 521 MiB of ArrayBuffers, on both stores). Checked with
 * WeakRefs and a forced GC, so the result does not depend on when V8 collects.
 */
import * as assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { test } from 'node:test';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { pumpBody } from '../storage/body-pump.js';

setFlagsFromString('--expose_gc');
const gc = runInNewContext('gc') as () => void;

test('chunks already written are not kept alive by the pump (signals and a takeover drain armed)', async () => {
  const refs: Array<WeakRef<Buffer>> = [];
  let aliveAtCheck = -1;
  async function* body(): AsyncGenerator<Buffer> {
    for (let i = 0; i < 300; i += 1) {
      if (i === 250) {
        gc();
        aliveAtCheck = refs.slice(0, 200).filter((r) => r.deref() !== undefined).length;
      }
      const chunk = Buffer.alloc(64 * 1024, i);
      refs.push(new WeakRef(chunk));
      yield chunk;
    }
  }
  // A writer that says "wait" at every write, as one uploading a part does.
  const writer = new Writable({
    highWaterMark: 1,
    write(_chunk: Buffer, _enc, callback) {
      setImmediate(callback);
    },
  });
  const signal = new AbortController().signal;
  const takeover = new AbortController().signal;
  const { end, bytes } = await pumpBody(body(), writer, {
    limit: Infinity,
    signals: [signal],
    takeover: { signal: takeover, idleMs: 20, maxMs: 250, maxBytes: 1 << 24 },
    digest: null,
  });
  assert.equal(end.kind, 'ended');
  assert.equal(bytes, 300 * 64 * 1024);
  assert.ok(aliveAtCheck >= 0 && aliveAtCheck <= 2, `${aliveAtCheck} of the first 200 chunks still alive after a GC`);
});
