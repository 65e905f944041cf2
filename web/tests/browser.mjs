// End-to-end test in a real headless Chromium (Debian's, driven by playwright-core) against a
// running PrefLoop: two annotators sign in and judge every comparison with the keyboard (one
// request fails and is retried, one judgment is undone and redone), the judgments are stored
// exactly once, model output with <script> and <img onerror> renders as text, annotators cannot
// open the console, and an admin sees the work on the dashboard and the quality page, starts a DPO
// round from the runs page and watches its curves arrive, chats with the served model in the
// playground, promotes the new version and rolls back. Before that, workspace.mjs walks through the
// workspace's defects (empty queue, focus, outage, shortcuts, Markdown, phone); after it, pages.mjs
// runs axe-core on every page at desktop and phone sizes. Screenshots go to ARTIFACTS.
//
//   BASE_URL=http://localhost:8080 ADMIN_PASSWORD=... ARTIFACTS=target/browser node web/tests/browser.mjs
import { chromium } from 'playwright-core';
import { mkdirSync, readFileSync } from 'node:fs';
import assert from 'node:assert/strict';
import { ADMIN, ARTIFACTS, BASE, UNDO_SECONDS, audit, audited, call, eventually, noConsoleErrors, signIn as signInAt } from './lib.mjs';
import { workspaceDefects } from './workspace.mjs';
import { everyPage } from './pages.mjs';
import { strengthAndCriteria } from './judgment.mjs';
import { goldAndLeaderboard } from './gold.mjs';

// ONLY=workspace runs just the workspace's and the pages' checks (no judging round, no training run).
const ONLY = process.env.ONLY ?? '';
const started = Date.now();
mkdirSync(ARTIFACTS, { recursive: true });

const stamp = Date.now().toString(36);
const XSS_PROMPT = `Render this (${stamp}): <script>window.__xss = "prompt"</script>`;
const XSS_A = 'Here is an image: <img src=x onerror="window.__xss = \'img\'"> and `inline <b>code</b>` ![pixel](http://example.com/x.png)';
const XSS_B = '<script>window.__xss = "response"</script>\n\n```html\n<script>alert(1)</script>\n```\n\n**bold** and a [link](javascript:alert(1)) <a href="javascript:alert(2)">raw</a>';

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
});
const signIn = (user, password, path = '/annotate') => signInAt(browser, user, password, { path });

// The workspace's defects first, while the queue is still empty.
await workspaceDefects(browser, stamp);
await strengthAndCriteria(browser, stamp);
await goldAndLeaderboard(browser, stamp);
if (ONLY === 'workspace') {
  await everyPage(browser);
  await browser.close();
  console.log(`workspace checks passed in ${Math.round((Date.now() - started) / 1000)} s; axe-core on ${audited.length} page states`);
  process.exit(0);
}

// ---- data: two annotators, four ordinary comparisons and one hostile one ----
const annotators = [`alice-${stamp}`, `bob-${stamp}`];
for (const name of annotators) await call('POST', '/api/users', { username: name, password: 'correct horse battery', role: 'annotator' });
const comparisons = [];
for (let i = 1; i <= 4; i++) {
  comparisons.push((await call('POST', '/api/comparisons', {
    prompt: [{ role: 'system', content: 'You are concise.' }, { role: 'user', content: `Question ${i} (${stamp}): how do I reverse a list in Python?` }],
    responses: [
      { text: `Use slicing:\n\n\`\`\`python\nitems[::-1]\n\`\`\`\n\nIt returns a **new** list (${i}).`, model: 'demo', version: 'v1' },
      { text: `Call \`items.reverse()\`; it works *in place*.\n\n- fast\n- no copy (${i})`, model: 'demo', version: 'v2' },
    ],
  })).id);
}
const hostile = (await call('POST', '/api/comparisons', {
  prompt: [{ role: 'user', content: XSS_PROMPT }],
  responses: [{ text: XSS_A, model: 'demo', version: 'v1' }, { text: XSS_B, model: 'demo', version: 'v2' }],
})).id;
comparisons.push(hostile);
const mine = new Set(comparisons);

