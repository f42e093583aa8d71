// Drives the sign-in method pages of Gatehouse in the machine's headless Chromium
// (playwright-core, no downloaded browser; the same launch flags as pages.mjs): sign-in by an
// emailed code (JavaScript on and off), the second-factor page (a wrong code, then a
// recovery code) and the forgot / reset password forms, light and dark, desktop and 375 px. Takes screenshots and fails on any
// console error (a Content-Security-Policy violation is one) or uncaught page error.
//
// Environment: GATEHOUSE_PAGES_URL (…/t/{tenant}/handler), GATEHOUSE_SCREENSHOTS (a
// directory), GATEHOUSE_MAIL_DIR (where the test writes the n-th code mailed to the code user
// as `<n>.txt`), GATEHOUSE_CODE_EMAIL, GATEHOUSE_MFA_EMAIL (a user with TOTP),
// GATEHOUSE_PASSWORD, GATEHOUSE_RECOVERY_CODE; optional GATEHOUSE_CHROMIUM.

import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
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
const mailDir = required('GATEHOUSE_MAIL_DIR');
const codeEmail = required('GATEHOUSE_CODE_EMAIL');
const mfaEmail = required('GATEHOUSE_MFA_EMAIL');
const password = required('GATEHOUSE_PASSWORD');
const recoveryCode = required('GATEHOUSE_RECOVERY_CODE');
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
  for (const size of [phone, narrowest]) {
    await page.setViewportSize(size);
    const { scrollWidth, innerWidth } = await page.evaluate(() => ({
      scrollWidth: document.documentElement.scrollWidth,
      innerWidth: window.innerWidth,
    }));
    check(scrollWidth <= innerWidth, `${label}: page is ${scrollWidth}px wide in ${innerWidth}px`);
  }
  await page.setViewportSize(phone);
}

/** The n-th code mailed to the code user, once the test has written it. */
async function mailedCode(n) {
  const path = join(mailDir, `${n}.txt`);
  for (let i = 0; i < 200; i += 1) {
    if (existsSync(path)) {
      return readFileSync(path, 'utf8').trim();
    }
    await sleep(100);
  }
  throw new Error(`code ${n} never arrived`);
}

/** From the sign-in page's link to the code form, for `address`. */
async function askForCode(page, address) {
  await page.goto(`${base}/sign-in`);
  await page.getByRole('link', { name: 'Email me a sign-in code' }).click();
  await page.waitForURL(/\/sign-in\/code$/);
  await page.getByLabel('Email').fill(address);
  await page.getByRole('button', { name: 'Email me a code' }).click();
  await page.getByLabel('Code').waitFor();
}

