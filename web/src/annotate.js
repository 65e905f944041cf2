// The annotation workspace. A judgment is held for the undo window, then sent; until the server
// acknowledges it, it waits in localStorage and is retried with the same event id, so a slow or
// failed request, a reload or a closed tab never loses it and the store never counts it twice.
// When the server cannot be reached, the page says so, keeps nothing judgeable on screen, and
// recovers by itself: it retries the next comparison and, once that works, the waiting judgments.
import { api, ApiError, uuid } from './api.js';
import { el, replace } from './dom.js';
import { renderMarkdown } from './markdown.js';
import { clearDifferences, markDifferences } from './diff.js';
import { showThumbs } from './thumbs.js';

const $ = (id) => document.getElementById(id);
// Per person: a judgment left by one annotator must never be sent under another's session.
const OUTBOX = `prefloop.outbox.${document.querySelector('meta[name="user"]').content}`;
const UNDO_MS = Number($('task').dataset.undoSeconds ?? 10) * 1000;

let task = null; // the comparison on screen
let shownAt = 0;
let held = null; // the last judgment, inside its undo window: { task, body, timer }
let today = 0;
let target = 0; // judgments a day the project asks for (0: none)
const retries = new Map(); // eventId -> timer of a judgment waiting to be sent again

// Single-key shortcuts can be turned off (WCAG 2.1.4); the choice is kept in this browser.
const SHORTCUTS = 'prefloop.shortcuts';
$('shortcuts').checked = localStorage.getItem(SHORTCUTS) !== 'off';
function applyShortcuts() {
  document.body.classList.toggle('no-shortcuts', !$('shortcuts').checked);
}
$('shortcuts').addEventListener('change', () => {
  localStorage.setItem(SHORTCUTS, $('shortcuts').checked ? 'on' : 'off');
  applyShortcuts();
});
applyShortcuts();

// Highlighting the words in which the two responses differ: a reading aid, off unless chosen.
const DIFF = 'prefloop.diff';
$('diff').checked = localStorage.getItem(DIFF) === 'on';
function showDifferences() {
  clearDifferences($('left'));
  clearDifferences($('right'));
  if ($('diff').checked && task && !markDifferences($('left'), $('right'))) status('These responses are too long to compare word by word', 'warn');
}
$('diff').addEventListener('change', () => {
  localStorage.setItem(DIFF, $('diff').checked ? 'on' : 'off');
  showDifferences();
});

function status(text, kind = '') {
  $('status').textContent = text;
  $('status').className = `status ${kind}`;
}

function counter() {
  const waiting = outbox().length + (held ? 1 : 0);
  $('today').textContent = String(today);
  $('target').hidden = $('progress').hidden = !target;
  if (target) {
    $('target-count').textContent = String(target);
    $('progress').max = target;
    $('progress').value = Math.min(today, target);
  }
  $('today').title = waiting ? `${waiting} waiting to be saved` : '';
}

// ---- the outbox: judgments not yet acknowledged by the server ----
function outbox() {
  try { return JSON.parse(localStorage.getItem(OUTBOX) ?? '[]'); } catch { return []; }
}
function saveOutbox(list) {
  localStorage.setItem(OUTBOX, JSON.stringify(list));
}

