import { api } from './api.js';
import { el, fillTable, when } from './dom.js';

const form = document.getElementById('freeze');
const result = document.getElementById('freeze-result');

async function list() {
  const sets = await api('/api/datasets');
  fillTable(document.getElementById('datasets'), sets.map((d) => [d.id, d.name, d.kind, d.items, el('code', {}, d.contentHash.slice(0, 12)),
    when(d.createdAt), [el('a', { href: `/api/datasets/${d.id}/export`, download: `${d.name}.jsonl` }, 'Export JSONL'), ' ',
      el('button', { type: 'button', onclick: () => browse(d) }, `Browse ${d.name}`)]]));
}

// ---- the dataset browser: a frozen dataset's items, searched and filtered before training ----
const browser = document.getElementById('browse');
const browseForm = document.getElementById('browse-form');
let browsing = null; // { dataset, offset }
const text = (v) => (v === null || v === undefined ? '' : typeof v === 'string' ? v : Array.isArray(v) ? v.map((m) => m.content).join(' / ') : JSON.stringify(v));
const excerpt = (v) => { const t = text(v); return t.length > 160 ? `${t.slice(0, 160)}…` : t; };

function browse(d) {
  browsing = { dataset: d, offset: 0 };
  browseForm.reset();
  document.getElementById('browse-title').textContent = `Items of dataset ${d.id} "${d.name}"`;
  browser.hidden = false;
  page(false);
  browser.scrollIntoView();
}

async function page(more) {
  const f = new FormData(browseForm);
  const q = new URLSearchParams({ offset: String(more ? browsing.offset : 0), limit: '50' });
  for (const k of ['q', 'consensus', 'maxAgreement']) if (f.get(k)) q.set(k, f.get(k));
  const count = document.getElementById('browse-count');
  try {
    const p = await api(`/api/datasets/${browsing.dataset.id}/items?${q}`);
    const rows = p.items.map((it) => el('tr', {}, [it.position, excerpt(it.prompt ?? it.messages), excerpt(it.chosen), excerpt(it.rejected),
      it.agreement === null ? '–' : `${Math.round(it.agreement * 100)}%`, it.weight, it.margin === null ? '–' : it.margin.toFixed(2)]
      .map((c) => el('td', {}, c))));
    const body = document.getElementById('items').tBodies[0];
    if (more) rows.forEach((r) => body.append(r)); else body.replaceChildren(...rows);
    browsing.offset = p.offset + p.items.length;
    document.getElementById('more').hidden = browsing.offset >= p.total;
    count.textContent = `${p.total} items match; ${browsing.offset} shown`;
    count.className = 'status';
  } catch (err) {
    count.textContent = err.message;
    count.className = 'status error';
  }
}
browseForm.addEventListener('submit', (e) => { e.preventDefault(); page(false); });
document.getElementById('more').addEventListener('click', () => page(true));

form.addEventListener('submit', async (e) => {
  e.preventDefault();
  const f = new FormData(form);
  const number = (k) => (f.get(k) === '' ? null : Number(f.get(k)));
  const annotators = String(f.get('annotators') ?? '').split(/[\s,]+/).filter(Boolean);
  const body = {
    name: f.get('name'), kind: f.get('kind'),
    filters: { minVotes: number('minVotes'), minAgreement: number('minAgreement'),
      from: day(f.get('from'), 0), to: day(f.get('to'), 1), annotators: annotators.length ? annotators : null,
      includeJudges: f.get('includeJudges') === 'on', weightByAgreement: f.get('weightByAgreement') === 'on',
      weightByStrength: f.get('weightByStrength') === 'on', criterion: String(f.get('criterion') ?? '').trim() || null },
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
