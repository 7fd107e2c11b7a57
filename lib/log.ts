import type { LogLevel } from './config.js';
import { formatTextLine } from './log-text.js';

const RANK: Readonly<Record<LogLevel, number>> = { debug: 10, info: 20, warn: 30, error: 40, silent: 100 };

/** `json`: one object per line, for journald and log shippers. `text`: short lines for a person at a terminal. */
export type LogFormat = 'json' | 'text';

/** LOG_FORMAT: `auto` is text when stdout is a terminal, else JSON (under systemd stdout is the journal, not a terminal). */
export function resolveLogFormat(setting: LogFormat | 'auto', stdoutIsTty: boolean): LogFormat {
  return setting === 'auto' ? (stdoutIsTty ? 'text' : 'json') : setting;
}

/** One line per event on stdout: JSON (journald collects it under systemd) or text (see log-text.ts). */
export interface Logger {
  debug(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
}

export function createLogger(level: LogLevel, write: (line: string) => void = stdoutWriter(), format: LogFormat = 'json'): Logger {
  const min = RANK[level];
  const emit = (lvl: Exclude<LogLevel, 'silent'>, msg: string, fields?: Record<string, unknown>): void => {
    if (RANK[lvl] < min) return;
    if (format === 'text') return write(`${formatTextLine(new Date(), lvl, msg, fields ?? {})}\n`);
    write(`${JSON.stringify({ time: new Date().toISOString(), level: lvl, msg, ...fields }, errorReplacer)}\n`);
  };
  return {
    debug: (m, f) => emit('debug', m, f),
    info: (m, f) => emit('info', m, f),
    warn: (m, f) => emit('warn', m, f),
    error: (m, f) => emit('error', m, f),
  };
}

let stdoutBroken = false;
let stdoutGuarded = false;

/**
 * The default sink. A broken stdout (EPIPE: its reader, journald or a `| head`, went away) must
 * not take the server and its uploads down, which is what Node does with an 'error' event that
 * nobody listens to. Lines written after that are dropped.
 */
function stdoutWriter(): (line: string) => void {
  if (!stdoutGuarded) {
    stdoutGuarded = true;
    process.stdout.on('error', () => {
      stdoutBroken = true;
    });
  }
  return (line) => {
    if (!stdoutBroken) process.stdout.write(line);
  };
}

function errorReplacer(_key: string, value: unknown): unknown {
  if (value instanceof Error) {
    const code = (value as { code?: unknown }).code;
    return { name: value.name, message: value.message, ...(code === undefined ? {} : { code }), stack: value.stack };
  }
  return value;
}
