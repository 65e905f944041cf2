// Markdown for untrusted text (prompts and model output). It builds DOM nodes and sets only text
// content, so HTML in the input is shown as the characters it is and never parsed or run. Links
// keep only http(s) and mailto targets. Covers what chat models write: fenced and inline code,
// headings, lists, quotes, emphasis, links, paragraphs.
import { el } from './dom.js';

export function renderMarkdown(text) {
  const out = document.createDocumentFragment();
  const lines = String(text ?? '').replace(/\r\n?/g, '\n').split('\n');
  let i = 0;
  while (i < lines.length) {
    const line = lines[i];
    const fence = line.match(/^\s*(`{3,}|~{3,})\s*([\w+#.-]*)/);
    if (fence) {
      const body = [];
      i++;
      while (i < lines.length && !lines[i].trimStart().startsWith(fence[1])) body.push(lines[i++]);
      i++; // the closing fence (or the end)
      out.append(el('pre', {}, el('code', fence[2] ? { 'data-lang': fence[2] } : {}, body.join('\n'))));
      continue;
    }
    if (!line.trim()) { i++; continue; }
    const heading = line.match(/^(#{1,6})\s+(.*)$/);
    if (heading) {
      out.append(inline(el(`h${Math.min(6, heading[1].length + 2)}`), heading[2]));
      i++;
      continue;
    }
    if (/^\s*>/.test(line)) {
      const body = [];
      while (i < lines.length && /^\s*>/.test(lines[i])) body.push(lines[i++].replace(/^\s*>\s?/, ''));
      const quote = el('blockquote');
      quote.append(renderMarkdown(body.join('\n')));
      out.append(quote);
      continue;
    }
    const item = /^\s*([-*+]|\d+[.)])\s+/;
    if (item.test(line)) {
      const ordered = /^\s*\d/.test(line);
      const list = el(ordered ? 'ol' : 'ul');
      while (i < lines.length && item.test(lines[i])) {
        let content = lines[i++].replace(item, '');
        while (i < lines.length && /^\s{2,}\S/.test(lines[i]) && !item.test(lines[i])) content += ' ' + lines[i++].trim();
        list.append(inline(el('li'), content));
      }
      out.append(list);
      continue;
    }
    const para = [];
    while (i < lines.length && lines[i].trim() && !/^(\s*(`{3,}|~{3,})|#{1,6}\s|\s*>|\s*([-*+]|\d+[.)])\s+)/.test(lines[i])) {
      para.push(lines[i++]);
    }
    const p = el('p');
    para.forEach((l, k) => {
      if (k > 0) p.append(el('br'));
      inline(p, l);
    });
    out.append(p);
  }
  return out;
}

const INLINE = /`([^`]+)`|\*\*(.+?)\*\*|__(.+?)__|\*([^*\s][^*]*?)\*|_([^_\s][^_]*?)_|\[([^\]]+)\]\(([^)\s]+)\)/;

function inline(parent, text) {
  let rest = text;
  while (rest) {
    const m = rest.match(INLINE);
    if (!m) { parent.append(document.createTextNode(rest)); break; }
    if (m.index > 0) parent.append(document.createTextNode(rest.slice(0, m.index)));
    if (m[1] !== undefined) parent.append(el('code', {}, m[1]));
    else if (m[2] !== undefined || m[3] !== undefined) parent.append(inline(el('strong'), m[2] ?? m[3]));
    else if (m[4] !== undefined || m[5] !== undefined) parent.append(inline(el('em'), m[4] ?? m[5]));
    else parent.append(link(m[6], m[7]));
    rest = rest.slice(m.index + m[0].length);
  }
  return parent;
}

function link(label, href) {
  let url;
  try { url = new URL(href, location.href); } catch { url = null; }
  if (!url || !['http:', 'https:', 'mailto:'].includes(url.protocol)) return document.createTextNode(`${label} (${href})`);
  return inline(el('a', { href: url.href, rel: 'noopener noreferrer nofollow', target: '_blank' }), label);
}
