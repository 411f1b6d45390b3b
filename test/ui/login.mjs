// Browser test of the UI's login, tenant switcher, CSRF protection and logout, driven by
// login_test.go against a `vispyr serve` with an auth: section. Usage:
//   node login.mjs login <base URL> <screenshot dir> <json: user, password, tenants, services>
// Exits non-zero, naming the failed step, when the UI does not do what a user must see.
import { openBrowser, finish } from './browser.mjs';

const [, base, shots, wantJSON] = process.argv.slice(2);
const want = JSON.parse(wantJSON);
let step = 'launch';
const b = await openBrowser({ shots, timeout: 30000, watchConsole: false, shotPrefix: 'login-' });
const { ctx, page, shot } = b;
const log = (...a) => console.log('[login]', ...a);
const [mine, theirs] = want.services;

async function servicesShow(svc, notSvc) {
  await page.getByTestId('services-table').getByText(svc, { exact: true }).waitFor();
  const text = await page.locator('main').innerText();
  if (text.includes(notSvc)) throw new Error(`the page shows ${notSvc} of another tenant next to ${svc}`);
}

async function run() {
  step = 'an unauthenticated visit lands on the login page';
  await page.goto(base + '/');
  await page.getByTestId('login-form').waitFor();
  if (new URL(page.url()).pathname !== '/login') throw new Error(`at ${page.url()}, want /login`);

  step = 'a wrong password shows the error';
  await page.fill('input[name=user]', want.user);
  await page.fill('input[name=password]', 'not the password');
  await page.click('button[type=submit]');
  const err = page.getByTestId('login-error');
  await err.waitFor();
  if (!/wrong user name or password/.test(await err.innerText())) throw new Error(`login error says ${await err.innerText()}`);
  await shot('01-wrong-password');
  log('wrong password refused');

  step = 'logging in lands on Home with the first tenant\'s services';
  await page.fill('input[name=password]', want.password);
  await page.click('button[type=submit]');
  await page.waitForURL((u) => u.pathname === '/');
  await servicesShow(mine, theirs);
  await shot('02-home-tenant-a');
  const cookie = (await ctx.cookies(base)).find((c) => c.name === 'vispyr_session');
  if (!cookie) throw new Error('no vispyr_session cookie after login');
  if (!cookie.httpOnly || cookie.sameSite !== 'Strict' || !(cookie.expires > Date.now() / 1000)) {
    throw new Error(`session cookie is not HttpOnly, SameSite=Strict with an expiry: ${JSON.stringify(cookie)}`);
  }
  log(`logged in: ${mine} shown, ${theirs} not`);

  step = 'the tenant switcher shows the other tenant\'s data only';
  const sw = page.getByTestId('tenant-switcher');
  const options = await sw.locator('option').allInnerTexts();
  if (options.join() !== want.tenants.join()) throw new Error(`switcher offers ${options}, want ${want.tenants}`);
  await sw.selectOption(want.tenants[1]);
  await servicesShow(theirs, mine);
  await shot('03-home-tenant-b');
  log(`switched to ${want.tenants[1]}: ${theirs} shown, ${mine} not`);

  step = 'live tail streams the switched-to tenant\'s lines (a websocket carries no header)';
  const sel = `{service_name="${theirs}"}`;
  await page.goto(base + '/logs?from=15m&live=1&q=' + encodeURIComponent(sel));
  await page.getByText('Live ·').waitFor();
  await page.waitForTimeout(500);
  const marker = `tenant line ${Date.now()}`;
  const pushed = await fetch(want.pushURL, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${want.pushToken}` },
    body: JSON.stringify({ streams: [{ stream: { service_name: theirs }, values: [[String(Date.now() * 1e6), marker]] }] }),
  });
  if (!pushed.ok) throw new Error(`push as ${want.tenants[1]}: HTTP ${pushed.status}`);
  await page.getByTestId('log-lines').getByText(marker).waitFor();
  if (await page.getByText(/live tail closed|Forbidden/).count()) throw new Error('live tail shows an error');
  await shot('03b-live-tail-tenant-b');
  log(`live tail as ${want.tenants[1]} got the pushed line`);
  await page.goto(base + '/');
  await servicesShow(theirs, mine);

  step = 'a POST with the session cookie but without the CSRF token is refused';
  const form = { query: 'up' };
  let r = await ctx.request.post(base + '/prom/api/v1/query', { form, headers: { Origin: 'http://evil.example', 'Sec-Fetch-Site': 'cross-site' } });
  if (r.status() !== 403) throw new Error(`cross-site POST without token: HTTP ${r.status()}, want 403`);
  r = await ctx.request.post(base + '/prom/api/v1/query', { form });
  if (r.status() !== 403 || !/X-CSRF-Token/.test(await r.text())) throw new Error(`POST without token: HTTP ${r.status()} ${await r.text()}, want 403 naming X-CSRF-Token`);

  step = 'a form another site submits is refused';
  // localhost is another site than 127.0.0.1: its page posts to the UI as an attacker's would.
  const evil = await ctx.newPage();
  const u = new URL(base);
  await evil.goto(`http://localhost:${u.port}/nothing.txt`).catch(() => {});
  const [nav] = await Promise.all([
    evil.waitForNavigation(),
    evil.evaluate((action) => {
      const f = document.createElement('form');
      f.method = 'POST';
      f.action = action;
      f.enctype = 'text/plain';
      const i = document.createElement('input');
      i.name = 'query';
      i.value = 'up';
      f.appendChild(i);
      document.body.appendChild(f);
      f.submit();
    }, base + '/prom/api/v1/query'),
  ]);
  if (!nav || nav.status() < 400) throw new Error(`cross-site form POST answered ${nav?.status()}, want a refusal`);
  await evil.close();
  log(`cross-site POSTs refused (last: ${nav.status()})`);

  step = 'logout returns to the login page';
  await page.getByTestId('logout').click();
  await page.getByTestId('login-form').waitFor();
  if (new URL(page.url()).pathname !== '/login') throw new Error(`after logout at ${page.url()}, want /login`);
  await shot('04-logged-out');

  step = 'the old session cookie is refused';
  r = await ctx.request.get(base + '/prom/api/v1/labels', { headers: { Cookie: `vispyr_session=${cookie.value}` } });
  if (r.status() !== 401) throw new Error(`old cookie after logout: HTTP ${r.status()}, want 401`);
  log('logged out; the old cookie gets 401');

  step = 'a deep link asks to log in first and comes back';
  await page.goto(base + '/traces');
  await page.getByTestId('login-form').waitFor();
  if (!page.url().includes('next=%2Ftraces')) throw new Error(`deep link went to ${page.url()}`);
}

await finish(b, '99-failure', async () => {
  await run();
  log('all steps passed');
}, () => step);
