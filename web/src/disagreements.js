// Disagreement review: each split comparison with its votes, and a form to adjudicate it.
import { api } from './api.js';
import { el, replace, when } from './dom.js';
import { renderMarkdown } from './markdown.js';
import './flags.js';

const $ = (id) => document.getElementById(id);
const VERDICTS = { A: 'A is better', B: 'B is better', tie: 'Tie', both_bad: 'Both bad' };
const seconds = (ms) => (ms === null || ms === undefined ? '–' : `${Math.round(ms / 100) / 10} s`);

function message(m) {
  return el('div', { class: `msg ${m.role}` }, el('div', { class: 'role' }, m.role), el('div', { class: 'md' }, renderMarkdown(m.content)));
}

function card(d) {
  const c = d.comparison;
  const last = c.prompt[c.prompt.length - 1];
  const tally = Object.entries(d.tally).map(([k, n]) => `${VERDICTS[k] ?? k}: ${n}`).join(' · ');
  const status = el('p', { class: 'status', role: 'status' });
  const form = el('form', { class: 'adjudicate', 'aria-label': `Adjudicate comparison ${c.id}` },
    el('fieldset', {}, el('legend', {}, 'Adjudicated verdict'),
      Object.entries(VERDICTS).map(([value, label]) => el('label', {},
        el('input', { type: 'radio', name: 'choice', value, checked: d.adjudication?.choice === value }), ` ${label}`))),
    el('label', {}, 'Note ', el('input', { name: 'note', maxlength: 4000, value: d.adjudication?.note ?? '' })),
    el('button', { type: 'submit', class: 'primary' }, 'Save verdict'), status);
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const f = new FormData(form);
    if (!f.get('choice')) { status.textContent = 'Pick a verdict first'; status.className = 'status warn'; return; }
    try {
      const saved = await api(`/api/disagreements/${c.id}/adjudication`, { method: 'PUT', body: { choice: f.get('choice'), note: f.get('note') || null } });
      status.textContent = `Saved: ${VERDICTS[saved.adjudication.choice]} (by ${saved.adjudication.adjudicatedBy})`;
      status.className = 'status ok';
    } catch (err) {
      status.textContent = err.message;
      status.className = 'status error';
    }
  });
  return el('section', { class: 'card disagreement', 'data-comparison': c.id },
    el('h2', {}, `Comparison ${c.id}`, el('span', { class: 'muted' }, ` — ${tally}`)),
    c.prompt.length > 1 ? el('details', { class: 'earlier' }, el('summary', {}, `Earlier in the conversation (${c.prompt.length - 1} messages)`),
      c.prompt.slice(0, -1).map(message)) : null,
    message(last),
    el('div', { class: 'responses' }, c.responses.map((r, i) => el('section', { class: 'response', 'aria-label': `Response ${'AB'[i]}` },
      el('h3', {}, `Response ${'AB'[i]}`, r.model ? el('span', { class: 'muted' }, ` (${r.model}${r.version ? ` ${r.version}` : ''})`) : null),
      el('div', { class: 'md' }, renderMarkdown(r.text))))),
    el('table', { class: 'table votes' }, el('thead', {}, el('tr', {}, ['Annotator', 'Verdict', 'Time', 'Rationale', 'When'].map((h) => el('th', {}, h)))),
      el('tbody', {}, d.votes.map((v) => el('tr', {}, el('td', {}, v.annotator), el('td', {}, VERDICTS[v.choice] ?? v.choice),
        el('td', {}, seconds(v.timeSpentMs)), el('td', {}, v.rationale ?? ''), el('td', {}, when(v.submittedAt)))))),
    form);
}

async function load() {
  const list = await api(`/api/disagreements?limit=100${$('undecided').checked ? '&undecided=true' : ''}`);
  $('count').textContent = list.length ? `${list.length} shown` : 'No disagreements: every comparison seen by several people got one verdict.';
  replace($('disagreements'), list.map(card));
}

$('undecided').addEventListener('change', load);
await load();