async function passwordSignIn(page, address) {
  await page.goto(`${base}/sign-in`);
  await page.getByLabel('Email').fill(address);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('heading', { name: 'Two-step verification' }).waitFor();
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
  // Desktop, light: the code sign-in with a wrong code first, then the second factor.
  {
    const context = await browser.newContext({ viewport: desktop, colorScheme: 'light' });
    const page = watch(await context.newPage(), 'desktop light');
    await page.goto(`${base}/sign-in`);
    await page.getByRole('link', { name: 'Email me a sign-in code' }).click();
    await page.waitForURL(/\/sign-in\/code$/);
    await shot(page, 'code-email-light-desktop');
    await page.getByLabel('Email').fill(codeEmail);
    await page.getByRole('button', { name: 'Email me a code' }).click();
    const codeField = page.getByLabel('Code');
    await codeField.waitFor();
    check((await codeField.getAttribute('autocomplete')) === 'one-time-code', 'one-time-code');
    check(
      await page.evaluate(() => document.activeElement && document.activeElement.id === 'code'),
      'the code field has focus',
    );
    await shot(page, 'code-enter-light-desktop');
    const code = await mailedCode(0);
    const wrong = code === '000000' ? '111111' : '000000';
    expected.push(/^Failed to load resource: .*status of 422/);
    await page.keyboard.type(wrong);
    await page.keyboard.press('Enter');
    const alert = page.getByRole('alert');
    check(
      (await alert.textContent()).trim() ===
        'This code is wrong or has expired. Check it and try again.',
      'a wrong code is refused',
    );
    await page.getByLabel('Code').fill(code);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.waitForURL(/\/account$/);
    check((await page.locator('#account-email').textContent()) === codeEmail, 'signed in by code');
    check(expected.length === 0, 'the refused code was the only console message');

    // The second factor: a wrong code, then a recovery code.
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.waitForURL(/\/signed-out$/);
    await passwordSignIn(page, mfaEmail);
    check(!page.url().includes('ticket'), 'the ticket is not in the URL');
    await shot(page, 'mfa-light-desktop');
    expected.push(/^Failed to load resource: .*status of 422/);
    await page.getByLabel('Code').fill('000000');
    await page.getByRole('button', { name: 'Verify' }).click();
    await page.getByRole('alert').waitFor();
    await shot(page, 'mfa-error-light-desktop');
    await page.getByRole('button', { name: 'Use a recovery code' }).click();
    await page.getByLabel('Recovery code').waitFor();
    await shot(page, 'mfa-recovery-light-desktop');
    await page.getByLabel('Recovery code').fill(recoveryCode);
    await page.getByRole('button', { name: 'Verify' }).click();
    await page.waitForURL(/\/account$/);
    check((await page.locator('#account-email').textContent()) === mfaEmail, 'signed in by MFA');
    check(expected.length === 0, 'the refused factor was the only console message');
    await context.close();
  }

  // Forgot password: from the sign-in page's link to the new-password form (an unknown
  // address reads the same as a known one).
  {
    const context = await browser.newContext({ viewport: desktop, colorScheme: 'light' });
    const page = watch(await context.newPage(), 'forgot light');
    await page.goto(`${base}/sign-in`);
    await page.getByRole('link', { name: 'Forgot password?' }).click();
    await page.waitForURL(/\/forgot-password$/);
    await shot(page, 'forgot-light-desktop');
    await page.getByLabel('Email').fill('nobody-reset@example.com');
    await page.getByRole('button', { name: 'Send reset code' }).click();
    const newPassword = page.getByLabel('New password');
    await newPassword.waitFor();
    check((await newPassword.getAttribute('autocomplete')) === 'new-password', 'new-password');
    await shot(page, 'reset-light-desktop');
    await context.close();
  }

  // Desktop, dark from the system.
  {
    const context = await browser.newContext({ viewport: desktop, colorScheme: 'dark' });
    const page = watch(await context.newPage(), 'desktop dark');
    await page.goto(`${base}/sign-in/code`);
    await shot(page, 'code-email-dark-desktop');
    await passwordSignIn(page, mfaEmail);
    await shot(page, 'mfa-dark-desktop');
    await context.close();
  }

  // Phones: an unknown address gets the same code page; the second-factor page fits.
  for (const scheme of ['light', 'dark']) {
    const context = await browser.newContext({
      viewport: phone,
      deviceScaleFactor: 2,
      isMobile: true,
      hasTouch: true,
      colorScheme: scheme,
    });
    const page = watch(await context.newPage(), `phone ${scheme}`);
    await page.goto(`${base}/sign-in`);
    await noHorizontalScroll(page, `sign-in ${scheme}`);
    await askForCode(page, `nobody-${scheme}@example.com`);
    await noHorizontalScroll(page, `code ${scheme}`);
    await shot(page, `code-enter-${scheme}-phone`);
    await passwordSignIn(page, mfaEmail);
    await noHorizontalScroll(page, `mfa ${scheme}`);
    await shot(page, `mfa-${scheme}-phone`);
    if (scheme === 'dark') {
      await page.goto(`${base}/forgot-password`);
      await page.getByLabel('Email').fill(`nobody-${scheme}@example.com`);
      await page.getByRole('button', { name: 'Send reset code' }).click();
      await page.getByLabel('New password').waitFor();
      await noHorizontalScroll(page, `reset ${scheme}`);
      await shot(page, `reset-${scheme}-phone`);
    }
    await context.close();
  }

  // JavaScript off: the code sign-in works.
  {
    const context = await browser.newContext({ viewport: desktop, javaScriptEnabled: false });
    const page = watch(await context.newPage(), 'no javascript');
    await askForCode(page, codeEmail);
    await page.getByLabel('Code').fill(await mailedCode(1));
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.waitForURL(/\/account$/);
    check((await page.locator('#account-email').textContent()) === codeEmail, 'signed in, no JS');
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
