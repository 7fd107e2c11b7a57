/**
 * Uploads through sluice's page in a real browser (Debian's Chromium via playwright-core),
 * against the real resumable-upload routes (`/uploads`, tus 1.0.0). The page goes through a TCP
 * relay that counts the bytes sent, slows them when a test must act mid-upload, and can cut
 * every connection (the network or the server going away). Each case checks the stored bytes
 * by sha256 against the server's records, and that no request left the origin.
 */
import { strict as assert } from 'node:assert';
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import { browserUnavailable, launchChromium, openPage, type PageRecord } from './helpers/browser.js';
import { poll, rawRequest, seededBytes, sha256 } from './helpers/http.js';
import { assertNoPageErrors, assertSameOrigin, fileRow, storedFiles, uploadRow, waitForState, WAIT_MS } from './helpers/page-checks.js';
import { startRelay, type Relay } from './helpers/relay.js';
import { spawnServer, startServer, type TestServer } from './helpers/server.js';

const MiB = 1024 * 1024;
const HOSTILE = '<img src=x onerror=alert(1)>.bin';
/** The README's screenshot (see the three-at-a-time case). */
const SCREENSHOT = 'web/screenshot.png';

const unavailable = await browserUnavailable();
if (unavailable !== null) process.stdout.write(`# web-uploads.test.ts: skipping: ${unavailable}\n`);

/** The page needs the resumable-upload routes; without them (a branch before they landed) the suite says so and skips. */
async function uploadsMissing(): Promise<string | null> {
  const server = await startServer();
  try {
    const res = await rawRequest(server.url, '/uploads', { method: 'OPTIONS' });
    return res.status === 404 ? 'the server has no /uploads routes (resumable uploads, issue 13)' : null;
  } finally {
    await server.close();
  }
}
const noUploads = unavailable === null ? await uploadsMissing() : null;
if (noUploads !== null) process.stdout.write(`# web-uploads.test.ts: skipping: ${noUploads}\n`);
const skip = unavailable ?? noUploads ?? false;

interface LocalFile {
  readonly path: string;
  readonly name: string;
  readonly bytes: Buffer;
}

