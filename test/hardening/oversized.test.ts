/**
 * Hostile input: too big. A request header block over Node's limit → 431; a Content-Length over
 * MAX_FILE_BYTES (a raw body), or over what any acceptable multipart body could be (MAX_FILES ×
 * MAX_FILE_BYTES + fields + envelope, issue #17) → 413 before the body is sent (with `Expect: 100-continue` the 413 comes instead
 * of `100 Continue`; without it, the answer comes while the client has sent nothing but the
 * head); 100,001 fields → 413 TOO_MANY_FIELDS at the limit, not after reading everything: the
 * fields are generated as they are sent, with backpressure, and the generator is stopped by the
 * answer after a small fraction of the body.
 */
import { strict as assert } from 'node:assert';
import { readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, test } from 'node:test';
import {
  BOUNDARY,
  Invariants,
  KiB,
  MULTIPART,
  MiB,
  chunkFrame,
  hasCompleteResponse,
  logLines,
  parseResponses,
  rawExchange,
  requestHead,
  startSluice,
  until,
  type RawExchange,
  type Sluice,
} from './helpers.js';

const MAX_FILE_BYTES = 1 * MiB;

/** Bytes the process has read with read()-like calls, sockets included (/proc/<pid>/io rchar). */
function bytesReadBy(pid: number): number {
  return Number(/^rchar: (\d+)$/m.exec(readFileSync(`/proc/${pid}/io`, 'utf8'))?.[1] ?? NaN);
}

let server: Sluice;
let inv: Invariants;

before(async () => {
  server = await startSluice({ MAX_FILE_BYTES: String(MAX_FILE_BYTES), FSYNC: 'false' });
  inv = await Invariants.create(server, { canarySizes: [0, 1, 100 * KiB] });
});
after(async () => {
  await server?.stop();
});

function finalAnswer(received: Buffer): { status: number; code: string | null; interim: number[] } {
  const all = parseResponses(received);
  const last = all.at(-1);
  const code = /"code":"([A-Z_]+)"/.exec(last?.body?.toString('utf8') ?? '')?.[1] ?? null;
  return { status: last?.status ?? 0, code, interim: all.filter((r) => r.status < 200).map((r) => r.status) };
}

test('a request header block over Node\'s limit → 431', { timeout: 30_000 }, async () => {
  const variants: Array<[string, Record<string, string>]> = [
    ['one 20 KiB header', { 'x-big': 'a'.repeat(20 * KiB) }],
    ['many small headers', Object.fromEntries(Array.from({ length: 400 }, (_, i) => [`x-h${i}`, 'v'.repeat(60)]))],
  ];
  for (const [what, headers] of variants) {
    for (const [method, path] of [['GET', '/healthz'], ['POST', '/upload']] as const) {
      const ex = await rawExchange(server.port, { send: requestHead(method, path, { ...headers, 'content-length': 0 }), timeoutMs: 5_000 });
      const answer = finalAnswer(ex.received);
      assert.equal(answer.status, 431, `${what}, ${method} ${path}: ${ex.received.toString('latin1').slice(0, 200)}`);
      assert.notEqual(ex.ended, 'timeout', `${what}: the connection stayed open`);
    }
  }
  await inv.check('header block over the limit');
});

test('Content-Length over MAX_FILE_BYTES (raw) or the multipart bound → 413 before the body, with and without Expect: 100-continue', { timeout: 30_000 }, async () => {
  // Raw: one file, over MAX_FILE_BYTES. Multipart: over 100 files of 1 MiB, 8 MiB of fields and
  // 1,100 parts' headers (about 126 MiB with the defaults), so no acceptable body is that long.
  const cases = [
    { type: 'application/octet-stream', declared: 64 * MiB, code: 'FILE_TOO_LARGE' },
    { type: MULTIPART, declared: 1024 * MiB, code: 'REQUEST_TOO_LARGE' },
  ];
  for (const { type, declared, code } of cases) {
    for (const expect of [true, false]) {
      const label = `${type.split(';')[0]}, ${expect ? 'Expect: 100-continue' : 'no Expect'}`;
      const headers: Record<string, string | number> = { 'content-type': type, 'content-length': declared };
      if (expect) headers.expect = '100-continue';
      // Headers only: the body is never sent. The answer must come anyway.
      const ex = await rawExchange(server.port, { send: requestHead('POST', '/upload', headers), timeoutMs: 5_000, complete: (r) => finalAnswer(r).status >= 200 });
      const answer = finalAnswer(ex.received);
      assert.equal(answer.status, 413, `${label}: ${ex.received.toString('latin1').slice(0, 300)}`);
      assert.deepEqual(answer.interim, [], `${label}: 100 Continue before the refusal`);
      assert.equal(answer.code, code, label);
      assert.equal(ex.written, Buffer.byteLength(requestHead('POST', '/upload', headers)), `${label}: only the head was sent`);
    }
  }
  // The control: a length within the limit gets 100 Continue, then its 201.
  const body = Buffer.alloc(100 * KiB, 7);
  const ex = await rawExchange(server.port, {
    timeoutMs: 5_000,
    complete: (r) => finalAnswer(r).status >= 200,
    send: async (io) => {
      io.socket.write(requestHead('POST', '/upload', { 'content-type': 'application/octet-stream', 'content-length': body.length, expect: '100-continue' }));
      await new Promise((r) => io.socket.once('data', r));
      io.socket.write(body);
    },
  });
  const answer = finalAnswer(ex.received);
  assert.deepEqual(answer.interim, [100]);
  assert.equal(answer.status, 201);
  const id = /"id":"([A-Za-z0-9_-]{22})"/.exec(ex.received.toString('latin1'))?.[1];
  assert.ok(id !== undefined);
  inv.keep(id);
  await inv.check('declared length over MAX_FILE_BYTES');
});

