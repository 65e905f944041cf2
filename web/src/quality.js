import { api } from './api.js';
import { el, fillTable, fixed, replace, tile } from './dom.js';
import { barChart, lineChart } from './chart.js';

const q = await api('/api/quality');
const pct = (x) => (x === null || x === undefined ? '–' : `${Math.round(x * 100)}%`);
replace(document.getElementById('tiles'),
  tile("Krippendorff's alpha", fixed(q.alpha), q.alpha === null ? 'needs comparisons seen by 2+ annotators' : 'over all overlapping comparisons'),
  tile('judgments', q.judgments),
  tile('overlapping comparisons', q.overlappingComparisons),
  tile('left share', pct(q.leftShare), 'decisive verdicts for the response on the left; 50% is unbiased'),
  tile('A share', pct(q.aShare), 'in the comparisons\' own order, after randomising'));
barChart(document.getElementById('kept'), {
  labels: q.kept.map((k) => `≥ ${Math.round(k.minAgreement * 100)}%`), yLabel: 'pairs kept', title: 'Pairs kept per agreement threshold',
  series: [{ name: 'pairs kept', values: q.kept.map((k) => k.pairs) }],
});
const rated = q.annotators.filter((a) => a.agreementWithMajority !== null);
barChart(document.getElementById('majority'), {
  labels: rated.map((a) => a.annotator), yLabel: 'agreement', yMax: 1, title: 'Agreement with the majority',
  series: [{ name: 'agreement with the others\' majority', values: rated.map((a) => a.agreementWithMajority) }],
});
const seconds = (ms) => (ms === null || ms === undefined ? '–' : `${(ms / 1000).toFixed(1)} s`);

/** The annotators' leaderboard; a paused annotator has a button that resumes them. */
function leaderboard(annotators) {
  fillTable(document.getElementById('annotators'), annotators.map((a) => {
    const flags = [];
    if (a.agreementWithMajority !== null && a.agreementWithMajority < 0.6) flags.push('low agreement');
    if (a.leftShare !== null && (a.leftShare < 0.35 || a.leftShare > 0.65)) flags.push('position bias');
    const status = a.paused
      ? [el('span', { class: 'flag' }, `paused: ${a.paused}`), ' ', el('button', { type: 'button', onclick: (e) => resume(a.annotator, e.target) }, `Resume ${a.annotator}`)]
      : flags.length ? el('span', { class: 'flag' }, flags.join(', ')) : '';
    return [a.annotator, a.judgments, seconds(a.medianTimeMs), pct(a.agreementWithMajority),
      a.goldAnswered ? `${pct(a.goldAccuracy)} of ${a.goldAnswered}` : '–', pct(a.leftShare), status];
  }));
}

async function resume(annotator, button) {
  button.disabled = true;
  try {
    await api(`/api/gold/annotators/${encodeURIComponent(annotator)}/resume`, { method: 'POST' });
    leaderboard((await api('/api/quality')).annotators);
  } catch (e) {
    button.disabled = false;
    button.after(el('span', { class: 'flag', role: 'alert' }, ` ${e.message}`));
  }
}

leaderboard(q.annotators);
const gold = await api('/api/gold/accuracy');
goldChart(gold);
fillTable(document.getElementById('gold'), gold.map((d) => [d.annotator, d.day, d.answered, pct(d.correct / d.answered)]));

/** Each annotator's share of gold items answered right, day by day (days counted from the first gold answer). */
function goldChart(days) {
  const DAY = 86_400_000;
  const first = Math.min(...days.map((d) => Date.parse(d.day)));
  const byAnnotator = new Map();
  for (const d of days) {
    if (!byAnnotator.has(d.annotator)) byAnnotator.set(d.annotator, []);
    byAnnotator.get(d.annotator).push([Math.round((Date.parse(d.day) - first) / DAY), d.correct / d.answered]);
  }
  lineChart(document.getElementById('gold-chart'), {
    title: 'Gold accuracy by day', xLabel: 'days since the first gold answer', yLabel: 'right', yMin: 0,
    series: [...byAnnotator].map(([name, points]) => ({ name, points: points.sort((a, b) => a[0] - b[0]) })),
  });
}
fillTable(document.getElementById('pairs'), q.pairs.map((p) => [p.first, p.second, p.sharedItems,
  el('span', { class: p.kappa === null ? '' : p.kappa >= 0.6 ? 'good' : p.kappa >= 0.2 ? 'fair' : 'poor' }, fixed(p.kappa))]));
