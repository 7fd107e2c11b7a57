/**
 * Measures the curl client's generator on its own: generator → FIFO → cat → /dev/null. If this
 * is not well above the raw-sink row, the client and not the server is what is measured.
 */
import { execFileSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { encodeSpec } from './multipart-body.js';
import { spawnTracked, waitForExit, waitForLine } from './processes.js';

export async function measureGenerator(buildDir: string, bytes: number): Promise<number> {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-bench-gen-'));
  const devNull = openSync('/dev/null', 'w');
  try {
    const fifo = join(dir, 'body.fifo');
    execFileSync('mkfifo', [fifo]);
    const spec = encodeSpec({ kind: 'raw', files: 1, fileBytes: bytes, fieldsBefore: [], fieldsAfter: [], boundary: '' });
    const gen = spawnTracked(process.execPath, [join(buildDir, 'helpers', 'generator.js'), '--spec', spec, '--out', fifo], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    await waitForLine(gen, 'ready', 30_000);
    const started = performance.now();
    const cat = spawnTracked('cat', [fifo], { stdio: ['ignore', devNull, 'inherit'] });
    await waitForExit(cat, 120_000, 'cat');
    const seconds = (performance.now() - started) / 1000;
    await waitForExit(gen, 10_000, 'generator');
    return bytes / 1e6 / seconds;
  } finally {
    closeSync(devNull);
    rmSync(dir, { recursive: true, force: true });
  }
}
