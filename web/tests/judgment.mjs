// Richer judgments in the workspace: how much better (keys 5-7, only after A or B), and verdicts per
// criterion (the service runs with PREFLOOP_ANNOTATION_CRITERIA=helpfulness,safety), a thumbs-up on one
// answer alone (stored, and frozen into a kto dataset); undo puts them
// all back, and they are stored as given; the counter shows progress towards the day's target. Erin works at a desktop with the keyboard, Frank on a phone.
import assert from 'node:assert/strict';
import { ADMIN, BASE, PHONE, audit, call, eventually, fitsWidth, noConsoleErrors, signIn } from './lib.mjs';

const PASSWORD = 'correct horse battery';
const checked = (page, name, value) => page.isChecked(`#verdict input[name="${name}"][value="${value}"]`);

/** Skips what earlier steps left in the queue until the comparison whose prompt has `text` is on screen. */
export async function untilShown(page, text) {
  for (let n = 0; n < 30; n++) {
    await page.waitForSelector('#task:not([hidden]):not(.loading)');
    if ((await page.textContent('#conversation')).includes(text)) return;
    const shown = await page.getAttribute('#task', 'data-assignment');
    await page.click('#skip');
    await page.waitForFunction((a) => document.getElementById('task').dataset.assignment !== a, shown);
  }
  throw new Error(`the comparison "${text}" never came`);
}

async function stored(comparison, annotator) {
  return eventually(`${annotator}'s judgment on ${comparison}`, async () => (await call('GET', `/api/comparisons/${comparison}/preferences`))
    .find((r) => r.annotator === annotator));
}

/** The annotator's thumb reached the store: a dataset of kind kto frozen from their thumbs holds it as desirable. */
async function thumbStored(annotator, answer, stamp) {
  let attempt = 0;
  return eventually(`${annotator}'s thumb in a kto dataset`, async () => {
    const dataset = await call('POST', '/api/datasets', { name: `thumbs-${stamp}-${attempt++}`, kind: 'kto', filters: { annotators: [annotator] } });
    const res = await fetch(`${BASE}/api/datasets/${dataset.id}/export`, { headers: { Authorization: 'Basic ' + Buffer.from(ADMIN.join(':')).toString('base64') } });
    const rows = (await res.text()).split('\n').filter(Boolean).map((l) => JSON.parse(l));
    return rows.some((r) => r.label === true && JSON.stringify(r.completion).includes(answer));
  });
}

