/**
 * Two (or more) builds of sluice side by side: the chosen sluice rows run against each build in
 * turn, round after round, so that a change is measured under the same load as what it
 * replaces (on these shared machines, runs minutes apart differ by more than most changes).
 * Baseline rows run once per round and are printed for reference.
 *
 *   cp -r dist /tmp/before && <change> && npm run build
 *   npm run bench:ab -- --rows upload-multipart,concurrent --rounds 5 /tmp/before/server.js dist/server.js
 *
 * Prints, per row and build: median MB/s, CPU s/GiB and peak RSS, every round's MB/s, and for
 * each build after the first the median of its per-round ratios to the first.
 */
import { existsSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseSize } from '../lib/size.js';
import { buildHelpers } from './lib/build-helpers.js';
import { deployedTuning } from './lib/deployed-env.js';
import { runRow, transferTimeout } from './lib/harness.js';
import { installCleanup } from './lib/processes.js';
import { ratio, summarize } from './lib/summary.js';
import type { BenchContext, RowResult } from './lib/types.js';
import { planRows } from './scenarios/index.js';

const USAGE = 'Usage: npm run bench:ab -- --rows <row,row> [--rounds 5] [--size 1GiB] <server.js> <server.js> [...]';
const benchDir = dirname(fileURLToPath(import.meta.url));
const repoDir = resolve(benchDir, '..');

function parse(argv: readonly string[]): { rows: string[]; rounds: number; size: number; servers: string[] } {
  let rows: string[] = [];
  let rounds = 5;
  let size = 2 ** 30;
  const servers: string[] = [];
  for (let i = 0; i < argv.length; i += 1) {
    const arg = argv[i] as string;
    const value = (): string => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${arg} needs a value\n${USAGE}`);
      return v;
    };
    if (arg === '--rows') rows = value().split(',').filter((r) => r !== '');
    else if (arg === '--rounds') rounds = Number(value());
    else if (arg === '--size') size = parseSize(value()) ?? NaN;
    else if (arg.startsWith('--')) throw new Error(`unknown option ${arg}\n${USAGE}`);
    else servers.push(resolve(arg));
  }
  if (rows.length === 0 || servers.length < 2 || !(rounds >= 1) || !(size > 0)) throw new Error(USAGE);
  for (const s of servers) if (!existsSync(s)) throw new Error(`${s} does not exist`);
  return { rows, rounds, size, servers };
}

async function main(): Promise<void> {
  const { rows, rounds, size, servers } = parse(process.argv.slice(2));
  installCleanup();
  const buildDir = buildHelpers(benchDir);
  const plans = planRows(size, rows);
  const context = (serverScript: string): BenchContext => ({
    repoDir,
    serverScript,
    buildDir,
    client: 'node',
    profileDir: null,
    processEnv: deployedTuning(repoDir),
    timeoutFor: transferTimeout,
  });
  // Each build's rows are named `<row> #<build>`, so the bench's own summary and paired ratios apply.
  const label = (row: string, build: number): string => `${row} #${build + 1}`;
  const results: RowResult[] = [];
  const record = (name: string, r: RowResult): void => {
    results.push({ ...r, name });
    process.stderr.write(`${name}: ${Math.round(r.mbps)} MB/s, CPU ${(r.cpuSeconds / (r.bytes / 2 ** 30)).toFixed(2)} s/GiB, peak ${(r.peakRssKiB / 1024).toFixed(1)} MiB\n`);
  };
  for (let round = 1; round <= rounds; round += 1) {
    process.stderr.write(`[round ${round}/${rounds}]\n`);
    for (const plan of plans) {
      if (plan.group === 'baseline') {
        record(plan.name, await runRow(context(servers[0] as string), plan, round));
        continue;
      }
      for (const [b, server] of servers.entries()) record(label(plan.name, b), await runRow(context(server), plan, round));
    }
  }
  const summaries = summarize(results, new Map());
  console.log(`builds: ${servers.map((s, b) => `#${b + 1} ${s}`).join(', ')}; ${rounds} round(s)\n`);
  for (const row of summaries) {
    const first = row.name.replace(/ #\d+$/, ' #1');
    const paired = row.group === 'sluice' && first !== row.name ? `  ${ratio(summaries, row.name, first).toFixed(2)}× #1 (paired by round)` : '';
    const perRound = results.filter((r) => r.name === row.name).map((r) => Math.round(r.mbps));
    console.log(
      `${row.name.padEnd(32)} ${Math.round(row.mbps).toString().padStart(6)} MB/s  ${row.cpuSecondsPerGiB.toFixed(2)} CPU-s/GiB  peak ${row.peakRssMiB.toFixed(1)} MiB  rounds: ${perRound.join(', ')}${paired}`,
    );
  }
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err instanceof Error ? err.message : String(err));
    process.exit(1);
  },
);
