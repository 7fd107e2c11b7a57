/** The shapes shared by the runner, the scenarios and the report. */
import type { ClientKind, TransferResult } from './clients.js';
import type { RssSample } from './rss-sampler.js';

/** What a scenario needs from the run. */
export interface BenchContext {
  readonly repoDir: string;
  /** The sluice entry point: dist/server.js unless --server names another build. */
  readonly serverScript: string;
  /** Transpiled helpers and baselines (see build-helpers.ts). */
  readonly buildDir: string;
  readonly client: ClientKind;
  /** Directory for `--cpu-prof` output of sluice, or null. */
  readonly profileDir: string | null;
  /** Environment every server and helper process starts with (deployed-env.ts). */
  readonly processEnv: Readonly<Record<string, string>>;
  /** A time limit for moving `bytes`: generous, only there so nothing hangs. */
  timeoutFor(bytes: number): number;
}

/** A process started before the measured server: an origin or a destination. */
export interface HelperPlan {
  readonly script: string;
  readonly env: Readonly<Record<string, string>>;
}

export type ServerPlan =
  | { readonly kind: 'sluice'; readonly env: (ports: readonly number[]) => Record<string, string> }
  | { readonly kind: 'baseline'; readonly script: string; readonly env: (ports: readonly number[]) => Record<string, string> };

export interface TransferArgs {
  readonly ctx: BenchContext;
  readonly port: number;
  readonly helperPorts: readonly number[];
  readonly tmpDir: string;
}

/** One row of the table: a server, a transfer, and how to check the answer. */
export interface RowPlan {
  readonly name: string;
  readonly group: 'sluice' | 'baseline';
  readonly description: string;
  /** Bytes on the wire that MB/s is computed from. */
  readonly bytes: number;
  /** Rows whose throughput this row's ratio column is computed against. */
  readonly ratioTo: readonly string[];
  readonly helpers: readonly HelperPlan[];
  readonly server: ServerPlan;
  transfer(args: TransferArgs): Promise<TransferResult>;
  /** Throws when the answers show the transfer did not do what was measured. */
  validate(result: TransferResult): void;
}

export interface RowResult {
  readonly name: string;
  readonly group: 'sluice' | 'baseline';
  readonly description: string;
  readonly round: number;
  readonly bytes: number;
  readonly seconds: number;
  /** Decimal megabytes per second, as curl and the reference numbers count. */
  readonly mbps: number;
  /** RSS of the started, idle server just before the transfer. */
  readonly idleRssKiB: number;
  /** VmHWM at the end: the peak over the server's whole life. */
  readonly peakRssKiB: number;
  readonly cpuSeconds: number;
  readonly samples: readonly RssSample[];
  /** Transfer start and end, in the samples' time base (ms). */
  readonly transferMs: readonly [number, number];
  /** The scenario's own figures (TransferResult.note). */
  readonly note?: string;
}
