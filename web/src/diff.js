// Differences between the two responses, word by word: the words of one that are not in the
// longest common subsequence with the other are wrapped in <mark class="diff">. It works on the
// rendered DOM (text nodes only), so Markdown structure stays and nothing is parsed as HTML.
const TOKEN = /\s+|\w+|[^\s\w]/gu;
const MAX_CELLS = 4_000_000; // about 2,000 words a side; longer pairs are left unmarked

function words(root) {
  const tokens = [];
  const walker = document.createTreeWalker(root, NodeFilter.SHOW_TEXT);
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    for (const m of node.data.matchAll(TOKEN)) {
      if (!/^\s+$/.test(m[0])) tokens.push({ node, start: m.index, end: m.index + m[0].length, word: m[0].toLowerCase() });
    }
  }
  return tokens;
}

/** Marks what differs; returns false when the texts are too long to compare. */
export function markDifferences(left, right) {
  const a = words(left);
  const b = words(right);
  if ((a.length + 1) * (b.length + 1) > MAX_CELLS) return false;
  // LCS lengths, from the end, in one flat array.
  const w = b.length + 1;
  const L = new Uint16Array((a.length + 1) * w);
  for (let i = a.length - 1; i >= 0; i--) {
    for (let j = b.length - 1; j >= 0; j--) {
      L[i * w + j] = a[i].word === b[j].word ? L[(i + 1) * w + j + 1] + 1 : Math.max(L[(i + 1) * w + j], L[i * w + j + 1]);
    }
  }
  let i = 0;
  let j = 0;
  while (i < a.length && j < b.length) {
    if (a[i].word === b[j].word) { i++; j++; } else if (L[(i + 1) * w + j] >= L[i * w + j + 1]) a[i++].changed = true; else b[j++].changed = true;
  }
  while (i < a.length) a[i++].changed = true;
  while (j < b.length) b[j++].changed = true;
  wrap(a);
  wrap(b);
  return true;
}

/** Removes the marks again. */
export function clearDifferences(root) {
  for (const mark of root.querySelectorAll('mark.diff')) mark.replaceWith(...mark.childNodes);
  root.normalize();
}

// Per text node: runs of changed words (with the spaces between them) become one mark each.
function wrap(tokens) {
  const byNode = new Map();
  for (const t of tokens) {
    if (!byNode.has(t.node)) byNode.set(t.node, []);
    byNode.get(t.node).push(t);
  }
  for (const [node, list] of byNode) {
    if (!list.some((t) => t.changed)) continue;
    const runs = [];
    let run = null;
    for (const t of list) {
      if (!t.changed) run = null;
      else if (run) run.end = t.end;
      else runs.push(run = { start: t.start, end: t.end });
    }
    const text = node.data;
    const out = document.createDocumentFragment();
    let at = 0;
    for (const r of runs) {
      if (r.start > at) out.append(text.slice(at, r.start));
      const mark = document.createElement('mark');
      mark.className = 'diff';
      mark.textContent = text.slice(r.start, r.end);
      out.append(mark);
      at = r.end;
    }
    if (at < text.length) out.append(text.slice(at));
    node.replaceWith(out);
  }
}
