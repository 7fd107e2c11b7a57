/**
 * Reads a process's memory and CPU time from /proc (Linux), and samples its RSS on a timer.
 * Reading /proc from the runner, rather than asking the server, measures every server the same
 * way (sluice and the baselines alike) and costs the measured process nothing.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

export interface MemoryStatus {
  /** Resident set size now (VmRSS), KiB. */
  readonly rssKiB: number;
  /** Peak resident set size over the process's life (VmHWM), KiB. */
  readonly hwmKiB: number;
}

/** One RSS sample: milliseconds since the sampler's time origin, and RSS in KiB. */
export type RssSample = readonly [ms: number, rssKiB: number];

export function readMemoryStatus(pid: number): MemoryStatus {
  const text = readFileSync(`/proc/${pid}/status`, 'latin1');
  return { rssKiB: statusField(text, 'VmRSS'), hwmKiB: statusField(text, 'VmHWM') };
}

function statusField(text: string, name: string): number {
  const match = new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(text);
  if (match === null) throw new Error(`/proc status has no ${name}`);
  return Number(match[1]);
}

let clockTicks: number | null = null;

/** USER_HZ, the unit of utime/stime in /proc/<pid>/stat (100 on every common kernel). */
function ticksPerSecond(): number {
  if (clockTicks === null) {
    try {
      clockTicks = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    } catch {
      clockTicks = 100;
    }
  }
  return clockTicks;
}

/** User + system CPU seconds the process has used so far (its own threads, not children). */
export function readCpuSeconds(pid: number): number {
  const text = readFileSync(`/proc/${pid}/stat`, 'latin1');
  // The command name (field 2) is in parentheses and may hold spaces: count from the last ')'.
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
  const utime = Number(fields[11]); // field 14
  const stime = Number(fields[12]); // field 15
  return (utime + stime) / ticksPerSecond();
}

export class RssSampler {
  private readonly samples: RssSample[] = [];
  private timer: NodeJS.Timeout | null = null;

  /** `origin` is the performance.now() that sample times are relative to. */
  constructor(
    private readonly pid: number,
    private readonly origin: number,
    private readonly intervalMs = 50,
  ) {}

  start(): void {
    this.sample();
    this.timer = setInterval(() => this.sample(), this.intervalMs);
  }

  /** Stops sampling (taking one last sample) and returns every sample taken. */
  stop(): RssSample[] {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
    this.sample();
    return this.samples;
  }

  private sample(): void {
    try {
      this.samples.push([Math.round(performance.now() - this.origin), readMemoryStatus(this.pid).rssKiB]);
    } catch {
      // The process has exited; the run's own error handling reports why.
    }
  }
}