// Each entry is { assignmentId, body }; until acknowledged, its assignment is not offered again.
async function send(entry, attempt = 0) {
  const { body } = entry;
  clearTimeout(retries.get(body.eventId));
  retries.delete(body.eventId);
  if (!outbox().some((e) => e.body.eventId === body.eventId)) saveOutbox([...outbox(), entry]);
  try {
    await api('/api/preferences', { method: 'POST', body, keepalive: true });
    saveOutbox(outbox().filter((e) => e.body.eventId !== body.eventId));
    today++;
    status('Saved', 'ok');
  } catch (e) {
    const status4xx = e instanceof ApiError && e.status >= 400 && e.status < 500;
    if (status4xx && (e.status === 401 || e.status === 403)) {
      // Signed out, or the page's token is stale: keep it; the next visit to this page sends it.
      status('Your session ended: sign in again and your unsaved judgments will be sent', 'error');
    } else if (status4xx && e.status !== 408 && e.status !== 429) {
      saveOutbox(outbox().filter((o) => o.body.eventId !== body.eventId));
      status(`A judgment was refused: ${e.message}`, 'error');
    } else {
      const wait = Math.min(30, 2 ** attempt);
      status(`Saving failed (${e.message || 'network'}): the judgment is kept and sent again in ${wait} s`, 'warn');
      retries.set(body.eventId, setTimeout(() => send(entry, attempt + 1), wait * 1000));
    }
  }
  counter();
}

/** After an outage: send the waiting judgments now instead of at their back-off time. */
function retryWaiting() {
  for (const entry of outbox()) if (retries.has(entry.body.eventId)) send(entry, 1);
}

// ---- showing a comparison ----
function message(m) {
  return el('div', { class: `msg ${m.role}` }, el('div', { class: 'role' }, m.role), el('div', { class: 'md' }, renderMarkdown(m.content)));
}

/** A long conversation shows its last message; the earlier turns fold into one line that opens. */
function conversation(prompt) {
  if (prompt.length <= 2) return prompt.map(message);
  const earlier = prompt.slice(0, -1);
  return [el('details', { class: 'earlier' }, el('summary', {}, `Earlier in the conversation (${earlier.length} messages)`), earlier.map(message)),
    message(prompt[prompt.length - 1])];
}

/** Keys go to the page again, not to a box of the item that was just judged. */
function releaseFocus() {
  if ($('task').contains(document.activeElement)) document.activeElement.blur();
}

/** Nothing judgeable on screen: while the next comparison loads, or while it cannot. */
function clear(loading) {
  task = null;
  releaseFocus();
  $('task').classList.toggle('loading', loading);
  $('task').inert = true;
  if (!loading) {
    $('task').hidden = true;
    delete $('task').dataset.assignment;
  }
}

function render(t) {
  task = t;
  shownAt = Date.now();
  releaseFocus();
  $('empty').hidden = true;
  $('task').hidden = false;
  $('task').inert = false;
  $('task').classList.remove('loading');
  $('task').dataset.assignment = String(t.assignmentId);
  replace($('conversation'), conversation(t.prompt));
  replace($('left'), renderMarkdown(t.left.text));
  replace($('right'), renderMarkdown(t.right.text));
  showThumbs($('left'), t.comparisonId, t.left.side);
  showThumbs($('right'), t.comparisonId, t.right.side);
  showDifferences();
  $('verdict').reset();
  strengthFollowsVerdict();
  window.scrollTo(0, 0);
}

let polling = null;
let loads = 0; // an undo while the next comparison loads must win over that load
let failures = 0; // consecutive failed loads: the back-off, and whether we are recovering
async function next() {
  clearTimeout(polling);
  const ticket = ++loads;
  const pending = [...outbox().map((e) => e.assignmentId), ...(held ? [held.task.assignmentId] : [])];
  let t;
  try {
    t = await api(`/api/tasks/next?pending=${pending.join(',')}`);
  } catch (e) {
    if (ticket !== loads || (e instanceof ApiError && e.status === 401)) return; // superseded, or off to sign in
    if (e instanceof ApiError && e.status === 403) { // paused for low gold accuracy, until an admin resumes them
      clear(false);
      $('empty').hidden = true;
      $('paused').textContent = e.message;
      $('paused').hidden = false;
      polling = setTimeout(next, 60_000);
      return;
    }
    const wait = Math.min(10, 2 ** failures++);
    clear(false);
    $('empty').hidden = true;
    status(`Cannot reach the server (${e.message || 'network error'}). Your judgments are kept; trying again in ${wait} s.`, 'error');
    polling = setTimeout(next, wait * 1000);
    return;
  }
  if (ticket !== loads) return;
  $('paused').hidden = true;
  if (failures) {
    failures = 0;
    status('Connected again', 'ok');
    retryWaiting();
  }
  if (t) { render(t); return; }
  clear(false);
  $('empty').hidden = false;
  polling = setTimeout(next, 30_000);
}

