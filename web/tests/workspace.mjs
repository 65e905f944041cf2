// The annotation workspace's rough edges, each a step that failed before its fix: the empty queue,
// focus after Ctrl+Enter, an outage (the next item, skip, recovery), shortcuts that can be turned
// off, Markdown (tables, nested lists, earlier turns collapsed, keyboard-reachable and highlighted code blocks),
// and the undo toast on a phone. Carol works at a desktop, Dave on a phone.
import assert from 'node:assert/strict';
import { ARTIFACTS, PHONE, audit, call, eventually, fitsWidth, noConsoleErrors, signIn } from './lib.mjs';

const PASSWORD = 'correct horse battery';
const TURN = 'Tell me more about this, with all the background you have, because I want to understand every detail of it. '.repeat(4);
const RICH = [
  '| method | copies |', '|---|---|', '| `items[::-1]` | yes |', '| `items.reverse()` | no |', '',
  '1. Slicing', '   - returns a copy', '   - works on strings', '2. Reversing', '   1. in place', '   2. returns None', '',
  '```python', 'items = list(range(1000))' + ' + [0]'.repeat(40), '```',
].join('\n');

const shownAssignment = (page) => page.getAttribute('#task', 'data-assignment');

/** Waits until a comparison other than `previous` is on screen; returns its assignment id. */
async function nextShown(page, previous, timeout = 15_000) {
  await page.waitForFunction((p) => {
    const task = document.getElementById('task');
    return !task.hidden && task.dataset.assignment && task.dataset.assignment !== p;
  }, previous, { timeout });
  return shownAssignment(page);
}

async function outboxEmpties(page, name) {
  await page.waitForFunction((key) => JSON.parse(localStorage.getItem(key) ?? '[]').length === 0, `prefloop.outbox.${name}`, { timeout: 30_000 });
}

