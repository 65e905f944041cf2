import { api, csrfToken } from './api.js';
import { el, fillTable, replace, when } from './dom.js';
import { barChart } from './chart.js';
import { renderMarkdown } from './markdown.js';

const $ = (id) => document.getElementById(id);

async function versions() {
  const list = await api('/api/models');
  const promoted = list.find((v) => v.promoted);
  fillTable($('versions'), list.map((v) => [v.id, v.name, v.parentId ?? '', v.runId ? el('a', { href: `/console/runs/${v.runId}` }, `run ${v.runId}`) : '',
    when(v.createdAt), v.promoted ? el('span', { class: 'badge succeeded' }, 'promoted')
      : el('button', { type: 'button', onclick: () => promote(v) }, promoted && v.id < promoted.id ? 'Roll back to this' : 'Promote')]));
  replace($('model'), el('option', { value: 'prefloop' }, `prefloop (promoted${promoted ? `: ${promoted.name}` : ''})`),
    list.map((v) => el('option', { value: v.name }, v.name)));
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

// ---- playground: /v1/chat/completions, streamed, as the signed-in admin ----
const history = [];

function bubble(role, text) {
  const body = el('div', { class: 'md' }, renderMarkdown(text));
  $('chat').append(el('div', { class: `msg ${role}` }, el('div', { class: 'role' }, role), body));
  return body;
}

async function send() {
  const text = $('message').value.trim();
  if (!text) return;
  $('message').value = '';
  history.push({ role: 'user', content: text });
  bubble('user', text);
  const out = bubble('assistant', '…');
  let answer = '';
  let finish = null;
  try {
    const res = await fetch('/v1/chat/completions', {
      method: 'POST', credentials: 'same-origin',
      headers: { 'Content-Type': 'application/json', 'X-CSRF-Token': csrfToken(), 'X-Requested-With': 'prefloop' },
      body: JSON.stringify({ model: $('model').value, messages: history, stream: true, max_tokens: 256 }),
    });
    if (!res.ok) throw new Error((await res.json().catch(() => ({})))?.error?.message ?? res.statusText);
    const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = '';
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += value;
      const lines = buffer.split('\n');
      buffer = lines.pop();
      for (const line of lines) {
        if (!line.startsWith('data: ') || line === 'data: [DONE]') continue;
        const choice = JSON.parse(line.slice(6)).choices?.[0];
        answer += choice?.delta?.content ?? '';
        finish = choice?.finish_reason ?? finish;
        if (answer) replace(out, renderMarkdown(answer));
      }
    }
    if (!answer) {
      // An empty answer says why instead of leaving a blank bubble (a prompt that fills the context leaves no room).
      throw new Error(finish === 'length'
        ? 'the model returned no text: the conversation fills its context (finish_reason "length"); clear it or send less'
        : `the model returned no text${finish ? ` (finish_reason "${finish}")` : ''}`);
    }
    history.push({ role: 'assistant', content: answer });
  } catch (e) {
    replace(out, el('span', { class: 'error' }, `Error: ${e.message}`));
    history.pop();
  }
}

$('playground').addEventListener('submit', (e) => { e.preventDefault(); send(); });
$('message').addEventListener('keydown', (e) => {
  if (e.key === 'Enter' && !e.shiftKey) { e.preventDefault(); send(); }
});
$('clear').addEventListener('click', () => { history.length = 0; $('chat').replaceChildren(); });

await versions();
await ratings();