// ---- verdicts ----
const STRENGTHS = { 5: 'much_better', 6: 'better', 7: 'slightly_better' };

/** How much better applies to "A is better" or "B is better" only. */
function strengthFollowsVerdict() {
  const picked = new FormData($('verdict')).get('choice');
  const decisive = picked === 'left' || picked === 'right';
  $('strength').disabled = !decisive;
  if (!decisive) $('strength').querySelectorAll('input').forEach((i) => { i.checked = false; });
}
$('verdict').addEventListener('change', strengthFollowsVerdict);

/** A verdict as shown on screen (left, right, tie, both_bad) in the comparison's own order (A, B, tie, both_bad). */
function sideOf(picked) {
  return picked === 'left' ? task.left.side : picked === 'right' ? task.right.side : picked;
}

/** The per-criterion verdicts given (each optional); null when none. */
function criteria() {
  const out = {};
  for (const set of document.querySelectorAll('#verdict fieldset.criterion')) {
    const picked = set.querySelector('input:checked');
    if (picked) out[set.dataset.criterion] = sideOf(picked.value);
  }
  return Object.keys(out).length ? out : null;
}

function commitHeld() {
  if (!held) return;
  clearTimeout(held.timer);
  const entry = { assignmentId: held.task.assignmentId, body: held.body };
  held = null;
  $('undo').hidden = true;
  send(entry);
}

async function submit() {
  if (!task) return;
  const picked = new FormData($('verdict')).get('choice');
  if (!picked) { status('Pick a verdict first: 1, 2, 3 or 4', 'warn'); return; }
  const choice = sideOf(picked);
  const rationale = $('rationale').value.trim();
  const body = { eventId: uuid(), comparisonId: task.comparisonId, choice, rationale: rationale || null, timeSpentMs: Date.now() - shownAt };
  const strength = $('strength').disabled ? null : new FormData($('verdict')).get('strength');
  if (strength) body.strength = strength;
  const perCriterion = criteria();
  if (perCriterion) body.criteria = perCriterion;
  // every ticked box, so that undo puts the whole form back
  const ticked = [...$('verdict').querySelectorAll('input:checked')].map((i) => [i.name, i.value]);
  commitHeld();
  held = { task, picked, rationale, ticked, body, timer: setTimeout(commitHeld, UNDO_MS) };
  $('undo').hidden = false;
  $('undo-text').textContent = `Judgment recorded (${labelOf(picked)}${strength ? `, ${strength.replace('_', ' ')}` : ''}).`;
  status('');
  counter();
  clear(true); // the judged item cannot be judged again while the next one loads
  await next();
}

function labelOf(picked) {
  return { left: 'A is better', right: 'B is better', tie: 'tie', both_bad: 'both bad' }[picked];
}

async function undo() {
  if (!held) return;
  clearTimeout(held.timer);
  clearTimeout(polling);
  loads++;
  const { task: previous, ticked, rationale } = held;
  held = null;
  $('undo').hidden = true;
  render(previous);
  for (const [name, value] of ticked) $('verdict').querySelector(`input[name="${name}"][value="${value}"]`).checked = true;
  strengthFollowsVerdict();
  if (ticked.some(([name]) => name.startsWith('criterion-'))) document.querySelector('#verdict details.criteria').open = true;
  $('rationale').value = rationale;
  status('Undone: judge it again', 'ok');
  counter();
}

