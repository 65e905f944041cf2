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
  const annotators = String(f.get('annotators') ?? '').split(/[\s,]+/).filter(Boolean);
  const body = {
    name: f.get('name'), kind: f.get('kind'),
    filters: { minVotes: number('minVotes'), minAgreement: number('minAgreement'),
      from: day(f.get('from'), 0), to: day(f.get('to'), 1), annotators: annotators.length ? annotators : null,
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

/** A date from the form as the start of that day (plus `after` days) in the browser's time zone, as an ISO instant. */
function day(value, after) {
  if (!value) return null;
  const [y, m, d] = value.split('-').map(Number);
  return new Date(y, m - 1, d + after).toISOString();
}

const upload = document.getElementById('upload');
const uploaded = document.getElementById('upload-result');
upload.addEventListener('submit', async (e) => {
  e.preventDefault();
  const f = new FormData(upload);
  const file = f.get('file');
  try {
    const q = new URLSearchParams({ name: f.get('name'), kind: f.get('kind') });
    const d = await api(`/api/datasets/upload?${q}`, { method: 'POST', body: await file.text(), type: 'application/x-ndjson' });
    uploaded.textContent = `Uploaded dataset ${d.id} "${d.name}": ${d.items} items. Use it in a run as dataset:${d.id}.`;
    uploaded.className = 'status ok';
    upload.reset();
    await list();
  } catch (err) {
    uploaded.textContent = err.message;
    uploaded.className = 'status error';
  }
});

await list();
