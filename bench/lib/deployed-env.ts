/**
 * The process environment sluice is deployed with that changes how fast it runs, read from
 * deploy/sluice.service so the benchmark measures what the unit runs: today only the glibc
 * malloc tuning (GLIBC_TUNABLES). Every server and helper process of a run gets it, baselines
 * included, so the comparison stays like for like; the `-untuned` rows run sluice without it.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

const TUNABLES_LINE = /^Environment=GLIBC_TUNABLES=(\S+)\s*$/m;

export function deployedTuning(repoDir: string): Record<string, string> {
  const unit = readFileSync(join(repoDir, 'deploy', 'sluice.service'), 'utf8');
  const match = TUNABLES_LINE.exec(unit);
  return match === null ? {} : { GLIBC_TUNABLES: match[1] as string };
}

/** Overrides the tuning for one process: an empty GLIBC_TUNABLES is glibc's defaults. */
export const UNTUNED: Readonly<Record<string, string>> = { GLIBC_TUNABLES: '' };
