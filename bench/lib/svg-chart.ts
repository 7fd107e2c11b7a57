/**
 * RSS-over-time charts as standalone SVG, drawn here rather than with a chart library (the
 * benchmark has no runtime dependencies either). Two layouts: one chart per row, and small
 * multiples of every row on a shared y scale, so flat and growing lines compare at a glance.
 */

export interface ChartSeries {
  readonly title: string;
  readonly subtitle: string;
  /** [x seconds, y MiB] */
  readonly points: readonly (readonly [number, number])[];
  /** The transfer window, shaded, in x units. */
  readonly band: readonly [number, number] | null;
  /** A dashed reference line (the idle RSS), in y units. */
  readonly reference: number | null;
  readonly color: string;
}

interface Box {
  readonly x: number;
  readonly y: number;
  readonly width: number;
  readonly height: number;
}

export const SLUICE_COLOR = '#1f6feb';
export const BASELINE_COLOR = '#8a8a8a';

const FONT = 'font-family="system-ui, -apple-system, Segoe UI, sans-serif"';

function escapeXml(text: string): string {
  return text.replace(/[<>&"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** A tick step of 1, 2 or 5 × 10^k giving about `count` ticks up to `max`. */
export function niceStep(max: number, count: number): number {
  if (!(max > 0)) return 1;
  const raw = max / count;
  const power = 10 ** Math.floor(Math.log10(raw));
  const scaled = raw / power;
  return (scaled <= 1 ? 1 : scaled <= 2 ? 2 : scaled <= 5 ? 5 : 10) * power;
}

function fmt(value: number): string {
  return Number.isInteger(value) ? String(value) : value.toFixed(Math.abs(value) < 1 ? 2 : 1);
}

/** One panel: axes, grid, shaded transfer window, idle line and the RSS line. */
function panel(s: ChartSeries, box: Box, xMax: number, yMax: number): string {
  const px = (x: number): number => box.x + (Math.max(0, Math.min(x, xMax)) / xMax) * box.width;
  const py = (y: number): number => box.y + box.height - (Math.max(0, Math.min(y, yMax)) / yMax) * box.height;
  const out: string[] = [];
  out.push(`<text x="${box.x}" y="${box.y - 22}" ${FONT} font-size="13" font-weight="600">${escapeXml(s.title)}</text>`);
  out.push(`<text x="${box.x}" y="${box.y - 7}" ${FONT} font-size="11" fill="#555">${escapeXml(s.subtitle)}</text>`);
  if (s.band !== null) {
    const [a, b] = s.band;
    out.push(`<rect x="${px(a).toFixed(1)}" y="${box.y}" width="${Math.max(1, px(b) - px(a)).toFixed(1)}" height="${box.height}" fill="#f1f6ff"/>`);
  }
  const yStep = niceStep(yMax, 4);
  for (let v = 0, i = 0; v <= yMax + 1e-9 && i < 50; v += yStep, i += 1) {
    const y = py(v).toFixed(1);
    out.push(`<line x1="${box.x}" x2="${box.x + box.width}" y1="${y}" y2="${y}" stroke="#e3e3e3"/>`);
    out.push(`<text x="${box.x - 6}" y="${y}" dy="4" text-anchor="end" ${FONT} font-size="10" fill="#555">${fmt(v)}</text>`);
  }
  const xStep = niceStep(xMax, 5);
  for (let v = 0, i = 0; v <= xMax + 1e-9 && i < 50; v += xStep, i += 1) {
    const x = px(v).toFixed(1);
    out.push(`<line x1="${x}" x2="${x}" y1="${box.y + box.height}" y2="${box.y + box.height + 4}" stroke="#999"/>`);
    out.push(`<text x="${x}" y="${box.y + box.height + 16}" text-anchor="middle" ${FONT} font-size="10" fill="#555">${fmt(v)}</text>`);
  }
  out.push(`<rect x="${box.x}" y="${box.y}" width="${box.width}" height="${box.height}" fill="none" stroke="#999"/>`);
  if (s.reference !== null) {
    const y = py(s.reference).toFixed(1);
    out.push(`<line x1="${box.x}" x2="${box.x + box.width}" y1="${y}" y2="${y}" stroke="#444" stroke-dasharray="4 3"/>`);
  }
  const path = s.points.map(([x, y], i) => `${i === 0 ? 'M' : 'L'}${px(x).toFixed(1)},${py(y).toFixed(1)}`).join('');
  if (path !== '') out.push(`<path d="${path}" fill="none" stroke="${s.color}" stroke-width="1.6" stroke-linejoin="round"/>`);
  return out.join('\n');
}

function maxOf(values: readonly number[], fallback: number): number {
  return values.reduce((m, v) => (v > m ? v : m), fallback);
}

function document(width: number, height: number, body: string[]): string {
  return (
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}">\n` +
    `<rect width="100%" height="100%" fill="#fff"/>\n${body.join('\n')}\n</svg>\n`
  );
}

const LEGEND = 'shaded: transfer · dashed: idle RSS before the transfer · y: RSS MiB · x: seconds';

/** One row's RSS over time. */
export function renderChart(s: ChartSeries): string {
  const box: Box = { x: 56, y: 52, width: 620, height: 240 };
  const xMax = niceCeil(maxOf(s.points.map((p) => p[0]), 0.1));
  const yMax = niceCeil(maxOf(s.points.map((p) => p[1]), 1) * 1.1);
  const body = [panel(s, box, xMax, yMax)];
  body.push(`<text x="${box.x}" y="${box.y + box.height + 36}" ${FONT} font-size="10" fill="#777">${escapeXml(LEGEND)}</text>`);
  return document(box.x + box.width + 24, box.y + box.height + 48, body);
}

/** Every row, one panel each, sharing the y scale (each keeps its own time axis). */
export function renderSmallMultiples(title: string, series: readonly ChartSeries[], columns = 3): string {
  const cellW = 330;
  const cellH = 190;
  const yMax = niceCeil(maxOf(series.flatMap((s) => s.points.map((p) => p[1])), 1) * 1.1);
  const rows = Math.ceil(series.length / columns);
  const body = [`<text x="16" y="26" ${FONT} font-size="16" font-weight="600">${escapeXml(title)}</text>`];
  body.push(`<text x="16" y="44" ${FONT} font-size="11" fill="#777">${escapeXml(`${LEGEND} · same y scale in every panel`)}</text>`);
  series.forEach((s, i) => {
    const col = i % columns;
    const row = Math.floor(i / columns);
    const box: Box = { x: 56 + col * cellW, y: 92 + row * cellH, width: cellW - 76, height: cellH - 80 };
    body.push(panel(s, box, niceCeil(maxOf(s.points.map((p) => p[0]), 0.1)), yMax));
  });
  return document(columns * cellW + 16, 92 + rows * cellH, body);
}

/** Rounds up to a multiple of the tick step, so the last tick closes the axis. */
function niceCeil(value: number): number {
  const step = niceStep(value, 5);
  return Math.ceil(value / step) * step;
}
