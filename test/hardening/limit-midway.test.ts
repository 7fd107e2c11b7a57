/**
 * Regression (found by fuzz-http.test.ts, seed 1000080: 1,313 tiny parts → 413 TOO_MANY_FILES
 * and 13 `.partial` files left in DATA_DIR). A request fails (a limit, malformed input, the
 * client gone) while the handler is still working through files the parser reported earlier in
 * the same request. Every file of that request must be removed and every descriptor closed.
 *
 * The bodies below hold many small files in one chunk (one parser batch) and the failure in the
 * next chunk, so the failure arrives while the batch is being written.
 */
import { strict as assert } from 'node:assert';
import { afterEach, beforeEach, test } from 'node:test';
import { BOUNDARY, Invariants, MULTIPART, errorCodeOf, rawExchange, request, requestHead, startSluice, chunkFrame, type Sluice } from './helpers.js';

// A fresh server per test, so that what one test leaves behind cannot fail the next.
let server: Sluice;
let inv: Invariants;

beforeEach(async () => {
  server = await startSluice({ FSYNC: 'false', MAX_FILES: '100' });
  inv = await Invariants.create(server);
});
afterEach(async () => {
  await server?.stop();
});

const filePart = (i: number): string =>
  `--${BOUNDARY}\r\nContent-Disposition: form-data; name="f${i}"; filename="f${i}.bin"\r\nContent-Type: application/octet-stream\r\n\r\nx\r\n`;

function files(from: number, to: number): string {
  let s = '';
  for (let i = from; i < to; i += 1) s += filePart(i);
  return s;
}

test('TOO_MANY_FILES while earlier files of the request are being written: nothing left behind', { timeout: 30_000 }, async () => {
  const res = await request(server.url, '/upload', {
    method: 'POST',
    headers: { 'content-type': MULTIPART, 'transfer-encoding': 'chunked' },
    body: [Buffer.from(files(0, 95)), Buffer.from(`${files(95, 120)}--${BOUNDARY}--\r\n`)],
  });
  assert.equal(res.status, 413);
  assert.equal(errorCodeOf(res), 'TOO_MANY_FILES');
  await inv.check('413 TOO_MANY_FILES after 95 files in one batch');
});

test('a malformed part after many files in one batch: 400 and nothing left behind', { timeout: 30_000 }, async () => {
  const res = await request(server.url, '/upload', {
    method: 'POST',
    headers: { 'content-type': MULTIPART, 'transfer-encoding': 'chunked' },
    body: [Buffer.from(files(0, 90)), Buffer.from(`--${BOUNDARY}\r\n Folded: header\r\n\r\nx\r\n--${BOUNDARY}--\r\n`)],
  });
  assert.equal(res.status, 400);
  assert.equal(errorCodeOf(res), 'PART_HEADER_MALFORMED');
  await inv.check('400 PART_HEADER_MALFORMED after 90 files in one batch');
});

test('the client resets right after sending many files in one chunk: nothing left behind', { timeout: 30_000 }, async () => {
  await rawExchange(server.port, {
    timeoutMs: 5_000,
    send: async (io) => {
      await io.write(requestHead('POST', '/upload', { 'content-type': MULTIPART, 'transfer-encoding': 'chunked' }));
      await io.write(chunkFrame(Buffer.from(files(0, 90))));
      io.socket.resetAndDestroy();
    },
  });
  await inv.check('client reset after 90 files in one chunk');
});
