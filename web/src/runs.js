import { api } from './api.js';
import { el, fillTable, replace, when } from './dom.js';
import { preflightList } from './preflight.js';

const spec = document.getElementById('spec');
const result = document.getElementById('start-result');

async function list() {
  const runs = await api('/api/runs');
  fillTable(document.getElementById('runs'), runs.map((r) => [
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

const runs = await list();
if (!spec.value) await template(runs);
setInterval(list, 10_000);