export async function workspaceDefects(browser, stamp) {
  const carolName = `carol-${stamp}`;
  const daveName = `dave-${stamp}`;
  for (const name of [carolName, daveName]) await call('POST', '/api/users', { username: name, password: PASSWORD, role: 'annotator' });

  // ---- the empty queue: nothing but the message is on screen ----
  const carol = await signIn(browser, carolName, PASSWORD);
  await carol.waitForURL(/\/annotate$/);
  await carol.waitForSelector('#empty', { state: 'visible' });
  assert.equal(await carol.isVisible('#task'), false, 'with nothing waiting, no form is on screen');
  assert.equal(await carol.locator('h1').count(), 1, 'the workspace has an h1');
  await audit(carol, 'workspace, empty queue');

  const ids = [];
  for (let i = 1; i <= 4; i++) {
    const prompt = [{ role: 'system', content: 'You are thorough.' }];
    for (let t = 1; t <= 3; t++) prompt.push({ role: 'user', content: `Turn ${t}. ${TURN}` }, { role: 'assistant', content: `Answer ${t}. ${TURN}` });
    prompt.push({ role: 'user', content: `Item ${i} (${stamp}): so how do I reverse a list?` });
    ids.push((await call('POST', '/api/comparisons', {
      prompt, responses: [{ text: RICH, model: 'demo', version: 'v1' }, { text: `Just call reversed() (${i}); it returns a copy.`, model: 'demo', version: 'v2' }],
    })).id);
  }
  await carol.reload();
  let shown = await nextShown(carol, null);

  // ---- Markdown by markdown-it: tables, nested lists, code reachable by keyboard, earlier turns folded ----
  assert.equal(await carol.locator('.responses table th').count(), 2, 'a Markdown table renders as a table');
  assert.equal(await carol.locator('.responses ol > li').count(), 4, 'the ordered lists keep their items');
  assert.equal(await carol.locator('.responses ol > li > ul > li').count(), 2, 'a bullet list nested in a numbered one stays nested');
  assert.equal(await carol.locator('.responses ol > li > ol > li').count(), 2, 'a numbered list nested in a numbered one stays nested');
  assert.equal(await carol.locator('.responses pre[tabindex="0"]').count(), 1, 'a scrollable code block can be reached by keyboard');
  assert.ok(await carol.locator('.responses pre code.language-python span.hljs-built_in').count() > 0, 'Python code is highlighted by highlight.js');
  assert.match(await carol.locator('.responses pre code.language-python').textContent(), /^items = list\(range\(1000\)\)/, 'highlighting keeps the text');
  assert.equal(await carol.locator('#conversation details:not([open])').count(), 1, 'earlier turns are folded');
  assert.match(await carol.locator('#conversation > .msg').last().textContent(), /Item \d/, 'the last message stays open');
  const responsesTop = (await carol.locator('.responses').boundingBox()).y;
  assert.ok(responsesTop < 768 - 200, `the responses begin on the first screen (at ${responsesTop} px)`);
  await audit(carol, 'workspace with a comparison');

  // ---- differences highlighted on request: words only one side has, never the shared ones ----
  const before = await carol.textContent('.responses');
  assert.equal(await carol.locator('.responses mark.diff').count(), 0, 'no highlighting unless asked');
  await carol.check('#diff');
  const marks = await carol.locator('.responses mark.diff').allTextContents();
  assert.ok(marks.some((m) => m.includes('reversed')), `the words only one side has are marked (${marks.join(' | ')})`);
  assert.ok(!marks.some((m) => /\bcopy\b/.test(m)), `words both sides have are not marked (${marks.join(' | ')})`);
  const short = (await carol.textContent('#left')).includes('Just call') ? '#left' : '#right';
  assert.ok(!(await carol.locator(`${short} mark.diff`).allTextContents()).some((m) => m.includes('returns')), 'a shared phrase stays unmarked');
  assert.equal(await carol.textContent('.responses'), before, 'highlighting changes no text');
  await audit(carol, 'workspace with differences highlighted');
  await carol.screenshot({ path: `${ARTIFACTS}/annotate-diff.png` });
  await carol.uncheck('#diff');
  assert.equal(await carol.locator('.responses mark.diff').count(), 0, 'highlighting turns off');

  // ---- the guidelines in a side panel, beside the comparison ----
  await carol.click('#guide-toggle');
  await carol.waitForSelector('#guide', { state: 'visible' });
  assert.match(await carol.textContent('#guide'), /What makes a response better/);
  assert.ok(await carol.isVisible('#verdict button[type=submit]'), 'the comparison stays beside the guidelines');
  await audit(carol, 'workspace with the guidelines open');
  await carol.keyboard.press('Escape');
  await carol.waitForSelector('#guide', { state: 'hidden' });
  assert.equal(await carol.evaluate(() => document.activeElement?.id), 'guide-toggle', 'focus returns to the button');

  // ---- single-key shortcuts can be turned off (WCAG 2.1.4), and the choice is kept ----
  await carol.uncheck('#shortcuts');
  await carol.reload();
  shown = await nextShown(carol, null);
  assert.equal(await carol.isChecked('#shortcuts'), false, 'the shortcut setting is kept');
  await carol.keyboard.press('1');
  await carol.keyboard.press('s');
  await carol.waitForTimeout(400);
  assert.equal(await carol.locator('#verdict input:checked').count(), 0, 'with shortcuts off, 1 picks nothing');
  assert.equal(await shownAssignment(carol), shown, 'with shortcuts off, S skips nothing');
  await carol.check('#shortcuts');
  await carol.locator('#shortcuts').blur();

  // ---- after Ctrl+Enter in the rationale, keys judge the next item instead of typing ----
  await carol.keyboard.press('1');
  await carol.keyboard.press('r');
  await carol.keyboard.type('ctrl enter');
  await carol.keyboard.press('Control+Enter');
  shown = await nextShown(carol, shown);
  assert.notEqual(await carol.evaluate(() => document.activeElement?.id), 'rationale', 'the rationale box lets go of the focus');
  await carol.keyboard.press('2');
  assert.equal(await carol.isChecked('#verdict input[name="choice"][value="right"]'), true, '2 judges the next item');
  assert.equal(await carol.inputValue('#rationale'), '', 'nothing was typed into the rationale');
  await carol.keyboard.press('Enter');
  shown = await nextShown(carol, shown);

  // ---- an outage: skip and the next item say so, the judged item leaves, and the page recovers by itself ----
  // The last judgment leaves its undo window and is saved first: sent during the outage, its
  // failure could land in the same frame as the skip's and overwrite the message looked for.
  await carol.waitForSelector('#undo', { state: 'hidden', timeout: 30_000 });
  await outboxEmpties(carol, carolName);
  await carol.route('**/api/**', (route) => route.abort('failed'));
  await carol.keyboard.press('s');
  await carol.waitForFunction(() => /skip/i.test(document.getElementById('status').textContent)
    && /error|warn/.test(document.getElementById('status').className));
  assert.equal(await shownAssignment(carol), shown, 'a failed skip leaves the item to judge');
  await carol.keyboard.press('1');
  await carol.keyboard.press('Enter');
  await carol.waitForFunction(() => /reach|connection|network|offline/i.test(document.getElementById('status').textContent));
  assert.equal(await carol.isVisible('#task'), false, 'the judged item leaves the screen while the next cannot load');
  await carol.keyboard.press('1');
  await carol.keyboard.press('Enter'); // nothing to judge twice
  await carol.screenshot({ path: `${ARTIFACTS}/outage.png` });
  await carol.unroute('**/api/**');
  shown = await nextShown(carol, shown, 20_000);
  await carol.keyboard.press('1');
  await carol.keyboard.press('Enter');

  // ---- the last one judged: only the message stays ----
  await carol.waitForSelector('#empty', { state: 'visible' });
  assert.equal(await carol.isVisible('#task'), false, 'after the last comparison, no form is left on screen');
  await outboxEmpties(carol, carolName);
  assert.doesNotMatch(await carol.getAttribute('#status', 'class'), /error/, 'nothing was refused');
  await audit(carol, 'workspace, queue done');
  for (const id of ids) {
    await eventually(`carol's judgment on ${id}`, async () => (await call('GET', `/api/comparisons/${id}/preferences`))
      .filter((r) => r.annotator === carolName).length === 1);
  }
  await carol.waitForTimeout(500);
  for (const id of ids) {
    const mine = (await call('GET', `/api/comparisons/${id}/preferences`)).filter((r) => r.annotator === carolName);
    assert.equal(mine.length, 1, `carol judged comparison ${id} exactly once`);
  }
  noConsoleErrors(carol);
  await carol.context().close();

  // ---- a phone: the page fits, and the undo toast leaves Submit free ----
  const dave = await signIn(browser, daveName, PASSWORD, { viewport: PHONE });
  await dave.waitForURL(/\/annotate$/);
  shown = await nextShown(dave, null);
  await fitsWidth(dave, 'the workspace on a phone');
  await audit(dave, 'workspace with a comparison');
  await dave.tap('#verdict label:has(input[name="choice"][value="left"])');
  await dave.tap('#verdict button[type=submit]');
  shown = await nextShown(dave, shown);
  await dave.waitForSelector('#undo', { state: 'visible' });
  const toast = await dave.locator('#undo').boundingBox();
  const submit = await dave.locator('#verdict button[type=submit]').boundingBox();
  const overlap = !(toast.y + toast.height <= submit.y || submit.y + submit.height <= toast.y
    || toast.x + toast.width <= submit.x || submit.x + submit.width <= toast.x);
  assert.equal(overlap, false, `the undo toast (${JSON.stringify(toast)}) leaves Submit (${JSON.stringify(submit)}) free`);
  assert.ok(toast.y >= 0 && toast.y + toast.height <= PHONE.height, 'the undo toast is on screen');
  await dave.screenshot({ path: `${ARTIFACTS}/annotate-phone.png` });
  await dave.waitForSelector('#undo', { state: 'hidden', timeout: 30_000 });
  await outboxEmpties(dave, daveName);
  noConsoleErrors(dave);
  await dave.context().close();
}
