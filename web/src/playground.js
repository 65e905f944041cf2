// The playground: /v1/chat/completions, streamed, as the signed-in admin. With a second version
// chosen, every message goes to both at once and the answers stream side by side, each version
// keeping its own conversation.
import { csrfToken } from './api.js';
import { el, replace } from './dom.js';
import { renderMarkdown } from './markdown.js';

const $ = (id) => document.getElementById(id);
const histories = [[], []]; // one conversation per column

/** Fills the version pickers: the promoted alias first, then every registered version. */
export function modelChoices(promoted, list) {
  const keep = [$('model').value, $('model-b').value];
  replace($('model'), el('option', { value: 'prefloop' }, `prefloop (promoted${promoted ? `: ${promoted.name}` : ''})`),
    list.map((v) => el('option', { value: v.name }, v.name)));
  replace($('model-b'), el('option', { value: '' }, 'none (one version)'), list.map((v) => el('option', { value: v.name }, v.name)));
  if (keep[0]) $('model').value = keep[0];
  if (keep[1]) $('model-b').value = keep[1];
}

function bubble(parent, role, text, label = role) {
  const body = el('div', { class: 'md' }, renderMarkdown(text));
  parent.append(el('div', { class: `msg ${role}` }, el('div', { class: 'role' }, label), body));
  return body;
}

/** Streams one answer into `out`; returns its text, or throws with the reason there is none. */
async function stream(model, messages, out) {
  const res = await fetch('/v1/chat/completions', {
    method: 'POST', credentials: 'same-origin',
    headers: { 'Content-Type': 'application/json', 'X-CSRF-Token': csrfToken(), 'X-Requested-With': 'prefloop' },
    body: JSON.stringify({ model, messages, stream: true, max_tokens: 256 }),
  });
  if (!res.ok) throw new Error((await res.json().catch(() => ({})))?.error?.message ?? res.statusText);
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = '';
  let answer = '';
  let finish = null;
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
  return answer;
}

async function answer(model, history, out) {
  try {
    history.push({ role: 'assistant', content: await stream(model, history, out) });
  } catch (e) {
    replace(out, el('span', { class: 'error' }, `Error: ${e.message}`));
    history.pop(); // the user's message goes too: the conversation stays one the model can continue
  }
}

async function send() {
  const text = $('message').value.trim();
  if (!text) return;
  $('message').value = '';
  const models = [$('model').value, $('model-b').value].filter(Boolean);
  bubble($('chat'), 'user', text);
  const row = el('div', { class: models.length > 1 ? 'pair' : 'single' });
  $('chat').append(row);
  await Promise.all(models.map((model, k) => {
    histories[k].push({ role: 'user', content: text });
    return answer(model, histories[k], bubble(row, 'assistant', '…', models.length > 1 ? `assistant · ${model}` : 'assistant'));
  }));
}

function clear() {
  histories.forEach((h) => { h.length = 0; });
  $('chat').replaceChildren();
}

$('playground').addEventListener('submit', (e) => { e.preventDefault(); send(); });
$('message').addEventListener('keydown', (e) => {
  if (e.key === 'Enter' && !e.shiftKey) { e.preventDefault(); send(); }
});
$('clear').addEventListener('click', clear);
$('model-b').addEventListener('change', clear); // a new pairing starts a new conversation
