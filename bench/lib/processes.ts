/**
 * Every child process the benchmark starts goes through here, so that all of them (and their
 * own children: a shell pipeline, curl) are killed at the end, even when a scenario throws or
 * the runner is interrupted. Each child gets its own process group, killed as a whole.
 */
import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { once } from 'node:events';
import { connect } from 'node:net';

const live = new Set<ChildProcess>();

export function spawnTracked(command: string, args: readonly string[], options: SpawnOptions = {}): ChildProcess {
  const child = spawn(command, args, { ...options, detached: true });
  live.add(child);
  child.once('exit', () => live.delete(child));
  // A spawn failure (ENOENT) would otherwise be an unhandled 'error' event.
  child.on('error', () => live.delete(child));
  return child;
}

function killGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
  try {
    process.kill(-child.pid, signal);
  } catch {
    // Already gone.
  }
}

/** Synchronous, so it can run in an 'exit' handler. */
export function killAll(): void {
  for (const child of live) killGroup(child, 'SIGKILL');
  live.clear();
}

/** Kills the runner's children when it ends, however it ends. */
export function installCleanup(): void {
  process.once('exit', killAll);
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.once(signal, () => {
      killAll();
      process.exit(130);
    });
  }
}

export interface Exit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

/** Waits for the child to exit; after `timeoutMs` kills it and rejects. */
export async function waitForExit(child: ChildProcess, timeoutMs: number, what: string): Promise<Exit> {
  if (child.exitCode !== null || child.signalCode !== null) return { code: child.exitCode, signal: child.signalCode };
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      killGroup(child, 'SIGKILL');
      reject(new Error(`${what} did not finish within ${Math.round(timeoutMs / 1000)} s`));
    }, timeoutMs);
  });
  try {
    const [code, signal] = (await Promise.race([once(child, 'exit'), timeout])) as [number | null, NodeJS.Signals | null];
    return { code, signal };
  } finally {
    clearTimeout(timer);
  }
}

/** SIGTERM, then SIGKILL if the process (group) has not exited within `graceMs`. */
export async function stopProcess(child: ChildProcess, graceMs = 5_000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, 'exit');
  killGroup(child, 'SIGTERM');
  const timer = setTimeout(() => killGroup(child, 'SIGKILL'), graceMs);
  await exited;
  clearTimeout(timer);
  // Children of the group (curl under a shell) that outlived the leader.
  killGroup(child, 'SIGKILL');
}

/** Resolves once something accepts connections on 127.0.0.1:port; rejects after `timeoutMs`. */
export async function waitForPort(port: number, child: ChildProcess, timeoutMs = 15_000): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (performance.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`process exited (${child.exitCode ?? child.signalCode}) before listening on ${port}`);
    const ok = await new Promise<boolean>((resolve) => {
      const socket = connect(port, '127.0.0.1');
      socket.once('connect', () => {
        socket.destroy();
        resolve(true);
      });
      socket.once('error', () => resolve(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`nothing listening on 127.0.0.1:${port} after ${timeoutMs} ms`);
}

/** Collects a child's stderr lines until `line` appears; rejects after `timeoutMs`. */
export async function waitForLine(child: ChildProcess, line: string, timeoutMs: number): Promise<void> {
  const stream = child.stderr;
  if (stream === null) throw new Error('child has no stderr pipe');
  let seen = '';
  let timer: NodeJS.Timeout | undefined;
  try {
    await new Promise<void>((resolve, reject) => {
      timer = setTimeout(() => reject(new Error(`no "${line}" within ${timeoutMs} ms; got: ${seen.slice(-500)}`)), timeoutMs);
      child.once('exit', (code) => reject(new Error(`exited (${code}) before "${line}": ${seen.slice(-500)}`)));
      stream.on('data', (chunk: Buffer) => {
        seen += chunk.toString();
        if (seen.split('\n').includes(line)) resolve();
      });
    });
  } finally {
    clearTimeout(timer);
  }
}