describe('uploads through the page in Chromium', { skip }, () => {
  let browser: Browser;
  let server: TestServer;
  let relay: Relay;
  let dir: string;
  before(async () => {
    browser = await launchChromium();
    server = await startServer();
    relay = await startRelay(Number(new URL(server.url).port));
    dir = await mkdtemp(join(tmpdir(), 'sluice-page-'));
  });
  after(async () => {
    await browser?.close();
    await relay?.close();
    await server?.close();
    if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  });

  /** A file on disk (its own folder, so the browser sees exactly `name`). */
  async function file(name: string, size: number, seed: number): Promise<LocalFile> {
    const bytes = seededBytes(seed, size);
    await mkdir(join(dir, String(seed)));
    const path = join(dir, String(seed), name);
    await writeFile(path, bytes);
    return { path, name, bytes };
  }

  /** A page on the relay's origin; the relay at full speed unless a test slows it. */
  async function open(onDialog?: (m: string) => boolean): Promise<PageRecord> {
    relay.setRate(null);
    const record = await openPage(browser, {}, onDialog);
    await record.page.goto(`${relay.url}/`);
    return record;
  }

  /**
   * Picks files in the page's file input: from disk (name, size and lastModified are the file's,
   * as for a person), or, for a name no file system takes, from memory.
   */
  async function pick(page: Page, files: readonly LocalFile[]): Promise<void> {
    if (files.every((f) => f.path !== '')) await page.setInputFiles('#file-input', files.map((f) => f.path));
    else await page.setInputFiles('#file-input', files.map((f) => ({ name: f.name, mimeType: 'application/octet-stream', buffer: f.bytes })));
  }

  /** The upload ids the page created (from the Location of each POST /uploads). */
  async function createdUploads(record: PageRecord): Promise<string[]> {
    const posts = record.requests.filter((r) => r.method() === 'POST' && new URL(r.url()).pathname === '/uploads');
    const ids: string[] = [];
    for (const post of posts) {
      const location = await (await post.response())?.headerValue('location');
      if (location) ids.push(new URL(location, relay.url).pathname.split('/').pop() as string);
    }
    return ids;
  }

  /** Waits until nothing has passed the relay for half a second. */
  async function quiet(): Promise<void> {
    let last = -1;
    await poll('the relay goes quiet', async () => {
      const now = relay.upstreamBytes;
      if (now === last) return true;
      last = now;
      await new Promise((r) => setTimeout(r, 500));
      return false;
    }, WAIT_MS);
  }

  async function serverOffset(id: string): Promise<number | null> {
    const res = await rawRequest(server.url, `/uploads/${id}`, { method: 'HEAD', headers: { 'tus-resumable': '1.0.0' } });
    return res.status === 200 || res.status === 204 ? Number(res.headers['upload-offset']) : null;
  }

  /** The row is done, shows the right sha256 and links to the stored file, whose record matches. */
  async function assertStored(page: Page, f: LocalFile): Promise<string> {
    const row = uploadRow(page, f.name);
    await waitForState(row, 'done');
    const shown = await row.locator('.sha256').innerText();
    assert.equal(shown, sha256(f.bytes), `${f.name}: the sha256 shown`);
    const href = (await row.getByRole('link', { name: `Download ${f.name}` }).getAttribute('href')) as string;
    assert.match(href, /^\/files\/[A-Za-z0-9_-]+$/);
    const id = href.slice('/files/'.length);
    const record = (await storedFiles(server.url)).get(id);
    assert.ok(record !== undefined, `${f.name}: stored as ${id}`);
    assert.equal(record.sha256, sha256(f.bytes));
    assert.equal(record.size, f.bytes.length);
    assert.equal(record.filename, f.name);
    return id;
  }

  test('two files picked at once: each row finishes with the sha256 the server recorded, and the list shows them', async () => {
    const a = await file('alpha.bin', 3 * MiB + 1, 11);
    const b = await file('beta.bin', 5 * MiB + 7, 12);
    const record = await open();
    await pick(record.page, [a, b]);
    await assertStored(record.page, a);
    await assertStored(record.page, b);
    for (const f of [a, b]) await fileRow(record.page, f.name).waitFor({ timeout: WAIT_MS });
    // Only the resumable protocol was used: no POST /upload.
    assert.equal(record.requests.filter((r) => new URL(r.url()).pathname === '/upload').length, 0);
    const patches = record.requests.filter((r) => r.method() === 'PATCH');
    assert.ok(patches.every((r) => r.headers()['content-type'] === 'application/offset+octet-stream' && r.headers()['tus-resumable'] === '1.0.0'));
    assertNoPageErrors(record);
    assertSameOrigin(record, relay.url);
  });

  test('a file dropped on the page uploads like a picked one', async () => {
    const record = await open();
    await record.page.evaluate(`(() => {
      const data = new DataTransfer();
      data.items.add(new File([new Uint8Array(300000).fill(7)], 'dropped.bin', { type: 'application/octet-stream' }));
      for (const type of ['dragenter', 'dragover', 'drop']) {
        document.querySelector('main').dispatchEvent(new DragEvent(type, { dataTransfer: data, bubbles: true, cancelable: true }));
      }
    })()`);
    await assertStored(record.page, { path: '', name: 'dropped.bin', bytes: Buffer.alloc(300000, 7) });
    assertNoPageErrors(record);
    assertSameOrigin(record, relay.url);
  });

  test('cut off mid-upload: the row says it is offline, retries, and finishes once the server is back, without sending everything again', async () => {
    const f = await file('cut.bin', 16 * MiB, 13);
    const record = await open();
    const { page } = record;
    const start = relay.upstreamBytes;
    relay.setRate(4 * MiB);
    await pick(page, [f]);
    await poll('6 MiB relayed', () => relay.upstreamBytes - start > 6 * MiB, WAIT_MS);
    await relay.cut();
    const row = uploadRow(page, f.name);
    await row.getByRole('status').filter({ hasText: /^Offline, retrying in \d+ s$/ }).waitFor({ timeout: WAIT_MS });
    const [id] = await createdUploads(record);
    const offsetAtCut = (await serverOffset(id as string)) as number;
    assert.ok(offsetAtCut > 0 && offsetAtCut < f.bytes.length, `the server kept ${offsetAtCut} bytes`);
    const beforeRestore = relay.upstreamBytes;
    relay.setRate(null);
    await relay.restore();
    await assertStored(page, f);
    const afterRestore = relay.upstreamBytes - beforeRestore;
    // What went after the cut: the rest from the server's offset, plus request heads.
    assert.ok(afterRestore < f.bytes.length - offsetAtCut + 64 * 1024, `sent ${afterRestore} bytes after the cut for ${f.bytes.length - offsetAtCut} missing`);
    assert.ok(relay.upstreamBytes - start < 2 * f.bytes.length, 'less than the whole file was sent twice');
    assert.deepEqual(await createdUploads(record), [id], 'one upload, continued');
    assertSameOrigin(record, relay.url);
  });

  // A stop, not kill -9: a cut PATCH's bytes count once the server has noticed the cut (here at
  // its shutdown); after kill -9 only offsets the store had made durable do (its checkpoints).
  test('the server stopped mid-upload and started again: the page heals by itself and sends only the rest', async () => {
    const f = await file('restart.bin', 16 * MiB, 18);
    const dataDir = await mkdtemp(join(tmpdir(), 'sluice-page-restart-'));
    const env = { DATA_DIR: dataDir, FSYNC: 'true', SHUTDOWN_GRACE_MS: '0' };
    let proc = await spawnServer(env);
    const own = await startRelay(Number(new URL(proc.url).port));
    try {
      const record = await openPage(browser);
      const { page } = record;
      await page.goto(`${own.url}/`);
      own.setRate(4 * MiB);
      await pick(page, [f]);
      await poll('6 MiB relayed', () => own.upstreamBytes > 6 * MiB, WAIT_MS);
      await proc.stop('SIGTERM');
      const row = uploadRow(page, f.name);
      await row.getByRole('status').filter({ hasText: /^Offline, retrying in \d+ s$/ }).waitFor({ timeout: WAIT_MS });
      const sentBefore = own.upstreamBytes;
      proc = await spawnServer(env);
      own.setTarget(Number(new URL(proc.url).port));
      own.setRate(null);
      await waitForState(row, 'done');
      assert.equal(await row.locator('.sha256').innerText(), sha256(f.bytes));
      const id = ((await row.getByRole('link').getAttribute('href')) as string).slice('/files/'.length);
      const listed = JSON.parse((await rawRequest(proc.url, '/files')).body.toString('utf8')) as { files: { id: string; sha256: string }[] };
      assert.equal(listed.files.find((x) => x.id === id)?.sha256, sha256(f.bytes), 'stored by the restarted server, byte-exact');
      assert.ok(own.upstreamBytes - sentBefore < f.bytes.length, `sent ${own.upstreamBytes - sentBefore} bytes after the restart: less than the whole file`);
      assertSameOrigin(record, own.url);
      await record.context.close();
    } finally {
      await own.close();
      await proc.stop('SIGKILL');
      await rm(dataDir, { recursive: true, force: true });
    }
  });

  test('reload mid-upload, pick the same file again: it resumes from the server offset', async () => {
    const f = await file('reload.bin', 16 * MiB, 14);
    const record = await open();
    const { page } = record;
    const start = relay.upstreamBytes;
    relay.setRate(4 * MiB);
    await pick(page, [f]);
    await poll('5 MiB relayed', () => relay.upstreamBytes - start > 5 * MiB, WAIT_MS);
    await page.reload();
    const [id] = await createdUploads(record);
    // What the relay still holds of the cut PATCH goes on to the server: let it drain.
    relay.setRate(null);
    await quiet();
    assert.ok(((await serverOffset(id as string)) as number) > 0, 'the server kept bytes of the first page');
    const sinceReload = record.requests.length;
    await pick(page, [f]);
    const row = uploadRow(page, f.name);
    await row.getByRole('status').filter({ hasText: /^Resuming at / }).or(row.and(page.locator('[data-state="done"]'))).first().waitFor({ timeout: WAIT_MS });
    await assertStored(page, f);
    assert.deepEqual(await createdUploads(record), [id], 'the same upload, found by its fingerprint');
    assert.ok(relay.upstreamBytes - start < 2 * f.bytes.length, 'less than the whole file was sent twice');
    // After the reload: one HEAD for the offset, and the first PATCH starts there, not at 0.
    const after = record.requests.slice(sinceReload);
    const head = after.find((r) => r.method() === 'HEAD' && new URL(r.url()).pathname === `/uploads/${id}`);
    const offset = await (await head?.response())?.headerValue('upload-offset');
    assert.ok(Number(offset) > 0, `HEAD said ${offset}`);
    assert.equal(after.find((r) => r.method() === 'PATCH')?.headers()['upload-offset'], offset, 'the first PATCH after the reload went on from the server offset');
    assert.equal(await page.evaluate("localStorage.getItem('sluice.uploads')"), '{}', 'the fingerprint is forgotten once done');
    assertNoPageErrors(record);
    assertSameOrigin(record, relay.url);
  });

  test('pause stops sending; resume goes on from the server offset', async () => {
    const f = await file('pause.bin', 12 * MiB, 15);
    const record = await open();
    const { page } = record;
    const start = relay.upstreamBytes;
    relay.setRate(4 * MiB);
    await pick(page, [f]);
    await poll('3 MiB relayed', () => relay.upstreamBytes - start > 3 * MiB, WAIT_MS);
    const row = uploadRow(page, f.name);
    await row.getByRole('button', { name: `Pause ${f.name}` }).click();
    await waitForState(row, 'paused');
    assert.match(await row.getByRole('status').innerText(), /^Paused at /);
    // Keyboard users keep their place: the focus moved to Resume.
    assert.equal(await page.evaluate("document.activeElement?.getAttribute('aria-label')"), `Resume ${f.name}`);
    // Bytes already in socket buffers still arrive; after that, nothing moves while paused.
    relay.setRate(null);
    await quiet();
    const paused = relay.upstreamBytes;
    await page.waitForTimeout(1000);
    assert.equal(relay.upstreamBytes, paused, 'nothing is sent while paused');
    await page.keyboard.press('Enter');
    await assertStored(page, f);
    assert.ok(relay.upstreamBytes - start < 2 * f.bytes.length);
    assertNoPageErrors(record);
    assertSameOrigin(record, relay.url);
  });

  test('cancel removes the upload from the server: nothing of it is left', async () => {
    const f = await file('cancel.bin', 12 * MiB, 16);
    const record = await open();
    const { page } = record;
    const start = relay.upstreamBytes;
    relay.setRate(4 * MiB);
    await pick(page, [f]);
    await poll('3 MiB relayed', () => relay.upstreamBytes - start > 3 * MiB, WAIT_MS);
    const [id] = (await createdUploads(record)) as [string];
    assert.ok(((await serverOffset(id)) ?? 0) >= 0, 'the upload exists before the cancel');
    const row = uploadRow(page, f.name);
    await row.getByRole('button', { name: `Cancel ${f.name}` }).click();
    await waitForState(row, 'cancelled');
    await row.getByRole('status').filter({ hasText: /^Cancelled$/ }).waitFor({ timeout: WAIT_MS });
    relay.setRate(null);
    assert.equal(await serverOffset(id), null, 'HEAD /uploads/<id> finds nothing');
    assert.equal((await rawRequest(server.url, `/files/${id}`)).status, 404);
    assert.equal((await storedFiles(server.url)).has(id), false);
    const left = (await readdir(server.dataDir, { recursive: true })).filter((name) => String(name).includes(id));
    assert.deepEqual(left, [], 'no file of the upload is left in DATA_DIR');
    assert.equal(await row.getByRole('button').count(), 0, 'a cancelled row has no buttons left');
    assertNoPageErrors(record);
    assertSameOrigin(record, relay.url);
  });

  test('three uploads at a time: a fourth file waits its turn, then all four finish', async () => {
    const files = await Promise.all([1, 2, 3, 4].map((n) => file(`queue-${n}.bin`, 2 * MiB + n, 20 + n)));
    const record = await open();
    const { page } = record;
    let inFlight = 0;
    let most = 0;
    const isPatch = (r: { method(): string }): boolean => r.method() === 'PATCH';
    page.on('request', (r) => {
      if (!isPatch(r)) return;
      inFlight += 1;
      most = Math.max(most, inFlight);
    });
    page.on('requestfinished', (r) => void (isPatch(r) && (inFlight -= 1)));
    page.on('requestfailed', (r) => void (isPatch(r) && (inFlight -= 1)));
    relay.setRate(2 * MiB);
    await pick(page, files);
    await poll('three running', async () => (await page.locator('li.upload[data-state="running"]').count()) === 3, WAIT_MS);
    assert.equal(await page.locator('li.upload[data-state="waiting"]').count(), 1, 'the fourth waits');
    relay.setRate(null);
    for (const f of files) await assertStored(page, f);
    assert.ok(most <= 3, `at most three PATCHes at once (saw ${most})`);
    assertNoPageErrors(record);
    assertSameOrigin(record, relay.url);
  });

  test('a hostile filename is shown as text and runs nothing, in the row and in the list', async () => {
    const f = { path: '', name: HOSTILE, bytes: seededBytes(17, 64 * 1024) };
    const record = await open();
    const { page } = record;
    await pick(page, [f]);
    await assertStored(page, f);
    await fileRow(page, HOSTILE).waitFor({ timeout: WAIT_MS });
    assert.equal(await uploadRow(page, HOSTILE).locator('.name').innerText(), HOSTILE);
    assert.equal(await page.locator('img').count(), 0);
    assert.deepEqual(record.dialogs, [], 'no alert ran');
    assertNoPageErrors(record);
    assertSameOrigin(record, relay.url);
  });

  test('the README screenshot: the page mid-upload', { skip: process.env.UPDATE_SCREENSHOT === '1' ? false : 'set UPDATE_SCREENSHOT=1 to take web/screenshot.png again' }, async () => {
    const stored = await file('tokenizer.json', 2 * MiB, 31);
    const big = await Promise.all([
      file('llama-3.1-8b-instruct.Q4_K_M.gguf', 48 * MiB, 32),
      file('model-00001-of-00004.safetensors', 40 * MiB, 33),
      file('train-00000-of-00128.parquet', 36 * MiB, 34),
      file('model-00002-of-00004.safetensors', 32 * MiB, 35),
    ]);
    const record = await open();
    const { page } = record;
    await pick(page, [stored]);
    await assertStored(page, stored);
    await page.setViewportSize({ width: 720, height: 1020 });
    relay.setRate(6 * MiB);
    await pick(page, big);
    await poll('12 MiB relayed', () => relay.upstreamBytes > 12 * MiB, WAIT_MS);
    await page.getByRole('button', { name: `Pause ${big[2]?.name}` }).click();
    await page.waitForTimeout(2500); // rates and times left need a moment of progress
    await page.screenshot({ path: SCREENSHOT });
    relay.setRate(null);
    await page.getByRole('button', { name: `Resume ${big[2]?.name}` }).click();
    for (const f of big) await assertStored(page, f);
  });
});
