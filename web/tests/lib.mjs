// Shared by the browser test's sections: the admin's API client, polling, sign-in, and the axe-core
// audit (axe from npm, evaluated in the page over the DevTools protocol, so the page's
// Content-Security-Policy, which allows scripts from the app only, stays as it is).
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import assert from 'node:assert/strict';

export const BASE = process.env.BASE_URL ?? 'http://localhost:8080';
export const ADMIN = ['admin', process.env.ADMIN_PASSWORD ?? 'admin'];
export const ARTIFACTS = process.env.ARTIFACTS ?? 'target/browser';
export const UNDO_SECONDS = Number(process.env.UNDO_SECONDS ?? 10);
export const DESKTOP = { width: 1366, height: 768 };
export const PHONE = { width: 390, height: 844 };

const AXE = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');

export async function call(method, path, body) {
  const res = await fetch(BASE + path, {
    method,
    headers: { Authorization: 'Basic ' + Buffer.from(ADMIN.join(':')).toString('base64'), 'Content-Type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${text}`);
  return text ? JSON.parse(text) : null;
}

export async function eventually(what, check, seconds = 30) {
  const deadline = Date.now() + seconds * 1000;
  for (;;) {
    try {
      const value = await check();
      if (value) return value;
    } catch (e) {
      if (Date.now() > deadline) throw e;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

/** A fresh context at the given size; script errors and console errors fail the test. */
export async function signIn(browser, user, password, { path = '/annotate', viewport = DESKTOP } = {}) {
  const context = await browser.newContext({ viewport, isMobile: viewport.width < 500, hasTouch: viewport.width < 500 });
  const page = await context.newPage();
  page.consoleErrors = [];
  page.on('pageerror', (e) => page.consoleErrors.push(`script error on ${page.url()}: ${e.message}`));
  page.on('console', (m) => {
    // A request the test itself aborts (the simulated outage) is logged by Chromium; that is not the page's fault.
    if (m.type() === 'error' && !/net::ERR_FAILED|Failed to load resource/.test(m.text())) page.consoleErrors.push(`console error on ${page.url()}: ${m.text()}`);
  });
  await page.goto(BASE + path);
  assert.match(page.url(), /\/login\?next=/, 'a signed-out visitor is sent to the sign-in page');
  await audit(page, 'sign-in');
  await page.fill('input[name=username]', user);
  await page.fill('input[name=password]', password);
  await page.click('button[type=submit]');
  return page;
}

export function noConsoleErrors(page) {
  assert.deepEqual(page.consoleErrors, [], 'no script or console errors');
}

/** The page must not scroll sideways (a phone's navigation that overflows the screen). */
export async function fitsWidth(page, what) {
  // The screen's width, not innerWidth: a phone widens its layout viewport to content that overflows.
  const { width } = page.viewportSize();
  const scroll = await page.evaluate(() => document.documentElement.scrollWidth);
  assert.ok(scroll <= width, `${what}: the page is ${scroll} px wide on a ${width} px screen`);
}

export const audited = [];
/** axe-core on the page as it is now: no critical or serious violations. */
export async function audit(page, what) {
  if (!(await page.evaluate(() => typeof window.axe === 'object'))) await page.evaluate(AXE);
  const bad = await page.evaluate(async () => (await window.axe.run(document, { resultTypes: ['violations'] })).violations
    .filter((v) => v.impact === 'critical' || v.impact === 'serious')
    .map((v) => `${v.impact} ${v.id}: ${v.help} — ${v.nodes.slice(0, 3).map((n) => n.target.join(' ')).join(' | ')}`));
  const size = page.viewportSize();
  audited.push(`${what} ${size.width}x${size.height}`);
  assert.deepEqual(bad, [],
    `axe-core on ${what} at ${size.width}x${size.height}`);
}
