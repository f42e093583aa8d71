// Drives the hosted account settings in the machine's headless Chromium (playwright-core,
// the same launch as pages.mjs): signs in, visits Profile, Security and Sessions in light
// and dark at desktop and 375 px (nothing wider than the screen down to 360 px), renames,
// refuses a wrong current password, signs out the other devices, and renames again with
// JavaScript off. Takes screenshots and fails on any console error (a Content-Security-Policy
// violation is one) or uncaught page error.
//
// Environment: GATEHOUSE_PAGES_URL (…/t/{tenant}/handler), GATEHOUSE_SCREENSHOTS (a
// directory), GATEHOUSE_EMAIL, GATEHOUSE_PASSWORD of an existing user; optional
// GATEHOUSE_CHROMIUM (default /usr/bin/chromium).

import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

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
const desktop = { width: 1280, height: 800 };
const phone = { width: 375, height: 740 };
const narrowest = { width: 360, height: 740 };

mkdirSync(shots, { recursive: true });
const problems = [];
const taken = [];
const expected = [];
let current = null;

function check(condition, message) {
  if (!condition) {
    throw new Error(`check failed: ${message}`);
  }
}

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

async function shot(page, name) {
  const path = join(shots, `${name}.png`);
  await page.screenshot({ path, fullPage: true });
  taken.push(path);
}

async function noHorizontalScroll(page, label) {
  const { scrollWidth, innerWidth } = await page.evaluate(() => ({
    scrollWidth: document.documentElement.scrollWidth,
    innerWidth: window.innerWidth,
  }));
  check(scrollWidth <= innerWidth, `${label}: page is ${scrollWidth}px wide in ${innerWidth}px`);
}

async function signIn(page) {
  await page.goto(`${base}/sign-in`);
  await page.getByLabel('Email').fill(email);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.waitForURL(/\/account$/);
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
  // Every section in light and dark, desktop and phone; each context is another device.
  for (const [size, viewport] of [['desktop', desktop], ['phone', phone]]) {
    for (const scheme of ['light', 'dark']) {
      const options = { viewport, colorScheme: scheme };
      if (size === 'phone') {
        Object.assign(options, { deviceScaleFactor: 2, isMobile: true, hasTouch: true });
      }
      const context = await browser.newContext(options);
      const page = watch(await context.newPage(), `${size} ${scheme}`);
      await signIn(page);
      await page.getByRole('link', { name: 'Profile' }).click();
      await page.waitForURL(/\/settings\/profile$/);
      for (const section of ['profile', 'security', 'sessions']) {
        await page.goto(`${base}/settings/${section}`);
        const currentTab = page.locator('.tabs a[aria-current="page"]');
        check((await currentTab.count()) === 1, `${section}: one current tab`);
        check(
          (await currentTab.textContent()).toLowerCase() === section,
          `${section}: the current tab is ${await currentTab.textContent()}`,
        );
        if (size === 'phone') {
          await noHorizontalScroll(page, `${section} ${scheme} 375`);
          await page.setViewportSize(narrowest);
          await noHorizontalScroll(page, `${section} ${scheme} 360`);
          await page.setViewportSize(phone);
        }
        await shot(page, `settings-${section}-${scheme}-${size}`);
      }
      await context.close();
    }
  }

  // Desktop, light: rename, a wrong current password, sign out the other devices.
  {
    const context = await browser.newContext({ viewport: desktop, colorScheme: 'light' });
    const page = watch(await context.newPage(), 'changes');
    await signIn(page);
    await page.goto(`${base}/settings/profile`);
    await page.getByLabel('Name').fill('Ada Lovelace');
    await page.getByRole('button', { name: 'Save' }).click();
    await page.waitForURL(/\/settings\/profile\?done=profile$/);
    check((await page.getByRole('status').textContent()).trim() === 'Your name is saved.', 'saved');
    check((await page.getByLabel('Name').inputValue()) === 'Ada Lovelace', 'the new name');
    await shot(page, 'settings-profile-saved-light-desktop');

    await page.goto(`${base}/settings/security`);
    expected.push(/^Failed to load resource: .*status of 422/);
    await page.getByLabel('Current password').fill('not the password at all');
    await page.getByLabel('New password').fill('another horse battery staple');
    await page.getByRole('button', { name: 'Change password' }).click();
    const alert = page.getByRole('alert');
    check(
      (await alert.textContent()).trim() === 'Your current password is incorrect.',
      'the refusal',
    );
    await shot(page, 'settings-security-error-light-desktop');
    check(expected.length === 0, 'the refused form was the only console message');

    await page.goto(`${base}/settings/sessions`);
    const before = await page.locator('li.session').count();
    check(before >= 5, `every device is listed (${before})`);
    check((await page.locator('.badge').count()) === 1, 'one "This device"');
    await page.getByRole('button', { name: 'Sign out other devices' }).click();
    await page.waitForURL(/\/settings\/sessions\?done=others$/);
    check((await page.locator('li.session').count()) === 1, 'only this device is left');
    await shot(page, 'settings-sessions-signed-out-others-light-desktop');
    await context.close();
  }

  // JavaScript off: the settings forms work.
  {
    const context = await browser.newContext({ viewport: desktop, javaScriptEnabled: false });
    const page = watch(await context.newPage(), 'no javascript');
    await signIn(page);
    await page.goto(`${base}/settings/profile`);
    await page.getByLabel('Name').fill('Ada King');
    await page.getByRole('button', { name: 'Save' }).click();
    await page.waitForURL(/\/settings\/profile\?done=profile$/);
    check((await page.getByLabel('Name').inputValue()) === 'Ada King', 'renamed without JS');
    await context.close();
  }
} catch (error) {
  if (current && !current.isClosed()) {
    console.error(`failed at ${current.url()}:\n${await current.locator('body').innerText()}`);
    await shot(current, 'settings-failure').catch(() => {});
  }
  console.error(`problems so far: ${JSON.stringify(problems)}`);
  throw error;
} finally {
  await browser.close();
}

console.log(JSON.stringify({ screenshots: taken, problems }, null, 2));
if (problems.length > 0) {
  console.error(`console errors or CSP violations:\n${problems.join('\n')}`);
  process.exit(1);
}
