import type { ByteRange } from '../storage/store.js';

/**
 * Reads a `Range` header against a file of `size` bytes (RFC 9110 14.1.2):
 * `{ kind: 'none' }` to send the whole file (no header, a syntax we ignore, or several ranges,
 * which RFC 9110 14.2 lets a server answer with the full representation), `{ kind: 'range' }`
 * for one satisfiable range, `{ kind: 'unsatisfiable' }` for a 416.
 */
export type RangeRequest = { kind: 'none' } | { kind: 'range'; range: ByteRange } | { kind: 'unsatisfiable' };

export function parseRange(header: string | undefined, size: number): RangeRequest {
  if (header === undefined) return { kind: 'none' };
  const match = /^\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*$/i.exec(header);
  if (match === null) return { kind: 'none' };
  const [, first = '', last = ''] = match;
  if (first === '' && last === '') return { kind: 'none' };
  if (first === '') {
    // suffix range: the last N bytes
    const n = Number(last);
    if (n === 0 || size === 0) return { kind: 'unsatisfiable' };
    return { kind: 'range', range: { start: Math.max(0, size - n), end: size - 1 } };
  }
  const start = Number(first);
  const end = last === '' ? size - 1 : Math.min(Number(last), size - 1);
  if (last !== '' && Number(last) < start) return { kind: 'none' }; // invalid: RFC 9110 14.1.1 says ignore
  if (start >= size) return { kind: 'unsatisfiable' };
  return { kind: 'range', range: { start, end } };
}
