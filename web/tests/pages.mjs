// Every page as an admin sees it, at desktop and phone sizes: axe-core finds no critical or serious
// violation, nothing scrolls sideways (the phone's navigation wraps instead of overflowing), no
// script or console error (the datasets page's name pattern compiles), and the forms' checks work.
import assert from 'node:assert/strict';
import { ADMIN, ARTIFACTS, BASE, DESKTOP, PHONE, audit, call, fitsWidth, noConsoleErrors, signIn } from './lib.mjs';

const PAGES = [
  ['/annotate', '#status'], ['/annotate/history', '#history'], ['/guidelines', 'h1'],
  ['/console', '#tiles .tile'], ['/console/quality', '#tiles .tile'], ['/console/disagreements', '#count'], ['/console/datasets', '#datasets'],
  ['/console/runs', '#runs'], ['/console/models', '#versions'],
];

export async function everyPage(browser) {
  const runs = await call('GET', '/api/runs');
  const pages = runs.length ? [...PAGES, [`/console/runs/${runs[runs.length - 1].id}`, '#status']] : PAGES;
  for (const viewport of [DESKTOP, PHONE]) {
    const size = `${viewport.width}x${viewport.height}`;
    const admin = await signIn(browser, ...ADMIN, { path: '/console', viewport });
    await admin.waitForURL(/\/console$/);
    for (const [path, ready] of pages) {
      if (admin.url() !== BASE + path) await admin.goto(BASE + path);
      await admin.waitForSelector(ready, { state: 'attached' });
      await admin.waitForLoadState('networkidle', { timeout: 5_000 }).catch(() => { /* a page that polls */ });
      await fitsWidth(admin, `${path} at ${size}`);
      await audit(admin, path);
    }
    await admin.screenshot({ path: `${ARTIFACTS}/models-${size}.png`, fullPage: true });

    // The datasets page: the name's pattern compiles (no console error) and checks the name.
    await admin.goto(BASE + '/console/datasets');
    await admin.fill('#freeze input[name=name]', 'not a name!');
    assert.equal(await admin.$eval('#freeze input[name=name]', (i) => i.checkValidity()), false, 'the browser checks the name');
    await admin.fill('#freeze input[name=name]', 'round-3.prefs_v2');
    assert.equal(await admin.$eval('#freeze input[name=name]', (i) => i.checkValidity()), true, 'a good name passes');

    // The run spec box has a label.
    await admin.goto(BASE + '/console/runs');
    assert.equal(await admin.getByLabel(/run spec/i).count(), 1, 'the run spec box is labelled');
    if (viewport === PHONE) {
      await admin.goto(BASE + '/console');
      await admin.screenshot({ path: `${ARTIFACTS}/console-phone.png` });
    }
    noConsoleErrors(admin);
    await admin.context().close();
  }
}
