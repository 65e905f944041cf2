import { api } from './api.js';
import { el, fillTable, fixed, replace, tile } from './dom.js';
import { barChart } from './chart.js';

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
fillTable(document.getElementById('annotators'), q.annotators.map((a) => {
  const flags = [];
  if (a.agreementWithMajority !== null && a.agreementWithMajority < 0.6) flags.push('low agreement');
  if (a.leftShare !== null && (a.leftShare < 0.35 || a.leftShare > 0.65)) flags.push('position bias');
  return [a.annotator, a.judgments, pct(a.agreementWithMajority), pct(a.leftShare), flags.length ? el('span', { class: 'flag' }, flags.join(', ')) : ''];
}));
fillTable(document.getElementById('pairs'), q.pairs.map((p) => [p.first, p.second, p.sharedItems,
  el('span', { class: p.kappa === null ? '' : p.kappa >= 0.6 ? 'good' : p.kappa >= 0.2 ? 'fair' : 'poor' }, fixed(p.kappa))]));
