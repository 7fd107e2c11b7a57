/**
 * The human-readable log line, for a person watching `npm start` in a terminal:
 *
 *   14:03:07.512 INFO  request POST /upload 201 in=1.0GiB out=311B 8.12s
 *   14:03:09.004 INFO  request PUT /upload/w.bin 413 in=412B out=129B 3ms error=FILE_TOO_LARGE
 *   14:02:58.130 INFO  listening url=http://127.0.0.1:8080 pid=4711
 *
 * Local time, level, message, then for a request the fields that matter (method, path, status,
 * bytes in and out, duration, error code) and for anything else its plain fields as key=value
 * (objects such as the configuration are left to the JSON format). Control characters in values
 * are escaped, so nothing a client sends can move the cursor or forge a line.
 */

/** Fields of the access line, shown in their own form rather than as key=value. */
const REQUEST_FIELDS = new Set(['requestId', 'method', 'path', 'status', 'bytesIn', 'bytesOut', 'durationMs', 'error']);

export function formatTextLine(time: Date, level: string, msg: string, fields: Readonly<Record<string, unknown>>): string {
  const parts = [clock(time), level.toUpperCase().padEnd(5), clean(msg)];
  if (msg === 'request') {
    const f = fields;
    parts.push(text(f.method ?? '-'), text(f.path ?? '-'), text(f.status ?? '-'));
    if (typeof f.bytesIn === 'number') parts.push(`in=${bytes(f.bytesIn)}`);
    if (typeof f.bytesOut === 'number') parts.push(`out=${bytes(f.bytesOut)}`);
    if (typeof f.durationMs === 'number') parts.push(duration(f.durationMs));
    if (f.error !== undefined) parts.push(`error=${text(f.error)}`);
  }
  for (const [key, value] of Object.entries(fields)) {
    if (msg === 'request' && REQUEST_FIELDS.has(key)) continue;
    const shown = value instanceof Error ? errorText(value) : value;
    if (shown === undefined || (typeof shown === 'object' && shown !== null)) continue;
    parts.push(`${key}=${text(shown)}`);
  }
  return parts.join(' ');
}

function clock(t: Date): string {
  const two = (n: number): string => String(n).padStart(2, '0');
  return `${two(t.getHours())}:${two(t.getMinutes())}:${two(t.getSeconds())}.${String(t.getMilliseconds()).padStart(3, '0')}`;
}

/** `1.0GiB`, `311B`: binary units, as the sizes in settings. */
export function bytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = n;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return unit === 0 ? `${n}B` : `${value.toFixed(value < 10 ? 1 : 0)}${units[unit]}`;
}

/** `3ms`, `8.12s`, `3m07s`. */
export function duration(ms: number): string {
  if (ms < 1000) return `${ms}ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(2)}s`;
  const s = Math.round(ms / 1000);
  return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
}

function errorText(err: Error): string {
  const code = (err as { code?: unknown }).code;
  return typeof code === 'string' ? `${code}: ${err.message}` : err.message;
}

/** A value as shown: quoted when it has spaces (or is empty), control characters escaped. */
function text(value: unknown): string {
  const s = clean(String(value));
  return s === '' || /[\s"]/.test(s) ? JSON.stringify(s) : s;
}

// C0, DEL, C1 and the Unicode line and bidi controls: a terminal acts on them.
const CONTROL = /[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;

function clean(s: string): string {
  return s.replace(CONTROL, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}
