/**
 * Hostile input over HTTP: a few hundred fuzz cases (fuzz-cases.ts, with the server's own
 * limits) sent to a real server as `POST /upload`, six at a time, half with Content-Length and
 * half chunked. Every answer is 201 or 4xx, never 5xx and never a hang; the answer agrees with
 * what the parser says in process (the same error code, or the same files and fields with the
 * same sizes); files of failed requests never stay; stored ones are deleted again. Plus a few
 * hostile Content-Type headers.
 */
import { strict as assert } from 'node:assert';
import { after, before, test } from 'node:test';
import { SERVER_LIMITS, chunksOf, makeCase, type FuzzCase } from './fuzz-cases.js';
import { runParserCase, type Outcome } from './fuzz-harness.js';
import { Invariants, errorCodeOf, request, startSluice, type Sluice } from './helpers.js';

const CASES = Number(process.env.FUZZ_HTTP_CASES ?? 300);
const FIRST_SEED = 1_000_001;
const CONCURRENCY = 6;

let server: Sluice;
let inv: Invariants;

before(async () => {
  server = await startSluice({ FSYNC: 'false', LOG_LEVEL: 'warn' });
  inv = await Invariants.create(server);
});
after(async () => {
  await server?.stop();
});

interface Stored {
  readonly files: Array<{ id: string; field: string | null; filename: string | null; size: number }>;
  readonly fields: Array<{ name: string; value: string }>;
}

/** What the answer must be, given the in-process outcome; null when it agrees. */
function disagreement(c: FuzzCase, outcome: Outcome, status: number, body: Buffer): string | null {
  if (outcome.kind === 'error') {
    const code = errorCodeOf({ body });
    return status === outcome.status && code === outcome.code ? null : `in process ${outcome.code} (${outcome.status}), over HTTP ${status} ${code}`;
  }
  if (status !== 201) return `in process ${outcome.parts.length} parts, over HTTP ${status} ${body.toString('utf8').slice(0, 200)}`;
  const stored = JSON.parse(body.toString('utf8')) as Stored;
  // An empty file input (filename "" and no data) is skipped, not stored (issue 2).
  const files = outcome.parts.filter((p) => p.filename !== null && !(p.filename === '' && p.size === 0));
  const fields = outcome.parts.filter((p) => p.filename === null);
  if (stored.files.length !== files.length || stored.fields.length !== fields.length) {
    return `in process ${files.length} files + ${fields.length} fields, over HTTP ${stored.files.length} + ${stored.fields.length}`;
  }
  for (const [i, f] of files.entries()) {
    const s = stored.files[i];
    if (s === undefined || s.size !== f.size || s.field !== f.name) return `file ${i}: in process ${JSON.stringify([f.name, f.size])}, over HTTP ${JSON.stringify([s?.field, s?.size])}`;
  }
  void c;
  return null;
}

async function send(c: FuzzCase, chunked: boolean): Promise<{ status: number; body: Buffer }> {
  const contentType = `multipart/form-data; boundary="${c.boundary}"`;
  // A handful of pieces: the network regroups bytes anyway.
  const pieces = chunksOf(c.body, c.chunkSizes.length > 64 ? [c.body.length] : c.chunkSizes);
  const headers: Record<string, string> = { 'content-type': contentType };
  if (chunked) headers['transfer-encoding'] = 'chunked';
  else headers['content-length'] = String(c.body.length);
  const res = await request(server.url, '/upload', { method: 'POST', headers, body: pieces, timeoutMs: 15_000 });
  return { status: res.status, body: res.body };
}

test(`${CASES} fuzz cases over HTTP: 201 or 4xx, never 5xx, as the parser says`, { timeout: 180_000 }, async () => {
  const statuses = new Map<number, number>();
  const problems: string[] = [];
  for (let i = 0; i < CASES; i += CONCURRENCY) {
    const seeds = Array.from({ length: Math.min(CONCURRENCY, CASES - i) }, (_, k) => FIRST_SEED + i + k);
    await Promise.all(
      seeds.map(async (seed) => {
        const c = makeCase(seed, { limits: SERVER_LIMITS });
        const local = await runParserCase(c.boundary, c.limits, [c.body]);
        let answer;
        try {
          answer = await send(c, seed % 2 === 0);
        } catch (err) {
          problems.push(`seed ${seed} (${c.what}): no answer: ${(err as Error).message}`);
          return;
        }
        statuses.set(answer.status, (statuses.get(answer.status) ?? 0) + 1);
        if (answer.status >= 500 || (answer.status !== 201 && (answer.status < 400 || answer.status > 499))) {
          problems.push(`seed ${seed} (${c.what}): ${answer.status} ${answer.body.toString('utf8').slice(0, 200)}`);
        }
        if (local.outcome !== null) {
          const d = disagreement(c, local.outcome, answer.status, answer.body);
          if (d !== null) problems.push(`seed ${seed} (${c.what}): ${d}`);
        }
        if (answer.status === 201) {
          for (const f of (JSON.parse(answer.body.toString('utf8')) as Stored).files) {
            const del = await request(server.url, `/files/${f.id}`, { method: 'DELETE' });
            if (del.status !== 204) problems.push(`seed ${seed}: DELETE ${f.id} → ${del.status}`);
          }
        }
      }),
    );
    if ((i / CONCURRENCY) % 5 === 4 || i + CONCURRENCY >= CASES) {
      // Keep going after a failed check (reporting each problem once) so one leak does not hide others.
      try {
        await inv.check(`fuzz over HTTP, seeds ${seeds[0] as number - 4 * CONCURRENCY}..${seeds[seeds.length - 1] as number}`, { deadlineMs: 3_000 });
      } catch (err) {
        problems.push((err as Error).message);
        await inv.acknowledge();
      }
    }
  }
  console.log(`fuzz over HTTP: answers ${JSON.stringify(Object.fromEntries(statuses))}`);
  assert.deepEqual(problems, []);
});

test('hostile Content-Type headers: 400, never 5xx', { timeout: 30_000 }, async () => {
  const body = Buffer.from('--b\r\nContent-Disposition: form-data; name="x"\r\n\r\nv\r\n--b--\r\n');
  const cases: Array<[string, number, string | null]> = [
    ['multipart/form-data', 400, 'BOUNDARY_MISSING'],
    ['multipart/form-data; boundary=', 400, null],
    ['multipart/form-data; boundary=""', 400, 'BOUNDARY_INVALID'],
    [`multipart/form-data; boundary=${'a'.repeat(71)}`, 400, 'BOUNDARY_INVALID'],
    ['multipart/form-data; boundary="unterminated', 400, null],
    ['multipart/form-data; boundary="b "', 400, 'BOUNDARY_INVALID'],
    ['multipart/form-data; boundary=b; boundary=c', 400, null],
    ['multipart/form-data; boundary=b\u00e9', 400, null],
  ];
  for (const [type, status, code] of cases) {
    const res = await request(server.url, '/upload', { method: 'POST', headers: { 'content-type': type }, body });
    assert.ok(res.status < 500, `${type}: ${res.status}`);
    if (res.status !== 201) {
      assert.equal(res.status, status, `${type}: ${res.status} ${res.body.toString()}`);
      if (code !== null) assert.equal(errorCodeOf(res), code, type);
    } else {
      // Some of these are legal after all (the last of repeated parameters wins): then stored properly.
      for (const f of (JSON.parse(res.body.toString('utf8')) as Stored).files) await request(server.url, `/files/${f.id}`, { method: 'DELETE' });
    }
  }
  await inv.check('hostile Content-Type headers');
});