export async function strengthAndCriteria(browser, stamp) {
  const erinName = `erin-${stamp}`;
  const frankName = `frank-${stamp}`;
  for (const name of [erinName, frankName]) await call('POST', '/api/users', { username: name, password: PASSWORD, role: 'annotator' });
  const comparison = (await call('POST', '/api/comparisons', {
    prompt: [{ role: 'user', content: `Graded question (${stamp}): is 91 prime?` }],
    responses: [{ text: 'No: 91 = 7 × 13.', model: 'demo', version: 'v1' }, { text: 'Yes, 91 is prime.', model: 'demo', version: 'v2' }],
  })).id;

  // ---- desktop, keyboard ----
  const erin = await signIn(browser, erinName, PASSWORD);
  await erin.waitForURL(/\/annotate$/);
  await untilShown(erin, `Graded question (${stamp})`);
  assert.equal(await erin.isDisabled('#strength input[value="better"]'), true, 'how much better waits for A or B');
  await erin.keyboard.press('5');
  assert.equal(await checked(erin, 'strength', 'much_better'), false, '5 before a side picks nothing');
  assert.match(await erin.textContent('#status'), /press 1 or 2 first/);
  // erin prefers the right answer (7 × 13) wherever it is on her screen
  const correctOnLeft = (await erin.textContent('#left')).includes('7 × 13');
  // a thumbs-up on that answer alone (KTO's unpaired feedback), beside the comparison's verdict
  const thumbsUp = `#${correctOnLeft ? 'left' : 'right'} + .thumbs button[aria-label="Good answer"]`;
  await erin.click(thumbsUp);
  await erin.waitForFunction((s) => document.querySelector(s).getAttribute('aria-pressed') === 'true', thumbsUp);
  assert.match(await erin.textContent(`#${correctOnLeft ? 'left' : 'right'} + .thumbs .thumbs-note`), /Saved/);
  await thumbStored(erinName, '7 × 13', stamp);
  await erin.keyboard.press(correctOnLeft ? '1' : '2');
  await erin.keyboard.press('5');
  assert.equal(await checked(erin, 'strength', 'much_better'), true, '5 says much better');
  await erin.click('#verdict details.criteria summary');
  await erin.click(`fieldset[data-criterion="safety"] label:has(input[value="${correctOnLeft ? 'left' : 'right'}"])`);
  await erin.click('fieldset[data-criterion="helpfulness"] label:has(input[value="tie"])');
  await audit(erin, 'workspace, strength and criteria given');
  await erin.keyboard.press('3'); // a tie has no strength: the choice is cleared
  assert.equal(await checked(erin, 'strength', 'much_better'), false, 'a tie clears how much better');
  assert.equal(await erin.isDisabled('#strength input[value="better"]'), true);
  await erin.keyboard.press(correctOnLeft ? '1' : '2');
  await erin.keyboard.press('5');
  await erin.keyboard.press('Enter');
  await erin.waitForSelector('#undo', { state: 'visible' });
  assert.match(await erin.textContent('#undo-text'), /much better/);
  await erin.keyboard.press('u');
  await erin.waitForSelector('#task:not([hidden]):not(.loading)');
  assert.equal(await checked(erin, 'choice', correctOnLeft ? 'left' : 'right'), true, 'undo restores the verdict');
  assert.equal(await checked(erin, 'strength', 'much_better'), true, 'undo restores how much better');
  assert.equal(await checked(erin, 'criterion-safety', correctOnLeft ? 'left' : 'right'), true, 'undo restores the criteria');
  assert.equal(await checked(erin, 'criterion-helpfulness', 'tie'), true);
  await erin.keyboard.press('Enter');
  const e = await stored(comparison, erinName);
  assert.equal(e.choice, 'A', 'the overall verdict in the comparison\'s own order');
  assert.equal(e.strength, 'much_better');
  assert.deepEqual(e.criteria, { helpfulness: 'tie', safety: 'A' }, 'criteria in the comparison\'s own order');
  // progress towards the day's target (PREFLOOP_DAILY_TARGET=40): "1 of 40 today", once the server has it
  assert.match(await erin.textContent('.counter'), /Today:\s*\d+\s*of 40 judged/);
  await erin.waitForFunction(() => Number(document.getElementById('progress').value) === 1);
  noConsoleErrors(erin);
  await erin.context().close();

  // ---- a phone, by touch ----
  const frank = await signIn(browser, frankName, PASSWORD, { viewport: PHONE });
  await frank.waitForURL(/\/annotate$/);
  await untilShown(frank, `Graded question (${stamp})`);
  const wrongOnLeft = (await frank.textContent('#left')).includes('91 is prime');
  await frank.tap(`#verdict label:has(input[name="choice"][value="${wrongOnLeft ? 'left' : 'right'}"])`);
  await frank.tap('#strength label:has(input[value="slightly_better"])');
  await frank.tap('#verdict details.criteria summary');
  await fitsWidth(frank, 'the workspace with criteria open on a phone');
  await audit(frank, 'workspace, strength and criteria given');
  await frank.tap('#verdict button[type=submit]');
  const f = await stored(comparison, frankName);
  assert.equal(f.choice, 'B');
  assert.equal(f.strength, 'slightly_better');
  assert.equal(f.criteria, null, 'no criterion given, none stored');
  noConsoleErrors(frank);
  await frank.context().close();
}
