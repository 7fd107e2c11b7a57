/** What the browser suites check on sluice's page, shared by web-browser and web-uploads tests. */
import { strict as assert } from 'node:assert';
import type { Locator, Page } from 'playwright-core';
import type { PageRecord } from './browser.js';
import { rawRequest } from './http.js';

/** Generous bounds for a shared 2-core machine; they only keep a broken run from hanging. */
export const WAIT_MS = 60_000;

/** The upload row of the file named `name` (names are text: matched exactly). */
export function uploadRow(page: Page, name: string): Locator {
  return page.locator('li.upload').filter({ has: page.locator('.name').getByText(name, { exact: true }) });
}

/** The stored-files row of `name`. */
export function fileRow(page: Page, name: string): Locator {
  return page.locator('li.file').filter({ has: page.locator('.name').getByText(name, { exact: true }) });
}

/** Waits until the row's `data-state` is `state` (waiting, running, retrying, paused, done, failed, cancelled). */
export async function waitForState(row: Locator, state: string, timeout = WAIT_MS): Promise<void> {
  await row.and(row.page().locator(`[data-state="${state}"]`)).waitFor({ timeout });
}

/** The record list the server has, by id. */
export async function storedFiles(base: string, token?: string): Promise<Map<string, { id: string; filename: string | null; size: number; sha256: string }>> {
  const res = await rawRequest(base, '/files', { headers: token === undefined ? {} : { authorization: `Bearer ${token}` } });
  assert.equal(res.status, 200);
  const { files } = JSON.parse(res.body.toString('utf8')) as { files: { id: string; filename: string | null; size: number; sha256: string }[] };
  return new Map(files.map((f) => [f.id, f]));
}

/** Every request the page (and its service worker) made went to `origin`: nothing left it. */
export function assertSameOrigin(record: PageRecord, origin: string): void {
  assert.ok(record.requests.length > 0, 'the page made requests');
  const elsewhere = record.requests.map((r) => r.url()).filter((u) => new URL(u).origin !== origin);
  assert.deepEqual(elsewhere, [], `requests to other origins than ${origin}`);
}

/** No uncaught error, console error or CSP violation on the page. */
export function assertNoPageErrors(record: PageRecord): void {
  assert.deepEqual(record.errors, [], 'errors on the page');
}
