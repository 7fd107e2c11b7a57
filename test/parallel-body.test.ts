/**
 * ParallelBody and ResumingBody on their own, against the ranged test origin: bytes in order
 * whatever the pieces' timing, pieces held only with room from the shared budget, everything let
 * go on destroy, and every retry checked by the SSRF guard again.
 */
import { strict as assert } from 'node:assert';
import { after, before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { ParallelBody } from '../net/parallel-body.js';
import { PieceBudget } from '../net/piece-budget.js';
import { resumePointOf } from '../net/resume-point.js';
import { ResumingBody } from '../net/resuming-body.js';
import { openUpstream } from '../net/upstream.js';
import { generateBytes } from './helpers/origin.js';
import { startRangedOrigin, type RangedOrigin } from './helpers/ranged-origin.js';

const KiB = 1024;
let origin: RangedOrigin;
before(async () => {
  origin = await startRangedOrigin();
});
after(() => origin.close());

async function open(url: string, budget: PieceBudget, connections: number, signal: AbortSignal): Promise<ParallelBody> {
  const upstream = await openUpstream(new URL(url), { headers: {}, timeoutMs: 2_000, allow: ['127.0.0.1'], signal });
  const r = resumePointOf(upstream.url, upstream.status, upstream.headers);
  assert.ok(r !== null);
  return new ParallelBody(upstream.body, r.span, r.point, { retries: 3, timeoutMs: 2_000, allow: ['127.0.0.1'], connections, pieceBytes: 256 * KiB, budget }, signal);
}

test('a slow reader: bytes in order, at most 1 + budget connections, never more room taken than the budget has', async () => {
  const size = 4 * 1024 * KiB + 3;
  const budget = new PieceBudget(2);
  origin.open.max = 0;
  const body = await open(origin.file({ size, seed: 'pb-slow', rate: 2 * 1024 * KiB, breaks: `${700 * KiB},${2500 * KiB}` }), budget, 4, new AbortController().signal);
  const chunks: Buffer[] = [];
  let maxInUse = 0;
  for await (const chunk of body) {
    chunks.push(chunk as Buffer);
    maxInUse = Math.max(maxInUse, budget.inUse);
    if (chunks.length % 8 === 0) await sleep(5);
  }
  assert.ok(Buffer.concat(chunks).equals(Buffer.concat([...generateBytes('pb-slow', 0, size)])), 'byte-exact, in order');
  assert.equal(maxInUse, 2, 'the budget was used, and not overdrawn');
  assert.ok(origin.open.max <= 3, `${origin.open.max} connections at once`);
  assert.equal(budget.inUse, 0, 'all room given back');
});

test('destroyed mid-way: the room comes back and the connections close', async () => {
  const budget = new PieceBudget(3);
  const controller = new AbortController();
  const body = await open(origin.file({ size: 4 * 1024 * KiB, seed: 'pb-destroy', rate: 1024 * KiB }), budget, 4, controller.signal);
  let read = 0;
  for await (const chunk of body) {
    read += (chunk as Buffer).length;
    if (read > 300 * KiB) break;
  }
  assert.ok(body.destroyed);
  assert.equal(budget.inUse, 0);
  await sleep(100);
  assert.equal(origin.open.now, 0, 'no connection left open');
});

test('a budget already spent: one connection, still byte-exact', async () => {
  const size = 1024 * KiB;
  const budget = new PieceBudget(1);
  assert.ok(budget.tryTake());
  origin.open.max = 0;
  const body = await open(origin.file({ size, seed: 'pb-spent', rate: 4 * 1024 * KiB }), budget, 4, new AbortController().signal);
  const chunks: Buffer[] = [];
  for await (const chunk of body) chunks.push(chunk as Buffer);
  assert.ok(Buffer.concat(chunks).equals(Buffer.concat([...generateBytes('pb-spent', 0, size)])));
  assert.equal(origin.open.max, 1);
  assert.equal(budget.inUse, 1, 'the room taken before is still taken; none more');
});

test('every retry passes the SSRF guard again: a refused address ends the transfer with 403, with no more tries', async () => {
  const size = 1024 * KiB;
  // The first request is let through (FETCH_ALLOW); the retry's settings allow nothing.
  const upstream = await openUpstream(new URL(origin.file({ size, seed: 'pb-ssrf', breaks: 300 * KiB })), { headers: {}, timeoutMs: 2_000, allow: ['127.0.0.1'], signal: new AbortController().signal });
  const r = resumePointOf(upstream.url, upstream.status, upstream.headers);
  assert.ok(r !== null);
  const body = new ResumingBody(upstream.body, r.span, r.point, { retries: 5, timeoutMs: 2_000, allow: [] }, new AbortController().signal);
  await assert.rejects(
    (async () => {
      for await (const _ of body);
    })(),
    (err: Error & { code?: string; status?: number }) => err.code === 'FORBIDDEN_ADDRESS' && err.status === 403,
  );
  assert.equal(origin.requests.filter((q) => q.key === 'pb-ssrf').length, 1, 'the refused retry never reached the origin');
});
