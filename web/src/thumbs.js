// Thumbs up/down on one answer in the annotation workspace: KTO's unpaired feedback, beside the
// comparison's verdict (which it does not replace). A click sends {eventId, comparisonId, side,
// label} to /api/thumbs; the pressed button says what was stored, and a second click on the other
// button replaces the verdict (the server keeps the latest one per person and answer).
import { api, uuid } from './api.js';
import { el, replace } from './dom.js';

/** Puts the two buttons after the response element `answer` (re-rendered per comparison). */
export function showThumbs(answer, comparisonId, side) {
  let bar = answer.nextElementSibling;
  if (!bar || !bar.classList.contains('thumbs')) {
    bar = el('div', { class: 'thumbs', role: 'group', 'aria-label': 'Rate this answer on its own' });
    answer.after(bar);
  }
  const up = button('👍', 'Good answer', true);
  const down = button('👎', 'Bad answer', false);
  const note = el('span', { class: 'thumbs-note', 'aria-live': 'polite' });
  replace(bar, up, down, note);

  function button(symbol, label, value) {
    const b = el('button', { type: 'button', 'aria-label': label, 'aria-pressed': 'false', title: label }, symbol);
    b.addEventListener('click', async () => {
      b.disabled = true;
      try {
        await api('/api/thumbs', { method: 'POST', body: { eventId: uuid(), comparisonId, side, label: value } });
        up.setAttribute('aria-pressed', String(value));
        down.setAttribute('aria-pressed', String(!value));
        note.textContent = 'Saved';
      } catch (e) {
        note.textContent = 'Not saved: ' + e.message;
      } finally {
        b.disabled = false;
        b.blur(); // the workspace's keys (1, 2, Enter) judge the comparison again, not this button
      }
    });
    return b;
  }
}
