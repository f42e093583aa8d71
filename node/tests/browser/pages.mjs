// Drives Gatehouse's hosted pages in the machine's headless Chromium (playwright-core, no
// downloaded browser; each launch gets a fresh profile, each step a new context): sign up,
// sign out, sign in, the account page, the theme toggle, keyboard use, phone widths and
// JavaScript off. Takes screenshots and fails on any console error (a Content-Security-Policy
// violation is one) or uncaught page error.
//
// Environment: GATEHOUSE_PAGES_URL (…/t/{tenant}/handler), GATEHOUSE_SCREENSHOTS (a
// directory), GATEHOUSE_EMAIL, GATEHOUSE_PASSWORD, GATEHOUSE_TENANT_NAME; optional
// GATEHOUSE_CHROMIUM (default /usr/bin/chromium).

import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { seriousViolations } from './a11y.mjs';

function required(name) {
  const value = process.env[name];
  if (!value) {
    throw new Error(`${name} is not set`);
  }
  return value;
}

const base = required('GATEHOUSE_PAGES_URL');
const shots = required('GATEHOUSE_SCREENSHOTS');
const email = required('GATEHOUSE_EMAIL');
const password = required('GATEHOUSE_PASSWORD');
const tenantName = required('GATEHOUSE_TENANT_NAME');
const displayName = 'Ada Lovelace';
const desktop = { width: 1280, height: 800 };
const phone = { width: 375, height: 740 };
const narrowest = { width: 360, height: 740 };

mkdirSync(shots, { recursive: true });
const problems = [];
const taken = [];

function check(condition, message) {
  if (!condition) {
    throw new Error(`check failed: ${message}`);
  }
}

/** The page in use, shown when a step fails. */
let current = null;

/** Console messages a step causes on purpose (a refused form's 4xx is logged), each once. */
const expected = [];

/** Records console errors (CSP violations are logged as errors) and uncaught exceptions. */
function watch(page, label) {
  page.on('console', (message) => {
    const text = message.text();
    const known = expected.findIndex((pattern) => pattern.test(text));
    if (known >= 0) {
      expected.splice(known, 1);
      return;
    }
    if (message.type() === 'error' || /Content Security Policy/i.test(text)) {
      problems.push(`${label}: console ${message.type()}: ${text}`);
    }
  });
  page.on('pageerror', (error) => problems.push(`${label}: page error: ${error.message}`));
  current = page;
  return page;
}

/** Pages scanned for accessibility, and the ones that could not be (JavaScript off). */
const accessibility = { scanned: [], skipped: [] };

async function shot(page, name) {
  const path = join(shots, `${name}.png`);
  await page.screenshot({ path, fullPage: true });
  taken.push(path);
  // Every page that is photographed is also scanned (axe-core, WCAG 2.1 AA): a serious or
  // critical violation fails the run.
  let violations;
  try {
    violations = await seriousViolations(page);
  } catch (error) {
    accessibility.skipped.push(`${name} (${String(error).split('\n')[0]})`);
    return;
  }
  accessibility.scanned.push(name);
  for (const violation of violations) problems.push(`${name}: accessibility: ${violation}`);
}

async function noHorizontalScroll(page, label) {
  const { scrollWidth, innerWidth } = await page.evaluate(() => ({
    scrollWidth: document.documentElement.scrollWidth,
    innerWidth: window.innerWidth,
  }));
  check(scrollWidth <= innerWidth, `${label}: page is ${scrollWidth}px wide in ${innerWidth}px`);
}

async function signIn(page, address, secret) {
  await page.goto(`${base}/sign-in`);
  await page.getByLabel('Email').fill(address);
  await page.getByLabel('Password').fill(secret);
  await page.getByRole('button', { name: 'Sign in' }).click();
}

const browser = await chromium.launch({
  executablePath: process.env.GATEHOUSE_CHROMIUM || '/usr/bin/chromium',
  args: [
    '--headless',
    '--no-sandbox',
    '--disable-gpu',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
    '--no-first-run',
  ],
});

