import { api } from './api.js';
import { el, fillTable, when } from './dom.js';

const form = document.getElementById('freeze');
const result = document.getElementById('freeze-result');

async function list() {
  const sets = await api('/api/datasets');
  fillTable(document.getElementById('datasets'), sets.map((d) => [d.id, d.name, d.kind, d.items, el('code', {}, d.contentHash.slice(0, 12)),
    when(d.createdAt), el('a', { href: `/api/datasets/${d.id}/export`, download: `${d.name}.jsonl` }, 'Export JSONL')]));
}

form.addEventListener('submit', async (e) => {
  e.preventDefault();
  const f = new FormData(form);
  const number = (k) => (f.get(k) === '' ? null : Number(f.get(k)));
  const body = {
    name: f.get('name'), kind: f.get('kind'),
    filters: { minVotes: number('minVotes'), minAgreement: number('minAgreement'),
      includeJudges: f.get('includeJudges') === 'on', weightByAgreement: f.get('weightByAgreement') === 'on' },
  };
  try {
    const d = await api('/api/datasets', { method: 'POST', body });
    result.textContent = `Frozen dataset ${d.id} "${d.name}": ${d.items} items. Use it in a run as dataset:${d.id}.`;
    result.className = 'status ok';
    await list();
  } catch (err) {
    result.textContent = err.message;
    result.className = 'status error';
  }
});

await list();
