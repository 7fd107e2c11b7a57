/**
 * The targets of issues 7 and 18, checked against one run's figures. Every comparison is within the
 * run (the machine's absolute speed drifts); a target whose rows did not run is `n/a`.
 */
import { parserMbps, type ParserReport } from './parser-types.js';
import { find, ratio, type RowSummary } from './summary.js';

export type TargetStatus = 'met' | 'MISSED' | 'n/a';

export interface TargetCheck {
  readonly target: string;
  readonly status: TargetStatus;
  readonly detail: string;
}

function check(target: string, ok: boolean | null, detail: string): TargetCheck {
  return { target, status: ok === null ? 'n/a' : ok ? 'met' : 'MISSED', detail };
}

const f1 = (n: number): string => (Number.isFinite(n) ? n.toFixed(1) : 'n/a');
const f2 = (n: number): string => (Number.isFinite(n) ? n.toFixed(2) : 'n/a');
const f0 = (n: number): string => (Number.isFinite(n) ? Math.round(n).toString() : 'n/a');

/** Memory: peak within 16 MiB of the raw sink's; and, with an @1GiB row, within 8 MiB of it. */
function memoryChecks(rows: readonly RowSummary[]): TargetCheck[] {
  const out: TargetCheck[] = [];
  const sink = find(rows, 'raw-sink');
  for (const name of ['upload-multipart', 'upload-raw', 'resumable-one-patch', 'proxy', 'fetch', 'proxy-slow']) {
    const row = find(rows, name);
    if (row === undefined) continue;
    const over = sink === undefined ? Number.NaN : row.peakRssMiB - sink.peakRssMiB;
    out.push(
      check(
        `${name}: peak RSS ≤ raw-sink peak + 16 MiB`,
        sink === undefined ? null : over <= 16,
        `${f1(row.peakRssMiB)} MiB vs raw-sink ${f1(sink?.peakRssMiB ?? Number.NaN)} MiB (${over >= 0 ? '+' : ''}${f1(over)} MiB)`,
      ),
    );
    const ref = find(rows, `${name}@1GiB`);
    if (ref !== undefined) {
      const delta = row.peakRssMiB - ref.peakRssMiB;
      out.push(
        check(
          `${name}: peak RSS at ${sizeLabel(row)} within 8 MiB of 1 GiB`,
          delta <= 8,
          `${f1(row.peakRssMiB)} MiB vs ${f1(ref.peakRssMiB)} MiB at 1 GiB (${delta >= 0 ? '+' : ''}${f1(delta)} MiB)`,
        ),
      );
    }
  }
  const slow = find(rows, 'proxy-slow');
  if (slow !== undefined) {
    const drift = rssDriftMiB(slow);
    out.push(check('proxy-slow: RSS flat while the destination is slow (last-quarter peak − second-quarter peak ≤ 4 MiB)', Number.isNaN(drift) ? null : drift <= 4, `${f1(drift)} MiB over ${f1(slow.seconds)} s`));
  }
  return out;
}

function sizeLabel(row: RowSummary): string {
  return `${f1(row.bytes / 2 ** 30)} GiB`;
}

/**
 * How much higher the RSS peaked in the last quarter of the transfer than in the second: a
 * line that is flat once the pipeline has filled (the first quarter) gives about 0.
 */
export function rssDriftMiB(row: RowSummary): number {
  const [a, b] = row.representative.transferMs;
  const q = (b - a) / 4;
  const peak = (from: number, to: number): number =>
    Math.max(...row.representative.samples.filter(([t]) => t >= from && t <= to).map(([, kib]) => kib));
  const drift = (peak(a + 3 * q, b) - peak(a + q, a + 2 * q)) / 1024;
  return Number.isFinite(drift) ? drift : Number.NaN;
}