try {
  // The watcher sees a CSP violation: an inline style is refused and logged.
  {
    const context = await browser.newContext();
    const page = await context.newPage();
    const seen = [];
    page.on('console', (message) => seen.push(message.text()));
    await page.goto(`${base}/sign-in`);
    await page.evaluate(() => {
      const style = document.createElement('style');
      style.textContent = 'body { color: red; }';
      document.head.appendChild(style);
    });
    await page.waitForTimeout(200);
    check(
      seen.some((text) => /Content Security Policy/i.test(text)),
      `an inline style is reported as a CSP violation (saw ${JSON.stringify(seen)})`,
    );
    await context.close();
  }

  // Desktop, light: sign up, sign out, a wrong password, sign in with the keyboard, toggle.
  {
    const context = await browser.newContext({ viewport: desktop, colorScheme: 'light' });
    const page = watch(await context.newPage(), 'desktop light');
    await page.goto(`${base}/sign-up`);
    check((await page.title()).includes(tenantName), 'the tenant name is in the title');
    check(await page.locator('#theme-toggle').isVisible(), 'the theme toggle is shown');
    await shot(page, 'sign-up-light-desktop');
    await page.getByLabel('Name').fill(displayName);
    await page.getByLabel('Email').fill(email);
    await page.getByLabel('Password').fill(password);
    await page.getByRole('button', { name: 'Create account' }).click();
    await page.waitForURL(/\/account$/);
    check((await page.locator('#account-email').textContent()) === email, 'account shows the email');
    check((await page.content()).includes(displayName), 'account shows the name');
    await shot(page, 'account-light-desktop');

    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.waitForURL(/\/signed-out$/);
    await shot(page, 'signed-out-light-desktop');
    await page.goto(`${base}/account`);
    check(page.url().includes('/sign-in'), 'signed out, the account page asks to sign in');

    expected.push(/^Failed to load resource: .*status of 422/);
    await signIn(page, email, 'not the password at all');
    const alert = page.getByRole('alert');
    check((await alert.textContent()).trim() === 'Email or password is incorrect.', 'the refusal');
    await shot(page, 'sign-in-error-light-desktop');
    check(expected.length === 0, 'the refused form was the only console message');

    await page.goto(`${base}/sign-in`);
    check(
      await page.evaluate(() => document.activeElement && document.activeElement.id === 'email'),
      'the email field has focus',
    );
    await page.keyboard.type(email);
    await page.keyboard.press('Tab');
    const outline = await page.evaluate(() => {
      const focused = document.activeElement;
      return { id: focused.id, style: getComputedStyle(focused).outlineStyle };
    });
    check(outline.id === 'password', `Tab moves to the password (at ${outline.id})`);
    check(outline.style !== 'none', 'the focused field shows a focus ring');
    await page.keyboard.type(password);
    await page.keyboard.press('Enter');
    await page.waitForURL(/\/account$/);
    check((await page.locator('#account-email').textContent()) === email, 'signed in again');

    await page.locator('#theme-toggle').click();
    check((await page.locator('html').getAttribute('data-theme')) === 'dark', 'toggled to dark');
    await page.reload();
    check((await page.locator('html').getAttribute('data-theme')) === 'dark', 'the choice is kept');
    check((await page.locator('#theme-toggle').getAttribute('aria-pressed')) === 'true', 'pressed');
    const background = await page.evaluate(() => getComputedStyle(document.body).backgroundColor);
    check(background === 'rgb(14, 16, 20)', `dark background after the toggle (${background})`);
    await shot(page, 'account-dark-desktop');

    // The error page: a tenant that does not exist, styled like the others.
    await page.locator('#theme-toggle').click();
    expected.push(/^Failed to load resource: .*status of 404/);
    const missing = await page.goto(base.replace(/\/t\/[^/]+\//, '/t/no-such-tenant/') + '/sign-in');
    check(missing.status() === 404, `an unknown tenant is a 404 (${missing.status()})`);
    check((await page.locator('code').textContent()) === 'TENANT_NOT_FOUND', 'the stable code');
    await shot(page, 'error-light-desktop');
    check(expected.length === 0, 'the 404 was the only console message');
    await context.close();
  }

  // Desktop, dark from the system.
  {
    const context = await browser.newContext({ viewport: desktop, colorScheme: 'dark' });
    const page = watch(await context.newPage(), 'desktop dark');
    await page.goto(`${base}/sign-in`);
    const background = await page.evaluate(() => getComputedStyle(document.body).backgroundColor);
    check(background === 'rgb(14, 16, 20)', `dark background from the system (${background})`);
    await shot(page, 'sign-in-dark-desktop');
    await context.close();
  }

  // Phones, light and dark; nothing wider than the screen down to 360 px.
  for (const scheme of ['light', 'dark']) {
    const context = await browser.newContext({
      viewport: phone,
      deviceScaleFactor: 2,
      isMobile: true,
      hasTouch: true,
      colorScheme: scheme,
    });
    const page = watch(await context.newPage(), `phone ${scheme}`);
    for (const form of ['sign-in', 'sign-up']) {
      await page.goto(`${base}/${form}`);
      await noHorizontalScroll(page, `${form} ${scheme} 375`);
      await shot(page, `${form}-${scheme}-phone`);
      await page.setViewportSize(narrowest);
      await noHorizontalScroll(page, `${form} ${scheme} 360`);
      await page.setViewportSize(phone);
    }
    await signIn(page, email, password);
    await page.waitForURL(/\/account$/);
    await page.setViewportSize(narrowest);
    await noHorizontalScroll(page, `account ${scheme} 360`);
    await page.setViewportSize(phone);
    await shot(page, `account-${scheme}-phone`);
    await context.close();
  }

  // JavaScript off: the forms work, the toggle stays hidden.
  {
    const context = await browser.newContext({ viewport: desktop, javaScriptEnabled: false });
    const page = watch(await context.newPage(), 'no javascript');
    await signIn(page, email, password);
    await page.waitForURL(/\/account$/);
    check((await page.locator('#account-email').textContent()) === email, 'signed in without JS');
    check(!(await page.locator('#theme-toggle').isVisible()), 'no toggle without JS');
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.waitForURL(/\/signed-out$/);
    await context.close();
  }
} catch (error) {
  if (current && !current.isClosed()) {
    console.error(`failed at ${current.url()}:\n${await current.locator('body').innerText()}`);
    await shot(current, 'failure').catch(() => {});
  }
  console.error(`problems so far: ${JSON.stringify(problems)}`);
  throw error;
} finally {
  await browser.close();
}

console.log(JSON.stringify({ screenshots: taken, accessibility, problems }, null, 2));
if (problems.length > 0) {
  console.error(`console errors or CSP violations:\n${problems.join('\n')}`);
  process.exit(1);
}
