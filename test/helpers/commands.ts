/** Real command-line clients in tests: run one and collect its output; skip where it is missing. */
import { execFile } from 'node:child_process';

export interface CommandResult {
  /** The exit code; null when it was killed (by the timeout, a signal) or could not start. */
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs `cmd args` (no shell) for at most `timeoutMs`; never rejects. */
export function runCommand(cmd: string, args: readonly string[], timeoutMs = 60_000): Promise<CommandResult> {
  return new Promise((resolve) => {
    execFile(cmd, args, { encoding: 'utf8', timeout: timeoutMs, maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) => {
      resolve({ code: err === null ? 0 : typeof err.code === 'number' ? err.code : null, stdout, stderr });
    });
  });
}

/** For `test(..., { skip })`: false when `cmd --version` runs, else why the test is skipped. */
export async function missing(cmd: string): Promise<false | string> {
  return (await runCommand(cmd, ['--version'], 10_000)).code === 0 ? false : `${cmd} is not installed`;
}
