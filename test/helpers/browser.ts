/**
 * Debian's Chromium, headless, driven by playwright-core (never a downloaded browser). Where
 * Chromium or playwright-core is missing the browser suites skip with the reason printed.
 */
import { accessSync, constants } from 'node:fs';
import type { Browser, BrowserContext, BrowserContextOptions, Page, Request } from 'playwright-core';

/** CHROMIUM_PATH overrides; Debian's package installs /usr/bin/chromium (`.ci/run` installs it). */
export const CHROMIUM_PATH = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

/**
 * The flags of the machine notes: no sandbox (we run as root), no GPU, and none of Chromium's
 * own traffic (component updates, sync, QUIC probes, first-run pages) on a closed network.
 * playwright-core gives every launch a fresh temporary --user-data-dir of its own.
 */
const FLAGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

/** Why the browser suites cannot run here, or null when they can. */
export async function browserUnavailable(): Promise<string | null> {
  try {
    accessSync(CHROMIUM_PATH, constants.X_OK);
  } catch {
    return `no Chromium at ${CHROMIUM_PATH} (apt-get install chromium, or set CHROMIUM_PATH)`;
  }
  try {
    await import('playwright-core');
  } catch {
    return 'playwright-core is not installed (npm ci)';
  }
  return null;
}

export async function launchChromium(): Promise<Browser> {
  const { chromium } = await import('playwright-core');
  return chromium.launch({ executablePath: CHROMIUM_PATH, headless: true, args: FLAGS, timeout: 60_000 });
}

/** Everything a page did that a test may want to check afterwards. */
export interface PageRecord {
  readonly page: Page;
  readonly context: BrowserContext;
  /** Every request the context made (page and service worker), in order. */
  readonly requests: Request[];
  /** Uncaught exceptions and console errors, Content-Security-Policy violations among them. */
  readonly errors: string[];
  /** Messages of alert/confirm/prompt dialogs that opened. */
  readonly dialogs: string[];
}

/**
 * A fresh context (its own storage) and page, recording requests, errors and dialogs.
 * `onDialog` answers dialogs (default: dismiss).
 */
export async function openPage(browser: Browser, options: BrowserContextOptions = {}, onDialog: (message: string) => boolean = () => false): Promise<PageRecord> {
  const context = await browser.newContext({ viewport: { width: 900, height: 900 }, acceptDownloads: true, ...options });
  const page = await context.newPage();
  const record: PageRecord = { page, context, requests: [], errors: [], dialogs: [] };
  context.on('request', (r) => record.requests.push(r));
  page.on('pageerror', (err) => record.errors.push(`pageerror: ${err.message}`));
  page.on('console', (m) => {
    // Failed loads (a 404 the test provoked, a refused connection while the server is cut) are
    // the test's own doing; anything else logged as an error is a defect of the page.
    if (m.type() === 'error' && !/^Failed to load resource/.test(m.text())) record.errors.push(`console: ${m.text()}`);
  });
  page.on('dialog', (d) => {
    record.dialogs.push(d.message());
    void (onDialog(d.message()) ? d.accept() : d.dismiss());
  });
  return record;
}