/** Streams `count` fields as chunked frames, generated one by one, until the server answers. */
async function manyFields(port: number, count: number, valueBytes: number): Promise<{ ex: RawExchange; generated: number; total: number }> {
  let generated = 0;
  const value = 'v'.repeat(valueBytes);
  const fieldBytes = (i: number): number => Buffer.byteLength(`--${BOUNDARY}\r\nContent-Disposition: form-data; name="f${i}"\r\n\r\n${value}\r\n`);
  let total = 0;
  for (let i = 0; i < count; i += 1) total += fieldBytes(i);
  function* fields(): Generator<Buffer> {
    // 64 fields per chunk frame: a realistic write size.
    let batch = '';
    for (let i = 0; i < count; i += 1) {
      batch += `--${BOUNDARY}\r\nContent-Disposition: form-data; name="f${i}"\r\n\r\n${value}\r\n`;
      generated = i + 1;
      if (i % 64 === 63) {
        yield Buffer.from(batch);
        batch = '';
      }
    }
    yield Buffer.from(`${batch}--${BOUNDARY}--\r\n`);
  }
  const ex = await rawExchange(port, {
    timeoutMs: 60_000,
    complete: hasCompleteResponse,
    send: async (io) => {
      if (!(await io.write(requestHead('POST', '/upload', { 'content-type': MULTIPART, 'transfer-encoding': 'chunked' })))) return;
      for (const piece of fields()) if (!(await io.write(chunkFrame(piece)))) return;
      await io.write('0\r\n\r\n');
    },
  });
  return { ex, generated, total };
}

test('100,001 fields → 413 TOO_MANY_FIELDS at the limit (MAX_FIELDS=1000), long before the end', { timeout: 60_000 }, async () => {
  const count = 100_001;
  const readBefore = bytesReadBy(server.pid);
  // 4,000-byte values: the body (~400 MB) dwarfs what socket buffers can hold in flight (a few MiB).
  const { ex, generated, total } = await manyFields(server.port, count, 4000);
  const answer = finalAnswer(ex.received);
  await sleep(500);
  const consumed = bytesReadBy(server.pid) - readBefore;
  let logged: Record<string, unknown> | undefined;
  await until('the request log line', () => (logged = logLines(server, 'request').filter((l) => l.error === 'TOO_MANY_FIELDS').at(-1)) !== undefined, 5_000);
  console.log(
    `100,001 fields (${Math.round(total / MiB)} MiB): ${answer.status} ${answer.code} after the client generated ${generated} fields and wrote ${Math.round(ex.written / KiB)} KiB ` +
      `(${Math.round((ex.writtenAtFirstByte / total) * 1000) / 10} % of the body when the answer came, after ${ex.firstByteMs} ms); connection ended by ${ex.ended} after ${ex.endMs} ms; the server logged bytesIn=${String(logged?.bytesIn)} and read ${consumed} bytes in all (rchar)`,
  );
  assert.equal(answer.status, 413, ex.received.toString('latin1').slice(0, 300));
  assert.equal(answer.code, 'TOO_MANY_FIELDS');
  // The server answered after reading about MAX_FIELDS fields, not the body...
  assert.ok(typeof logged?.bytesIn === 'number' && logged.bytesIn < total / 20, `the server read ${String(logged?.bytesIn)} of ${total} bytes`);
  // ...and did not read on through the rest of it afterwards (all its read() calls, sockets included)...
  assert.ok(consumed < total / 4, `the server read ${consumed} of the ${total} bytes in all`);
  // ...and the generator was stopped (by backpressure, then the answer) well before its end.
  assert.ok(generated < count / 4, `the generator produced ${generated} of ${count} fields before it was stopped`);
  assert.ok(ex.writtenAtFirstByte > 0 && ex.writtenAtFirstByte < total / 4, `${ex.writtenAtFirstByte} of ${total} bytes were written when the answer came`);
  await inv.check('100,001 fields');
});

test('MAX_FIELDS=100000: 100,000 fields are stored, the 100,001st is refused with TOO_MANY_FIELDS', { timeout: 90_000 }, async () => {
  const big = await startSluice({ MAX_FIELDS: '100000', FSYNC: 'false' });
  try {
    const bigInv = await Invariants.create(big, { viaHttp: false });
    const exact = await manyFields(big.port, 100_000, 1);
    assert.equal(finalAnswer(exact.ex.received).status, 201, exact.ex.received.toString('latin1').slice(0, 300));
    const over = await manyFields(big.port, 100_001, 1);
    const answer = finalAnswer(over.ex.received);
    assert.equal(answer.status, 413, over.ex.received.toString('latin1').slice(0, 300));
    assert.equal(answer.code, 'TOO_MANY_FIELDS');
    await bigInv.check('100,001 fields against MAX_FIELDS=100000');
  } finally {
    await big.stop();
  }
});
