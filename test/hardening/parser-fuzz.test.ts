/**
 * Hostile input: the multipart parser fuzzed in process, 20,000+ seeded cases (see
 * fuzz-cases.ts), each fed in its own random chunking and checked by fuzz-harness.ts (parts or
 * exactly one typed 4xx error, never an uncaught exception, never a hang, buffering bounded).
 * Two oracles on top: a body that was not mutated must give exactly the parts it was built from,
 * and every body must give the same outcome whole as in its random chunking (a difference means
 * the result depends on where the network split the bytes).
 *
 * FUZZ_CASES (default 20000) and FUZZ_SEED (default 1) change the run; a failing case is written
 * to FUZZ_SAVE_DIR (default: a fresh temporary directory, printed) in the corpus format, ready
 * to be copied into test/hardening/corpus/ as a regression input.
 */
import { strict as assert } from 'node:assert';
import { mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { chunksOf, makeCase, type FuzzCase } from './fuzz-cases.js';
import { describeOutcome, runParserCase, type Outcome } from './fuzz-harness.js';

const CASES = Number(process.env.FUZZ_CASES ?? 20_000);
const FIRST_SEED = Number(process.env.FUZZ_SEED ?? 1);
/** The whole run must stay under about a minute of one core. */
const BUDGET_MS = 60_000;

interface Failure {
  readonly c: FuzzCase;
  readonly problems: string[];
}

async function saveFailure(dir: string, f: Failure): Promise<string> {
  const name = `fuzz-seed-${f.c.seed}`;
  await writeFile(join(dir, `${name}.bin`), f.c.body);
  const meta = { what: f.c.what, found: `parser-fuzz seed ${f.c.seed}: ${f.problems.join('; ')}`, boundary: f.c.boundary, limits: f.c.limits, slowConsumer: f.c.seed % 10 === 0 };
  // The corpus format (see corpus.test.ts), chunk sizes on one line.
  await writeFile(join(dir, `${name}.json`), `${JSON.stringify(meta, null, 2).replace(/\n}$/, `,\n  "chunkSizes": ${JSON.stringify(f.c.chunkSizes)}\n}`)}\n`);
  return join(dir, name);
}

function sameParts(o: Outcome, expected: NonNullable<FuzzCase['expected']>): string | null {
  if (o.kind !== 'parts') return `expected ${expected.length} parts, got ${describeOutcome(o)}`;
  if (o.parts.length !== expected.length) return `expected ${expected.length} parts, got ${o.parts.length}`;
  for (const [i, e] of expected.entries()) {
    const got = o.parts[i];
    if (got === undefined || got.name !== e.name || got.filename !== e.filename || got.data === null || !got.data.equals(e.data)) {
      return `part ${i}: expected ${JSON.stringify([e.name, e.filename, e.data.length])}, got ${JSON.stringify([got?.name, got?.filename, got?.size])}`;
    }
  }
  return null;
}

test(`parser fuzzing: ${CASES} seeded cases from seed ${FIRST_SEED}`, { timeout: 240_000 }, async () => {
  const started = Date.now();
  const cpuStarted = process.cpuUsage();
  const failures: Failure[] = [];
  const kinds = new Map<string, number>();
  const outcomes = new Map<string, number>();
  let slowest = { ms: 0, seed: 0 };
  let pristine = 0;
  let bytes = 0;
  for (let i = 0; i < CASES; i += 1) {
    const seed = FIRST_SEED + i;
    const c = makeCase(seed);
    bytes += c.body.length;
    const kind = c.what.split(/[ (]/)[0] as string;
    kinds.set(kind, (kinds.get(kind) ?? 0) + 1);
    const problems: string[] = [];
    let run;
    try {
      run = await runParserCase(c.boundary, c.limits, chunksOf(c.body, c.chunkSizes), { keepData: c.expected !== null, slowConsumer: seed % 10 === 0 });
    } catch (err) {
      problems.push(`the harness caught ${(err as Error).stack ?? String(err)}`);
      failures.push({ c, problems });
      continue;
    }
    problems.push(...run.violations);
    if (run.ms > slowest.ms) slowest = { ms: run.ms, seed };
    const label = run.outcome === null ? 'none' : run.outcome.kind === 'error' ? run.outcome.code : 'parts';
    outcomes.set(label, (outcomes.get(label) ?? 0) + 1);
    if (run.outcome !== null && c.expected !== null) {
      pristine += 1;
      const diff = sameParts(run.outcome, c.expected);
      if (diff !== null) problems.push(`valid body misparsed: ${diff}`);
    }
    // Differential: the same bytes in one chunk must give the same outcome.
    if (run.outcome !== null && c.chunkSizes.length > 1) {
      const whole = await runParserCase(c.boundary, c.limits, c.body.length === 0 ? [] : [c.body]);
      problems.push(...whole.violations.map((v) => `(whole) ${v}`));
      if (describeOutcome(whole.outcome) !== describeOutcome(run.outcome)) {
        problems.push(`chunking changes the outcome: whole → ${describeOutcome(whole.outcome).slice(0, 300)}; chunked → ${describeOutcome(run.outcome).slice(0, 300)}`);
      }
    }
    if (problems.length > 0) failures.push({ c, problems });
    if (Date.now() - started > BUDGET_MS * 3) {
      failures.push({ c, problems: [`stopped after ${i + 1} cases: the run took more than three times its budget`] });
      break;
    }
  }
  const elapsed = Date.now() - started;
  const cpu = process.cpuUsage(cpuStarted);
  const cpuMs = Math.round((cpu.user + cpu.system) / 1000);
  console.log(`fuzz: ${CASES} cases (${Math.round(bytes / 1024 / 1024)} MiB) in ${elapsed} ms (${cpuMs} ms of CPU); ${pristine} valid bodies checked exactly; slowest case ${slowest.ms.toFixed(1)} ms (seed ${slowest.seed})`);
  console.log(`fuzz: generators ${JSON.stringify(Object.fromEntries(kinds))}`);
  console.log(`fuzz: outcomes ${JSON.stringify(Object.fromEntries([...outcomes].sort((a, b) => b[1] - a[1])))}`);
  // Every kind of input and both kinds of outcome must actually have been exercised.
  assert.ok(kinds.size >= 8, `generators used: ${[...kinds.keys()].join(', ')}`);
  assert.ok((outcomes.get('parts') ?? 0) > CASES / 20, 'too few cases ended in parts');
  assert.ok(outcomes.size > 8, 'too few distinct outcomes');
  if (failures.length > 0) {
    const dir = process.env.FUZZ_SAVE_DIR ?? (await mkdtemp(join(tmpdir(), 'sluice-fuzz-failures-')));
    await mkdir(dir, { recursive: true });
    const saved: string[] = [];
    for (const f of failures.slice(0, 50)) saved.push(await saveFailure(dir, f));
    const summary = failures.slice(0, 10).map((f) => `seed ${f.c.seed} (${f.c.what}, ${f.c.body.length} bytes): ${f.problems.join(' | ')}`);
    assert.fail(`${failures.length} of ${CASES} cases broke a rule; saved to ${dir}:\n${summary.join('\n')}\nsaved: ${saved.slice(0, 10).join(', ')}`);
  }
  // CPU time, not wall time: other work on the machine must not fail this test.
  assert.ok(cpuMs < BUDGET_MS, `the fuzz run took ${cpuMs} ms of CPU (budget ${BUDGET_MS} ms)`);
});