/** Judges everything offered; returns { comparisonId: choice as shown } for this test's comparisons. */
async function judgeAll(page, name, { failFirst = false, undoOnce = false, screenshot = null } = {}) {
  await page.waitForURL(/\/annotate$/);
  let failed = 0;
  if (failFirst) {
    await page.route('**/api/preferences', (route) => (failed++ === 0 ? route.abort('failed') : route.continue()));
  }
  const sent = [];
  page.on('request', (r) => { if (r.url().endsWith('/api/preferences') && r.method() === 'POST') sent.push(JSON.parse(r.postData())); });
  const verdicts = {};
  let undone = !undoOnce;
  let shown = null; // the assignment on screen
  for (let n = 0; n < 50; n++) {
    await page.waitForFunction((previous) => {
      const task = document.getElementById('task');
      return (!task.hidden && task.dataset.assignment !== previous) || !document.getElementById('empty').hidden;
    }, shown);
    if (await page.isVisible('#empty')) break;
    shown = await page.getAttribute('#task', 'data-assignment');
    const prompt = await page.textContent('#conversation');
    const id = comparisons.find((c, k) => prompt.includes(k === 4 ? XSS_PROMPT : `Question ${k + 1} (${stamp})`));
    if (id === hostile) {
      // Untrusted text shows as the characters it is: no element made from it, no script run.
      assert.ok((await page.textContent('#left')).includes('<img src=x onerror=') || (await page.textContent('#right')).includes('<img src=x onerror='));
      assert.ok((await page.textContent('#conversation')).includes('<script>window.__xss'));
      assert.ok((await page.textContent('.responses')).includes('<a href="javascript:alert(2)">raw</a>'), 'raw HTML shows as text');
      assert.equal(await page.locator('.md img, .md script, .md a[href^="javascript"]').count(), 0);
      assert.equal(await page.evaluate(() => window.__xss), undefined, 'no injected script ran');
      if (screenshot) await page.screenshot({ path: `${ARTIFACTS}/${screenshot}`, fullPage: true });
      if (screenshot) await audit(page, 'workspace, hostile comparison');
    }
    // Both prefer the slicing answer wherever it is on their screen (so they agree on the ordinary
    // comparisons whatever the drawn order); on the hostile one they differ: tie against both bad.
    const key = id === hostile ? (name === annotators[0] ? '3' : '4')
      : (await page.textContent('#left')).includes('Use slicing') ? '1' : '2';
    await page.keyboard.press(key);
    if (!undone && id !== undefined) { // undo brings the rationale back with the verdict
      await page.keyboard.press('r');
      await page.keyboard.type('clearer and correct');
      await page.keyboard.press('Escape');
    }
    await page.keyboard.press('Enter');
    if (!undone && id !== undefined) {
      undone = true;
      await page.waitForSelector('#undo', { state: 'visible' });
      await page.keyboard.press('u');
      await page.waitForFunction((a) => document.getElementById('task').dataset.assignment === a, shown);
      assert.equal(await page.isChecked(`#verdict input[name="choice"][value="${{ 1: 'left', 2: 'right', 3: 'tie', 4: 'both_bad' }[key]}"]`), true, 'undo restores the verdict');
      shown = null;
      n--;
      continue; // judge the same comparison again
    }
    if (id !== undefined) verdicts[id] = key;
  }
  // The last judgment leaves its undo window, then every judgment is acknowledged.
  await page.waitForSelector('#undo', { state: 'hidden', timeout: (UNDO_SECONDS + 10) * 1000 });
  await page.waitForFunction((key) => JSON.parse(localStorage.getItem(key) ?? '[]').length === 0, `prefloop.outbox.${name}`, { timeout: 30_000 });
  if (failFirst) {
    assert.ok(failed >= 2, 'the first attempt failed and was retried');
    const first = sent[0].eventId;
    assert.ok(sent.filter((b) => b.eventId === first).length >= 2, 'the failed judgment is sent again with the same event id');
  }
  const today = Number(await page.textContent('#today'));
  assert.ok(today >= Object.keys(verdicts).length, `${name}'s counter shows today's work (${today})`);
  return { verdicts, sent };
}

// ---- annotators ----
const alice = await signIn(annotators[0], 'correct horse battery');
const a = await judgeAll(alice, annotators[0], { failFirst: true, undoOnce: true, screenshot: 'annotate.png' });
assert.equal(Object.keys(a.verdicts).filter((id) => mine.has(Number(id))).length, 5, 'alice judged all five comparisons');
const forbidden = await alice.goto(BASE + '/console');
assert.equal(forbidden.status(), 403, 'annotators cannot open the console');
await alice.goto(BASE + '/annotate/history');
await alice.waitForSelector('#history tbody tr');
await alice.screenshot({ path: `${ARTIFACTS}/history.png`, fullPage: true });
noConsoleErrors(alice);

