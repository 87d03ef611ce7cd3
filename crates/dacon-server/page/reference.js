// The reference beside the frame: the frame or sheet a hovered segment took
// its colour from, with the source segment highlighted. Clicking it picks
// that segment's colour.

import * as api from './api.js';
import { decodeLabels, paintFill, paintSegment, sizeCanvas } from './canvas.js';

const cache = new Map();

async function loadRef(ref) {
  const key = `${ref.kind}/${ref.name}`;
  if (!cache.has(key)) {
    const base = ref.kind === 'sheet' ? '/api/sheets/' : '/api/frames/';
    const path = base + encodeURIComponent(ref.name);
    cache.set(key, (async () => {
      const [info, buf, lines] = await Promise.all([
        api.get(path), api.bytes(`${path}/labels`), api.image(`${path}/lines.png`)]);
      let colors;
      if (ref.kind === 'sheet') {
        colors = [null, ...info.colors];
      } else {
        colors = [null, ...info.prediction];
        for (const [id, c] of Object.entries(info.corrections)) colors[+id] = c;
      }
      return { ref, seg: decodeLabels(buf), colors, lines };
    })());
  }
  return cache.get(key);
}

export class ReferenceView {
  constructor(onPick) {
    this.stage = document.getElementById('ref-stage');
    this.fill = document.getElementById('ref-fill');
    this.mark = document.getElementById('ref-mark');
    this.lines = document.getElementById('ref-lines');
    this.title = document.getElementById('ref-title');
    this.current = null;
    this.box = null;
    this.segment = 0;
    this.stage.addEventListener('click', (e) => {
      const id = this.segmentAt(e);
      if (id && this.current) onPick(this.current.colors[id], this.current.ref, id);
    });
  }

  /** Frame references change when frames are coloured again or fixed. */
  forget(frameName) {
    cache.delete(`frame/${frameName}`);
  }

  async show(ref, segment) {
    if (!ref) return;
    const r = await loadRef(ref);
    if (this.current !== r) {
      this.current = r;
      const s = r.seg;
      const scale = Math.min(this.stage.clientWidth / s.w, this.stage.clientHeight / s.h);
      for (const el of [this.fill, this.mark, this.lines]) {
        el.style.width = `${s.w * scale}px`;
        el.style.height = `${s.h * scale}px`;
      }
      sizeCanvas(this.mark, s.w, s.h);
      this.mark.getContext('2d').clearRect(0, 0, s.w, s.h);
      this.box = null;
      paintFill(this.fill, s, r.colors);
      this.lines.src = r.lines;
    }
    this.title.textContent = `Reference: ${ref.kind} ${ref.name}` + (segment ? ` · segment ${segment}` : '');
    if (segment !== this.segment || !this.box) {
      this.segment = segment;
      this.box = paintSegment(this.mark, r.seg, segment, [255, 0, 150, 200], this.box);
    }
  }

  segmentAt(e) {
    if (!this.current) return 0;
    const s = this.current.seg;
    const rect = this.fill.getBoundingClientRect();
    const x = Math.floor((e.clientX - rect.left) * s.w / rect.width);
    const y = Math.floor((e.clientY - rect.top) * s.h / rect.height);
    if (x < 0 || y < 0 || x >= s.w || y >= s.h) return 0;
    return s.labels[y * s.w + x];
  }
}
