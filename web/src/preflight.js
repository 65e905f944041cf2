import { el } from './dom.js';

/** A pre-flight report ({ ok, findings: [{ level, check, message }], facts }) as a list. */
export function preflightList(report) {
  if (!report) return el('p', { class: 'muted' }, 'No pre-flight report.');
  const items = report.findings.map((f) => el('li', { class: f.level }, el('b', {}, `${f.level} `), el('code', {}, f.check), `: ${f.message}`));
  if (!items.length) items.push(el('li', { class: 'ok' }, 'no problems found'));
  const facts = Object.entries(report.facts ?? {}).map(([k, v]) => el('li', { class: 'fact' }, `${k}: ${typeof v === 'object' ? JSON.stringify(v) : v}`));
  return el('ul', { class: 'preflight' }, items, facts);
}