function throughputChecks(rows: readonly RowSummary[]): TargetCheck[] {
  const out: TargetCheck[] = [];
  // The shipped configuration (FSYNC on) and the like-for-like one (the baselines never sync).
  for (const name of ['upload-multipart', 'upload-multipart-nofsync']) {
    const mp = find(rows, name);
    if (mp === undefined) continue;
    const toFile = ratio(rows, name, 'raw-file');
    const toBusboy = ratio(rows, name, 'busboy-upload');
    out.push(check(`${name} ≥ 95 % of raw-file`, Number.isNaN(toFile) ? null : toFile >= 0.95, `${f0(mp.mbps)} MB/s = ${f2(toFile)}× raw-file`));
    out.push(check(`${name} ≥ busboy-upload`, Number.isNaN(toBusboy) ? null : toBusboy >= 1, `${f2(toBusboy)}× busboy-upload`));
  }
  out.push(...hashSpeedChecks(rows));
  const proxy = find(rows, 'proxy');
  if (proxy !== undefined) {
    const r = ratio(rows, 'proxy', 'busboy-proxy');
    out.push(check('proxy ≥ busboy-proxy', Number.isNaN(r) ? null : r >= 1, `${f0(proxy.mbps)} MB/s = ${f2(r)}× busboy-proxy`));
    const sink = find(rows, 'raw-sink');
    if (sink !== undefined) {
      out.push(
        check(
          'proxy: RSS as flat as the raw sink (growth within 16 MiB of its growth)',
          proxy.growthMiB - sink.growthMiB <= 16,
          `growth ${f1(proxy.growthMiB)} MiB vs raw-sink ${f1(sink.growthMiB)} MiB`,
        ),
      );
    }
  }
  const page = find(rows, 'browser-page');
  if (page !== undefined) {
    const r = ratio(rows, 'browser-page', 'browser-fetch-upload');
    out.push(check("browser-page ≥ 80 % of an in-page fetch('/upload') of the same file", Number.isNaN(r) ? null : r >= 0.8, `${f0(page.mbps)} MB/s = ${f2(r)}× browser-fetch-upload`));
  }
  const conc = find(rows, 'concurrent');
  if (conc !== undefined) {
    out.push(check('concurrent: peak RSS ≤ 200 MiB', conc.peakRssMiB <= 200, `${f1(conc.peakRssMiB)} MiB`));
    const r = ratio(rows, 'concurrent', 'upload-multipart');
    out.push(check('concurrent: aggregate ≥ 90 % of one large upload', Number.isNaN(r) ? null : r >= 0.9, `${f0(conc.mbps)} MB/s = ${f2(r)}× upload-multipart`));
  }
  return out;
}

/**
 * Issue 18: an upload as fast as a server that only hashes (hash-sink: SHA-256 of the body,
 * nothing stored), with FSYNC on, and at most 0.4 CPU-s/GiB more.
 */
function hashSpeedChecks(rows: readonly RowSummary[]): TargetCheck[] {
  const out: TargetCheck[] = [];
  const sink = find(rows, 'hash-sink');
  for (const name of ['upload-multipart', 'upload-raw']) {
    const row = find(rows, name);
    if (row === undefined) continue;
    const r = ratio(rows, name, 'hash-sink');
    out.push(check(`${name} ≥ 90 % of hash-sink`, Number.isNaN(r) ? null : r >= 0.9, `${f0(row.mbps)} MB/s = ${f2(r)}× hash-sink`));
    const extra = sink === undefined ? Number.NaN : row.cpuSecondsPerGiB - sink.cpuSecondsPerGiB;
    out.push(
      check(
        `${name}: CPU-s/GiB ≤ hash-sink's + 0.4`,
        sink === undefined ? null : extra <= 0.4,
        `${f2(row.cpuSecondsPerGiB)} vs ${f2(sink?.cpuSecondsPerGiB ?? Number.NaN)} (${extra >= 0 ? '+' : ''}${f2(extra)})`,
      ),
    );
  }
  return out;
}

function parserChecks(report: ParserReport | null): TargetCheck[] {
  if (report === null) return [];
  const out: TargetCheck[] = [];
  for (const chunk of [...new Set(report.rows.map((r) => r.chunkBytes))]) {
    const k = `${chunk / 1024} KiB chunks`;
    const ours = parserMbps(report, 'one-large', chunk, 'sluice');
    const floor = parserMbps(report, 'one-large', chunk, 'indexOf floor');
    const fastify = parserMbps(report, 'one-large', chunk, '@fastify/busboy');
    out.push(check(`parser, 256 MiB part, ${k}: ≥ 90 % of the indexOf floor`, ours / floor >= 0.9, `${f0(ours)} vs ${f0(floor)} MB/s = ${f2(ours / floor)}×`));
    out.push(check(`parser, 256 MiB part, ${k}: faster than @fastify/busboy`, ours > fastify, `${f2(ours / fastify)}× (${f0(fastify)} MB/s)`));
    const small = parserMbps(report, 'many-small', chunk, 'sluice');
    const busboy = parserMbps(report, 'many-small', chunk, 'busboy');
    out.push(check(`parser, 2,000 × 1 KiB, ${k}: ≥ 3× busboy`, small / busboy >= 3, `${f0(small)} vs ${f0(busboy)} MB/s = ${f2(small / busboy)}×`));
  }
  return out;
}

export function checkTargets(rows: readonly RowSummary[], parser: ParserReport | null): TargetCheck[] {
  return [...memoryChecks(rows), ...throughputChecks(rows), ...parserChecks(parser)];
}
