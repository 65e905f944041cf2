import { api } from './api.js';
import { fillTable, replace, tile } from './dom.js';
import { barChart } from './chart.js';

async function refresh() {
  const o = await api('/api/overview');
  replace(document.getElementById('tiles'),
    tile('judgments stored', o.judgments),
    tile('comparisons waiting', o.queue.waiting, `of ${o.queue.comparisons}; each goes to ${o.queue.overlap} annotators`),
    tile('open slots', o.queue.openSlots, 'assignments still to hand out'),
    tile('being judged', o.queue.openAssignments, 'handed out, not yet answered'),
    tile('Kafka consumer lag', o.consumerLag < 0 ? 'n/a' : o.consumerLag, 'judgments the ingest group has not committed yet'));
  const labels = o.perHour.map((h) => `${String(new Date(h.start).getHours()).padStart(2, '0')}h`);
  barChart(document.getElementById('per-hour'), {
    labels, yLabel: 'judgments', title: 'Judgments per hour',
    series: [{ name: 'people', values: o.perHour.map((h) => h.humans) }, { name: 'judges', values: o.perHour.map((h) => h.judges) }],
  });
  fillTable(document.getElementById('annotators'), o.perAnnotator.map((a) => [a.annotator, a.today, a.total]));
}

await refresh();
setInterval(refresh, 15_000);
