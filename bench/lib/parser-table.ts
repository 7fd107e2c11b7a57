/** The parser micro-benchmark's table: one line per body and chunk size, ratios to each peer. */
import { parserMbps, type ParserReport } from './parser-types.js';
import { fixed, grouped, markdownTable } from './table.js';

export function formatParserTable(report: ParserReport): string {
  const combos = [...new Map(report.rows.map((r) => [`${r.body}/${r.chunkBytes}`, r])).values()];
  const rows = combos.map(({ body, chunkBytes }) => {
    const get = (c: Parameters<typeof parserMbps>[3]): number => parserMbps(report, body, chunkBytes, c);
    const ours = get('sluice');
    const label = body === 'one-large' ? `1 × ${report.largeBytes / 2 ** 20} MiB` : `${report.smallParts.toLocaleString('en-US')} × ${report.smallPartBytes / 1024} KiB`;
    return [
      label,
      `${chunkBytes / 1024} KiB`,
      grouped(ours),
      grouped(get('@fastify/busboy')),
      grouped(get('busboy')),
      grouped(get('indexOf floor')),
      `${fixed(ours / get('indexOf floor'), 2)}×`,
      `${fixed(ours / get('@fastify/busboy'), 2)}×`,
      `${fixed(ours / get('busboy'), 2)}×`,
    ];
  });
  return markdownTable(
    ['body', 'chunks', 'sluice MB/s', '@fastify/busboy', 'busboy', 'indexOf floor', 'sluice ÷ floor', '÷ @fastify/busboy', '÷ busboy'],
    rows,
    ['left', 'right', 'right', 'right', 'right', 'right', 'right', 'right', 'right'],
  );
}
