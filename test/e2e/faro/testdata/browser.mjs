// Opens each page in headless Chromium, waits for the Faro SDK on it to have
// sent everything (every /collect answered, none for 0.7 s), and prints
// {"<page>": {"traceId": ..., "collect": [statuses]}}. Driven by faro_test.go:
//   node browser.mjs <collect path> <page URL>...
import { chromium } from 'playwright-core';

const [collectPath, ...pages] = process.argv.slice(2);
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--no-first-run'],
});
const out = {};
// The pages run side by side: each as one user's tab.
async function visit(url) {
  {
    const page = await browser.newPage();
    const statuses = [];
    const errors = [];
    let pending = 0;
    let last = Date.now();
    const isCollect = (r) => new URL(r.url()).pathname.endsWith(collectPath) && r.method() === 'POST';
    page.on('pageerror', (e) => errors.push(`page error: ${e.message}`));
    page.on('console', (m) => { if (m.type() === 'error') errors.push(`console: ${m.text()}`); });
    page.on('request', (r) => { if (isCollect(r)) { pending++; last = Date.now(); } });
    page.on('requestfinished', async (r) => {
      if (!isCollect(r)) return;
      const resp = await r.response();
      statuses.push(resp ? resp.status() : 0);
      pending--; last = Date.now();
    });
    page.on('requestfailed', (r) => {
      if (!isCollect(r)) return;
      statuses.push(`failed: ${r.failure()?.errorText}`);
      pending--; last = Date.now();
    });
    await page.goto(url);
    const result = await page.waitForFunction(() => window.__faroDone, null, { timeout: 15000 }).catch((e) => {
      throw new Error(`${url}: the page never finished (${e.message}); page errors: ${errors.join('; ')}`);
    });
    const info = await result.jsonValue();
    // Hiding the page makes the SDK report the Web Vitals it still holds.
    await page.evaluate(() => {
      Object.defineProperty(document, 'visibilityState', { value: 'hidden', configurable: true });
      document.dispatchEvent(new Event('visibilitychange'));
    });
    while (pending > 0 || Date.now() - last < 700) await new Promise((r) => setTimeout(r, 100));
    out[url] = { ...info, collect: statuses, errors };
    await page.close();
  }
}
try {
  await Promise.all(pages.map(visit));
} finally {
  await browser.close();
}
console.log(JSON.stringify(out));
