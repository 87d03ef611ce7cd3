// Labels and colour tables drawn on the client: a fix repaints from memory,
// without asking the server for an image.

/** Decodes the server's run-length labels (`DLB1`). */
export function decodeLabels(buf) {
  const dv = new DataView(buf);
  const magic = String.fromCharCode(dv.getUint8(0), dv.getUint8(1), dv.getUint8(2), dv.getUint8(3));
  if (magic !== 'DLB1') throw new Error('not a label stream');
  const w = dv.getUint32(4, true), h = dv.getUint32(8, true), count = dv.getUint32(12, true);
  const labels = new Uint32Array(w * h);
  let p = 0;
  for (let o = 16; o + 8 <= buf.byteLength; o += 8) {
    const l = dv.getUint32(o, true), run = dv.getUint32(o + 4, true);
    labels.fill(l, p, p + run);
    p += run;
  }
  // Bounding box of every segment: where to look for it.
  const box = new Int32Array((count + 1) * 4);
  for (let i = 0; i <= count; i++) box.set([w, h, -1, -1], i * 4);
  for (let y = 0, i = 0; y < h; y++) {
    for (let x = 0; x < w; x++, i++) {
      const b = labels[i] * 4;
      if (x < box[b]) box[b] = x;
      if (y < box[b + 1]) box[b + 1] = y;
      if (x > box[b + 2]) box[b + 2] = x;
      if (y > box[b + 3]) box[b + 3] = y;
    }
  }
  return { w, h, count, labels, box };
}

/** An RGBA colour as one little-endian pixel word. */
export function word(c) {
  return c ? ((c[3] << 24) | (c[2] << 16) | (c[1] << 8) | c[0]) >>> 0 : 0;
}

export function hex(c) {
  return c ? '#' + c.slice(0, 3).map((v) => v.toString(16).padStart(2, '0')).join('') : 'none';
}

export function sizeCanvas(canvas, w, h) {
  if (canvas.width !== w) canvas.width = w;
  if (canvas.height !== h) canvas.height = h;
}

/** Paints every segment with `colors[id]` (array of [r,g,b,a] or null). */
export function paintFill(canvas, seg, colors) {
  sizeCanvas(canvas, seg.w, seg.h);
  const lut = new Uint32Array(seg.count + 1);
  for (let id = 1; id <= seg.count; id++) lut[id] = word(colors[id]);
  const ctx = canvas.getContext('2d');
  const img = ctx.createImageData(seg.w, seg.h);
  const out = new Uint32Array(img.data.buffer);
  const labels = seg.labels;
  for (let i = 0; i < labels.length; i++) out[i] = lut[labels[i]];
  ctx.putImageData(img, 0, 0);
}

/** Outlines of segments and a hatch over the `flagged` ones (a Set). */
export function paintMarks(canvas, seg, { outlines, flagged }) {
  sizeCanvas(canvas, seg.w, seg.h);
  const ctx = canvas.getContext('2d');
  const img = ctx.createImageData(seg.w, seg.h);
  const out = new Uint32Array(img.data.buffer);
  const { w, h, labels } = seg;
  const edge = word([0, 200, 255, 255]);
  const hatch = word([255, 0, 150, 150]);
  const flags = flagged && flagged.size ? flagged : null;
  // Hatching would miss a segment a few pixels wide: fill those whole.
  const tiny = (l) => seg.box[l * 4 + 2] - seg.box[l * 4] < 8 || seg.box[l * 4 + 3] - seg.box[l * 4 + 1] < 8;
  for (let y = 0, i = 0; y < h; y++) {
    for (let x = 0; x < w; x++, i++) {
      const l = labels[i];
      if (l === 0) continue;
      if (outlines && ((x + 1 < w && labels[i + 1] !== l) || (y + 1 < h && labels[i + w] !== l)
        || (x > 0 && labels[i - 1] !== l) || (y > 0 && labels[i - w] !== l))) {
        out[i] = edge;
      } else if (flags && flags.has(l) && (((x + y) & 7) < 3 || tiny(l))) {
        out[i] = hatch;
      }
    }
  }
  ctx.putImageData(img, 0, 0);
}

/** Highlights one segment (inside its bounding box only), clearing the
 *  previous highlight. Returns the box drawn, to clear next time. */
export function paintSegment(canvas, seg, id, color, previous) {
  sizeCanvas(canvas, seg.w, seg.h);
  const ctx = canvas.getContext('2d');
  if (previous) ctx.clearRect(previous[0], previous[1], previous[2] - previous[0] + 1, previous[3] - previous[1] + 1);
  if (!id) return null;
  const b = seg.box.subarray(id * 4, id * 4 + 4);
  if (b[2] < 0) return null;
  if (b[2] - b[0] < 6 && b[3] - b[1] < 6) {
    // A few pixels: ring it so that the eye finds it.
    const r = 10, cx = (b[0] + b[2] + 1) / 2, cy = (b[1] + b[3] + 1) / 2;
    ctx.strokeStyle = `rgba(${color[0]}, ${color[1]}, ${color[2]}, 1)`;
    ctx.lineWidth = 2;
    ctx.beginPath();
    ctx.arc(cx, cy, r, 0, 2 * Math.PI);
    ctx.stroke();
    const ring = [Math.floor(cx - r - 2), Math.floor(cy - r - 2), Math.ceil(cx + r + 2), Math.ceil(cy + r + 2)];
    drawSegment(ctx, seg, id, color, b);
    return ring;
  }
  drawSegment(ctx, seg, id, color, b);
  return [b[0], b[1], b[2], b[3]];
}

function drawSegment(ctx, seg, id, color, b) {
  const bw = b[2] - b[0] + 1, bh = b[3] - b[1] + 1;
  const img = ctx.createImageData(bw, bh);
  const out = new Uint32Array(img.data.buffer);
  const c = word(color);
  for (let y = 0; y < bh; y++) {
    const row = (b[1] + y) * seg.w + b[0];
    for (let x = 0; x < bw; x++) if (seg.labels[row + x] === id) out[y * bw + x] = c;
  }
  // Over what is there (the ring), not replacing it.
  const tmp = document.createElement('canvas');
  tmp.width = bw;
  tmp.height = bh;
  tmp.getContext('2d').putImageData(img, 0, 0);
  ctx.drawImage(tmp, b[0], b[1]);
}
