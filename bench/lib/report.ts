/** Turns summaries into what a person reads: the Markdown table, the SVG charts, the targets. */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { BASELINE_COLOR, renderChart, renderSmallMultiples, SLUICE_COLOR, type ChartSeries } from './svg-chart.js';
import { ratio, type RowSummary } from './summary.js';
import { fixed, grouped, markdownTable } from './table.js';
import type { TargetCheck } from './targets.js';

function sizeText(bytes: number): string {
  const gib = bytes / 2 ** 30;
  return gib >= 1 ? `${fixed(gib, gib >= 10 ? 0 : 1)} GiB` : `${fixed(bytes / 2 ** 20, 0)} MiB`;
}

export function formatRowsTable(rows: readonly RowSummary[]): string {
  const body = rows.map((r) => {
    const ratios = r.ratioTo
      .map((other) => ({ other, value: ratio(rows, r.name, other) }))
      .filter((x) => Number.isFinite(x.value))
      .map((x) => `${fixed(x.value, 2)}× ${x.other}`);
    return [
      r.group === 'baseline' ? `${r.name} (baseline)` : `**${r.name}**`,
      sizeText(r.bytes),
      grouped(r.mbps),
      fixed(r.peakRssMiB, 1),
      fixed(r.growthMiB, 1),
      fixed(r.cpuSecondsPerGiB, 2),
      ratios.join(', ') || '',
    ];
  });
  return markdownTable(
    ['scenario', 'size', 'MB/s', 'peak RSS MiB', 'RSS growth over idle MiB', 'CPU s / GiB', 'ratio (MB/s) to baseline'],
    body,
    ['left', 'right', 'right', 'right', 'right', 'right', 'left'],
  );
}

export function formatTargets(checks: readonly TargetCheck[]): string {
  return markdownTable(
    ['target (issues 7, 18)', 'status', 'measured'],
    checks.map((c) => [c.target, c.status, c.detail]),
    ['left', 'left', 'left'],
  );
}

function seriesOf(row: RowSummary): ChartSeries {
  const samples = row.representative.samples;
  const t0 = samples[0]?.[0] ?? 0;
  const [a, b] = row.representative.transferMs;
  return {
    title: row.group === 'baseline' ? `${row.name} (baseline)` : row.name,
    subtitle: `${sizeText(row.bytes)} · ${grouped(row.mbps)} MB/s · peak ${fixed(row.peakRssMiB, 1)} MiB (+${fixed(row.growthMiB, 1)} over idle)`,
    points: samples.map(([t, kib]) => [(t - t0) / 1000, kib / 1024] as const),
    band: [(a - t0) / 1000, (b - t0) / 1000],
    reference: row.idleRssMiB,
    color: row.group === 'baseline' ? BASELINE_COLOR : SLUICE_COLOR,
  };
}

/** File name of a row's chart: `upload-multipart@1GiB` → `upload-multipart-at-1GiB.svg`. */
export function chartFile(name: string): string {
  return `${name.replace(/[^A-Za-z0-9._-]+/g, '-at-')}.svg`;
}

/** Writes one SVG per row and an overview; returns the paths written. */
export function writeCharts(rows: readonly RowSummary[], dir: string, overviewName: string, title: string): string[] {
  mkdirSync(dir, { recursive: true });
  const written: string[] = [];
  for (const row of rows) {
    const file = join(dir, chartFile(row.name));
    writeFileSync(file, renderChart(seriesOf(row)));
    written.push(file);
  }
  const overview = join(dir, overviewName);
  writeFileSync(overview, renderSmallMultiples(title, rows.map(seriesOf)));
  written.push(overview);
  return written;
}
