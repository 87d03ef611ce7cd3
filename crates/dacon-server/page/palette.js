// The palette: the references' colours with how many segments use each,
// keys 1-9, and the current colour.

import { hex } from './canvas.js';

/** A colour swatch; the checkerboard shows only through transparent ones. */
function paintSwatch(el, c) {
  const opaque = c && c[3] === 255;
  el.style.backgroundColor = c && c[3] ? hex(c) : 'transparent';
  el.style.backgroundImage = opaque ? 'none' : '';
  el.style.opacity = c && c[3] && !opaque ? String(0.4 + 0.6 * c[3] / 255) : '';
}

const same = (a, b) => !!a && !!b && a.every((v, i) => v === b[i]);

export class Palette {
  constructor(el, currentEl, onChange) {
    this.el = el;
    this.currentEl = currentEl;
    this.onChange = onChange;
    this.colors = [];
    this.current = null;
  }

  setColors(entries) {
    const custom = this.colors.filter((e) => e.custom && !entries.some((x) => same(x.color, e.color)));
    this.colors = [...entries, ...custom];
    if (!this.current && entries.length) this.current = entries[0].color;
    this.render();
  }

  pick(color) {
    this.current = color;
    this.render();
    this.onChange(color);
  }

  /** A colour the references do not have (the colour input). */
  addCustom(color) {
    if (!this.colors.some((e) => same(e.color, color))) this.colors.push({ color, count: 0, custom: true });
    this.pick(color);
  }

  pickKey(n) {
    if (n >= 1 && n <= this.colors.length) this.pick(this.colors[n - 1].color);
  }

  render() {
    this.el.replaceChildren(...this.colors.map((e, i) => {
      const b = document.createElement('button');
      b.dataset.color = e.color.join(',');
      if (same(e.color, this.current)) b.classList.add('current');
      const key = document.createElement('span');
      key.className = 'key';
      key.textContent = i < 9 ? String(i + 1) : '';
      const sw = document.createElement('span');
      sw.className = 'swatch';
      paintSwatch(sw, e.color);
      const t = document.createElement('span');
      t.textContent = e.custom ? 'other' : `×${e.count}`;
      b.title = e.custom ? `${hex(e.color)}: added by hand`
        : `${hex(e.color)} alpha ${e.color[3]}: ${e.count} segments in the references`;
      b.append(key, sw, t);
      b.addEventListener('click', () => this.pick(e.color));
      return b;
    }));
    const sw = this.currentEl.querySelector('.swatch');
    paintSwatch(sw, this.current);
    this.currentEl.querySelector('#current-text').textContent =
      this.current ? `current ${hex(this.current)} a${this.current[3]}` : 'no colour';
  }
}
