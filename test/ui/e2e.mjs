// Browser end-to-end test of the Vispyr UI, driven by e2e_test.go against a real
// `vispyr serve`. Usage:
//   node e2e.mjs <phase: empty|full> <base URL> <screenshot dir> [json expectations]
// Exits non-zero, naming the failed step, when the UI does not show what a user must see.
import { openBrowser, finish } from './browser.mjs';

const [phase, base, shots, expectJSON] = process.argv.slice(2);
const want = JSON.parse(expectJSON || '{}');
let step = 'launch';
const b = await openBrowser({
  shots,
  // generous: CI runs other packages' tests on the same 2 cores
  timeout: 45000,
  badResponse: (r) => {
    // A 400/422 from the API means a page sent a query the backend refused: a UI bug.
    const api = /\/prom\//.test(new URL(r.url()).pathname);
    return r.status() >= 500 || (api && (r.status() === 400 || r.status() === 422));
  },
});
const { page, shot } = b;
const log = (...a) => console.log(`[e2e ${phase}]`, ...a);

async function run() {
  if (phase === 'empty') {
    step = 'empty state';
    await page.goto(base + '/');
    await page.getByTestId('onboarding').waitFor();
    const text = await page.getByTestId('onboarding').innerText();
    for (const s of ['4317', '4318', 'OTEL_EXPORTER_OTLP_ENDPOINT', 'OTEL_SERVICE_NAME', '/api/v1/write', '4040', 'telemetrygen']) {
      if (!text.includes(s)) throw new Error(`onboarding does not mention ${s}`);
    }
    await shot('00-empty-state');
    log('onboarding shown');
    return;
  }

  step = 'home lists the services';
  await page.goto(base + '/?from=15m');
  const table = page.getByTestId('services-table');
  for (const svc of want.services ?? []) {
    await table.getByText(svc, { exact: true }).waitFor();
  }
  step = 'home shows recent traces';
  await page.getByTestId('recent-traces').getByTestId('trace-row').first().waitFor();
  step = 'home shows a flame graph';
  await page.getByTestId('home-profile').getByTestId('flamegraph').waitFor();
  step = 'home shows a trace waterfall';
  await page.getByTestId('home-waterfall').locator('.wf-row').first().waitFor();
  step = 'home answers CPU and memory from node_exporter';
  for (const id of ['stat-cpu', 'stat-mem']) {
    await page.waitForFunction((id) => /\d%$/.test(document.querySelector(`[data-testid=${id}] .stat-value`)?.textContent ?? ''), id);
  }
  await page.getByTestId('host-panel').locator('.uplot').first().waitFor();
  await page.waitForTimeout(500);
  await shot('01-home');
  log('home ok');

  step = 'a trace opens in the waterfall';
  await page.goto(base + '/traces');
  const rows = page.getByTestId('search-results').getByTestId('trace-row');
  await rows.first().waitFor();
  await rows.first().click();
  const wf = page.getByTestId('waterfall');
  await wf.waitFor();
  const spanRows = wf.locator('.wf-row');
  await spanRows.first().waitFor();
  const n = await spanRows.count();
  if (n < (want.minSpans ?? 2)) throw new Error(`waterfall shows ${n} spans, want at least ${want.minSpans ?? 2}`);
  await spanRows.nth(n - 1).click();
  await page.getByTestId('span-details').waitFor();
  const details = await page.getByTestId('span-details').innerText();
  if (!/span attributes|resource/i.test(details)) throw new Error('span details show no attributes');
  await shot('02-trace-waterfall');
  log(`waterfall ok: ${n} spans`);

  step = 'TraceQL autocomplete suggests tags';
  const box = page.getByTestId('traceql');
  await box.fill('');
  await box.pressSequentially('{ resource.serv');
  await page.getByTestId('suggestions').getByText('resource.service.name').waitFor();
  await box.press('Tab');
  await box.pressSequentially(' = ');
  const sugg = page.getByTestId('suggestions');
  await sugg.getByText(want.services?.[0] ?? '', { exact: false }).first().waitFor();
  await shot('03-traceql-autocomplete');
  await box.press('Tab');
  await box.pressSequentially(' }');
  await box.press('Enter');
  await page.getByTestId('search-results').getByTestId('trace-row').first().waitFor();
  log('autocomplete ok');

  if (want.hotService) {
    step = 'a flame graph renders the known hot function';
    await page.goto(base + `/profiles?service=${encodeURIComponent(want.hotService)}`);
    const canvas = page.getByTestId('profile-panel').getByTestId('flamegraph');
    await canvas.waitFor();
    // The canvas lists the frame labels it drew, so the test checks pixels that carry text.
    await page.waitForFunction(
      ([fn]) => [...document.querySelectorAll('[data-testid=flamegraph]')].some((c) => (c.dataset.labels ?? '').includes(fn)),
      [want.hotFunction],
    );
    await page.getByTestId('profile-panel').getByText(want.hotFunction, { exact: false }).first().waitFor();
    await shot('04-profile-flamegraph');
    log('flame graph ok');

    step = 'flame graph zoom and search';
    const panel = page.getByTestId('profile-panel');
    await canvas.click({ position: { x: 4, y: 18 + 9 } }); // first frame below the root
    await panel.locator('.zoombar').waitFor();
    await panel.getByText('reset zoom').click();
    await panel.locator('.zoombar').waitFor({ state: 'detached' });
    await panel.getByPlaceholder('Search frames…').fill(want.hotFunction);
    await page.waitForFunction(
      ([fn]) => {
        const rows = [...document.querySelectorAll('[data-testid=profile-panel] .ftable tbody tr')];
        return rows.length > 0 && rows.every((r) => r.textContent.includes(fn));
      },
      [want.hotFunction],
    );
    log('zoom and search ok');

    if (want.hotTrace) {
      step = 'a span with a profile links to its flame graph';
      await page.goto(base + `/traces?trace=${want.hotTrace}&span=${want.hotSpan}`);
      await page.getByTestId('span-details').waitFor();
      await page.getByTestId('span-profile-link').click();
      await page.waitForFunction(
        ([fn]) => [...document.querySelectorAll('[data-testid=flamegraph]')].some((c) => (c.dataset.labels ?? '').includes(fn)),
        [want.hotFunction],
      );
      await shot('05-span-profile');
      log('span profile ok');
      await page.goto(base + `/profiles?service=${encodeURIComponent(want.hotService)}`);
    }

    step = 'profile diff shows the frame that grew';
    await page.goto(base + `/profiles?service=${encodeURIComponent(want.hotService)}&mode=diff&from=${want.diffFrom}&to=${want.diffTo}`);
    await page.getByTestId('profile-panel').getByTestId('flamegraph').waitFor();
    await page.waitForFunction(
      ([fn]) => [...document.querySelectorAll('[data-testid=flamegraph]')].some((c) => (c.dataset.labels ?? '').includes(fn)),
      [want.lateFunction],
    );
    // The late phase only exists in the comparison half: its row must show a positive change.
    const row = page.getByTestId('profile-panel').locator('tr', { hasText: want.lateFunction }).first();
    const delta = await row.getByTestId('delta-total').innerText();
    if (!delta.startsWith('+') || delta.startsWith('+0.0')) throw new Error(`diff shows ${delta} for ${want.lateFunction}, want a growth`);
    await shot('06-profile-diff');
    log('diff ok');
  }

  step = 'service page';
  await page.goto(base + '/');
  await page.getByTestId('services-table').getByText(want.services[0], { exact: true }).click();
  await page.getByTestId('service-name').getByText(want.services[0]).waitFor();
  await page.getByTestId('duration-panel').locator('canvas').first().waitFor();
  await page.waitForTimeout(800);
  await shot('07-service');
  log('service ok');

  step = 'clicking an exemplar opens its trace';
  const plot = page.getByTestId('duration-panel').locator('.uplot').first();
  await page.waitForFunction(() => {
    const el = document.querySelector('[data-testid=duration-panel] .uplot');
    return el && JSON.parse(el.getAttribute('data-exemplars') || '[]').length > 0;
  });
  const [ex] = JSON.parse(await plot.getAttribute('data-exemplars'));
  await plot.locator('.u-over').click({ position: { x: ex.x, y: ex.y } });
  await page.waitForURL((u) => u.pathname === '/traces' && u.searchParams.get('trace') === ex.traceId);
  await page.getByTestId('waterfall').locator('.wf-row').first().waitFor();
  log('exemplar ok');

  step = 'metrics explorer';
  await page.goto(base + '/explore');
  await page.getByTestId('promql').fill('sum by (service) (rate(traces_spanmetrics_calls_total[1m]))');
  await page.getByTestId('run-query').click();
  await page.getByTestId('explore-chart').locator('canvas').first().waitFor();
  await shot('08-explore');
  log('explore ok');

  step = 'dark theme';
  await page.emulateMedia({ colorScheme: 'dark' });
  await page.goto(base + '/');
  await page.getByTestId('services-table').waitFor();
  await page.waitForTimeout(800);
  await shot('09-home-dark');
}

await finish(b, 'failure-' + phase, async () => {
  await run();
}, () => step);
