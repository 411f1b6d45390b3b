// Browser test of the Logs page, driven by logs_test.go against a real `vispyr serve`
// holding a traced request and its service's log lines. Usage:
//   node logs.mjs logs <base URL> <screenshot dir> <json expectations>
// Exits non-zero, naming the failed step, when the page does not show what a user must see.
import { openBrowser, finish } from './browser.mjs';

const [, base, shots, expectJSON] = process.argv.slice(2);
const want = JSON.parse(expectJSON || '{}');
let step = 'launch';
const b = await openBrowser({
  shots,
  timeout: 15000,
  badResponse: (r) => {
    // A 4xx from the Loki API means the page sent a query the backend refused: a UI bug.
    const api = /^\/(loki|tempo)\//.test(new URL(r.url()).pathname);
    return r.status() >= 500 || (api && r.status() >= 400 && r.status() !== 404);
  },
});
const { page, shot } = b;
const log = (...a) => console.log('[logs]', ...a);
const expect = (cond, msg) => {
  if (!cond) throw new Error(msg);
};
const selector = `{service_name="${want.service}"}`;

async function run() {
  step = 'the lines of a stream show';
  await page.goto(base + '/logs?from=15m&q=' + encodeURIComponent(selector));
  const lines = page.getByTestId('log-lines').getByTestId('log-line');
  await page.waitForFunction((n) => document.querySelectorAll('[data-testid=log-lines] [data-testid=log-line]').length === n, want.lines);
  expect((await lines.first().innerText()).includes('checkout answered 402'), 'the newest line is not first');

  step = 'the volume histogram draws every line, by level';
  const vol = page.getByTestId('log-volume');
  await vol.locator('rect.bar').first().waitFor();
  await page.waitForFunction((n) => document.querySelector('[data-testid=log-volume]')?.getAttribute('data-total') === String(n), want.lines);
  const legend = await vol.innerText();
  for (const l of ['error', 'warn', 'info']) expect(legend.includes(l), `histogram legend lacks level ${l}: ${legend}`);
  await shot('20-logs');
  log('lines and histogram ok');

  step = 'a line expands to its labels and structured metadata';
  const traced = lines.filter({ hasText: want.tracedLine }).first();
  await traced.locator('.log-text').click();
  const fields = traced.getByTestId('log-fields');
  await fields.waitFor();
  const text = await fields.innerText();
  for (const s of ['service_name', want.service, 'trace_id', want.traceID, 'span_id', want.spanID]) {
    expect(text.includes(s), `expanded line does not show ${s}: ${text}`);
  }
  await shot('21-log-expanded');
  log('expand ok');

  step = 'completion offers label names and values';
  const box = page.getByTestId('logql');
  await box.fill('');
  await box.pressSequentially('{servi');
  await page.getByTestId('logql-suggestions').getByText('service_name', { exact: true }).waitFor();
  await box.press('Tab');
  await box.pressSequentially('"ui-logs');
  await page.getByTestId('logql-suggestions').getByText(want.service, { exact: true }).waitFor();
  await box.press('Tab');
  expect((await box.inputValue()) === `{service_name="${want.service}"`, `completed to ${await box.inputValue()}`);
  await box.pressSequentially('} |= "declined"');
  await box.press('Enter');
  await page.waitForFunction(() => document.querySelectorAll('[data-testid=log-lines] [data-testid=log-line]').length === 1);
  log('completion ok');

  step = "a line's trace link opens the trace";
  await page.getByTestId('log-lines').getByTestId('log-trace-link').first().click();
  await page.waitForURL((u) => u.pathname === '/traces' && u.searchParams.get('trace') === want.traceID);
  const rows = page.getByTestId('waterfall').locator('.wf-row');
  await rows.first().waitFor();
  expect((await rows.count()) === 2, `waterfall shows ${await rows.count()} spans, want 2`);
  log('trace link ok');

  step = "a span's logs link opens its lines";
  await rows.filter({ hasText: 'charge card' }).first().click();
  await page.getByTestId('span-logs-link').click();
  await page.waitForURL((u) => u.pathname === '/logs' && (u.searchParams.get('q') ?? '').includes(want.spanID));
  await page.waitForFunction((n) => document.querySelectorAll('[data-testid=log-lines] [data-testid=log-line]').length === n, want.traced);
  await shot('22-span-logs');
  log('span logs ok');

  step = 'live tail shows a line pushed while watching';
  await page.goto(base + '/logs?from=15m&q=' + encodeURIComponent(selector));
  await lines.first().waitFor();
  await page.getByTestId('live-tail').click();
  await page.getByText('Live ·').waitFor();
  const marker = `live line ${Date.now()}`;
  // Pushed after the tail opened: it can only arrive through the websocket.
  await page.waitForTimeout(500);
  const r = await fetch(want.pushURL, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ streams: [{ stream: { service_name: want.service, env: 'e2e' }, values: [[String(Date.now() * 1e6), `level=info msg="${marker}"`]] }] }),
  });
  expect(r.ok, `push during live tail: HTTP ${r.status}`);
  await page.getByTestId('log-lines').getByText(marker).waitFor();
  await shot('23-live-tail');
  log('live tail ok');

  step = "the service page links to the service's logs";
  await page.goto(base + `/service/${encodeURIComponent(want.service)}?from=15m`);
  await page.getByTestId('service-logs-link').click();
  await page.waitForURL((u) => u.pathname === '/logs' && u.searchParams.get('q') === selector);
  // Every line pushed so far: the test's and the live one.
  await page.waitForFunction((n) => document.querySelectorAll('[data-testid=log-lines] [data-testid=log-line]').length === n, want.lines + 1);
  log('service logs ok');
}

await finish(b, 'failure-logs', async () => {
  await run();
}, () => step);
