// Markdown for untrusted text (prompts and model output), rendered by markdown-it (from npm, served
// by the app under /assets/vendor) with raw HTML off: HTML in the input is escaped and shows as the
// characters it is; links other than http(s) and mailto stay text; images stay text (no requests to
// hosts a model names). markdown-it's output is then parsed inert (DOMParser runs no scripts) and
// copied through an allow-list of elements and attributes, so even a renderer bug cannot put an
// event handler, a style or a script on the page. Fenced code that names a language highlight.js
// knows is highlighted by it (its output is escaped text in spans, and goes through the same allow-list).
import MarkdownIt from './vendor/markdown-it.esm.min.mjs';
import hljs from './vendor/highlight.min.js';
import { el } from './dom.js';

const md = new MarkdownIt({ html: false, linkify: false, typographer: false, highlight }).disable(['image']);
const safeLink = md.validateLink;
md.validateLink = (url) => safeLink(url) && /^(https?:|mailto:)/i.test(url.trim());

/** markdown-it's hook: highlighted HTML for a language highlight.js knows, else '' (markdown-it escapes it as plain code). */
function highlight(code, language) {
  if (!language || !hljs.getLanguage(language)) return '';
  return hljs.highlight(code, { language, ignoreIllegals: true }).value;
}

const ELEMENTS = new Set(['SPAN', 'P', 'BR', 'HR', 'H1', 'H2', 'H3', 'H4', 'H5', 'H6', 'UL', 'OL', 'LI', 'BLOCKQUOTE', 'PRE', 'CODE',
  'EM', 'STRONG', 'S', 'DEL', 'A', 'TABLE', 'THEAD', 'TBODY', 'TR', 'TH', 'TD']);
const ATTRIBUTES = { A: ['href'], OL: ['start'], CODE: ['class'], SPAN: ['class'], TH: [], TD: [] };

export function renderMarkdown(text) {
  const parsed = new DOMParser().parseFromString(md.render(String(text ?? '')), 'text/html');
  const out = document.createDocumentFragment();
  for (const node of parsed.body.childNodes) if (node.nodeType !== Node.TEXT_NODE || node.data.trim()) copy(node, out);
  return out;
}

function copy(node, parent) {
  if (node.nodeType === Node.TEXT_NODE) {
    parent.append(document.createTextNode(node.data));
    return;
  }
  if (node.nodeType !== Node.ELEMENT_NODE) return;
  if (!ELEMENTS.has(node.tagName)) { // never produced with html off; keep its text, drop the element
    parent.append(document.createTextNode(node.textContent));
    return;
  }
  const tag = node.tagName === 'H1' || node.tagName === 'H2' ? 'H3' : node.tagName; // the page's own headings stay on top
  const copyEl = el(tag.toLowerCase());
  for (const name of ATTRIBUTES[node.tagName] ?? []) {
    const value = node.getAttribute(name);
    if (value !== null && (name !== 'class' || /^(language-[\w+#.-]+|hljs-[\w-]+( [\w-]+)*)$/.test(value))) copyEl.setAttribute(name, value);
  }
  if (tag === 'A') {
    const href = node.getAttribute('href') ?? '';
    if (!/^(https?:|mailto:)/i.test(href)) { parent.append(document.createTextNode(node.textContent)); return; }
    copyEl.setAttribute('rel', 'noopener noreferrer nofollow');
    copyEl.setAttribute('target', '_blank');
  }
  if (tag === 'PRE') copyEl.setAttribute('tabindex', '0'); // a code block that scrolls sideways is reachable by keyboard
  for (const child of node.childNodes) copy(child, copyEl);
  parent.append(copyEl);
}
