/** This process's open file descriptors, from /proc (Linux). */
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';

export function openDescriptors(): number {
  return readdirSync('/proc/self/fd').length;
}

/** The open flags of this process's descriptor for `path`, or null when none is open. */
export function openFlags(path: string): number | null {
  for (const fd of readdirSync('/proc/self/fd')) {
    let target: string;
    try {
      target = readlinkSync(`/proc/self/fd/${fd}`);
    } catch {
      continue; // closed since the listing
    }
    if (target !== path) continue;
    const flags = /^flags:\s+([0-7]+)$/m.exec(readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8'));
    return flags === null ? null : parseInt(flags[1] as string, 8);
  }
  return null;
}
