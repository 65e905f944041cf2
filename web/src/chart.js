// Charts drawn by the app as SVG: line charts (training curves, updated live) and stacked bar
// charts (counts). No library and nothing loaded from elsewhere; labels are text nodes.
const NS = 'http://www.w3.org/2000/svg';
export const COLORS = ['#2563eb', '#dc2626', '#16a34a', '#9333ea', '#ea580c', '#0891b2', '#ca8a04'];
// Drawn at the container's own width, so text keeps its size on any screen.
let W = 640;
const H = 260;
const PAD = { left: 56, right: 16, top: 30, bottom: 36 };

function svg(tag, attrs = {}, text) {
  const node = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  if (text !== undefined) node.textContent = String(text);
  return node;
}

function frame(container, title) {
  W = Math.max(320, Math.round(container.clientWidth || 640));
  const root = svg('svg', { viewBox: `0 0 ${W} ${H}`, role: 'img', class: 'svg-chart' });
  if (title) root.append(svg('title', {}, title));
  container.replaceChildren(root);
  return root;
}

/** Round tick values covering [lo, hi]. */
function ticks(lo, hi, count = 5) {
  if (!Number.isFinite(lo) || !Number.isFinite(hi)) return [0, 1];
  if (lo === hi) { lo -= Math.abs(lo) * 0.1 || 1; hi += Math.abs(hi) * 0.1 || 1; }
  const raw = (hi - lo) / count;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= raw);
  const out = [];
  for (let v = Math.floor(lo / step) * step; v <= hi + step * 1e-9; v += step) out.push(Number(v.toPrecision(12)));
  if (out[out.length - 1] < hi) out.push(out[out.length - 1] + step);
  return out;
}

function label(v) {
  const a = Math.abs(v);
  if (a >= 1000) return `${(v / 1000).toFixed(a >= 10000 ? 0 : 1)}k`;
  if (a >= 10 || v === 0) return String(Math.round(v * 10) / 10);
  return String(Number(v.toPrecision(3)));
}

function axes(root, yTicks, y, xTicks, x, xFormat, yLabel, xLabel) {
  for (const t of yTicks) {
    root.append(svg('line', { x1: PAD.left, x2: W - PAD.right, y1: y(t), y2: y(t), class: 'grid' }));
    root.append(svg('text', { x: PAD.left - 6, y: y(t) + 4, 'text-anchor': 'end', class: 'tick' }, label(t)));
  }
  for (const t of xTicks) {
    root.append(svg('text', { x: x(t), y: H - PAD.bottom + 16, 'text-anchor': 'middle', class: 'tick' }, xFormat(t)));
  }
  root.append(svg('line', { x1: PAD.left, x2: W - PAD.right, y1: H - PAD.bottom, y2: H - PAD.bottom, class: 'axis' }));
  if (yLabel) root.append(svg('text', { x: 4, y: 16, class: 'axis-label' }, yLabel));
  if (xLabel) root.append(svg('text', { x: W - PAD.right, y: H - 6, 'text-anchor': 'end', class: 'axis-label' }, xLabel));
}

function legend(root, names) {
  let x = W - PAD.right - names.reduce((sum, n) => sum + 24 + n.length * 6.5, 0);
  names.forEach((name, i) => {
    root.append(svg('rect', { x, y: 8, width: 10, height: 10, rx: 2, fill: COLORS[i % COLORS.length] }));
    const text = svg('text', { x: x + 14, y: 17, class: 'legend' }, name);
    root.append(text);
    x += 24 + name.length * 6.5;
  });
}

function empty(root, message) {
  root.append(svg('text', { x: W / 2, y: H / 2, 'text-anchor': 'middle', class: 'empty' }, message));
}

/**
 * series: [{ name, points: [[x, y], ...] }]. Returns the chart; call update(series) to redraw
 * with new points (live training curves).
 */
export function lineChart(container, { series = [], xLabel = '', yLabel = '', title = '', yMin } = {}) {
  const chart = {
    update(next) {
      const root = frame(container, title);
      const all = next.flatMap((s) => s.points).filter((p) => Number.isFinite(p[1]));
      if (!all.length) { empty(root, 'no data yet'); return; }
      const xs = all.map((p) => p[0]);
      const ys = all.map((p) => p[1]);
      const yT = ticks(yMin ?? Math.min(...ys), Math.max(...ys));
      const [x0, x1] = [Math.min(...xs), Math.max(...xs, Math.min(...xs) + 1)];
      const x = (v) => PAD.left + ((v - x0) / (x1 - x0)) * (W - PAD.left - PAD.right);
      const y = (v) => H - PAD.bottom - ((v - yT[0]) / (yT[yT.length - 1] - yT[0])) * (H - PAD.top - PAD.bottom);
      axes(root, yT, y, ticks(x0, x1, 6).filter((t) => t >= x0 && t <= x1), x, label, yLabel, xLabel);
      next.forEach((s, i) => {
        const pts = s.points.filter((p) => Number.isFinite(p[1]));
        if (!pts.length) return;
        const d = pts.map((p, k) => `${k ? 'L' : 'M'}${x(p[0]).toFixed(1)},${y(p[1]).toFixed(1)}`).join('');
        root.append(svg('path', { d, class: 'series', stroke: COLORS[i % COLORS.length] }));
        if (pts.length === 1) root.append(svg('circle', { cx: x(pts[0][0]), cy: y(pts[0][1]), r: 3, fill: COLORS[i % COLORS.length] }));
      });
      legend(root, next.map((s) => s.name));
    },
  };
  chart.update(series);
  return chart;
}

/** labels: category names; series: [{ name, values }] stacked in each bar. */
export function barChart(container, { labels = [], series = [], yLabel = '', title = '', yMax } = {}) {
  const root = frame(container, title);
  if (!labels.length) { empty(root, 'no data yet'); return; }
  const totals = labels.map((_, i) => series.reduce((sum, s) => sum + (s.values[i] ?? 0), 0));
  const yT = ticks(0, yMax ?? Math.max(1, ...totals));
  const slot = (W - PAD.left - PAD.right) / labels.length;
  const y = (v) => H - PAD.bottom - (v / yT[yT.length - 1]) * (H - PAD.top - PAD.bottom);
  const every = Math.ceil(labels.length / Math.max(4, Math.floor((W - PAD.left - PAD.right) / 64)));
  axes(root, yT, y, [], () => 0, String, yLabel, '');
  labels.forEach((name, i) => {
    let base = 0;
    series.forEach((s, k) => {
      const v = s.values[i] ?? 0;
      if (v > 0) {
        const bar = svg('rect', { x: PAD.left + i * slot + slot * 0.15, width: slot * 0.7, y: y(base + v), height: y(base) - y(base + v),
          fill: COLORS[k % COLORS.length], rx: 2, class: 'bar' });
        bar.append(svg('title', {}, `${name} · ${s.name}: ${label(v)}`));
        root.append(bar);
      }
      base += v;
    });
    if (i % every === 0) {
      root.append(svg('text', { x: PAD.left + (i + 0.5) * slot, y: H - PAD.bottom + 16, 'text-anchor': 'middle', class: 'tick' }, name));
    }
  });
  if (series.length > 1 || series[0]?.name) legend(root, series.map((s) => s.name));
}
