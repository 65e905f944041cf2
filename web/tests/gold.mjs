// Gold items and the annotators' leaderboard: Gina (on a phone) gets the two gold items first (the
// service runs with PREFLOOP_GOLD_RATE=1 and PREFLOOP_GOLD_MIN_ANSWERS=2), answers both wrongly and
// is paused with a message; the admin sees her on the quality page's leaderboard with her gold
// accuracy and resumes her there (desktop and phone), after which her queue works again. The gold
// items are unmarked at the end, so later steps see ordinary comparisons. Then Gina flags a broken
// item; it waits on the disagreements page until the admin restores it.
import assert from 'node:assert/strict';
import { ADMIN, BASE, DESKTOP, PHONE, audit, call, eventually, fitsWidth, noConsoleErrors, signIn } from './lib.mjs';
import { untilShown } from './judgment.mjs';

const PASSWORD = 'correct horse battery';

export async function goldAndLeaderboard(browser, stamp) {
  const ginaName = `gina-${stamp}`;
  await call('POST', '/api/users', { username: ginaName, password: PASSWORD, role: 'annotator' });
  const gold = [];
  for (const [q, right, wrong] of [['3 × 4', '12', '15'], ['the capital of Japan', 'Tokyo', 'Osaka']]) {
    const id = (await call('POST', '/api/comparisons', {
      prompt: [{ role: 'user', content: `Gold (${stamp}): what is ${q}?` }],
      responses: [{ text: right, model: 'demo', version: 'v1' }, { text: wrong, model: 'demo', version: 'v2' }],
    })).id;
    await call('POST', '/api/gold', { comparisonId: id, choice: 'A' });
    gold.push(id);
  }

  // ---- Gina, on a phone: two gold items, both answered wrongly ----
  const gina = await signIn(browser, ginaName, PASSWORD, { viewport: PHONE });
  await gina.waitForURL(/\/annotate$/);
  let shown = null;
  for (let n = 0; n < 2; n++) {
    await gina.waitForFunction((p) => { const t = document.getElementById('task'); return !t.hidden && !t.classList.contains('loading') && t.dataset.assignment !== p; }, shown);
    shown = await gina.getAttribute('#task', 'data-assignment');
    assert.match(await gina.textContent('#conversation'), new RegExp(`Gold \\(${stamp}\\)`), 'gold comes first at rate 1');
    const wrongOnLeft = ['15', 'Osaka'].includes((await gina.textContent('#left')).trim());
    await gina.tap(`#verdict label:has(input[name="choice"][value="${wrongOnLeft ? 'left' : 'right'}"])`);
    await gina.tap('#verdict button[type=submit]');
  }
  for (const id of gold) {
    await eventually(`gina's answer on gold ${id}`, async () => (await call('GET', `/api/comparisons/${id}/preferences`))
      .some((r) => r.annotator === ginaName), 40);
  }
  await gina.reload();
  await gina.waitForSelector('#paused', { state: 'visible' });
  assert.match(await gina.textContent('#paused'), /paused: 0 of 2 gold answers right/);
  assert.equal(await gina.isVisible('#task'), false, 'nothing to judge while paused');
  await fitsWidth(gina, 'the paused workspace on a phone');
  await audit(gina, 'workspace, paused for gold accuracy');

  // ---- the admin: the leaderboard, at both sizes; resuming from it ----
  for (const viewport of [PHONE, DESKTOP]) {
    const admin = await signIn(browser, ...ADMIN, { path: '/console/quality', viewport });
    await admin.waitForSelector('#annotators tbody tr');
    const row = admin.locator('#annotators tbody tr', { hasText: ginaName });
    const cells = await row.locator('td').allTextContents();
    assert.equal(cells[4], '0% of 2', 'gold accuracy on the leaderboard');
    await admin.waitForSelector('#gold tbody tr');
    assert.ok((await admin.textContent('#gold')).includes(ginaName), 'gold accuracy over time lists her');
    assert.ok((await admin.locator('#gold-chart svg text.legend').allTextContents()).includes(ginaName), 'and charts her gold accuracy by day');
    assert.ok(await admin.locator('#gold-chart svg path.series').count() > 0);
    await fitsWidth(admin, 'the quality page with a paused annotator');
    await audit(admin, 'quality page, a paused annotator');
    if (viewport === DESKTOP) {
      await admin.click(`button:has-text("Resume ${ginaName}")`);
      await eventually('the resumed row', async () => !(await row.textContent()).includes('paused'));
    }
    noConsoleErrors(admin);
    await admin.context().close();
  }
  await gina.reload();
  await gina.waitForSelector('#status', { state: 'attached' });
  await gina.waitForFunction(() => !document.getElementById('task').hidden || !document.getElementById('empty').hidden);
  assert.equal(await gina.isVisible('#paused'), false, 'resumed: the queue works again');

  // ---- flagging: the item leaves the queue for review ----
  const broken = (await call('POST', '/api/comparisons', {
    prompt: [{ role: 'user', content: `Flag (${stamp}): summarise the attached file` }],
    responses: [{ text: '\ufffd\ufffd <garbled>', model: 'demo', version: 'v1' }, { text: 'There is no file.', model: 'demo', version: 'v2' }],
  })).id;
  await gina.reload();
  await untilShown(gina, `Flag (${stamp})`);
  await gina.tap('#verdict details.flag-menu summary');
  await fitsWidth(gina, 'the flag menu on a phone');
  await audit(gina, 'workspace, flag menu open');
  await gina.tap('#verdict button[data-reason="broken"]');
  await gina.waitForFunction(() => /Flagged as broken/.test(document.getElementById('status').textContent));
  const flagged = (await call('GET', '/api/flags?open=true')).find((f) => f.comparison.id === broken);
  assert.equal(flagged?.reason, 'broken', 'the flag is stored');
  const reviewer = await signIn(browser, ...ADMIN, { path: '/console/disagreements' });
  const card = reviewer.locator(`#flags section[data-comparison="${broken}"]`);
  await card.waitFor();
  assert.match(await card.textContent(), new RegExp(`flagged by ${ginaName}`));
  await audit(reviewer, 'disagreements page with a flagged item');
  await reviewer.click(`button:has-text("Restore comparison ${broken}")`);
  await card.waitFor({ state: 'detached' });
  assert.equal((await call('GET', '/api/flags?open=true')).some((f) => f.comparison.id === broken), false, 'restored');
  noConsoleErrors(reviewer);
  await reviewer.context().close();
  noConsoleErrors(gina);
  await gina.context().close();
  for (const id of gold) await call('DELETE', `/api/gold/${id}`);
}
