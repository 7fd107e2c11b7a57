/** The runner's command line. */
import { parseSize } from '../../lib/size.js';
import type { ClientKind } from './clients.js';

export interface RunArgs {
  readonly size: number;
  /** Row or scenario names (`parser` for the micro-benchmark); null = everything. */
  readonly only: readonly string[] | null;
  readonly rounds: number;
  readonly parserRounds: number;
  readonly client: ClientKind;
  readonly out: string;
  readonly chartsDir: string;
  /** Directory for sluice's `--cpu-prof` output; null = no profiling. */
  readonly profileDir: string | null;
  /** The sluice entry point to measure (default dist/server.js): A/B-test a changed build. */
  readonly server: string | null;
  readonly help: boolean;
}

export const USAGE = `Usage: npm run bench -- [options]

  --size <size>        bytes per large transfer (default 1GiB; 10GiB, 256MiB, ...)
  --only <a,b,...>     rows to run (their baselines come along): upload-multipart, upload-raw,
                       upload-many, fetch, proxy, proxy-slow, concurrent, parser, or a baseline
                       (raw-sink, raw-file, busboy-upload, ...). Default: all.
  --rounds <n>         run every row n times, report medians (default 1)
  --parser-rounds <n>  passes of the parser micro-benchmark, 2 rounds each (default 3)
  --client <node|curl> upload client (default node; see bench/README.md)
  --out <file>         JSON of the raw figures (default bench/results/latest.json)
  --charts-dir <dir>   where the SVG charts go, in a folder per size (default bench/charts)
  --profile <dir>      run sluice with --cpu-prof, profiles into <dir>
  --server <file>      sluice entry point to measure (default dist/server.js), to compare a
                       changed build against the same baselines
`;

export function parseArgs(argv: readonly string[], defaults: { out: string; chartsDir: string }): RunArgs {
  const values = new Map<string, string>();
  let help = false;
  for (let i = 0; i < argv.length; i += 1) {
    const arg = argv[i] as string;
    if (arg === '--help' || arg === '-h') {
      help = true;
      continue;
    }
    if (!arg.startsWith('--')) throw new Error(`unexpected argument ${arg}`);
    const eq = arg.indexOf('=');
    const name = eq === -1 ? arg.slice(2) : arg.slice(2, eq);
    const value = eq === -1 ? argv[++i] : arg.slice(eq + 1);
    if (value === undefined) throw new Error(`--${name} needs a value`);
    values.set(name, value);
  }
  const known = ['size', 'only', 'rounds', 'parser-rounds', 'client', 'out', 'charts-dir', 'profile', 'server'];
  for (const name of values.keys()) if (!known.includes(name)) throw new Error(`unknown option --${name}`);
  const size = parseSize(values.get('size') ?? '1GiB');
  if (size === null || size < 1024 * 1024) throw new Error('--size: expected a size of at least 1MiB, such as 16MiB or 10GiB');
  const count = (name: string, fallback: number): number => {
    const n = Number(values.get(name) ?? fallback);
    if (!Number.isInteger(n) || n < 1 || n > 100) throw new Error(`--${name}: expected a whole number 1-100`);
    return n;
  };
  const client = values.get('client') ?? 'node';
  if (client !== 'node' && client !== 'curl') throw new Error('--client: expected node or curl');
  const only = values.get('only');
  return {
    size,
    only: only === undefined ? null : only.split(',').map((s) => s.trim()).filter((s) => s !== ''),
    rounds: count('rounds', 1),
    parserRounds: count('parser-rounds', 3),
    client,
    out: values.get('out') ?? defaults.out,
    chartsDir: values.get('charts-dir') ?? defaults.chartsDir,
    profileDir: values.get('profile') ?? null,
    server: values.get('server') ?? null,
    help,
  };
}
