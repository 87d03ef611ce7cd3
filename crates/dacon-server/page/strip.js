// The strip of all frames with their review status.

import { withToken } from './api.js';

const LABEL = { not_reviewed: 'not reviewed', fixes_made: 'fixes made', approved: 'approved' };

export function statusLabel(s) {
  return LABEL[s] || s;
}

export function renderStrip(el, frames, current, onPick, stamp) {
  el.replaceChildren(...frames.map((f) => {
    const b = document.createElement('button');
    b.dataset.frame = f.name;
    if (f.name === current) b.classList.add('current');
    if (f.coloured) {
      const img = document.createElement('img');
      img.src = withToken(`/files/out/${encodeURIComponent(f.name)}.png?v=${stamp}`);
      img.alt = '';
      b.append(img);
    }
    const name = document.createElement('span');
    name.textContent = f.name;
    const st = document.createElement('span');
    st.className = `badge st-${f.status}`;
    st.textContent = f.coloured ? statusLabel(f.status) : 'colouring…';
    const flags = document.createElement('span');
    flags.className = 'flags';
    flags.textContent = f.flagged ? `⚑ ${f.flagged} flagged` : '';
    b.append(name, st, flags);
    b.title = `${f.name}: ${statusLabel(f.status)}, ${f.flagged} flagged, ${f.corrected} corrected`;
    b.addEventListener('click', () => onPick(f.name));
    return b;
  }));
  const cur = el.querySelector('.current');
  if (cur) cur.scrollIntoView({ block: 'nearest', inline: 'nearest' });
}
