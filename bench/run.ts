/**
 * sluice benchmarks: every scenario against a fresh `node dist/server.js`, driven by a separate
 * client process over 127.0.0.1, side by side with baselines in the same invocation. Prints
 * Markdown tables on stdout (progress on stderr), writes the raw figures as JSON and an RSS
 * chart per row as SVG.
 *
 *   npm run bench                                   # 1 GiB, everything
 *   npm run bench -- --size 10GiB --only upload-multipart
 *   npm run bench -- --size 16MiB --only upload-raw # smoke: a few seconds
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, release, tmpdir, totalmem } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { formatSize } from '../lib/size.js';
import { parseArgs, USAGE, type RunArgs } from './lib/args.js';
import { buildHelpers } from './lib/build-helpers.js';
import { deployedTuning } from './lib/deployed-env.js';
import { measureGenerator } from './lib/generator-rate.js';
import { runRow, transferTimeout } from './lib/harness.js';
import { formatParserTable } from './lib/parser-table.js';
import type { ParserReport } from './lib/parser-types.js';
import { installCleanup, spawnTracked, waitForExit } from './lib/processes.js';
import { formatRowsTable, formatTargets, writeCharts } from './lib/report.js';
import { summarize } from './lib/summary.js';
import { checkTargets } from './lib/targets.js';
import type { BenchContext, RowResult } from './lib/types.js';
import { knownNames, planRows, REFERENCE_SIZE } from './scenarios/index.js';
import { resumableNotes } from './scenarios/resumable.js';

const benchDir = dirname(fileURLToPath(import.meta.url));
const repoDir = resolve(benchDir, '..');

function progress(line: string): void {
  process.stderr.write(`${line}\n`);
}

function machine(): Record<string, string | number> {
  let curl = 'not found';
  try {
    curl = execFileSync('curl', ['--version'], { encoding: 'utf8' }).split('\n')[0] ?? curl;
  } catch {
    // curl is optional with --client node; downloads need it and will say so.
  }
  return {
    cpu: cpus()[0]?.model ?? 'unknown',
    cores: cpus().length,
    memoryGiB: Math.round(totalmem() / 2 ** 30),
    kernel: release(),
    node: process.version,
    curl,
  };
}

async function runParser(rounds: number): Promise<ParserReport> {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-bench-parser-'));
  try {
    const json = join(dir, 'parser.json');
    const child = spawnTracked(process.execPath, ['--expose-gc', '--import', 'tsx', join(benchDir, 'parser.ts'), '--rounds', String(rounds), '--json', json, '--quiet'], {
      cwd: repoDir,
      stdio: ['ignore', 'inherit', 'inherit'],
    });
    const exit = await waitForExit(child, 30 * 60_000, 'parser micro-benchmark');
    if (exit.code !== 0) throw new Error(`parser micro-benchmark failed (${exit.code ?? exit.signal})`);
    return JSON.parse(readFileSync(json, 'utf8')) as ParserReport;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function formatEnv(env: Readonly<Record<string, string>>): string {
  const pairs = Object.entries(env).map(([k, v]) => `\`${k}=${v}\``);
  return pairs.length === 0 ? 'no extra environment' : pairs.join(' ');
}

function sizeLabel(size: number): string {
  return formatSize(size).replace(' ', '');
}

async function main(args: RunArgs): Promise<number> {
  const serverScript = resolve(args.server ?? join(repoDir, 'dist', 'server.js'));
  if (!existsSync(serverScript)) throw new Error(`${serverScript} is missing: run \`npm run build\` first`);
  const names = knownNames(args.size);
  const unknown = (args.only ?? []).filter((n) => n !== 'parser' && !names.includes(n));
  if (unknown.length > 0) throw new Error(`unknown --only ${unknown.join(', ')}; known: ${[...names, 'parser'].join(', ')}`);

  const buildDir = buildHelpers(benchDir);
  if (args.profileDir !== null) mkdirSync(args.profileDir, { recursive: true });
  const processEnv = deployedTuning(repoDir);
  const ctx: BenchContext = { repoDir, serverScript, buildDir, client: args.client, profileDir: args.profileDir, processEnv, timeoutFor: transferTimeout };
  const plans = planRows(args.size, args.only);
  const wantParser = args.only === null || args.only.includes('parser');

  progress(`sluice bench: ${relative(repoDir, serverScript)}, ${formatSize(args.size)}, client ${args.client}, ${args.rounds} round(s), rows: ${plans.map((p) => p.name).join(', ')}${wantParser ? ', parser' : ''}`);
  const generatorMbps = await measureGenerator(buildDir, Math.min(args.size, REFERENCE_SIZE));
  progress(`generator alone (into a pipe, read by cat): ${Math.round(generatorMbps)} MB/s`);

  const results: RowResult[] = [];
  const failures: string[] = [];
  for (let round = 1; round <= args.rounds; round += 1) {
    for (const plan of plans) {
      progress(`[round ${round}/${args.rounds}] ${plan.name}: ${plan.description}`);
      try {
        const r = await runRow(ctx, plan, round);
        results.push(r);
        progress(`  ${Math.round(r.mbps)} MB/s, peak RSS ${(r.peakRssKiB / 1024).toFixed(1)} MiB (idle ${(r.idleRssKiB / 1024).toFixed(1)}), CPU ${r.cpuSeconds.toFixed(2)} s`);
      } catch (err) {
        const message = err instanceof Error ? err.message : String(err);
        failures.push(message);
        progress(`  FAILED: ${message}`);
      }
    }
  }
  let parser: ParserReport | null = null;
  if (wantParser) {
    progress(`parser micro-benchmark (${args.parserRounds} passes)`);
    try {
      parser = await runParser(args.parserRounds);
    } catch (err) {
      failures.push(err instanceof Error ? err.message : String(err));
    }
  }

  const rows = summarize(results, new Map(plans.map((p) => [p.name, p.ratioTo])));
  const targets = checkTargets(rows, parser);
  const info = machine();
  const header =
    `### sluice benchmark: ${formatSize(args.size)} per large transfer, ${args.client} upload client, ${args.rounds} round(s) (medians)\n\n` +
    `Machine: ${info.cpu}, ${info.cores} cores, ${info.memoryGiB} GiB, Linux ${info.kernel}, Node ${info.node}. ` +
    `Generator alone: ${Math.round(generatorMbps)} MB/s. MB/s = 10^6 bytes of request body per second; RSS from /proc every 50 ms, peak = VmHWM. ` +
    `Every server ran with ${formatEnv(processEnv)} (from deploy/sluice.service) unless its row says otherwise.`;
  const sections = [header];
  if (rows.length > 0) sections.push(formatRowsTable(rows));
  if (resumableNotes.length > 0) sections.push(`Resumable uploads:\n\n${resumableNotes.map((n) => `- ${n}`).join('\n')}`);
  const notes = rows.flatMap((r) => r.notes.map((n) => `- ${r.name}, ${n}`));
  if (notes.length > 0) sections.push(`Notes:\n\n${notes.join('\n')}`);
  if (parser !== null) sections.push(`Parser micro-benchmark (in process, median of ${parser.rounds} rounds):\n\n${formatParserTable(parser)}`);
  if (targets.length > 0) sections.push(`Targets:\n\n${formatTargets(targets)}`);
  if (failures.length > 0) sections.push(`Failures:\n\n${failures.map((f) => `- ${f.split('\n')[0]}`).join('\n')}`);
  const text = `${sections.join('\n\n')}\n`;
  process.stdout.write(text);

  const chartDir = join(args.chartsDir, sizeLabel(args.size));
  if (rows.length > 0) {
    const overview = args.only === null ? 'overview.svg' : `overview-${args.only.join('+')}.svg`;
    const written = writeCharts(rows, chartDir, overview, `sluice: server RSS over time, ${formatSize(args.size)} (${args.client} client)`);
    writeFileSync(join(chartDir, args.only === null ? 'results.md' : `results-${args.only.join('+')}.md`), text);
    progress(`charts: ${written.map((w) => relative(process.cwd(), w)).join(', ')}`);
  }
  const json = `${JSON.stringify({ date: new Date().toISOString(), argv: process.argv.slice(2), options: args, machine: info, generatorMbps, rows: rows.map(({ representative: _r, ...rest }) => rest), results, parser, targets, failures }, null, 1)}\n`;
  mkdirSync(dirname(args.out), { recursive: true });
  writeFileSync(args.out, json);
  // latest.json is whatever ran last; this copy keeps each kind of run (1GiB.json, 10GiB-upload-multipart.json).
  const keep = join(dirname(args.out), `${sizeLabel(args.size)}${args.only === null ? '' : `-${args.only.join('+')}`}.json`);
  writeFileSync(keep, json);
  progress(`raw figures: ${relative(process.cwd(), args.out)}, ${relative(process.cwd(), keep)}`);
  return failures.length === 0 ? 0 : 1;
}

installCleanup();
let args: RunArgs;
try {
  args = parseArgs(process.argv.slice(2), { out: join(benchDir, 'results', 'latest.json'), chartsDir: join(benchDir, 'charts') });
} catch (err) {
  process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n\n${USAGE}`);
  process.exit(2);
}
if (args.help) {
  process.stdout.write(USAGE);
} else {
  main(args).then(
    (code) => {
      process.exitCode = code;
    },
    (err: unknown) => {
      process.stderr.write(`bench failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
      process.exitCode = 1;
    },
  );
}
