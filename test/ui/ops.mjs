// Browser test of the operations pages (Targets, Alerts, Vispyr), driven by ops_test.go
// against a real `vispyr serve` that scrapes node_exporter and a junk target and evaluates
// a rule file. Usage:
//   node ops.mjs ops <base URL> <screenshot dir> <json expectations>
// Exits non-zero, naming the failed step, when a page does not show what a user must see.
import { openBrowser, finish } from './browser.mjs';

const [, base, shots, expectJSON] = process.argv.slice(2);
const want = JSON.parse(expectJSON || '{}');
let step = 'launch';
const b = await openBrowser({
  shots,
  timeout: 20000,
  badResponse: (r) => {
    // A 400/422 from the API means a page sent a query the backend refused: a UI bug.
    const api = /\/prom\//.test(new URL(r.url()).pathname);
    return r.status() >= 500 || (api && (r.status() === 400 || r.status() === 422));
  },
});
const { page, shot } = b;
const log = (...a) => console.log('[ops]', ...a);
const expect = (cond, msg) => {
  if (!cond) throw new Error(msg);
};

async function targets() {
  step = 'targets page lists node_exporter as up';
  await page.goto(base + '/targets');
  const row = (url) => page.getByTestId('target-row').filter({ hasText: url });
  const node = row(want.nodeURL);
  await node.waitFor();
  await page.waitForFunction((url) => [...document.querySelectorAll('[data-testid=target-row]')].some((r) => r.textContent.includes(url) && r.dataset.health === 'up'), want.nodeURL);
  expect((await node.getByTestId('target-health').innerText()).toLowerCase() === 'up', 'node_exporter row does not say up');
  expect(/ago$/.test(await node.locator('td').nth(3).innerText()), 'node_exporter row shows no last scrape');

  step = 'the junk target is down with its scrape error';
  const junk = row(want.junkURL);
  await page.waitForFunction((url) => [...document.querySelectorAll('[data-testid=target-row]')].some((r) => r.textContent.includes(url) && r.dataset.health === 'down'), want.junkURL);
  expect((await junk.getByTestId('target-health').innerText()).toLowerCase() === 'down', 'junk row does not say down');
  const err = await junk.getByTestId('target-error').innerText();
  expect(err.includes(want.junkError), `junk row's error is ${JSON.stringify(err)}, want it to contain ${JSON.stringify(want.junkError)}`);

  step = 'targets are grouped by scrape pool with their labels';
  const pools = await page.getByTestId('target-pool').locator('header h2').allInnerTexts();
  for (const p of ['junk', 'node', 'vispyr']) expect(pools.includes(p), `pools shown: ${pools}, want ${p}`);
  expect((await node.getByTestId('labels').innerText()).includes('job="node"'), 'node row does not show job="node"');
  await shot('10-targets');

  step = 'the health filter shows only down targets';
  await page.getByTestId('health-filter').locator('button[data-health=down]').click();
  await page.waitForFunction(() => [...document.querySelectorAll('[data-testid=target-row]')].every((r) => r.dataset.health === 'down'));
  const shown = await page.getByTestId('target-row').allInnerTexts();
  expect(shown.length === 1 && shown[0].includes(want.junkURL), `down filter shows ${shown.length} rows: ${shown}`);
  expect(new URL(page.url()).searchParams.get('health') === 'down', 'the filter is not in the URL');
  log('targets ok');
}

async function alerts() {
  step = 'the firing alert shows with its labels and annotations';
  await page.goto(base + '/alerts');
  const firing = page.locator('[data-testid=alert][data-state=firing]').filter({ hasText: want.firing });
  await firing.waitFor();
  const labels = await firing.getByTestId('labels').innerText();
  for (const l of want.firingLabels) expect(labels.includes(l), `firing alert's labels are ${labels}, want ${l}`);
  expect((await firing.innerText()).includes(want.firingSummary), 'firing alert does not show its summary annotation');
  expect(/active since/.test(await firing.innerText()), 'firing alert does not say since when');

  step = 'the pending alert shows as pending';
  await page.locator('[data-testid=alert][data-state=pending]').filter({ hasText: want.pending }).waitFor();

  step = 'the broken rule shows its health and last error';
  const bad = page.getByTestId('rule-row').filter({ hasText: want.badRule });
  await bad.waitFor();
  await page.waitForFunction((name) => [...document.querySelectorAll('[data-testid=rule-row]')].some((r) => r.textContent.includes(name) && r.dataset.health === 'err'), want.badRule);
  const err = await bad.getByTestId('rule-error').innerText();
  expect(err.includes(want.badRuleError), `rule error is ${JSON.stringify(err)}, want ${JSON.stringify(want.badRuleError)}`);
  const ok = page.getByTestId('rule-row').filter({ hasText: want.firing });
  expect((await ok.getByTestId('rule-health').innerText()).toLowerCase() === 'ok', 'the firing rule is not healthy');
  await shot('11-alerts');

  step = "an alert's Explore link opens its expression";
  await firing.getByTestId('alert-explore').click();
  await page.waitForURL((u) => u.pathname === '/explore' && u.searchParams.get('q') === want.firingExpr);
  await page.getByTestId('explore-chart').locator('canvas').first().waitFor();
  log('alerts ok');
}

