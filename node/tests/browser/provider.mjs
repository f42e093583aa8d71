// The OpenID provider's pages in headless Chromium: an application sends the browser to
// authorize, the person signs in, sees the consent page and allows; the application later
// asks to sign them out without a hint, and the person confirms. The application's own
// pages are answered by the script (they live on another host). Screenshots of the consent
// and sign-out pages, light and dark, desktop and phone; fails on any console error (a CSP
// violation included).
//
// Environment: GATEHOUSE_AUTHORIZE_URL, GATEHOUSE_END_SESSION_URL, GATEHOUSE_APP_ORIGIN,
// GATEHOUSE_SCREENSHOTS, GATEHOUSE_EMAIL, GATEHOUSE_PASSWORD; optional GATEHOUSE_CHROMIUM.

import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { checkTheScanner, seriousViolations } from './a11y.mjs';

const required = (name) => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
};
const authorizeUrl = required('GATEHOUSE_AUTHORIZE_URL');
const endSessionUrl = required('GATEHOUSE_END_SESSION_URL');
const appOrigin = required('GATEHOUSE_APP_ORIGIN');
const shots = required('GATEHOUSE_SCREENSHOTS');
mkdirSync(shots, { recursive: true });

const problems = [];
const landed = [];
const scanned = [];

/** Fails the run on serious accessibility violations of the page in view. */
async function scan(page, label) {
  const violations = await seriousViolations(page);
  scanned.push(label);
  for (const violation of violations) problems.push(`${label}: accessibility: ${violation}`);
}
const browser = await chromium.launch({
  executablePath: process.env.GATEHOUSE_CHROMIUM ?? '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
    '--disable-component-update', '--disable-sync', '--no-first-run'],
});

async function session(colorScheme, viewport) {
  const context = await browser.newContext({ colorScheme, viewport });
  await context.route(`${appOrigin}/**`, async (route) => {
    landed.push(route.request().url());
    await route.fulfill({ status: 200, contentType: 'text/plain', body: 'the application' });
  });
  const page = await context.newPage();
  page.on('console', (message) => {
    if (message.type() === 'error' || /Content Security Policy/i.test(message.text())) {
      problems.push(`console ${message.type()}: ${message.text()}`);
    }
  });
  page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
  return { context, page };
}

await checkTheScanner(browser);
const runs = [
  ['light', { width: 1280, height: 800 }, 'desktop'],
  ['dark', { width: 375, height: 740 }, 'phone'],
];
for (const [scheme, viewport, size] of runs) {
  const { context, page } = await session(scheme, viewport);
  // `prompt=consent`: the second run's person already consented in the first.
  await page.goto(`${authorizeUrl}&prompt=consent`);
  await page.getByLabel('Email').waitFor();
  await scan(page, `sign-in ${scheme}`);
  await page.getByLabel('Email').fill(required('GATEHOUSE_EMAIL'));
  await page.getByLabel('Password').fill(required('GATEHOUSE_PASSWORD'));
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('button', { name: 'Allow' }).waitFor();
  await scan(page, `consent ${scheme}`);
  await page.screenshot({ path: join(shots, `consent-${scheme}-${size}.png`), fullPage: true });
  await page.getByRole('button', { name: 'Allow' }).click();
  await page.waitForURL(`${appOrigin}/**`);
  if (scheme === 'light') {
    // The person takes the app's access back in the settings; its next sign-in asks again.
    await page.goto(authorizeUrl.replace(/\/oauth2\/authorize\?.*$/, '/handler/settings/apps'));
    await page.getByRole('button', { name: 'Remove access' }).waitFor();
    await scan(page, 'settings apps');
    await page.screenshot({ path: join(shots, 'settings-apps-light-desktop.png'), fullPage: true });
    await page.getByRole('button', { name: 'Remove access' }).click();
    await page.getByText('That app no longer has access').waitFor();
    await page.goto(authorizeUrl);
    await page.getByRole('button', { name: 'Allow' }).click();
    await page.waitForURL(`${appOrigin}/**`);
  }
  await page.goto(endSessionUrl);
  await page.getByRole('button', { name: 'Sign out' }).waitFor();
  await scan(page, `end-session ${scheme}`);
  await page.screenshot({ path: join(shots, `end-session-${scheme}-${size}.png`), fullPage: true });
  await page.getByRole('button', { name: 'Sign out' }).click();
  await page.waitForURL(`${appOrigin}/**`);
  await context.close();
}
await browser.close();
if (problems.length) throw new Error(problems.join('\n'));
console.log(JSON.stringify({ landed, scanned }));