const bob = await signIn(annotators[1], 'correct horse battery');
const b = await judgeAll(bob, annotators[1]);
assert.equal(Object.keys(b.verdicts).filter((id) => mine.has(Number(id))).length, 5, 'bob judged all five comparisons');

// ---- stored exactly once: one judgment per annotator and comparison, the undone one replaced ----
for (const id of comparisons) {
  const stored = await eventually(`judgments on comparison ${id}`, async () => {
    const rows = await call('GET', `/api/comparisons/${id}/preferences`);
    return rows.length >= 2 ? rows : null;
  });
  await new Promise((r) => setTimeout(r, 500));
  const again = await call('GET', `/api/comparisons/${id}/preferences`);
  assert.equal(again.length, 2, `comparison ${id} holds exactly two judgments`);
  assert.deepEqual(new Set(stored.map((s) => s.annotator)), new Set(annotators));
}
const aliceRows = (await Promise.all(comparisons.map((id) => call('GET', `/api/comparisons/${id}/preferences`)))).flat()
  .filter((r) => r.annotator === annotators[0]);
assert.ok(aliceRows.some((r) => r.rationale === 'clearer and correct'), 'the rationale typed after R is stored');
const aliceEvents = new Set(a.sent.map((s) => s.eventId));
assert.ok(aliceRows.every((r) => aliceEvents.has(r.eventId)));

// ---- admin: the dashboard shows the work ----
const admin = await signIn(...ADMIN, '/console');
await admin.waitForURL(/\/console$/);
await admin.waitForSelector('#tiles .tile');
await admin.waitForSelector('#per-hour svg rect.bar');
const tiles = await admin.textContent('#tiles');
assert.match(tiles, /judgments stored/);
const rows = await admin.textContent('#annotators');
for (const name of annotators) assert.ok(rows.includes(name), `${name} is listed per annotator`);
await admin.screenshot({ path: `${ARTIFACTS}/dashboard.png`, fullPage: true });

await admin.goto(BASE + '/console/quality');
await admin.waitForSelector('#kept svg rect.bar');
assert.match(await admin.textContent('#tiles'), /Krippendorff/);
assert.ok((await admin.textContent('#pairs')).includes(annotators[0]), 'the pair of annotators has a kappa');
await admin.screenshot({ path: `${ARTIFACTS}/quality.png`, fullPage: true });

// ---- admin: the comparison alice and bob split on (tie against both bad), adjudicated ----
await admin.goto(BASE + '/console/disagreements');
const split = admin.locator(`.disagreement[data-comparison="${hostile}"]`);
await split.waitFor();
for (const name of annotators) assert.ok((await split.locator('.votes').textContent()).includes(name), `${name}'s vote is shown`);
assert.equal(await admin.evaluate(() => window.__xss), undefined, 'the hostile comparison runs nothing here either');
await split.locator('input[value="both_bad"]').check();
await split.locator('input[name=note]').fill('neither should be sent');
await split.locator('button[type=submit]').click();
await split.locator('.status.ok').waitFor();
const decided = (await call('GET', '/api/disagreements')).find((d) => d.comparison.id === hostile);
assert.equal(decided.adjudication.choice, 'both_bad', 'the adjudicated verdict is stored');
assert.equal(decided.votes.length, 2, 'the votes stay as they were');
await admin.screenshot({ path: `${ARTIFACTS}/disagreements.png`, fullPage: true });

