/**
 * Shared Chromium setup of the console tests: one browser per file, a page that records page
 * errors and console errors, and sign-in with the admin token.
 */
import { chromium, type Browser, type Page } from 'playwright-core';
import type { TestServer } from '../helpers/server.js';

export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
export const ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--disable-quic'];
export const UI_TIMEOUT = 15_000;

export interface ConsolePage {
  browser: Browser;
  page: Page;
  /** Uncaught page errors and console errors other than the deliberate 4xx answers. */
  errors: string[];
  close(): Promise<void>;
}

export async function openConsole(server: TestServer, viewport = { width: 1400, height: 1000 }): Promise<ConsolePage> {
  // A fresh profile directory per launch (playwright-core creates and removes it).
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: ARGS });
  const context = await browser.newContext({ viewport });
  const page = await context.newPage();
  page.setDefaultTimeout(UI_TIMEOUT);
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(e.message));
  page.on('console', (m) => {
    if (m.type() === 'error' && !/Failed to load resource: the server responded with a status of 4\d\d/.test(m.text())) errors.push(m.text());
  });
  page.on('dialog', (d) => void d.accept());
  await page.goto(`${server.url}/console`);
  await page.getByLabel('Admin token').fill(server.adminToken);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.locator('#nav').waitFor();
  return { browser, page, errors, close: () => browser.close() };
}

/** Widest element of the page compared with the viewport: > 0 means a horizontal scroll bar. */
export async function horizontalOverflow(page: Page): Promise<{ overflow: number; culprits: string[] }> {
  return page.evaluate(() => {
    const width = document.documentElement.clientWidth;
    const overflow = document.documentElement.scrollWidth - width;
    const culprits: string[] = [];
    if (overflow > 0) {
      for (const el of document.querySelectorAll('body *')) {
        const r = el.getBoundingClientRect();
        if (r.right > width + 1 && r.width > 0) culprits.push(`${el.tagName.toLowerCase()}#${el.id}.${el.className} right=${Math.round(r.right)}`);
        if (culprits.length > 8) break;
      }
    }
    return { overflow, culprits };
  });
}
