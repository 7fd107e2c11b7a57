/** Rounds → one figure per row (medians), and the ratios between rows. */
import type { RowResult } from './types.js';

export interface RowSummary {
  readonly name: string;
  readonly group: 'sluice' | 'baseline';
  readonly description: string;
  readonly bytes: number;
  readonly rounds: number;
  readonly mbps: number;
  readonly seconds: number;
  readonly idleRssMiB: number;
  readonly peakRssMiB: number;
  /** Peak minus the idle RSS before the transfer. */
  readonly growthMiB: number;
  readonly cpuSecondsPerGiB: number;
  /** The round whose throughput is the median: its samples make the chart. */
  readonly representative: RowResult;
  readonly ratioTo: readonly string[];
  /** Throughput per round number, for ratios between rows of the same round. */
  readonly mbpsByRound: ReadonlyMap<number, number>;
  /** Each round's note (TransferResult.note), in round order. */
  readonly notes: readonly string[];
}

export function median(values: readonly number[]): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? (sorted[mid] as number) : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}

const KiB_PER_MiB = 1024;

export function summarize(results: readonly RowResult[], ratioTo: ReadonlyMap<string, readonly string[]>): RowSummary[] {
  const names = [...new Set(results.map((r) => r.name))];
  return names.map((name) => {
    const rounds = results.filter((r) => r.name === name);
    const first = rounds[0] as RowResult;
    const mbps = median(rounds.map((r) => r.mbps));
    const representative = [...rounds].sort((a, b) => Math.abs(a.mbps - mbps) - Math.abs(b.mbps - mbps))[0] as RowResult;
    return {
      name,
      group: first.group,
      description: first.description,
      bytes: first.bytes,
      rounds: rounds.length,
      mbps,
      seconds: median(rounds.map((r) => r.seconds)),
      idleRssMiB: median(rounds.map((r) => r.idleRssKiB / KiB_PER_MiB)),
      peakRssMiB: median(rounds.map((r) => r.peakRssKiB / KiB_PER_MiB)),
      growthMiB: median(rounds.map((r) => (r.peakRssKiB - r.idleRssKiB) / KiB_PER_MiB)),
      cpuSecondsPerGiB: median(rounds.map((r) => r.cpuSeconds / (r.bytes / 2 ** 30))),
      representative,
      ratioTo: ratioTo.get(name) ?? [],
      mbpsByRound: new Map(rounds.map((r) => [r.round, r.mbps])),
      notes: rounds.flatMap((r) => (r.note === undefined ? [] : [`round ${r.round}: ${r.note}`])),
    };
  });
}

/**
 * This row's throughput over `other`'s, or NaN when `other` did not run. Paired by round: the
 * median of the ratios within each round, where the two rows ran a minute apart at most, under
 * the same load on a shared machine; the ratio of two medians could pair a quiet minute of one
 * row with a busy minute of the other. Rows without common rounds fall back to the medians.
 */
export function ratio(rows: readonly RowSummary[], name: string, other: string): number {
  const a = rows.find((r) => r.name === name);
  const b = rows.find((r) => r.name === other);
  if (a === undefined || b === undefined) return Number.NaN;
  const paired: number[] = [];
  for (const [round, mbps] of a.mbpsByRound) {
    const base = b.mbpsByRound.get(round);
    if (base !== undefined) paired.push(mbps / base);
  }
  return paired.length > 0 ? median(paired) : a.mbps / b.mbps;
}

export function find(rows: readonly RowSummary[], name: string): RowSummary | undefined {
  return rows.find((r) => r.name === name);
}
