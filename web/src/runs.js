import { api } from './api.js';
import { el, fillTable, replace, when } from './dom.js';
import { preflightList } from './preflight.js';
import { lineChart } from './chart.js';

const spec = document.getElementById('spec');
const result = document.getElementById('start-result');

// Runs ticked for comparison, and their metrics (fetched once per run, again while it is running).
const compared = new Set();
const metrics = new Map();
const chart = lineChart(document.getElementById('compare'), { xLabel: 'step', title: 'Runs compared' });

async function overlay() {
  const name = document.getElementById('compare-metric').value;
  const series = [];
  for (const id of [...compared].sort((a, b) => a - b)) {
    if (!metrics.has(id)) metrics.set(id, await api(`/api/runs/${id}`));
    const run = metrics.get(id);
    const byStage = new Map();
    for (const m of run.metrics ?? []) {
      if (m.name !== name) continue;
      if (!byStage.has(m.stage)) byStage.set(m.stage, []);
      byStage.get(m.stage).push([m.step, m.value]);
    }
    for (const [stage, points] of byStage) series.push({ name: `run ${id} ${run.name} (${stage})`, points });
  }
  chart.update(series);
}

function compareBox(r) {
  return el('input', { type: 'checkbox', 'aria-label': `Compare run ${r.id}`, checked: compared.has(r.id),
    onchange: (e) => {
      if (e.target.checked) compared.add(r.id); else compared.delete(r.id);
      if (['queued', 'running'].includes(r.status)) metrics.delete(r.id);
      overlay();
    } });
}

async function list() {
  const runs = await api('/api/runs');
  fillTable(document.getElementById('runs'), runs.map((r) => [compareBox(r),
    el('a', { href: `/console/runs/${r.id}` }, r.id), r.name, el('span', { class: `badge ${r.status}` }, r.status),
    r.totalSteps ? `${r.stage ?? ''} ${r.step ?? 0}/${r.totalSteps}` : r.stage ?? '',
    when(r.createdAt), r.modelVersionId ? el('a', { href: '/console/models' }, `version ${r.modelVersionId}`) : '']));
  return runs;
}

/** A starting point: one DPO round with LoRA on the newest preference dataset, from the promoted version. */
async function template(runs) {
  const sets = (await api('/api/datasets')).filter((d) => d.kind === 'preference');
  const dataset = sets.length ? `dataset:${sets[0].id}` : 'dataset:ID  # freeze one on the Datasets page';
  spec.value = `name: round-${runs.length + 1}
seed: 1
# model_name_or_path: version:ID   (default: the promoted version)
dpo:
  dataset: ${dataset}
  num_train_epochs: 1
  per_device_train_batch_size: 8
  learning_rate: 2.0e-4
  beta: 0.1
  r: 16
  lora_alpha: 32
`;
}

document.getElementById('start').addEventListener('submit', async (e) => {
  e.preventDefault();
  replace(result, 'Running pre-flight checks…');
  result.className = 'status';
  try {
    const run = await api('/api/runs', { method: 'POST', body: spec.value, type: 'application/yaml' });
    location.assign(`/console/runs/${run.id}`);
  } catch (err) {
    result.className = 'status error';
    replace(result, el('p', {}, err.message), err.problem?.preflight ? preflightList(err.problem.preflight) : null);
  }
});

document.getElementById('compare-metric').addEventListener('change', overlay);
chart.update([]);
const runs = await list();
if (!spec.value) await template(runs);
setInterval(list, 10_000);
