import { api } from './api.js';
import { el, fillTable, when } from './dom.js';
import { barChart } from './chart.js';
import { modelChoices } from './playground.js';

const $ = (id) => document.getElementById(id);

async function versions() {
  const list = await api('/api/models');
  const promoted = list.find((v) => v.promoted);
  registry = new Map(list.map((v) => [v.name, v.id]));
  fillTable($('versions'), list.map((v) => [v.id, v.name, v.parentId ?? '', v.runId ? el('a', { href: `/console/runs/${v.runId}` }, `run ${v.runId}`) : '',
    when(v.createdAt), v.promoted ? el('span', { class: 'badge succeeded' }, 'promoted')
      : el('button', { type: 'button', onclick: () => promote(v) }, promoted && v.id < promoted.id ? 'Roll back to this' : 'Promote')]));
  modelChoices(promoted, list);
}

async function promote(v) {
  if (!confirm(`Serve ${v.name} as the promoted version?`)) return;
  await api(`/api/models/${v.id}/promote`, { method: 'POST' });
  await versions();
}

let registry = new Map(); // version name -> registry id

/** A version as the ratings name it: the registry's id beside the name where it is a registered version. */
function versionLabel(name) {
  return registry.has(name) ? `${name} (#${registry.get(name)})` : name;
}

async function ratings() {
  const r = await api('/api/ratings');
  barChart($('ratings'), {
    labels: r.ratings.map((x) => `${versionLabel(x.version)} (${Math.round(x.rating)})`), yLabel: 'share of matches won', yMax: 1,
    title: 'Share of head-to-head matches won', series: [{ name: 'won', values: r.ratings.map((x) => x.wins / x.matches) }],
  });
  const pct = (x) => `${Math.round(x * 100)}%`;
  fillTable($('rating-table'), r.ratings.map((x) => [versionLabel(x.version),
    `${Math.round(x.rating)} (${Math.round(x.low)}–${Math.round(x.high)})`, x.matches]));
  fillTable($('win-rates'), r.winRates.map((w) => [versionLabel(w.version), versionLabel(w.opponent),
    `${pct(w.winRate)} (${pct(w.low)}–${pct(w.high)})`, w.matches]));
}

await versions();
await ratings();
