/**
 * Resumable uploads (tus 1.0.0): one PATCH of every byte (against `upload-raw`, POST /upload of
 * the same bytes), the same upload cut 5 times at random offsets, and an upload in 1 MiB PATCHes.
 * The client is helpers/resumable-client.js in its own process. What a table row cannot show
 * (bytes sent over the file size, reconnect times) goes to `resumableNotes`, printed after the tables.
 */
import { join } from 'node:path';
import type { TransferResult } from '../lib/clients.js';
import { spawnTracked, waitForExit } from '../lib/processes.js';
import type { RowPlan, TransferArgs } from '../lib/types.js';
import { MiB } from './common.js';

/** Lines for the report: one per row run. */
export const resumableNotes: string[] = [];

/** The issue's shape: 1 GiB in 1 MiB PATCHes, at most --size. */
export const CHUNKED_MAX_BYTES = 1024 * MiB;

type Mode = 'one' | 'cut' | 'chunks';

interface ClientOutput {
  readonly requests: ReadonlyArray<{ status: number; body: string; startedAt: number; endedAt: number }>;
}

interface FinalBody {
  readonly status: number;
  readonly offset: number;
  readonly stats: { path?: string; bytesSent?: number; reconnectMs?: number[]; resumedAt?: number[]; cuts?: number[]; patches?: number; sha256?: string };
}

function run(name: string, mode: Mode, bytes: number): (a: TransferArgs) => Promise<TransferResult> {
  return async (a) => {
    const args = [join(a.ctx.buildDir, 'helpers', 'resumable-client.js'), '--port', String(a.port), '--bytes', String(bytes), '--mode', mode];
    if (mode === 'cut') args.push('--cuts', '5', '--seed', '13');
    if (mode === 'chunks') args.push('--chunk', String(MiB));
    const child = spawnTracked(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout?.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr?.on('data', (c: Buffer) => (stderr += c.toString()));
    const exit = await waitForExit(child, a.ctx.timeoutFor(bytes * 2), 'resumable client');
    if (exit.code !== 0) throw new Error(`resumable client failed (${exit.code ?? exit.signal}): ${stderr.trim()}`);
    const parsed = JSON.parse(stdout) as ClientOutput;
    const r = parsed.requests[0];
    if (r === undefined) throw new Error('resumable client printed no answer');
    const final = JSON.parse(r.body) as FinalBody;
    // Checked against the stored file after the clock: size, and for the cut run every byte.
    const id = (final.stats.path ?? '').slice('/uploads/'.length);
    const record = await fileRecord(a.port, id);
    if (record.size !== bytes) throw new Error(`stored ${record.size} bytes, expected ${bytes}`);
    if (final.stats.sha256 !== undefined && record.sha256 !== final.stats.sha256) throw new Error(`stored sha256 ${record.sha256}, the client sent ${final.stats.sha256}`);
    const seconds = (r.endedAt - r.startedAt) / 1000;
    if (mode === 'cut') {
      const sent = final.stats.bytesSent ?? 0;
      const times = final.stats.reconnectMs ?? [];
      resumableNotes.push(
        `${name}: ${bytes} bytes, cut at ${(final.stats.cuts ?? []).join(', ')}; resumed at ${(final.stats.resumedAt ?? []).join(', ')}; ` +
          `sent ${sent} bytes in all = ${(sent / bytes).toFixed(4)} × the file (${((sent - bytes) / MiB).toFixed(2)} MiB extra); ` +
          `reconnect (HEAD on a new connection) to the resumed PATCH's first byte: ${times.map((t) => `${t} ms`).join(', ')}`,
      );
    }
    if (mode === 'chunks') resumableNotes.push(`${name}: ${bytes} bytes in ${final.stats.patches} PATCHes of 1 MiB`);
    return { seconds, startedAt: r.startedAt, endedAt: r.endedAt, responses: [{ status: final.status, body: r.body }] };
  };
}

async function fileRecord(port: number, id: string): Promise<{ size: number; sha256: string }> {
  const res = await fetch(`http://127.0.0.1:${port}/files`);
  const files = ((await res.json()) as { files: Array<{ id: string; size: number; sha256: string }> }).files;
  const record = files.find((f) => f.id === id);
  if (record === undefined) throw new Error(`upload ${id} is not a stored file`);
  return record;
}

function row(name: string, mode: Mode, bytes: number, description: string, ratioTo: readonly string[]): RowPlan {
  return {
    name,
    group: 'sluice',
    description,
    bytes,
    ratioTo,
    helpers: [],
    server: { kind: 'sluice', env: () => ({}) },
    transfer: run(name, mode, bytes),
    validate: (r) => {
      const status = r.responses[0]?.status;
      if (status !== 204) throw new Error(`last PATCH answered ${status}, expected 204`);
    },
  };
}

export function resumableOnePatch(bytes: number, name = 'resumable-one-patch'): RowPlan {
  return row(name, 'one', bytes, 'tus: creation, then one PATCH of every byte', ['upload-raw']);
}

export function resumableCut(bytes: number): RowPlan {
  return row('resumable-cut', 'cut', bytes, 'tus: one PATCH cut 5 times (silent connection), HEAD + PATCH after each', ['resumable-one-patch']);
}

/** `reference`: the one-PATCH row of the same size (`resumable-one-patch@1GiB` when --size is larger). */
export function resumableChunks(bytes: number, reference: string): RowPlan {
  return row('resumable-1mib-patches', 'chunks', bytes, 'tus: the upload in 1 MiB PATCHes on one keep-alive connection', [reference]);
}
