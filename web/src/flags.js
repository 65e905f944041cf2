// Flagged items (disagreements page): comparisons annotators flagged as harmful or broken, withheld
// from every queue until an admin restores them or removes them for good.
import { api } from './api.js';
import { el, replace, when } from './dom.js';
import { renderMarkdown } from './markdown.js';

const list = document.getElementById('flags');

function card(f) {
  const c = f.comparison;
  const last = c.prompt[c.prompt.length - 1];
  const status = el('p', { class: 'status', role: 'status' });
  const act = (resolution, label) => el('button', {
    type: 'button',
    onclick: async () => {
      try {
        await api(`/api/flags/${f.id}/resolve`, { method: 'POST', body: { resolution } });
        await load();
      } catch (e) {
        status.textContent = e.message;
        status.className = 'status error';
      }
    },
  }, `${label} comparison ${c.id}`);
  return el('section', { class: 'card flagged', 'data-comparison': c.id },
    el('h3', {}, `Comparison ${c.id}: ${f.reason}`, el('span', { class: 'muted' }, ` — flagged by ${f.annotator}, ${when(f.flaggedAt)}`)),
    f.note ? el('p', {}, `“${f.note}”`) : null,
    el('div', { class: 'msg user' }, el('div', { class: 'md' }, renderMarkdown(last.content))),
    el('div', { class: 'responses' }, c.responses.map((r, i) => el('section', { class: 'response', 'aria-label': `Response ${'AB'[i]} of comparison ${c.id}` },
      el('h4', {}, `Response ${'AB'[i]}`), el('div', { class: 'md' }, renderMarkdown(r.text))))),
    el('div', { class: 'actions' }, act('restored', 'Restore'), ' ', act('removed', 'Remove')), status);
}

async function load() {
  const open = await api('/api/flags?open=true');
  replace(list, open.length ? open.map(card) : el('p', { class: 'muted' }, 'No flagged items wait for review.'));
}

await load();
