// Canopy's account pages in a real browser, from the real emails: an
// invitation accepted, a sign-up confirmed, a forgotten password chosen
// anew, spent and expired links, and a page left without submitting.
// Screenshots of each page (desktop and phone) and of one email go to
// browser/artifacts/.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import { graphql, screenshot, startBrowser, startWorld, until } from './world.mjs';

const PHONE = { width: 390, height: 844 };
const DESKTOP = { width: 1280, height: 800 };

let world;
let browser;
let hosted;
const pageErrors = [];

before(async () => {
  world = await startWorld();
  hosted = world.hosted;
  browser = await startBrowser();
});

after(async () => {
  await browser?.close();
  await world?.stop();
});

/** A fresh browser context (no cookies) at `viewport`, as a person. */
async function person(viewport = DESKTOP) {
  const context = await browser.newContext({ viewport, javaScriptEnabled: false });
  const page = await context.newPage();
  // Refusals answer with 4xx on purpose; anything else (a policy
  // violation, say) is an error.
  page.on('console', (m) => {
    if (m.type() === 'error' && !/status of 4\d\d/.test(m.text())) pageErrors.push(m.text());
  });
  return page;
}

/** Screenshots of `page` at both widths. */
async function shoot(page, name) {
  await page.setViewportSize(DESKTOP);
  await screenshot(page, `account-${name}-desktop`);
  await page.setViewportSize(PHONE);
  await screenshot(page, `account-${name}-phone`);
  await page.setViewportSize(DESKTOP);
}

const invite = (email) =>
  graphql(
    { ...world, apiKey: hosted.apiKey },
    `mutation($c: ID!, $e: String!) { createUser(input: { customerId: $c, email: $e,
       firstName: "Ann", activation: SEND_ACTIVATION_EMAIL }) { user { id } } }`,
    { c: hosted.customer, e: email },
  );

const statusOf = async (email) => {
  const data = await graphql({ ...world, apiKey: hosted.apiKey }, 'query($e: String!) { userByEmail(email: $e) { status } }', {
    e: email,
  });
  return data.userByEmail.status;
};

test('an invitation is accepted from its email and lands signed in', async () => {
  await invite('ann@northwind.test');
  const mail = await world.waitForMail('ann@northwind.test');
  assert.ok(mail.link.startsWith(`${hosted.pages}/activate?token=`), mail.link);
  assert.match(mail.subject, /Northwind: set up your account/);

  // The email itself, as a person sees it.
  const inbox = await person();
  await inbox.setContent(mail.html);
  await shoot(inbox, 'email-invitation');
  assert.equal(await inbox.getByRole('link', { name: 'Set up your account' }).getAttribute('href'), mail.link);

  // A mail scanner opens the link first: nothing is spent.
  const scanner = await person();
  await scanner.goto(mail.link);
  assert.equal(await statusOf('ann@northwind.test'), 'PENDING_EMAIL_VALIDATION');

  const page = await person();
  await page.goto(mail.link);
  await page.getByRole('heading', { name: 'Set up your account' }).waitFor();
  await shoot(page, 'activate');
  // A weak password says why, announced, the form kept.
  // (Long enough for the browser's own check; the server's policy refuses it.)
  await page.getByLabel('New password').fill('        ');
  await page.getByRole('button', { name: 'Set my password' }).click();
  const alert = page.getByRole('alert');
  await alert.waitFor();
  assert.match(await alert.textContent(), /password/i);
  await shoot(page, 'weak-password');

  await page.getByLabel('New password').fill('correct horse battery');
  await page.getByRole('button', { name: 'Set my password' }).click();
  await page.getByRole('heading', { name: 'You are signed in' }).waitFor();
  assert.match(await page.locator('main').textContent(), /ann@northwind\.test/);
  await shoot(page, 'signed-in');
  assert.equal(await statusOf('ann@northwind.test'), 'ACTIVE');

  // The link once more: spent, and it says so.
  const again = await person();
  await again.goto(mail.link);
  await again.getByLabel('New password').fill('another horse battery');
  await again.getByRole('button', { name: 'Set my password' }).click();
  await again.getByText('This link has expired or was used already').waitFor();
  assert.match(await again.getByRole('alert').textContent(), /already been used/);
  await shoot(again, 'spent-link');

  await page.getByRole('button', { name: 'Sign out' }).click();
  await page.getByRole('heading', { name: 'Sign in' }).waitFor();
  await shoot(page, 'sign-in');
});

