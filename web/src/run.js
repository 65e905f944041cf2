// One run, live: the stored history and then live events arrive over server-sent events, and the
// charts redraw as each step's metrics come in.
import { api } from './api.js';
import { el, append, fillTable, fixed, replace } from './dom.js';
import { lineChart } from './chart.js';
import { preflightList } from './preflight.js';

const $ = (id) => document.getElementById(id);
const id = $('run').dataset.runId;
const series = { loss: new Map(), accuracy: new Map(), margin: new Map() };
const charts = {
  loss: lineChart($('loss'), { xLabel: 'step', yLabel: 'loss', title: 'Loss' }),
  accuracy: lineChart($('accuracy'), { xLabel: 'step', yLabel: 'rewards/accuracies', title: 'Reward accuracy', yMin: 0 }),
  margin: lineChart($('margin'), { xLabel: 'step', yLabel: 'rewards/margins', title: 'Reward margin' }),
};
// TRL's metric names; evaluation metrics carry an eval_ prefix and become their own series.
const PLOTS = { loss: 'loss', eval_loss: 'loss', 'rewards/accuracies': 'accuracy', 'eval_rewards/accuracies': 'accuracy',
  'rewards/margins': 'margin', 'eval_rewards/margins': 'margin' };

function add(stage, step, metrics) {
  for (const [name, value] of Object.entries(metrics ?? {})) {
    const plot = PLOTS[name];
    if (!plot) continue;
    const key = `${stage} ${name}`;
    if (!series[plot].has(key)) series[plot].set(key, []);
    series[plot].get(key).push([step, value]);
  }
}

let redraw = null;
function draw() {
  redraw = null;
  for (const [plot, chart] of Object.entries(charts)) {
    chart.update([...series[plot]].map(([name, points]) => ({ name, points })));
  }
}
function schedule() {
  redraw ??= requestAnimationFrame(draw);
}

function showStatus(status, error) {
  $('status').textContent = status;
  $('status').className = `badge ${status}`;
  $('cancel').hidden = !['queued', 'running'].includes(status);
  $('error').hidden = !error;
  $('error').textContent = error ?? '';
}

function progress(stage, step, total) {
  if (stage) $('stage').textContent = stage.toUpperCase();
  if (total) {
    $('progress').max = total;
    $('progress').value = step ?? 0;
    $('step').textContent = `step ${step ?? 0} of ${total}`;
  }
}

function log(text) {
  const list = $('events');
  list.prepend(el('li', {}, `${new Date().toLocaleTimeString()} ${text}`));
  while (list.children.length > 50) list.lastChild.remove();
}

/** The spec, the summary, each metric's last value, and the version the run registered. */
function result(r) {
  $('spec-view').textContent = JSON.stringify(r.spec, null, 2);
  if (r.summary) $('summary').textContent = JSON.stringify(r.summary, null, 2);
  if (r.modelVersionId) {
    replace($('version'), 'Registered ', el('a', { href: '/console/models' }, `model version ${r.modelVersionId}`), '.');
    $('version').className = '';
  }
  const last = new Map();
  for (const m of r.metrics ?? []) last.set(`${m.stage} ${m.name}`, m); // ordered by stage, then step
  fillTable($('final'), [...last.values()].map((m) => [m.stage, m.name, fixed(m.value, 4), m.step]));
}

const run = await api(`/api/runs/${id}`);
result(run);
$('title').textContent = `Run ${run.id}: ${run.name}`;
showStatus(run.status, run.error);
progress(run.stage, run.step, run.totalSteps);
append($('events').parentElement, [el('h3', {}, 'Pre-flight'), preflightList(run.preflight)]);

const events = new EventSource(`/api/runs/${id}/events`);
events.onmessage = (m) => {
  const e = JSON.parse(m.data);
  if (e.type === 'metrics') {
    add(e.stage, e.step, e.metrics);
    progress(e.stage, e.step, e.totalSteps);
    schedule();
  } else if (e.type === 'status') {
    showStatus(e.status, e.status === 'failed' ? e.message : null);
    log(`status: ${e.status}${e.message ? ` (${e.message})` : ''}`);
    if (['succeeded', 'failed', 'cancelled'].includes(e.status)) {
      events.close();
      api(`/api/runs/${id}`).then(result);
    }
  } else if (e.type === 'stage') {
    progress(e.stage, e.step, e.totalSteps);
    log(`stage ${e.stage} started`);
  } else if (e.type === 'checkpoint') {
    log(`checkpoint at ${e.stage} step ${e.step}`);
  } else if (e.message) {
    log(e.message);
  }
};

$('cancel').addEventListener('click', async () => {
  await api(`/api/runs/${id}/cancel`, { method: 'POST' });
  log('cancel requested');
});
