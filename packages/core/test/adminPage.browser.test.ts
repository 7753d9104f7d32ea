// The status page in a real browser (Debian chromium driven by playwright-core): a service with
// a breaker and two instances, faults injected, and the page must show the ejection and the
// open breaker; clicking Isolate must isolate the breaker in the service. Waits on selectors,
// never on wall-clock time. Also writes the screenshots docs/operations.md shows.
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { type Browser, chromium } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startAdminDemo } from './adminDemo.js';

const CHROMIUM = '/usr/bin/chromium';
const have = existsSync(CHROMIUM);
if (!have && process.env.CI) throw new Error(`chromium missing at ${CHROMIUM}; CI installs it`);
const images = join(import.meta.dirname, '../../../docs/images');

describe.skipIf(!have)('status page in Chromium', () => {
  let browser: Browser;
  beforeAll(async () => {
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: [
        '--no-sandbox',
        '--headless',
        '--disable-gpu',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
        '--no-first-run',
      ],
    });
  });
  afterAll(async () => {
    await browser?.close();
  });

  it('shows the ejection and the open breaker, and Isolate isolates the breaker', async () => {
    const demo = await startAdminDemo();
    try {
      const page = await browser.newPage({ viewport: { width: 1400, height: 820 } });
      const errors: string[] = [];
      page.on('pageerror', (e) => errors.push(e.message));
      await page.goto(demo.url);
      await page.waitForSelector('.pill.live');
      await demo.traffic(10);
      await page.waitForSelector(`[data-instance="${demo.a.id}"][data-state="healthy"]`);
      await page.waitForSelector('[data-breaker="inventory"][data-state="closed"]');
      mkdirSync(images, { recursive: true });
      await page.screenshot({ path: join(images, 'status-page-healthy.png') });

      // Instance a fails: round robin alternates, so the breaker sees no 5 failures in a row,
      // but the outlier detector ejects a after its 5th consecutive failure.
      demo.a.failing = true;
      await demo.traffic(20);
      await page.waitForSelector(`[data-instance="${demo.a.id}"][data-state="ejected"]`);
      await page.waitForSelector(`[data-event="ejected"][data-source="inventory"]`);
      // Now b fails too: the breaker opens.
      demo.b.failing = true;
      await demo.traffic(10);
      await page.waitForSelector('[data-breaker="inventory"][data-state="open"]');
      await page.waitForSelector('[data-event="state-change"][data-source="inventory"]');
      await page.screenshot({ path: join(images, 'status-page-faults.png') });

      // Heal, reset through the page, then isolate through the page.
      demo.a.failing = false;
      demo.b.failing = false;
      await page.click('[data-action="reset"][data-breaker="inventory"]');
      await page.waitForSelector('[data-breaker="inventory"][data-state="closed"]');
      expect(demo.breaker.state).toBe('closed');
      await page.click('[data-action="isolate"][data-breaker="inventory"]');
      await page.waitForSelector(
        '[data-breaker="inventory"][data-state="open"][data-isolated="true"]',
      );
      expect(demo.breaker.state).toBe('open');
      expect(demo.breaker.isolated).toBe(true);
      await page.click(`[data-action="restore"][data-id="${demo.a.id}"]`);
      await page.waitForSelector(`[data-instance="${demo.a.id}"][data-state="healthy"]`);
      expect(demo.balancer.isEjected(demo.a.id)).toBe(false);
      await page.waitForSelector('[data-event="control"]');
      await page.screenshot({ path: join(images, 'status-page-isolated.png') });

      // Shutdown ends the stream cleanly and the page says so.
      demo.status.close();
      await page.waitForSelector('.pill.closed');
      expect(errors).toEqual([]);
    } finally {
      await demo.close();
    }
  });

  it('asks for the bearer token when one is set, then connects and controls with it', async () => {
    const token = 'page-token-0123456789abcdef';
    const demo = await startAdminDemo({ token });
    try {
      const page = await browser.newPage({ viewport: { width: 1200, height: 700 } });
      await page.goto(demo.url);
      await page.waitForSelector('.pill.unauthorized');
      await page.fill('#token', 'wrong-token-0123456789');
      await page.click('#auth button');
      await page.waitForSelector('.pill.unauthorized');
      await page.fill('#token', token);
      await page.click('#auth button');
      await page.waitForSelector('.pill.live');
      await page.waitForSelector('[data-breaker="inventory"][data-state="closed"]');
      await page.click('[data-action="isolate"][data-breaker="inventory"]');
      await page.waitForSelector('[data-breaker="inventory"][data-isolated="true"]');
      expect(demo.breaker.isolated).toBe(true);
      await page.waitForSelector('[data-event="control"]');
      expect(await page.textContent('[data-event="control"] .msg')).toBe('isolate by token');
    } finally {
      await demo.close();
    }
  });
});
