/** What bench/parser.ts measures, as written to JSON and read back by the runner. */

export type ParserContender = 'sluice' | '@fastify/busboy' | 'busboy' | 'indexOf floor';

export interface ParserRow {
  /** `one-large`: one 256 MiB part; `many-small`: 2,000 parts of 1 KiB. */
  readonly body: 'one-large' | 'many-small';
  readonly chunkBytes: number;
  readonly contender: ParserContender;
  /** Median over the rounds, decimal MB/s. */
  readonly mbps: number;
  readonly roundsMbps: readonly number[];
}

export interface ParserReport {
  readonly rounds: number;
  readonly largeBytes: number;
  readonly smallParts: number;
  readonly smallPartBytes: number;
  readonly rows: readonly ParserRow[];
}

export function parserMbps(report: ParserReport, body: ParserRow['body'], chunkBytes: number, contender: ParserContender): number {
  return report.rows.find((r) => r.body === body && r.chunkBytes === chunkBytes && r.contender === contender)?.mbps ?? Number.NaN;
}
