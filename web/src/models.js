import { api } from './api.js';
import { el, fillTable, when } from './dom.js';
import { barChart } from './chart.js';
import { modelChoices } from './playground.js';

const $ = (id) => document.getElementById(id);

async function versions() {
  const list = await api('/api/models');
  const promoted = list.find((v) => v.promoted);
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

async function ratings() {
  const r = await api('/api/ratings');
  barChart($('ratings'), {
    labels: r.ratings.map((x) => `${x.version} (${Math.round(x.rating)})`), yLabel: 'share of matches won', yMax: 1,
    title: 'Share of head-to-head matches won', series: [{ name: 'won', values: r.ratings.map((x) => x.wins / x.matches) }],
  });
  fillTable($('win-rates'), r.winRates.map((w) => [w.version, w.opponent, `${Math.round(w.winRate * 100)}%`, w.matches]));
}

await versions();
await ratings();
