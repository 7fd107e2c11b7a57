import { readFileSync } from 'node:fs';

export interface RssReport {
  /** Highest VmRSS seen by the sampler, MiB. */
  readonly sampledPeakMiB: number;
  /** The kernel's own high-water mark (VmHWM) at the end, MiB. */
  readonly hwmMiB: number;
  readonly samples: number;
  /** User + system CPU time the process used while sampled, seconds. */
  readonly cpuSeconds: number;
}

/** Kernel clock ticks per second for /proc/<pid>/stat times (USER_HZ, 100 on Linux). */
const USER_HZ = 100;

/** utime + stime of a process, seconds (fields 14 and 15 of /proc/<pid>/stat). */
export function cpuSecondsOf(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // The command name (field 2) may hold spaces: count fields after its closing parenthesis.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / USER_HZ;
}

/** `VmRSS:   123456 kB` → bytes, from /proc/<pid>/status. */
function statusField(pid: number, field: 'VmRSS' | 'VmHWM'): number {
  const m = new RegExp(`^${field}:\\s+(\\d+) kB$`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m === null ? 0 : Number(m[1]) * 1024;
}

/** Samples a process's RSS every `intervalMs` until stop(), which also reads VmHWM. */
export function sampleRss(pid: number, intervalMs = 50): { stop(): RssReport } {
  let peak = 0;
  let samples = 0;
  const tick = (): void => {
    try {
      peak = Math.max(peak, statusField(pid, 'VmRSS'));
      samples += 1;
    } catch {
      // The process is gone; stop() reports what was seen.
    }
  };
  tick();
  const cpuAtStart = cpuSecondsOf(pid);
  const timer = setInterval(tick, intervalMs);
  return {
    stop: () => {
      clearInterval(timer);
      tick();
      const hwm = statusField(pid, 'VmHWM');
      return { sampledPeakMiB: peak / 2 ** 20, hwmMiB: hwm / 2 ** 20, samples, cpuSeconds: cpuSecondsOf(pid) - cpuAtStart };
    },
  };
}
