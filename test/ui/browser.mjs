// What every browser test shares: one headless Chromium on a throwaway profile
// with page errors, console errors and refused requests collected, and a verdict
// that names the step that failed, saves a screenshot of it and sets the exit code.
import { chromium } from 'playwright-core';
import { mkdtempSync, mkdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const chromiumArgs = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-quic',
  '--no-first-run', '--disable-component-update', '--disable-sync', '--disable-dev-shm-usage'];

// openBrowser starts Chromium. badResponse says which answers are UI bugs (by
// default any 5xx); watchConsole also counts console errors other than failed
// loads, which badResponse judges by status instead.
export async function openBrowser({ shots, timeout, badResponse = (r) => r.status() >= 500, watchConsole = true, shotPrefix = '' }) {
  mkdirSync(shots, { recursive: true });
  const profileDir = mkdtempSync(join(tmpdir(), 'vispyr-chromium-'));
  const ctx = await chromium.launchPersistentContext(profileDir, {
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: chromiumArgs,
    viewport: { width: 1440, height: 900 },
    colorScheme: 'light',
  });
  const page = ctx.pages()[0] ?? (await ctx.newPage());
  page.setDefaultTimeout(timeout);
  const errors = [];
  page.on('pageerror', (e) => errors.push(`page error: ${e.message}`));
  if (watchConsole) {
    page.on('console', (m) => {
      if (m.type() === 'error' && !m.text().startsWith('Failed to load resource')) errors.push(`console error: ${m.text()}`);
    });
  }
  page.on('response', (r) => {
    if (badResponse(r)) errors.push(`HTTP ${r.status()} from ${r.url()}`);
  });
  const shot = (name) => page.screenshot({ path: join(shots, `${shotPrefix}${name}.png`), fullPage: true });
  return { ctx, page, errors, shot, profileDir };
}

// finish runs the test's steps and exits: non-zero, naming currentStep(), when
// a step throws, and also when the browser saw errors though every element
// showed up (backend refusals and script errors are bugs a user would hit).
export async function finish(b, failureShot, steps, currentStep) {
  let code = 0;
  try {
    await steps();
  } catch (e) {
    console.error(`FAIL at step "${currentStep()}": ${e.message}`);
    await b.shot(failureShot).catch(() => {});
    code = 1;
  }
  const bad = b.errors.filter((e) => !e.includes('favicon'));
  if (bad.length) {
    console.error('errors seen by the browser:\n  ' + bad.join('\n  '));
    code = 1;
  }
  await b.ctx.close();
  rmSync(b.profileDir, { recursive: true, force: true });
  process.exit(code);
}