test('a page opened and left consumes nothing; an expired link offers a new one', async () => {
  await invite('bo@northwind.test');
  const first = await world.waitForMail('bo@northwind.test');
  const left = await person(PHONE);
  await left.goto(first.link);
  await left.close();
  await world.command('expire-links');

  const page = await person(PHONE);
  await page.goto(first.link);
  await page.getByLabel('New password').fill('correct horse battery');
  await page.getByRole('button', { name: 'Set my password' }).click();
  await page.getByRole('button', { name: 'Send me a new link' }).waitFor();
  assert.match(await page.getByRole('alert').textContent(), /expired/);
  await shoot(page, 'expired-link');
  await page.getByRole('button', { name: 'Send me a new link' }).click();
  await page.getByRole('heading', { name: 'A new link' }).waitFor();

  const second = await world.waitForMail('bo@northwind.test', 2);
  assert.notEqual(second.link, first.link);
  await page.goto(second.link);
  await page.getByLabel('New password').fill('correct horse battery');
  await page.getByRole('button', { name: 'Set my password' }).click();
  await page.getByRole('heading', { name: 'You are signed in' }).waitFor();
});

test('a sign-up is confirmed from its email, then signs in', async () => {
  const page = await person();
  await page.goto(hosted.pages);
  await page.getByRole('link', { name: 'Create an account' }).click();
  await page.getByRole('heading', { name: 'Create an account' }).waitFor();
  await shoot(page, 'sign-up');
  await page.getByLabel('Organization').fill('Cy’s Café');
  await page.getByLabel('First name').fill('Cy');
  await page.getByLabel('Email').fill('cy@cafe.test');
  await page.getByLabel('Password').fill('correct horse battery');
  await page.getByRole('button', { name: 'Create my account' }).click();
  await page.getByText('we sent a link to').waitFor();

  const mail = await world.waitForMail('cy@cafe.test');
  assert.ok(mail.link.startsWith(`${hosted.pages}/validate-email?token=`), mail.link);
  await page.goto(mail.link);
  await page.getByRole('button', { name: 'Confirm my address' }).waitFor();
  await shoot(page, 'confirm-address');
  assert.equal(await statusOf('cy@cafe.test'), 'PENDING_EMAIL_VALIDATION');
  await page.getByRole('button', { name: 'Confirm my address' }).click();
  await page.getByText('Your address is confirmed').waitFor();

  await page.getByRole('link', { name: 'Sign in' }).click();
  await page.getByLabel('Email').fill('cy@cafe.test');
  await page.getByLabel('Password').fill('correct horse battery');
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('heading', { name: 'You are signed in' }).waitFor();
});

test('a forgotten password is chosen anew from its email', async () => {
  const page = await person(PHONE);
  await page.goto(hosted.pages);
  await page.getByRole('link', { name: 'Forgot your password?' }).click();
  await shoot(page, 'forgot-password');
  await page.getByLabel('Email').fill('ann@northwind.test');
  await page.getByRole('button', { name: 'Send me a link' }).click();
  await page.getByText('If an account uses that address').waitFor();

  const mail = await world.waitForMail('ann@northwind.test', 2);
  assert.ok(mail.link.startsWith(`${hosted.pages}/reset-password?token=`), mail.link);
  await page.goto(mail.link);
  await page.getByRole('heading', { name: 'Choose a new password' }).waitFor();
  await shoot(page, 'reset-password');
  await page.getByLabel('New password').fill('a brand new passphrase');
  await page.getByRole('button', { name: 'Change my password' }).click();
  await page.getByText('Your password is changed').waitFor();
  await page.getByLabel('Email').fill('ann@northwind.test');
  await page.getByLabel('Password').fill('a brand new passphrase');
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('heading', { name: 'You are signed in' }).waitFor();
  // Keyboard: every control is reachable with Tab.
  await page.keyboard.press('Tab');
  await until('focus on a control', () =>
    page.evaluate(() => ['A', 'BUTTON', 'INPUT'].includes(document.activeElement.tagName)),
  );
  assert.deepEqual(pageErrors, []);
});
