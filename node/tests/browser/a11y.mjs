// An accessibility scan of the page in view with axe-core (WCAG 2.1 A and AA rules). axe is
// evaluated through the DevTools protocol, which the pages' Content-Security-Policy does not
// govern, so the page under test keeps its real policy. Returns the serious and critical
// violations, each as "rule: what (n elements)".
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const source = readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');

export async function seriousViolations(page) {
  await page.evaluate(source);
  const results = await page.evaluate(() =>
    // eslint-disable-next-line no-undef
    axe.run(document, { runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'] } }),
  );
  return results.violations
    .filter((violation) => ['serious', 'critical'].includes(violation.impact))
    .map((violation) => `${violation.id}: ${violation.help} (${violation.nodes.length} elements)`);
}

/** Throws unless the scan finds a known violation (an image without text), so a scan that
 * silently checks nothing cannot pass. */
export async function checkTheScanner(browser) {
  const context = await browser.newContext();
  const page = await context.newPage();
  await page.setContent('<!doctype html><html lang="en"><title>t</title><img src="data:,">');
  const violations = await seriousViolations(page);
  await context.close();
  if (!violations.some((violation) => violation.startsWith('image-alt'))) {
    throw new Error(`the accessibility scan missed a known violation: ${violations}`);
  }
}
