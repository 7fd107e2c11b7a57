/**
 * Runs one row: fresh temp dir, helper processes, the measured server, idle RSS, RSS sampling
 * every 50 ms during the transfer, VmHWM and CPU time at the end; and, whatever happens,
 * stops every process it started and removes the temp dir (and so the stored files).
 */
import type { ChildProcess } from 'node:child_process';
import { closeSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { epochMs } from './clients.js';
import { freePort } from '../../test/helpers/ports.js';
import { spawnTracked, stopProcess, waitForPort } from './processes.js';
import { readCpuSeconds, readMemoryStatus, RssSampler } from './rss-sampler.js';
import type { BenchContext, RowPlan, RowResult } from './types.js';

/** Lets a fresh server finish start-up work (JIT, lazy modules) before idle RSS is read. */
const SETTLE_MS = 500;
/** Keep sampling a little after the transfer: memory freed late shows on the chart. */
const TAIL_MS = 250;

interface Started {
  readonly child: ChildProcess;
  readonly port: number;
}

async function startProcess(script: string, env: Record<string, string>, logFile: string, nodeArgs: readonly string[] = []): Promise<Started> {
  const port = await freePort();
  const log = openSync(logFile, 'a');
  let child: ChildProcess;
  try {
    child = spawnTracked(process.execPath, [...nodeArgs, script], {
      stdio: ['ignore', log, log],
      env: { ...process.env, ...env, PORT: String(port) },
    });
  } finally {
    closeSync(log);
  }
  await waitForPort(port, child);
  return { child, port };
}

function tail(file: string): string {
  try {
    return readFileSync(file, 'utf8').split('\n').slice(-15).join('\n');
  } catch {
    return '';
  }
}

/** Bounds every transfer: 60 s plus 20 MB/s, far slower than anything healthy. */
export function transferTimeout(bytes: number): number {
  return 60_000 + (bytes / 20e6) * 1000;
}

export async function runRow(ctx: BenchContext, plan: RowPlan, round: number): Promise<RowResult> {
  const tmpDir = mkdtempSync(join(tmpdir(), 'sluice-bench-'));
  const dataDir = join(tmpDir, 'data');
  const serverLog = join(tmpDir, 'server.log');
  const started: ChildProcess[] = [];
  try {
    const helperPorts: number[] = [];
    for (const [i, helper] of plan.helpers.entries()) {
      const h = await startProcess(join(ctx.buildDir, helper.script), { ...ctx.processEnv, ...helper.env }, join(tmpDir, `helper-${i}.log`));
      started.push(h.child);
      helperPorts.push(h.port);
    }
    const server =
      plan.server.kind === 'sluice'
        ? await startProcess(
            ctx.serverScript,
            { ...ctx.processEnv, LOG_LEVEL: 'warn', DATA_DIR: dataDir, ...plan.server.env(helperPorts) },
            serverLog,
            ctx.profileDir === null ? [] : ['--cpu-prof', '--cpu-prof-dir', ctx.profileDir, '--cpu-prof-name', `${plan.name}-${round}.cpuprofile`],
          )
        : await startBaseline(ctx, plan.server.script, { ...ctx.processEnv, DATA_DIR: dataDir, ...plan.server.env(helperPorts) }, dataDir, serverLog);
    started.push(server.child);
    const pid = server.child.pid as number;
    await new Promise((r) => setTimeout(r, SETTLE_MS));

    const idleRssKiB = readMemoryStatus(pid).rssKiB;
    const cpuBefore = readCpuSeconds(pid);
    const originEpoch = epochMs();
    const sampler = new RssSampler(pid, performance.now());
    sampler.start();
    let samples;
    let result;
    try {
      result = await plan.transfer({ ctx, port: server.port, helperPorts, tmpDir });
      await new Promise((r) => setTimeout(r, TAIL_MS));
    } finally {
      samples = sampler.stop();
    }
    const { hwmKiB } = readMemoryStatus(pid);
    const cpuSeconds = readCpuSeconds(pid) - cpuBefore;
    try {
      plan.validate(result);
    } catch (err) {
      throw new Error(`${plan.name}: ${err instanceof Error ? err.message : String(err)}\n--- server log ---\n${tail(serverLog)}`);
    }
    return {
      name: plan.name,
      group: plan.group,
      description: plan.description,
      round,
      bytes: plan.bytes,
      seconds: result.seconds,
      mbps: plan.bytes / 1e6 / result.seconds,
      idleRssKiB,
      peakRssKiB: hwmKiB,
      cpuSeconds,
      samples,
      transferMs: [Math.round(result.startedAt - originEpoch), Math.round(result.endedAt - originEpoch)],
      ...(result.note === undefined ? {} : { note: result.note }),
    };
  } catch (err) {
    if (err instanceof Error && !err.message.includes('--- server log ---')) {
      err.message = `${plan.name}: ${err.message}\n--- server log ---\n${tail(serverLog)}`;
    }
    throw err;
  } finally {
    // Servers first (the measured one last started), so a profile is written on a clean exit.
    for (const child of started.reverse()) await stopProcess(child);
    rmSync(tmpDir, { recursive: true, force: true });
  }
}

function startBaseline(ctx: BenchContext, script: string, env: Record<string, string>, dataDir: string, log: string): Promise<Started> {
  // Baselines do not create their directory themselves (sluice does).
  mkdirSync(dataDir, { recursive: true });
  return startProcess(join(ctx.buildDir, script), env, log);
}
