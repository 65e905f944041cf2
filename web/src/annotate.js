// The annotation workspace. A judgment is held for the undo window, then sent; until the server
// acknowledges it, it waits in localStorage and is retried with the same event id, so a slow or
// failed request, a reload or a closed tab never loses it and the store never counts it twice.
import { api, ApiError, uuid } from './api.js';
import { el, replace } from './dom.js';
import { renderMarkdown } from './markdown.js';

const $ = (id) => document.getElementById(id);
// Per person: a judgment left by one annotator must never be sent under another's session.
const OUTBOX = `prefloop.outbox.${document.querySelector('meta[name="user"]').content}`;
const UNDO_MS = Number($('task').dataset.undoSeconds ?? 10) * 1000;

let task = null; // the comparison on screen
let shownAt = 0;
let held = null; // the last judgment, inside its undo window: { task, body, timer }
let today = 0;

function status(text, kind = '') {
  $('status').textContent = text;
  $('status').className = `status ${kind}`;
}

function counter() {
  const waiting = outbox().length + (held ? 1 : 0);
  $('today').textContent = String(today);
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
      status(`Saving failed (${e.message || 'network'}); retrying in ${wait} s`, 'warn');
      setTimeout(() => send(entry, attempt + 1), wait * 1000);
    }
  }
  counter();
}

// ---- showing a comparison ----
function render(t) {
  task = t;
  shownAt = Date.now();
  $('empty').hidden = true;
  $('task').hidden = false;
  $('task').dataset.assignment = String(t.assignmentId);
  replace($('conversation'), t.prompt.map((m) => el('div', { class: `msg ${m.role}` },
    el('div', { class: 'role' }, m.role), el('div', { class: 'md' }, renderMarkdown(m.content)))));
  replace($('left'), renderMarkdown(t.left.text));
  replace($('right'), renderMarkdown(t.right.text));
  $('verdict').reset();
  window.scrollTo(0, 0);
}

let polling = null;
let loads = 0; // an undo while the next comparison loads must win over that load
async function next() {
  clearTimeout(polling);
  const ticket = ++loads;
  const pending = [...outbox().map((e) => e.assignmentId), ...(held ? [held.task.assignmentId] : [])];
  const t = await api(`/api/tasks/next?pending=${pending.join(',')}`);
  if (ticket !== loads) return;
  if (t) { render(t); return; }
  task = null;
  $('task').hidden = true;
  delete $('task').dataset.assignment;
  $('empty').hidden = false;
  polling = setTimeout(next, 30_000);
}

// ---- verdicts ----
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
  const choice = picked === 'left' ? task.left.side : picked === 'right' ? task.right.side : picked;
  const rationale = $('rationale').value.trim();
  const body = { eventId: uuid(), comparisonId: task.comparisonId, choice, rationale: rationale || null, timeSpentMs: Date.now() - shownAt };
  commitHeld();
  held = { task, picked, rationale, body, timer: setTimeout(commitHeld, UNDO_MS) };
  $('undo').hidden = false;
  $('undo-text').textContent = `Judgment recorded (${labelOf(picked)}).`;
  status('');
  counter();
  await next();
}

function labelOf(picked) {
  return { left: 'A is better', right: 'B is better', tie: 'tie', both_bad: 'both bad' }[picked];
}

async function undo() {
  if (!held) return;
  clearTimeout(held.timer);
  loads++;
  const { task: previous, picked, rationale } = held;
  held = null;
  $('undo').hidden = true;
  render(previous);
  $('verdict').querySelector(`input[value="${picked}"]`).checked = true;
  $('rationale').value = rationale;
  status('Undone: judge it again', 'ok');
  counter();
}

async function skip() {
  if (!task) return;
  await api(`/api/tasks/${task.assignmentId}/skip`, { method: 'POST' });
  status('Skipped');
  await next();
}

// ---- keyboard ----
document.addEventListener('keydown', (e) => {
  const typing = e.target instanceof HTMLTextAreaElement;
  if (typing) {
    if (e.key === 'Escape') e.target.blur();
    if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) { e.preventDefault(); submit(); }
    return;
  }
  if (e.altKey || ((e.ctrlKey || e.metaKey) && e.key !== 'z')) return;
  const radio = { 1: 'left', 2: 'right', 3: 'tie', 4: 'both_bad' }[e.key];
  if (radio && task) {
    $('verdict').querySelector(`input[value="${radio}"]`).checked = true;
  } else if (e.key === 'Enter') {
    e.preventDefault();
    submit();
  } else if (e.key === 's' || e.key === 'S') {
    skip();
  } else if (e.key === 'u' || e.key === 'U' || e.key === 'z') {
    undo();
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
  today = (await api('/api/tasks/stats')).today;
  counter();
  outbox().forEach((entry) => send(entry, 1)); // left over from an earlier visit
  await next();
})().catch((e) => status(e.message, 'error'));
