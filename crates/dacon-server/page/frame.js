// The current frame, large: fills under the line layer, marks (outlines,
// flagged segments), hover highlight; zoom, pan, click and drag to fill.

import { paintFill, paintMarks, paintSegment, sizeCanvas } from './canvas.js';

export class FrameView {
  constructor(handlers) {
    this.h = handlers; // { hover(id), stroke(ids), pick(id) }
    this.view = document.getElementById('view');
    this.stage = document.getElementById('stage');
    this.fill = document.getElementById('fill');
    this.marks = document.getElementById('marks');
    this.lines = document.getElementById('lines');
    this.hoverLayer = document.getElementById('hover-layer');
    this.seg = null;
    this.scale = 1;
    this.tx = 0;
    this.ty = 0;
    this.hoverBox = null;
    this.hovered = 0;
    this.stroke = null;
    this.pan = null;
    this.space = false;
    this.listen();
  }

  /** New frame: labels, colours (index = segment id), line layer URL. */
  setFrame(seg, colors, linesUrl, marks) {
    const fresh = !this.seg || this.seg.w !== seg.w || this.seg.h !== seg.h;
    this.seg = seg;
    for (const c of [this.fill, this.marks, this.hoverLayer]) sizeCanvas(c, seg.w, seg.h);
    this.stage.style.width = `${seg.w}px`;
    this.stage.style.height = `${seg.h}px`;
    this.hoverBox = null;
    this.hoverLayer.getContext('2d').clearRect(0, 0, seg.w, seg.h);
    this.lines.src = linesUrl;
    this.repaint(colors);
    this.setMarks(marks);
    if (fresh) this.fit();
  }

  repaint(colors) {
    paintFill(this.fill, this.seg, colors);
  }

  setMarks(opts) {
    paintMarks(this.marks, this.seg, opts);
  }

  showLines(on) {
    this.lines.hidden = !on;
  }

  highlight(id, color = [255, 230, 0, 140]) {
    this.hovered = id;
    this.hoverBox = paintSegment(this.hoverLayer, this.seg, id, color, this.hoverBox);
  }

  fit() {
    if (!this.seg) return;
    const vw = this.view.clientWidth, vh = this.view.clientHeight;
    this.scale = Math.min(vw / this.seg.w, vh / this.seg.h) * 0.98;
    this.tx = (vw - this.seg.w * this.scale) / 2;
    this.ty = (vh - this.seg.h * this.scale) / 2;
    this.apply();
  }

  /** Centres segment `id` in the view, zooming in if it is small. */
  focus(id) {
    const b = this.seg.box.subarray(id * 4, id * 4 + 4);
    if (b[2] < 0) return;
    const vw = this.view.clientWidth, vh = this.view.clientHeight;
    const size = Math.max(b[2] - b[0] + 1, b[3] - b[1] + 1);
    const fitScale = Math.min(vw / this.seg.w, vh / this.seg.h) * 0.98;
    this.scale = Math.max(fitScale, Math.min(8, Math.min(vw, vh) / (size * 6)));
    this.tx = vw / 2 - ((b[0] + b[2]) / 2) * this.scale;
    this.ty = vh / 2 - ((b[1] + b[3]) / 2) * this.scale;
    this.apply();
  }

  apply() {
    this.stage.style.transform = `translate(${this.tx}px, ${this.ty}px) scale(${this.scale})`;
  }

  /** Image pixel under a pointer event (or null outside). */
  pixelAt(clientX, clientY) {
    if (!this.seg) return null;
    const r = this.view.getBoundingClientRect();
    const x = Math.floor((clientX - r.left - this.tx) / this.scale);
    const y = Math.floor((clientY - r.top - this.ty) / this.scale);
    if (x < 0 || y < 0 || x >= this.seg.w || y >= this.seg.h) return null;
    return [x, y];
  }

  segmentAt(clientX, clientY) {
    const p = this.pixelAt(clientX, clientY);
    return p ? this.seg.labels[p[1] * this.seg.w + p[0]] : 0;
  }

  /** Viewport coordinates of the centre of image pixel (x, y). */
  clientPoint(x, y) {
    const r = this.view.getBoundingClientRect();
    return [r.left + this.tx + (x + 0.5) * this.scale, r.top + this.ty + (y + 0.5) * this.scale];
  }

  listen() {
    const v = this.view;
    v.addEventListener('contextmenu', (e) => e.preventDefault());
    v.addEventListener('wheel', (e) => {
      e.preventDefault();
      const r = v.getBoundingClientRect();
      const mx = e.clientX - r.left, my = e.clientY - r.top;
      const k = Math.exp(-e.deltaY * 0.0015);
      const s = Math.min(32, Math.max(0.05, this.scale * k));
      this.tx = mx - (mx - this.tx) * (s / this.scale);
      this.ty = my - (my - this.ty) * (s / this.scale);
      this.scale = s;
      this.apply();
    }, { passive: false });
    v.addEventListener('pointerdown', (e) => {
      if (!this.seg) return;
      v.setPointerCapture(e.pointerId);
      if (e.button === 1 || e.button === 2 || this.space) {
        this.pan = [e.clientX, e.clientY, this.tx, this.ty];
        v.classList.add('panning');
        return;
      }
      if (e.button !== 0) return;
      const id = this.segmentAt(e.clientX, e.clientY);
      if (e.altKey) {
        if (id) this.h.pick(id);
        return;
      }
      this.stroke = new Set();
      if (id) {
        this.stroke.add(id);
        this.h.strokeStep(id);
      }
    });
    v.addEventListener('pointermove', (e) => {
      if (this.pan) {
        this.tx = this.pan[2] + e.clientX - this.pan[0];
        this.ty = this.pan[3] + e.clientY - this.pan[1];
        this.apply();
        return;
      }
      const id = this.segmentAt(e.clientX, e.clientY);
      if (this.stroke && id && !this.stroke.has(id)) {
        this.stroke.add(id);
        this.h.strokeStep(id);
      }
      if (id !== this.hovered) {
        this.highlight(id);
        this.h.hover(id);
      }
    });
    const end = () => {
      if (this.pan) {
        this.pan = null;
        v.classList.remove('panning');
      }
      if (this.stroke) {
        const ids = [...this.stroke];
        this.stroke = null;
        if (ids.length) this.h.strokeEnd(ids);
      }
    };
    v.addEventListener('pointerup', end);
    v.addEventListener('pointercancel', end);
    v.addEventListener('pointerleave', () => {
      if (!this.stroke) {
        this.highlight(0);
        this.h.hover(0);
      }
    });
    window.addEventListener('keydown', (e) => { if (e.code === 'Space') this.space = true; });
    window.addEventListener('keyup', (e) => { if (e.code === 'Space') this.space = false; });
    window.addEventListener('resize', () => this.fit());
  }
}