let skipping = false;
async function skip() {
  if (!task || skipping) return;
  skipping = true;
  try {
    await api(`/api/tasks/${task.assignmentId}/skip`, { method: 'POST' });
  } catch (e) {
    if (!(e instanceof ApiError && e.status === 401)) status(`Skipping failed (${e.message || 'network error'}); the comparison is still yours`, 'error');
    return;
  } finally {
    skipping = false;
  }
  status('Skipped');
  clear(true);
  await next();
}

// ---- flagging: harmful or broken items leave the queue for an admin's review ----
async function flag(reason) {
  if (!task || skipping) return;
  skipping = true;
  try {
    await api(`/api/tasks/${task.assignmentId}/flag`, { method: 'POST', body: { reason, note: $('rationale').value.trim() || null } });
  } catch (e) {
    if (!(e instanceof ApiError && e.status === 401)) status(`Flagging failed (${e.message || 'network error'}); the comparison is still yours`, 'error');
    return;
  } finally {
    skipping = false;
  }
  document.querySelector('#verdict details.flag-menu').open = false;
  status(`Flagged as ${reason}: it is withheld until an admin reviews it`, 'ok');
  clear(true);
  await next();
}
document.querySelectorAll('#verdict .flag-as').forEach((b) => b.addEventListener('click', () => flag(b.dataset.reason)));

// ---- the guidelines' side panel ----
function guide(open) {
  $('guide').hidden = !open;
  $('guide-toggle').setAttribute('aria-expanded', String(open));
  document.body.classList.toggle('guide-open', open);
  (open ? $('guide-close') : $('guide-toggle')).focus({ preventScroll: true });
}
$('guide-toggle').addEventListener('click', () => guide($('guide').hidden));
$('guide-close').addEventListener('click', () => guide(false));

// ---- keyboard ----
document.addEventListener('keydown', (e) => {
  const typing = e.target instanceof HTMLTextAreaElement;
  if (typing) {
    if (e.key === 'Escape') e.target.blur();
    if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) { e.preventDefault(); submit(); }
    return;
  }
  if (e.key === 'Escape' && !$('guide').hidden) { guide(false); return; }
  // Off: keys do what they do anywhere else. Buttons, links and the settings keep their own keys.
  if (!$('shortcuts').checked || e.target.closest?.('button, a, select, .toolbar, summary')) return;
  if (e.altKey || ((e.ctrlKey || e.metaKey) && e.key !== 'z')) return;
  const radio = { 1: 'left', 2: 'right', 3: 'tie', 4: 'both_bad' }[e.key];
  if (radio && task) {
    $('verdict').querySelector(`input[name="choice"][value="${radio}"]`).checked = true;
    strengthFollowsVerdict();
  } else if (STRENGTHS[e.key] && task) {
    if ($('strength').disabled) status('How much better goes with A or B: press 1 or 2 first', 'warn');
    else $('verdict').querySelector(`input[name="strength"][value="${STRENGTHS[e.key]}"]`).checked = true;
  } else if (e.key === 'Enter') {
    e.preventDefault();
    submit();
  } else if (e.key === 's' || e.key === 'S') {
    skip();
  } else if (e.key === 'u' || e.key === 'U' || e.key === 'z') {
    undo();
  } else if (e.key === 'g' || e.key === 'G') {
    guide($('guide').hidden);
  } else if (e.key === 'r' || e.key === 'R') {
    e.preventDefault();
    $('rationale').focus();
  } else {
    return;
  }
  e.preventDefault();
});

$('verdict').addEventListener('submit', (e) => { e.preventDefault(); submit(); });
$('skip').addEventListener('click', skip);
$('undo-button').addEventListener('click', undo);
// Leaving the page sends the held judgment at once (keepalive lets the request outlive the page).
addEventListener('pagehide', commitHeld);

(async () => {
  try {
    ({ today, dailyTarget: target } = await api('/api/tasks/stats'));
  } catch { /* counted from here on; next() says when the server cannot be reached */ }
  counter();
  outbox().forEach((entry) => send(entry, 1)); // left over from an earlier visit
  await next();
})();
