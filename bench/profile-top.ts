/**
 * Summarises a V8 .cpuprofile (from `npm run bench -- --profile <dir>`, which starts sluice
 * with --cpu-prof): the functions with the most self time, and the same list restricted to
 * sluice's own code (dist/*.js, named after their .ts sources), with inclusive time too.
 *
 *   node --import tsx bench/profile-top.ts <file.cpuprofile> [--top 25]
 */
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Code under the checkout (dist/ or the .ts sources run by tsx), but not bench/ or node_modules. */
const repoUrl = `file://${resolve(dirname(fileURLToPath(import.meta.url)), '..')}/`;

interface CallFrame {
  readonly functionName: string;
  readonly url: string;
  readonly lineNumber: number;
}

interface ProfileNode {
  readonly id: number;
  readonly callFrame: CallFrame;
  readonly children?: readonly number[];
}

interface CpuProfile {
  readonly nodes: readonly ProfileNode[];
  readonly samples: readonly number[];
  readonly timeDeltas: readonly number[];
}

interface Entry {
  self: number;
  total: number;
}

/** `file:///…/dist/multipart/parser.js` → `multipart/parser.ts`; other code as is. */
function where(frame: CallFrame): { label: string; ours: boolean } {
  const name = frame.functionName === '' ? '(anonymous)' : frame.functionName;
  if (frame.url.startsWith(repoUrl) && !frame.url.includes('/node_modules/') && !frame.url.startsWith(`${repoUrl}bench/`)) {
    const path = frame.url.slice(repoUrl.length).replace(/^dist\//, '').replace(/\.js$/, '.ts');
    return { label: `${path}:${name}:${frame.lineNumber + 1}`, ours: true };
  }
  const file = frame.url === '' ? '' : `${frame.url.replace(/^file:\/\//, '').replace(/^.*node_modules\//, '')}:`;
  return { label: `${file}${name}`, ours: false };
}

function summarise(profile: CpuProfile): { byLabel: Map<string, Entry & { ours: boolean }>; totalMs: number } {
  const selfUs = new Map<number, number>();
  profile.samples.forEach((id, i) => selfUs.set(id, (selfUs.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0)));
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const byLabel = new Map<string, Entry & { ours: boolean }>();
  // Inclusive time counts a function once per stack even when it recurses.
  const walk = (id: number, onStack: ReadonlySet<string>): number => {
    const node = byId.get(id);
    if (node === undefined) return 0;
    const { label, ours } = where(node.callFrame);
    let total = selfUs.get(id) ?? 0;
    const below = new Set(onStack).add(label);
    for (const child of node.children ?? []) total += walk(child, below);
    const entry = byLabel.get(label) ?? { self: 0, total: 0, ours };
    entry.self += selfUs.get(id) ?? 0;
    if (!onStack.has(label)) entry.total += total;
    byLabel.set(label, entry);
    return total;
  };
  const root = profile.nodes[0];
  const totalUs = root === undefined ? 0 : walk(root.id, new Set());
  return { byLabel, totalMs: totalUs / 1000 };
}

function main(): void {
  const file = process.argv[2];
  if (file === undefined) throw new Error('usage: profile-top.ts <file.cpuprofile> [--top N]');
  const topIndex = process.argv.indexOf('--top');
  const top = topIndex === -1 ? 25 : Number(process.argv[topIndex + 1]);
  const { byLabel, totalMs } = summarise(JSON.parse(readFileSync(file, 'utf8')) as CpuProfile);
  const entries = [...byLabel.entries()].filter(([label]) => label !== '(root)');
  const pct = (us: number): string => `${((us / 1000 / totalMs) * 100).toFixed(1).padStart(5)} %`;
  const line = ([label, e]: [string, Entry]): string => `${pct(e.self)} self ${pct(e.total)} total  ${label}`;
  process.stdout.write(`profile: ${file}, ${(totalMs / 1000).toFixed(2)} s sampled\n\nTop by self time:\n`);
  for (const e of [...entries].sort((a, b) => b[1].self - a[1].self).slice(0, top)) process.stdout.write(`${line(e)}\n`);
  process.stdout.write(`\nsluice's own functions (by inclusive time):\n`);
  for (const e of entries.filter(([, v]) => v.ours).sort((a, b) => b[1].total - a[1].total).slice(0, top)) process.stdout.write(`${line(e)}\n`);
}

main();
