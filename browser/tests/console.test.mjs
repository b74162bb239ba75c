// The operator console in a real browser, against the real system: sign in,
// watch the queue, retry a dead job, walk the tree, approve a request, read
// a user's deliveries. Screenshots go to browser/artifacts/.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import { graphql, screenshot, startBrowser, startWorld, until } from './world.mjs';

let world;
let browser;
let page;
const pageErrors = [];

before(async () => {
  world = await startWorld();
  browser = await startBrowser();
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  page = await context.newPage();
  page.on('pageerror', (error) => pageErrors.push(error.message));
  // A policy violation (CSP, Trusted Types) is reported on the console.
  page.on('console', (message) => {
    if (message.type() === 'error' && !/status of 401/.test(message.text())) {
      pageErrors.push(`console: ${message.text()}`);
    }
  });
  page.on('dialog', (dialog) => {
    pageErrors.push(`a dialog opened: ${dialog.message()}`);
    dialog.dismiss();
  });
});

after(async () => {
  await browser?.close();
  await world?.stop();
});

/** Opens a view from the console's navigation. */
const view = (name) =>
  page.getByRole('navigation', { name: 'Views' }).getByRole('link', { name }).click();

const count = (kind, state) =>
  page.locator(`tr[data-kind="${kind}"] td[data-state="${state}"]`).textContent().then(Number);

test('the console is served whole by canopy-api under a strict policy', async () => {
  const response = await page.goto(`${world.url}/console`);
  assert.equal(response.status(), 200);
  const headers = response.headers();
  const csp = headers['content-security-policy'];
  for (const rule of ["script-src 'self'", "require-trusted-types-for 'script'", "frame-ancestors 'none'"]) {
    assert.ok(csp.includes(rule), `${rule} in ${csp}`);
  }
  assert.equal(headers['referrer-policy'], 'no-referrer');
  assert.equal(headers['cache-control'], 'no-store');
  await page.getByRole('heading', { name: 'Sign in' }).waitFor();
});

test('a wrong password is refused with the API’s own error', async () => {
  await page.getByLabel('Tenant ID').fill(world.tenantId);
  await page.getByLabel('Email').fill(world.adminEmail);
  await page.getByLabel('Password', { exact: true }).fill('not the password');
  await page.getByRole('button', { name: 'Sign in', exact: true }).click();
  const alert = page.getByRole('alert');
  await alert.waitFor();
  assert.match(await alert.textContent(), /UNAUTHENTICATED/);
});

test('an administrator signs in, and the credential lives in this tab only', async () => {
  await page.getByLabel('Password', { exact: true }).fill(world.password);
  await page.getByRole('button', { name: 'Sign in', exact: true }).click();
  await page.getByRole('heading', { name: 'Job queue' }).waitFor();
  assert.match(await page.locator('#who').textContent(), /Acme · admin@acme\.test/);
  const stored = await page.evaluate(() => [sessionStorage.length, localStorage.length]);
  assert.deepEqual(stored, [1, 0]);
});

test('the queue counts change when a job completes', async () => {
  const before = await count('INVITATION', 'done');
  await graphql(
    world,
    `mutation($c: ID!) { createUser(input: { customerId: $c, email: "new@acme.test",
       activation: SEND_ACTIVATION_EMAIL }) { user { id } } }`,
    { c: world.leeds },
  );
  // No reload: the page refreshes itself.
  await until('the done count to grow', async () => (await count('INVITATION', 'done')) === before + 1);
  assert.match(await page.locator('#throughput-summary').textContent(), /Last hour: \d+ sent/);
  assert.ok((await page.locator('.chart rect').count()) > 0, 'the chart has bars');
});

test('a dead job is retried and sent', async () => {
  const killed = await count('INVITATION', 'killed');
  assert.equal(killed, 1);
  const row = page.locator('tr[data-state="KILLED"]', { hasText: world.dead });
  assert.match(await row.textContent(), /550/);
  await row.getByRole('button', { name: 'Retry' }).click();
  await until('the dead count to drop', async () => (await count('INVITATION', 'killed')) === 0);
  await until('the retried job to be sent', async () => {
    const data = await graphql(
      world,
      'query($r: String) { jobQueue { jobs(recipient: $r, first: 1) { nodes { state lastAction { action } } } } }',
      { r: world.dead },
    );
    const job = data.jobQueue.jobs.nodes[0];
    return job.state === 'DONE' && job.lastAction.action === 'RETRIED';
  });
  await screenshot(page, 'console-queue');
});

test('a kind is paused and resumed from the keyboard', async () => {
  const pause = page.getByRole('button', { name: 'Pause PASSWORD_RESET' });
  await pause.focus();
  await page.keyboard.press('Enter');
  await page.getByRole('button', { name: 'Resume PASSWORD_RESET' }).waitFor();
  // The keyboard stays where it was: on the row's button, now Resume.
  await until('focus on Resume', () =>
    page.evaluate(() => document.activeElement.textContent === 'Resume PASSWORD_RESET'),
  );
  assert.match(await page.locator('tr[data-kind="PASSWORD_RESET"]').textContent(), /paused since/);
  await page.getByRole('button', { name: 'Resume PASSWORD_RESET' }).click();
  await page.getByRole('button', { name: 'Pause PASSWORD_RESET' }).waitFor();
});

