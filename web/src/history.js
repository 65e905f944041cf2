import { api } from './api.js';
import { fillTable, when } from './dom.js';

const VERDICT = { A: 'A is better', B: 'B is better', tie: 'Tie', both_bad: 'Both bad' };
const rows = await api('/api/tasks/history?limit=100');
fillTable(document.getElementById('history'), rows.map((r) => [when(r.submittedAt), r.prompt.slice(0, 160), VERDICT[r.shown] ?? r.shown, r.rationale ?? '']));