// ---- admin: start a DPO round from the runs page and watch it live ----
const pairs = readFileSync(new URL('../../preference-data/synthetic/dpo.jsonl', import.meta.url), 'utf8').split('\n').slice(0, 64).join('\n');
// Uploaded from the page (a file input), then frozen with the date and annotator filters.
await admin.goto(BASE + '/console/datasets');
await admin.fill('#upload input[name=name]', `browser-${stamp}`);
await admin.setInputFiles('#upload input[type=file]', { name: 'pairs.jsonl', mimeType: 'application/x-ndjson', buffer: Buffer.from(pairs) });
await admin.click('#upload button[type=submit]');
await admin.waitForSelector('#upload-result.ok');
const dataset = Number((await admin.textContent('#upload-result')).match(/Uploaded dataset (\d+) .*: 64 items/)[1]);
await admin.waitForSelector(`#datasets td:text-is("browser-${stamp}")`);
const isoDay = (offset) => { const d = new Date(Date.now() + offset * 86_400_000); return `${d.getFullYear()}-${String(d.getMonth() + 1).padStart(2, '0')}-${String(d.getDate()).padStart(2, '0')}`; };
await admin.fill('#freeze input[name=name]', `people-${stamp}`);
await admin.fill('#freeze input[name=annotators]', annotators.join(', '));
await admin.fill('#freeze input[name=to]', isoDay(-1));
await admin.click('#freeze button[type=submit]');
await admin.waitForSelector('#freeze-result.error');
assert.match(await admin.textContent('#freeze-result'), /no comparison passes/, 'nothing was judged before today');
await admin.fill('#freeze input[name=to]', '');
await admin.fill('#freeze input[name=from]', isoDay(0));
await admin.click('#freeze button[type=submit]');
await admin.waitForSelector('#freeze-result.ok');
assert.match(await admin.textContent('#freeze-result'), /Frozen dataset \d+ "people-/, 'the annotators\' judgments freeze into a dataset');
await admin.waitForSelector(`#datasets td:text-is("people-${stamp}")`);
const people = (await call('GET', '/api/datasets')).find((d) => d.name === `people-${stamp}`);
assert.deepEqual(people.filters.annotators, annotators, 'the annotator filter reached the API');
assert.ok(people.filters.from, 'the date filter reached the API');
// The dataset browser: the uploaded pairs, searched before training.
await admin.click(`button:has-text("Browse browser-${stamp}")`);
await admin.waitForSelector('#browse-count:has-text("64 items match")');
const sample = JSON.parse(pairs.split('\n')[5]);
const needle = (typeof sample.prompt === 'string' ? sample.prompt : sample.prompt.at(-1).content).slice(0, 12);
await admin.fill('#browse-form input[name=q]', needle);
await admin.click('#browse-form button[type=submit]');
await admin.waitForFunction(() => !/64 items match/.test(document.getElementById('browse-count').textContent));
const matching = Number((await admin.textContent('#browse-count')).match(/(\d+) items match/)[1]);
assert.ok(matching >= 1 && matching < 64, `the search narrows the items (${matching})`);
assert.ok((await admin.textContent('#items tbody')).includes(needle), 'the matching items are listed');
await audit(admin, 'datasets page, browsing a dataset');
await admin.screenshot({ path: `${ARTIFACTS}/datasets.png`, fullPage: true });
await admin.goto(BASE + '/console/runs');
await admin.waitForFunction(() => document.getElementById('spec').value.includes('dpo:'));
await admin.fill('#spec', `name: browser-${stamp}
seed: 3
dpo: {dataset: "dataset:${dataset}", num_train_epochs: 1, per_device_train_batch_size: 8, learning_rate: 2.0e-4,
      r: 8, lora_alpha: 16, max_length: 64, logging_steps: 1}
`);
await admin.click('#start button[type=submit]');
await admin.waitForURL(/\/console\/runs\/\d+$/);
await admin.waitForSelector('#status.succeeded', { timeout: 120_000 });
await admin.waitForFunction(() => document.querySelectorAll('#loss path.series, #accuracy path.series, #margin path.series').length >= 3);
const steps = await admin.textContent('#step');
assert.match(steps, /step 8 of 8/, 'the progress reached the last step');
await admin.waitForSelector('#version a[href="/console/models"]');
assert.match(await admin.textContent('#version'), /Registered model version \d+/, 'the run links to the version it registered');
assert.ok((await admin.textContent('#spec-view')).includes(`"dataset:${dataset}"`), 'the run page shows the spec');
assert.ok((await admin.textContent('#final')).includes('rewards/accuracies'), 'the run page shows the final metrics');
await admin.screenshot({ path: `${ARTIFACTS}/run.png`, fullPage: true });
const runId = Number(admin.url().match(/runs\/(\d+)$/)[1]);
await admin.goto(BASE + '/console/runs');
await admin.check(`#runs input[aria-label="Compare run ${runId}"]`);
await admin.waitForFunction(() => document.querySelectorAll('#compare path.series').length >= 1);
assert.match(await admin.textContent('#compare'), new RegExp(`run ${runId} browser-`), 'the ticked run is drawn in the comparison');
await admin.selectOption('#compare-metric', 'rewards/accuracies');
await admin.waitForFunction(() => document.querySelector('#compare').textContent.includes('Runs compared') && document.querySelectorAll('#compare path.series').length >= 1);

// ---- admin: the playground answers from the served model ----
await admin.goto(BASE + '/console/models');
await admin.waitForSelector('#versions tbody tr');
// Ratings by version, each with its 95% interval (v1 and v2 wrote this test's comparisons).
await admin.waitForSelector('#rating-table tbody tr');
assert.match(await admin.textContent('#rating-table'), /v1\s*\d+ \(\d+–\d+\)/, 'a rating with its interval');
assert.match(await admin.textContent('#win-rates'), /\d+% \(\d+%–\d+%\)/, 'a win rate with its interval');
await admin.fill('#message', 'reverse: hello');
await admin.keyboard.press('Enter');
await admin.waitForFunction(() => {
  const answers = document.querySelectorAll('#chat .msg.assistant .md');
  return answers.length === 1 && !['', '…'].includes(answers[0].textContent.trim());
}, null, { timeout: 60_000 });
assert.equal(await admin.locator('#chat .error').count(), 0, 'the playground got an answer');
// A message longer than the model's context: the bubble says what happened instead of staying blank.
await admin.click('#clear');
await admin.fill('#message', 'reverse: ' + 'abc '.repeat(600));
await admin.keyboard.press('Enter');
await admin.waitForFunction(() => {
  const answers = document.querySelectorAll('#chat .msg.assistant .md');
  return answers.length === 1 && !['', '…'].includes(answers[0].textContent.trim());
}, null, { timeout: 60_000 });
const tooLong = await admin.textContent('#chat .msg.assistant .md');
assert.match(tooLong, /no text|context|Error/, `the playground explains an empty answer (${tooLong.slice(0, 160)})`);
await admin.click('#clear');
// Side by side: the promoted alias and the version this run registered answer one message together.
const registered = await admin.$eval('#model-b', (s) => [...s.options].map((o) => o.value).find((v) => v.startsWith('browser-')));
await admin.selectOption('#model-b', registered);
await admin.fill('#message', 'reverse: side');
await admin.keyboard.press('Enter');
await admin.waitForFunction(() => {
  const answers = [...document.querySelectorAll('#chat .pair .msg.assistant .md')];
  return answers.length === 2 && answers.every((a) => !['', '…'].includes(a.textContent.trim()));
}, null, { timeout: 60_000 });
assert.equal(await admin.locator('#chat .error').count(), 0, 'both versions answered');
assert.match(await admin.locator('#chat .pair .role').nth(1).textContent(), new RegExp(registered), 'each answer names its version');
await admin.screenshot({ path: `${ARTIFACTS}/models.png`, fullPage: true });
await admin.selectOption('#model-b', '');

// ---- admin: promote the new version, then roll back ----
admin.on('dialog', (d) => d.accept());
const promotedName = async () => (await admin.textContent('#versions tr:has(.badge.succeeded) td:nth-child(2)')).trim();
const before = await promotedName();
await admin.click('#versions tbody tr:first-child button');
await admin.waitForFunction((b) => !document.querySelector('#versions tr:has(.badge.succeeded)')?.textContent.includes(b), before);
assert.match(await promotedName(), new RegExp(`^browser-${stamp}-r\\d+$`), 'the new version is promoted');
await admin.click(`#versions tr:has(td:text-is("${before}")) button:text("Roll back to this")`);
await admin.waitForFunction((b) => document.querySelector('#versions tr:has(.badge.succeeded)')?.textContent.includes(b), before);

noConsoleErrors(admin);

// ---- every page at desktop and phone sizes: axe-core, width, console errors ----
await everyPage(browser);

await browser.close();
console.log(`browser test passed in ${Math.round((Date.now() - started) / 1000)} s: ${comparisons.length} comparisons x ${annotators.length} annotators stored once; `
  + `axe-core on ${audited.length} page states; screenshots in ${ARTIFACTS}`);
