/**
 * Hostile input: the regression corpus. Every `corpus/<name>.bin` is a body that once failed
 * (or a known historical crash input), described by `corpus/<name>.json`:
 * `{ what, found, boundary, limits, chunkSizes?, slowConsumer?, expect?: {error: CODE} | {parts: N} }`.
 * Each is replayed through the parser in its recorded chunking, whole, one byte at a time and in
 * seeded random chunkings, with every rule of fuzz-harness.ts, the same outcome each time, and
 * the expected outcome when one is recorded. New failures from parser-fuzz.test.ts are saved in
 * this format: copy the pair here to keep them.
 */
import { strict as assert } from 'node:assert';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';
import { chunksOf, type CaseLimits } from './fuzz-cases.js';
import { describeOutcome, runParserCase } from './fuzz-harness.js';
import { mulberry32, randInt } from './helpers.js';

const DIR = join(dirname(fileURLToPath(import.meta.url)), 'corpus');

interface CorpusMeta {
  readonly what: string;
  readonly found: string;
  readonly boundary: string;
  readonly limits: CaseLimits;
  readonly chunkSizes?: number[];
  readonly slowConsumer?: boolean;
  readonly expect?: { readonly error?: string; readonly parts?: number };
}

function randomSizes(seed: number, length: number, max: number): number[] {
  const random = mulberry32(seed);
  const sizes: number[] = [];
  for (let left = length; left > 0; ) {
    const n = Math.min(left, randInt(random, 1, max));
    sizes.push(n);
    left -= n;
  }
  return sizes;
}

const names = readdirSync(DIR)
  .filter((n) => n.endsWith('.json'))
  .map((n) => n.slice(0, -5))
  .sort();

test('the corpus is not empty', () => {
  assert.ok(names.length >= 5, `corpus: ${names.join(', ')}`);
});

for (const name of names) {
  const meta = JSON.parse(readFileSync(join(DIR, `${name}.json`), 'utf8')) as CorpusMeta;
  const body = readFileSync(join(DIR, `${name}.bin`));
  test(`corpus ${name}: ${meta.what}`, { timeout: 60_000 }, async () => {
    const chunkings: Array<[string, number[]]> = [
      ['whole', body.length === 0 ? [] : [body.length]],
      ...(meta.chunkSizes === undefined ? [] : [['recorded', meta.chunkSizes] as [string, number[]]]),
      ...(body.length <= 64 * 1024 ? [['bytes', Array.from({ length: body.length }, () => 1)] as [string, number[]]] : []),
      ['random ≤17', randomSizes(1, body.length, 17)],
      ['random ≤300', randomSizes(2, body.length, 300)],
      ['random ≤5000', randomSizes(3, body.length, 5000)],
    ];
    let reference: string | null = null;
    for (const [label, sizes] of chunkings) {
      for (const slowConsumer of meta.slowConsumer === true ? [false, true] : [false]) {
        const run = await runParserCase(meta.boundary, meta.limits, chunksOf(body, sizes), { slowConsumer, timeoutMs: 5_000 });
        const where = `${name} (${label}${slowConsumer ? ', slow consumer' : ''}; found: ${meta.found})`;
        assert.deepEqual(run.violations, [], where);
        const outcome = describeOutcome(run.outcome);
        reference ??= outcome;
        assert.equal(outcome, reference, `${where}: the outcome depends on the chunking`);
        if (meta.expect?.error !== undefined) assert.equal(run.outcome?.kind === 'error' ? run.outcome.code : describeOutcome(run.outcome), meta.expect.error, where);
        if (meta.expect?.parts !== undefined) assert.equal(run.outcome?.kind === 'parts' ? run.outcome.parts.length : describeOutcome(run.outcome), meta.expect.parts, where);
      }
    }
  });
}
