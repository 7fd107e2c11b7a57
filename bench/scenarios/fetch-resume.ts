/**
 * POST /fetch from the ranged origin (helpers/ranged-origin.ts), stored like an upload:
 * - `fetch-store` and `fetch-store-broken`: the same file, unbroken and reset by the origin
 *   5 times (resumed with Range + If-Range): time against the unbroken fetch, bytes the origin
 *   sent over the file size;
 * - `fetch-50MBps-cN`: an origin that gives each connection 50 MB/s, with FETCH_CONNECTIONS N.
 * Every stored file is checked against the origin's sha256 after the timed part.
 */
import { fetchToStore, type TransferResult } from '../lib/clients.js';
import type { RowPlan, TransferArgs } from '../lib/types.js';

export const BREAKS = 5;
/** A CDN's per-connection cap, as the issue puts it. */
export const THROTTLE_BYTES_PER_SEC = 50e6;

interface Stored {
  readonly size?: number;
  readonly sha256?: string;
}

async function getText(url: string): Promise<string> {
  const res = await fetch(url);
  if (!res.ok) throw new Error(`${url}: ${res.status}`);
  return res.text();
}

/** Stores `bytes` from the origin at `query`, then checks the file and reads the origin's counters. */
function storeFrom(bytes: number, query: Record<string, string>): (a: TransferArgs) => Promise<TransferResult> {
  return async (a) => {
    const origin = `http://127.0.0.1:${a.helperPorts[0]}`;
    const key = `${query.key ?? 'k'}-${Date.now()}`;
    const params = new URLSearchParams({ bytes: String(bytes), ...query, key });
    const result = await fetchToStore(a.port, `${origin}/blob?${params}`, a.tmpDir, a.ctx.timeoutFor(bytes));
    // After the clock: the origin's own count of what it sent, and the digest every byte must give.
    const stats = JSON.parse(await getText(`${origin}/stats?key=${key}`)) as { requests: number; bytesSent: number };
    const answer = result.responses[0];
    const stored = answer?.status === 201 ? (JSON.parse(answer.body) as Stored) : null;
    const wanted = await getText(`${origin}/digest?bytes=${bytes}`);
    if (stored !== null && stored.sha256 !== wanted) throw new Error(`stored sha256 ${stored.sha256}, the origin's is ${wanted}`);
    const metrics = await getText(`http://127.0.0.1:${a.port}/metrics`);
    const received = Number(/^sluice_fetched_bytes_total\{via="fetch"\} (\d+)$/m.exec(metrics)?.[1] ?? NaN);
    const times = (n: number): string => `${(n / bytes).toFixed(4)}×`;
    const note =
      `${stats.requests} requests; sluice received ${received} bytes for ${bytes} (${times(received)}), ` +
      `the origin wrote ${stats.bytesSent} (${times(stats.bytesSent)}: a reset also throws away what was still in the socket buffers); ` +
      `${result.seconds.toFixed(1)} s; sha256 checked`;
    return { ...result, note };
  };
}

function expectStoredFile(bytes: number): (r: TransferResult) => void {
  return (r) => {
    const answer = r.responses[0];
    if (answer?.status !== 201) throw new Error(`status ${answer?.status}: ${answer?.body.slice(0, 300)}`);
    const stored = JSON.parse(answer.body) as Stored;
    if (stored.size !== bytes) throw new Error(`stored ${stored.size} bytes, expected ${bytes}`);
  };
}

function row(name: string, description: string, bytes: number, ratioTo: string[], env: Record<string, string>, query: Record<string, string>): RowPlan {
  return {
    name,
    group: 'sluice',
    description,
    bytes,
    ratioTo,
    helpers: [{ script: 'helpers/ranged-origin.js', env: {} }],
    server: { kind: 'sluice', env: () => ({ FETCH_ALLOW: '127.0.0.1', ...env }) },
    transfer: storeFrom(bytes, query),
    validate: expectStoredFile(bytes),
  };
}

/** POST /fetch of `bytes`, unbroken. */
export function fetchStore(bytes: number): RowPlan {
  return row('fetch-store', 'POST /fetch from a ranged origin, stored (FETCH_CONNECTIONS=1)', bytes, [], {}, { key: 'plain' });
}

/** The same, with the origin resetting the connection BREAKS times at evenly spread offsets. */
export function fetchStoreBroken(bytes: number): RowPlan {
  const breaks = Array.from({ length: BREAKS }, (_, i) => Math.floor(((i + 1) * bytes) / (BREAKS + 1)));
  return row('fetch-store-broken', `the same, the origin resetting the connection ${BREAKS} times (resumed)`, bytes, ['fetch-store'], {}, { key: 'broken', breaks: breaks.join(',') });
}

/** POST /fetch from an origin capped at 50 MB/s per connection, over `connections` connections. */
export function fetchThrottled(bytes: number, connections: number): RowPlan {
  const name = `fetch-50MBps-c${connections}`;
  return row(
    name,
    `POST /fetch, origin capped at 50 MB/s per connection, FETCH_CONNECTIONS=${connections}`,
    bytes,
    connections === 1 ? [] : ['fetch-50MBps-c1'],
    { FETCH_CONNECTIONS: String(connections) },
    { key: `c${connections}`, rate: String(THROTTLE_BYTES_PER_SEC) },
  );
}
