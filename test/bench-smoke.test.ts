/**
 * The benchmark still works: tiny runs (16 MiB: the raw upload and its baselines, hash-sink among
 * them; the resumable rows) must print the Markdown table, write the JSON of raw figures and the
 * SVG charts. It checks that the benchmark runs and reports, not how fast anything is (timings are
 * not tests).
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

const repoDir = resolve(import.meta.dirname, '..');

interface Run {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

function runBench(args: readonly string[], timeoutMs: number): Promise<Run> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'bench/run.ts', ...args], { cwd: repoDir, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    // SIGINT lets the runner kill its own children before it goes.
    const timer = setTimeout(() => child.kill('SIGINT'), timeoutMs);
    child.once('error', reject);
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolvePromise({ code, stdout, stderr });
    });
  });
}

const work = await mkdtemp(join(tmpdir(), 'sluice-bench-smoke-'));
after(() => rm(work, { recursive: true, force: true }));

test('bench smoke run: 16 MiB raw upload prints the table and writes the JSON and charts', { timeout: 180_000 }, async () => {
  assert.ok(existsSync(join(repoDir, 'dist', 'server.js')), 'dist/server.js must be built first (npm test builds it)');
  const out = join(work, 'latest.json');
  const charts = join(work, 'charts');
  const run = await runBench(['--size', '16MiB', '--only', 'upload-raw', '--out', out, '--charts-dir', charts], 170_000);
  assert.equal(run.code, 0, `bench exited with ${run.code}\n${run.stderr.slice(-3000)}`);

  // The Markdown table: header, rule, and a row for the scenario and each of its baselines.
  assert.match(run.stdout, /^\| scenario +\| +size \| +MB\/s \| peak RSS MiB \|/m);
  assert.match(run.stdout, /^\|-+\|-+:\|/m);
  for (const row of ['\\*\\*upload-raw\\*\\*', 'raw-sink \\(baseline\\)', 'hash-sink \\(baseline\\)', 'raw-file \\(baseline\\)', 'synced-file \\(baseline\\)']) {
    assert.match(run.stdout, new RegExp(`^\\| ${row} +\\| +16 MiB \\| +[\\d,]+ \\|`, 'm'));
  }

  const json = JSON.parse(await readFile(out, 'utf8')) as {
    rows: { name: string; mbps: number; peakRssMiB: number; cpuSecondsPerGiB: number }[];
    results: { name: string; samples: [number, number][] }[];
  };
  assert.deepEqual(json.rows.map((r) => r.name).sort(), ['hash-sink', 'raw-file', 'raw-sink', 'synced-file', 'upload-raw']);
  for (const r of json.rows) {
    assert.ok(r.mbps > 0 && Number.isFinite(r.mbps), `${r.name}: MB/s ${r.mbps}`);
    assert.ok(r.peakRssMiB > 10 && r.peakRssMiB < 1024, `${r.name}: peak RSS ${r.peakRssMiB} MiB`);
  }
  for (const r of json.results) assert.ok(r.samples.length >= 2, `${r.name}: RSS was sampled`);

  const svgs = (await readdir(join(charts, '16MiB'))).filter((f) => f.endsWith('.svg')).sort();
  assert.deepEqual(svgs, ['hash-sink.svg', 'overview-upload-raw.svg', 'raw-file.svg', 'raw-sink.svg', 'synced-file.svg', 'upload-raw.svg']);
  const svg = await readFile(join(charts, '16MiB', 'upload-raw.svg'), 'utf8');
  assert.match(svg, /^<svg xmlns="http:\/\/www\.w3\.org\/2000\/svg"/);
  assert.match(svg, /<path d="M[\d.]+,[\d.]+L/);
});

test('bench smoke run: the resumable rows (one PATCH, 5 silent cuts with the stored sha256 checked, 1 MiB PATCHes) run and report', { timeout: 240_000 }, async () => {
  const out = join(work, 'resumable.json');
  const charts = join(work, 'charts-resumable');
  const run = await runBench(['--size', '16MiB', '--only', 'resumable-cut,resumable-1mib-patches', '--out', out, '--charts-dir', charts], 230_000);
  assert.equal(run.code, 0, `bench exited with ${run.code}\n${run.stderr.slice(-3000)}`);
  for (const row of ['resumable-one-patch', 'resumable-cut', 'resumable-1mib-patches']) {
    assert.match(run.stdout, new RegExp(`^\\| \\*\\*${row}\\*\\* +\\| +16 MiB \\| +[\\d,]+ \\|`, 'm'));
  }
  // What the table cannot show: bytes sent over the file size and the reconnect times, per cut.
  assert.match(run.stdout, /^- resumable-cut: 16777216 bytes, cut at (\d+, ){4}\d+; resumed at .*sent \d+ bytes in all = [\d.]+ × the file .*first byte: ([\d.]+ ms, ){4}[\d.]+ ms$/m);
  assert.match(run.stdout, /^- resumable-1mib-patches: 16777216 bytes in 16 PATCHes of 1 MiB$/m);
});