test('the tree expands three levels, lazily', async () => {
  await view('Customers');
  await page.getByRole('heading', { name: 'Customers' }).waitFor();
  for (const title of ['Acme Holdings', 'Northern Region', 'Leeds Branch']) {
    const toggle = page.getByRole('button', { name: new RegExp(`inner customers of ${title}$`) });
    await toggle.click();
    await until(`${title} to open`, async () => (await toggle.getAttribute('aria-expanded')) === 'true');
  }
  await page.getByRole('link', { name: 'Leeds Shop 2' }).waitFor();
  // A level longer than a page is read a page at a time.
  await page.getByRole('button', { name: /inner customers of Many Shops Ltd$/ }).click();
  await page.getByRole('link', { name: 'Shop 50' }).waitFor();
  assert.equal(await page.getByRole('link', { name: 'Shop 51' }).count(), 0);
  await page.getByRole('button', { name: 'Show more of the inner customers of Many Shops Ltd' }).click();
  await page.getByRole('link', { name: 'Shop 55' }).waitFor();
  assert.equal(await page.getByRole('button', { name: /Show more of the inner/ }).count(), 0);
  await page.getByRole('button', { name: /inner customers of Many Shops Ltd$/ }).click();
  await screenshot(page, 'console-customers');

  // A customer's page: its place, users and administrators.
  await page.getByRole('link', { name: 'Leeds Branch' }).click();
  await page.getByRole('heading', { name: 'Leeds Branch' }).waitFor();
  await page.getByRole('link', { name: 'ann@acme.test' }).waitFor();
  assert.match(await page.locator('nav.path').textContent(), /Acme Holdings \/ Northern Region \/ Leeds Branch/);
});

test('a search by name or number finds a customer, its markup shown as text', async () => {
  await view('Customers');
  await page.getByLabel('Name or number').fill('Bikes');
  await page.getByRole('button', { name: 'Search' }).click();
  const found = page.getByRole('link', { name: world.markupTitle });
  await found.waitFor();
  assert.equal(await page.locator('main img').count(), 0, 'no element was made of the title');
  await page.getByLabel('Name or number').fill('C-000001');
  await page.getByRole('button', { name: 'Search' }).click();
  await page.getByRole('link', { name: 'Acme Holdings' }).first().waitFor();
});

test('a request for approval is approved', async () => {
  await view('Users');
  const approve = page.getByRole('button', { name: `Approve ${world.waiting}` });
  await approve.waitFor();
  assert.match(await page.locator(`tr:has-text("${world.waiting}")`).textContent(), /<b>Pat<\/b>/);
  await screenshot(page, 'console-users');
  await approve.click();
  await page.getByText(`${world.waiting} approved.`).waitFor();
  await until('the queue to be empty', async () => (await approve.count()) === 0);
  const data = await graphql(world, 'query($e: String!) { userByEmail(email: $e) { status } }', {
    e: world.waiting,
  });
  assert.equal(data.userByEmail.status, 'ACTIVE');
});

test('a user’s email deliveries show the jobs that sent them', async () => {
  await page.getByLabel('Email or name').fill('ann@');
  await page.getByRole('button', { name: 'Search' }).click();
  await page.getByRole('link', { name: 'ann@acme.test' }).click();
  await page.getByRole('heading', { name: 'ann@acme.test' }).waitFor();
  const delivery = page.locator('tr[data-state="DONE"]', { hasText: 'INVITATION' });
  await delivery.waitFor();
  assert.match(await delivery.textContent(), /ann@acme\.test/);
  await page.getByRole('button', { name: 'Revoke the invitation' }).waitFor();
  await screenshot(page, 'console-user');
});

test('an error is shown as the API gave it', async () => {
  await view('Users');
  await page.getByLabel('Email or name').fill('ab');
  // Past the browser's own check, as a script could send it.
  await page.locator('#user-search').evaluate((input) => input.removeAttribute('minlength'));
  await page.getByRole('button', { name: 'Search' }).click();
  const alert = page.getByRole('alert');
  await until('the error', async () => /BAD_USER_INPUT/.test((await alert.textContent()) || ''));
  assert.match(await alert.textContent(), /field: search/);
});

test('signing out forgets the credential, and nothing ran that should not', async () => {
  await page.getByRole('button', { name: 'Sign out' }).click();
  await page.getByRole('heading', { name: 'Sign in' }).waitFor();
  const stored = await page.evaluate(() => [sessionStorage.length, localStorage.length]);
  assert.deepEqual(stored, [0, 0]);
  assert.deepEqual(pageErrors, []);
});
