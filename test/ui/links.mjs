// Browser test of the links a user follows into the UI, driven by links_test.go
// against a real `vispyr serve`: Prometheus's own /graph link on the Prometheus
// port, the Tempo port's root, a deep link reloaded, and sub-millisecond span
// durations shown as such in the trace list and waterfall. Usage:
//   node links.mjs links <UI URL> <Prometheus URL> <Tempo URL> <screenshot dir> <json expectations>
// Exits non-zero, naming the failed step, when the browser does not land where it must.
import { openBrowser, finish } from './browser.mjs';

const [, base, prom, tempo, shots, expectJSON] = process.argv.slice(2);
const want = JSON.parse(expectJSON || '{}');
let step = 'launch';
const b = await openBrowser({ shots, timeout: 20000 });
const { page, shot } = b;
const log = (...a) => console.log('[links]', ...a);
const expect = (cond, msg) => {
  if (!cond) throw new Error(msg);
};

async function prometheusLink() {
  step = "Prometheus's /graph link on the Prometheus port opens that query in the explorer";
  const expr = want.promExpr;
  await page.goto(`${prom}/graph?g0.expr=${encodeURIComponent(expr)}&g0.range_input=1h&g0.tab=0`);
  const u = new URL(page.url());
  expect(u.origin === base && u.pathname === '/explore', `landed on ${page.url()}, want ${base}/explore`);
  expect(u.searchParams.get('q') === expr && u.searchParams.get('from') === '1h', `explorer URL ${page.url()} lost the query or range`);
  const editor = page.getByTestId('promql');
  await editor.waitFor();
  expect((await editor.inputValue()) === expr, `explorer editor shows ${JSON.stringify(await editor.inputValue())}, want ${JSON.stringify(expr)}`);
  await shot('links-01-graph-link');

  step = 'the Prometheus and Tempo ports\' roots open the matching pages';
  await page.goto(prom + '/');
  expect(new URL(page.url()).pathname === '/explore', `${prom}/ landed on ${page.url()}`);
  await page.goto(tempo + '/');
  expect(new URL(page.url()).pathname === '/traces', `${tempo}/ landed on ${page.url()}`);
  log('redirects ok');
}

async function subMillisecond() {
  step = 'the trace list shows a 420µs trace as 420µs';
  const q = `{ resource.service.name = "${want.service}" }`;
  await page.goto(`${base}/traces?q=${encodeURIComponent(q)}&from=1h`);
  const row = page.getByTestId('trace-row').filter({ hasText: want.service });
  await row.waitFor();
  const rowText = await row.innerText();
  expect(rowText.includes(want.rootDur), `trace row reads ${JSON.stringify(rowText)}, want ${want.rootDur}`);
  expect(!/(^|\s)0\s*ms|<1ms/.test(rowText), `trace row reads ${JSON.stringify(rowText)}: a sub-millisecond trace shown as zero`);
  await shot('links-02-trace-list');

  step = 'the waterfall shows both spans with their sub-millisecond durations';
  await row.click();
  const wf = page.getByTestId('waterfall');
  await wf.waitFor();
  await page.waitForFunction((ids) => ids.every((t) => document.querySelector('[data-testid=waterfall]')?.textContent.includes(t)), [want.rootDur, want.childDur]);
  expect(new URL(page.url()).searchParams.get('trace') === want.traceID, `trace URL ${page.url()} does not carry ${want.traceID}`);
  await shot('links-03-waterfall');

  step = 'a deep link to the trace survives a reload';
  await page.reload();
  await page.getByTestId('waterfall').waitFor();
  await page.waitForFunction((t) => document.querySelector('[data-testid=waterfall]')?.textContent.includes(t), want.childDur);

  step = 'the /trace/<id> short link opens the same trace';
  await page.goto(`${base}/trace/${want.traceID}`);
  await page.getByTestId('waterfall').waitFor();
  const u = new URL(page.url());
  expect(u.pathname === '/traces' && u.searchParams.get('trace') === want.traceID, `short link landed on ${page.url()}`);
  log('durations ok');
}

await finish(b, 'failure-links', async () => {
  await prometheusLink();
  await subMillisecond();
}, () => step);
