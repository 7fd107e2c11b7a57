/**
 * The web page in a real browser (Debian's Chromium through playwright-core): one file of
 * `--size` picked in the page and uploaded by its tus client (`/uploads`, File.slice pieces as
 * PATCH bodies), against an in-page `fetch('/upload', {method: 'POST', body: file})` of the same
 * file in the same run. Both are timed in the page (performance.now), from the pick to the answer
 * for fetch, and to the row showing the stored file's sha256 for the page; both answers are
 * checked against the file's sha256. The server's peak RSS is the harness's, as for every row.
 */
import { createHash } from 'node:crypto';
import { closeSync, openSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { browserUnavailable, launchChromium } from '../../test/helpers/browser.js';
import type { TransferResult } from '../lib/clients.js';
import { BLOCK_BYTES, PatternSource } from '../lib/pattern.js';
import type { RowPlan, TransferArgs } from '../lib/types.js';

interface BenchFile {
  readonly path: string;
  readonly sha256: string;
}

/** Writes `bytes` of pattern data into the row's temp dir (not timed), hashing it on the way. */
function writeBenchFile(dir: string, bytes: number): BenchFile {
  const path = join(dir, 'bench-upload.bin');
  const hash = createHash('sha256');
  const source = new PatternSource();
  const fd = openSync(path, 'w');
  try {
    for (let left = bytes; left > 0; left -= BLOCK_BYTES) {
      const block = source.next(Math.min(left, BLOCK_BYTES));
      hash.update(block);
      writeSync(fd, block);
    }
  } finally {
    closeSync(fd);
  }
  return { path, sha256: hash.digest('hex') };
}

/** Opens the page in a fresh browser, runs `drive`, and always closes the browser. */
async function inBrowser(a: TransferArgs, bytes: number, drive: (page: Page, file: BenchFile) => Promise<TransferResult>): Promise<TransferResult> {
  const missing = await browserUnavailable();
  if (missing !== null) throw new Error(`cannot run the browser rows: ${missing}`);
  const file = writeBenchFile(a.tmpDir, bytes);
  let browser: Browser | null = null;
  try {
    browser = await launchChromium();
    const page = await browser.newPage();
    page.setDefaultTimeout(a.ctx.timeoutFor(bytes));
    await page.goto(`http://127.0.0.1:${a.port}/`);
    return await drive(page, file);
  } finally {
    await browser?.close();
  }
}

/** In-page times are on the page's clock; performance.timeOrigin puts them on the epoch. */
function result(origin: number, start: number, end: number, status: number, body: string): TransferResult {
  return { seconds: (end - start) / 1000, startedAt: origin + start, endedAt: origin + end, responses: [{ status, body }] };
}

function expectSha256(r: TransferResult, status: number, sha256: string): void {
  const answer = r.responses[0];
  if (answer === undefined || answer.status !== status) throw new Error(`status ${answer?.status}, expected ${status}: ${answer?.body.slice(0, 300)}`);
  if (!answer.body.includes(sha256)) throw new Error(`the stored sha256 is not the file's (${sha256}): ${answer.body.slice(0, 300)}`);
}

/** The baseline: the browser's own fetch posting the File as the body of one POST /upload. */
export function browserFetchUpload(bytes: number): RowPlan {
  let expected = '';
  return {
    name: 'browser-fetch-upload',
    group: 'baseline',
    description: "Chromium: in-page fetch('/upload', {method: 'POST', body: file}) of one file",
    bytes,
    ratioTo: [],
    helpers: [],
    server: { kind: 'sluice', env: () => ({}) },
    transfer: (a) =>
      inBrowser(a, bytes, async (page, file) => {
        expected = file.sha256;
        // An input of our own: the page's picker would start its own (tus) upload.
        await page.evaluate("document.body.append(Object.assign(document.createElement('input'), { type: 'file', id: 'bench-file' }))");
        await page.setInputFiles('#bench-file', file.path);
        const r = (await page.evaluate(`(async () => {
          const file = document.getElementById('bench-file').files[0];
          const start = performance.now();
          const res = await fetch('/upload?filename=bench-upload.bin', { method: 'POST', body: file, headers: { 'content-type': 'application/octet-stream' } });
          const body = await res.text();
          return { origin: performance.timeOrigin, start, end: performance.now(), status: res.status, body };
        })()`)) as { origin: number; start: number; end: number; status: number; body: string };
        return result(r.origin, r.start, r.end, r.status, r.body);
      }),
    validate: (r) => expectSha256(r, 201, expected),
  };
}

/** The page: the file picked in its input, uploaded by its tus client until the row shows the stored file. */
export function browserPage(bytes: number): RowPlan {
  let expected = '';
  return {
    name: 'browser-page',
    group: 'sluice',
    description: 'Chromium: the web page uploads one file through /uploads (tus, File.slice pieces)',
    bytes,
    ratioTo: ['browser-fetch-upload'],
    helpers: [],
    server: { kind: 'sluice', env: () => ({}) },
    transfer: (a) =>
      inBrowser(a, bytes, async (page, file) => {
        expected = file.sha256;
        // The clock starts when the pick reaches the page, and stops when the row says done.
        await page.evaluate(`(() => {
          const bench = (window.__bench = { start: 0, end: 0 });
          document.getElementById('file-input').addEventListener('change', () => (bench.start = performance.now()), { capture: true });
          new MutationObserver(() => {
            if (bench.end === 0 && document.querySelector('li.upload[data-state="done"], li.upload[data-state="failed"]')) bench.end = performance.now();
          }).observe(document.getElementById('uploads'), { subtree: true, attributes: true, childList: true });
        })()`);
        await page.setInputFiles('#file-input', file.path);
        // A function, not a string: the page's CSP (no 'unsafe-eval') refuses string predicates.
        await page.waitForFunction(() => (globalThis as unknown as { __bench: { end: number } }).__bench.end > 0, undefined, { timeout: a.ctx.timeoutFor(bytes), polling: 250 });
        const r = (await page.evaluate(`(() => {
          const row = document.querySelector('li.upload');
          return {
            origin: performance.timeOrigin, start: window.__bench.start, end: window.__bench.end,
            state: row.dataset.state, status: row.querySelector('[role=status]').textContent,
            sha256: row.querySelector('.sha256')?.textContent ?? '',
          };
        })()`)) as { origin: number; start: number; end: number; state: string; status: string; sha256: string };
        return result(r.origin, r.start, r.end, r.state === 'done' ? 200 : 500, JSON.stringify(r));
      }),
    validate: (r) => expectSha256(r, 200, expected),
  };
}