async function vispyr() {
  step = 'the Vispyr page says the self-scrape is up';
  await page.goto(base + '/vispyr?from=5m');
  await page.getByTestId('stat-self-scrape').getByText('up', { exact: true }).waitFor();

  for (const [id, lines] of Object.entries(want.charts)) {
    step = `the Vispyr page draws ${id} with ${lines}`;
    const box = page.getByTestId('vchart-' + id);
    await box.locator('.uplot').waitFor();
    // Every named line must have been drawn with a value above zero.
    await page.waitForFunction(
      ([id, lines]) => {
        const d = JSON.parse(document.querySelector(`[data-testid=vchart-${id}] [data-testid=vchart]`)?.dataset.drawn || '{}');
        return lines.every((l) => d[l] > 0);
      },
      [id, lines],
    );
    const legend = await box.locator('.u-legend').innerText();
    for (const l of lines) expect(legend.includes(l), `${id} legend is ${legend}, want ${l}`);
  }
  step = "the forward chart shows the gateway's queued traces";
  await page.getByTestId('vchart-forward').locator('.uplot').waitFor();
  await page.waitForFunction((line) => {
    const d = JSON.parse(document.querySelector('[data-testid=vchart-forward] [data-testid=vchart]')?.dataset.drawn || '{}');
    return Object.entries(d).some(([k, v]) => k.startsWith(line) && v > 0);
  }, want.forwardLine);
  step = "the gateway's destination, which never answers, is failing with a backlog";
  await destinationRow(want.gatewayInstance, 'traces', (r) => r.health === 'failing' && r.backlog > 0);
  step = 'refusal chart is drawn (flat when nothing is refused)';
  await page.getByTestId('vchart-refusals').locator('.uplot').waitFor();
  await page.waitForTimeout(300);
  await shot('12-vispyr');
  log('vispyr ok');
}

// destinationRow waits until the Forward destinations table has a row of the process at
// instance for signal whose health and backlog (bytes) satisfy ok, and returns the backlog.
async function destinationRow(instance, signal, ok, timeout) {
  const h = await page.waitForFunction(
    ([instance, signal, okSrc]) => {
      const ok = eval('(' + okSrc + ')');
      for (const r of document.querySelectorAll('[data-testid=destination-row]')) {
        const cells = [...r.querySelectorAll('td')].map((td) => td.textContent);
        const got = { health: r.dataset.health, backlog: Number(r.dataset.backlog) };
        if (cells[0].endsWith(' ' + instance) && cells[1] === signal && ok(got)) return got.backlog;
      }
      return false;
    },
    [instance, signal, ok.toString()],
    { timeout },
  );
  return h.jsonValue();
}

async function destinations() {
  step = "serve's own destination (VictoriaMetrics) is healthy while it runs";
  // Refreshed every second, as someone watching an outage would set it.
  await page.goto(base + '/vispyr?from=5m&refresh=1s');
  await page.getByTestId('forward-destinations').waitFor();
  // While healthy, the backlog is what waits for the next batch (5 s of self-scrapes).
  const healthyBacklog = await destinationRow(want.selfInstance, 'metrics', (r) => r.health === 'healthy');
  const row = page.getByTestId('destination-row').filter({ hasText: want.selfInstance });
  expect((await row.getByTestId('destination-health').innerText()).toLowerCase() === 'healthy', 'the VictoriaMetrics row does not say healthy');
  await shot('13-destinations-healthy');

  step = 'the destination turns failing, its backlog growing, once VictoriaMetrics is killed';
  process.kill(want.destinationPid, 'SIGKILL');
  await destinationRow(want.selfInstance, 'metrics', (r) => r.health === 'failing');
  expect((await row.getByTestId('destination-health').innerText()).toLowerCase() === 'failing', 'the VictoriaMetrics row does not say failing');
  const grown = 2 * Math.max(healthyBacklog, 1);
  await destinationRow(want.selfInstance, 'metrics', new Function('r', `return r.health === 'failing' && r.backlog > ${grown}`), 60000);
  await shot('14-destinations-failing');
  log('destinations ok');
}

await finish(b, 'failure-ops', async () => {
  await targets();
  await alerts();
  await vispyr();
  await destinations();
}, () => step);
