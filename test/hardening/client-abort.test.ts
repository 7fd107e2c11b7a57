/**
 * Faults: clients that abort. 100 multipart uploads cut at seeded random byte offsets (inside a
 * part's headers, inside data, inside a delimiter, exactly between pieces), each aborted with a
 * FIN, a RST or a half-close, 10 at a time. After every batch nothing of them is in DATA_DIR
 * (final or temporary), descriptors and sockets are back to their baseline, the canaries are
 * intact; at the end the server's RSS is back near its baseline.
 */
import { strict as assert } from 'node:assert';
import { readdir } from 'node:fs/promises';
import { after, before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  Invariants,
  KiB,
  MULTIPART,
  MiB,
  chunkFrame,
  fieldPart,
  filePart,
  generated,
  memory,
  mulberry32,
  multipartBody,
  parseResponses,
  randInt,
  rawExchange,
  request,
  requestHead,
  startSluice,
  until,
  type BodyMap,
  type Sluice,
} from './helpers.js';

let server: Sluice;
let inv: Invariants;
/** Most temporary files seen at once just before an abort: proof that the cuts land mid-file. */
let partialsSeen = 0;

before(async () => {
  server = await startSluice({ FSYNC: 'false' });
  inv = await Invariants.create(server);
});
after(async () => {
  await server?.stop();
});

const { body, map } = multipartBody([
  fieldPart('note', 'a field before the files'),
  filePart('a', 'a.bin', generated('abort-a', 256 * KiB)),
  fieldPart('x', 'between'),
  filePart('b', 'b.bin', generated('abort-b', 96 * KiB)),
  filePart('c', 'c.bin', generated('abort-c', 3)),
]);

type Where = 'headers' | 'data' | 'delimiter' | 'between';
type How = 'fin' | 'rst' | 'half-close';

interface Cut {
  readonly offset: number;
  readonly where: Where;
  readonly how: How;
  readonly chunked: boolean;
}

/** An offset strictly inside [start, end), or null when the range has no inside. */
function inside(random: () => number, [start, end]: [number, number]): number | null {
  return end - start < 2 ? null : randInt(random, start + 1, end - 1);
}

function planCuts(m: BodyMap, seed: number, count: number): Cut[] {
  const random = mulberry32(seed);
  const wheres: Where[] = ['headers', 'data', 'delimiter', 'between'];
  const hows: How[] = ['fin', 'rst', 'half-close'];
  // The edges between pieces: end of a delimiter / of a header block / of data.
  const edges = [...m.delimiters.slice(0, -1).map((d) => d[1]), ...m.headers.map((h) => h[1]), ...m.data.map((d) => d[1])];
  const cuts: Cut[] = [];
  for (let i = 0; cuts.length < count && i < count * 10; i += 1) {
    const where = wheres[i % wheres.length] as Where;
    let offset: number | null = null;
    if (where === 'headers') offset = inside(random, m.headers[randInt(random, 0, m.headers.length - 1)] as [number, number]);
    if (where === 'data') offset = inside(random, m.data[randInt(random, 0, m.data.length - 1)] as [number, number]);
    if (where === 'delimiter') offset = inside(random, m.delimiters[randInt(random, 0, m.delimiters.length - 1)] as [number, number]);
    if (where === 'between') offset = edges[randInt(random, 0, edges.length - 1)] as number;
    if (offset === null || offset <= 0 || offset >= body.length) continue;
    cuts.push({ offset, where, how: hows[randInt(random, 0, hows.length - 1)] as How, chunked: random() < 0.5 });
  }
  return cuts;
}

/** Sends the head and the first `offset` body bytes, lets the server read them, then aborts. */
async function cutUpload(cut: Cut): Promise<number | null> {
  const headers: Record<string, string | number> = { 'content-type': MULTIPART };
  if (cut.chunked) headers['transfer-encoding'] = 'chunked';
  else headers['content-length'] = body.length;
  const part = body.subarray(0, cut.offset);
  const ex = await rawExchange(server.port, {
    timeoutMs: 5_000,
    send: async (io) => {
      await io.write(requestHead('POST', '/upload', headers));
      await io.write(cut.chunked ? chunkFrame(part) : part);
      // Let the bytes reach the server and be parsed (a partial file appears for data cuts).
      await sleep(40);
      const partials = (await readdir(server.dataDir)).filter((n) => n.endsWith('.partial')).length;
      partialsSeen = Math.max(partialsSeen, partials);
      if (cut.how === 'fin') io.socket.destroy();
      else if (cut.how === 'rst') io.socket.resetAndDestroy();
      else io.socket.end();
    },
  });
  const answers = parseResponses(ex.received);
  return answers[answers.length - 1]?.status ?? null;
}

test('100 uploads cut at random offsets leave nothing behind', { timeout: 120_000 }, async () => {
  // Warm up on complete uploads of the same body, so the RSS baseline includes a working heap.
  for (let i = 0; i < 5; i += 1) {
    const res = await request(server.url, '/upload', { method: 'POST', headers: { 'content-type': MULTIPART }, body });
    assert.equal(res.status, 201, res.body.toString());
    for (const f of (JSON.parse(res.body.toString()) as { files: Array<{ id: string }> }).files) {
      assert.equal((await request(server.url, `/files/${f.id}`, { method: 'DELETE' })).status, 204);
    }
  }
  await inv.check('warm-up');
  await inv.measureBaseline();
  const rssBefore = memory(server.pid).rssKiB;

  const cuts = planCuts(map, 0x5eed_ab01, 100);
  assert.equal(cuts.length, 100);
  const counts = new Map<string, number>();
  const statuses = new Map<string, number>();
  for (let i = 0; i < cuts.length; i += 10) {
    const batch = cuts.slice(i, i + 10);
    const answers = await Promise.all(batch.map((c) => cutUpload(c)));
    answers.forEach((status, k) => {
      const c = batch[k] as Cut;
      counts.set(`${c.where}/${c.how}`, (counts.get(`${c.where}/${c.how}`) ?? 0) + 1);
      statuses.set(String(status), (statuses.get(String(status)) ?? 0) + 1);
      // A half-closed request can still get an answer; it must never be a success or a 5xx.
      assert.ok(status === null || (status >= 400 && status < 500), `cut ${JSON.stringify(c)} answered ${status}`);
    });
    await inv.check(`cuts ${i}..${i + batch.length - 1} (${batch.map((c) => `${c.where}@${c.offset}/${c.how}${c.chunked ? '/chunked' : ''}`).join(', ')})`);
  }
  assert.ok(partialsSeen > 0, 'no cut ever caught a temporary file on disk: the attack did not reach the store');
  console.log(`most temporary files on disk at once before an abort: ${partialsSeen}`);
  console.log(`cuts by place/abort: ${JSON.stringify(Object.fromEntries(counts))}; answers seen: ${JSON.stringify(Object.fromEntries(statuses))}`);

  let rss = 0;
  await until(
    () => `RSS back near its baseline (${rssBefore} KiB + 32 MiB), now ${rss} KiB`,
    () => (rss = memory(server.pid).rssKiB) <= rssBefore + 32 * 1024,
    10_000,
  );
  console.log(`server RSS: ${Math.round(rssBefore / 1024)} MiB before the cuts, ${Math.round(rss / 1024)} MiB after (VmHWM ${Math.round(memory(server.pid).hwmKiB / 1024)} MiB)`);
  assert.ok(rss < rssBefore + 32 * MiB / 1024);
});
