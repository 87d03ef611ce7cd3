// The review station: loads the cut, wires the views, sends every action to
// the server (one at a time, each based on the frame's latest version) and
// follows the server's events.

import * as api from './api.js';
import { decodeLabels, hex } from './canvas.js';
import { FrameView } from './frame.js';
import { Palette } from './palette.js';
import { ReferenceView } from './reference.js';
import { renderStrip, statusLabel } from './strip.js';

const $ = (id) => document.getElementById(id);

const S = {
  cut: null,
  current: null,
  frame: null,
  layers: new Map(), // frame name -> Promise<{ seg, lines }>
  undo: new Map(),
  redo: new Map(),
  queue: Promise.resolve(),
  pending: 0, // actions not saved yet, and frames still loading
  selected: 0,
  stamp: Date.now(),
  job: null,
  timing: { load: null, fixes: [] },
  ready: false,
};

const palette = new Palette($('palette'), $('current'), () => {});
const refs = new ReferenceView((color, ref, id) => {
  if (!color) return;
  palette.pick(color);
  banner(`picked ${hex(color)} from ${ref.kind} ${ref.name} segment ${id}`, true);
});
const view = new FrameView({
  hover: (id) => showInfo(id),
  strokeStep: (id) => paintLocal(id),
  strokeEnd: (ids) => commitStroke(ids),
  pick: (id) => {
    const c = S.frame && S.frame.colors[id];
    if (c) palette.pick(c);
  },
});

let bannerTimer = 0;
function banner(text, ok = false) {
  const b = $('banner');
  b.textContent = text;
  b.className = ok ? 'ok' : '';
  b.hidden = false;
  clearTimeout(bannerTimer);
  bannerTimer = setTimeout(() => { b.hidden = true; }, ok ? 2000 : 6000);
}

function layers(name) {
  if (!S.layers.has(name)) {
    const base = `/api/frames/${encodeURIComponent(name)}`;
    const p = Promise.all([api.bytes(`${base}/labels`), api.image(`${base}/lines.png`)])
      .then(([buf, lines]) => ({ seg: decodeLabels(buf), lines }));
    p.catch(() => S.layers.delete(name));
    S.layers.set(name, p);
  }
  return S.layers.get(name);
}

function flaggedOf(info) {
  const list = [];
  info.confidence.forEach((c, i) => {
    const id = i + 1;
    const low = c.margin === null || c.margin < info.flag_margin;
    if (low && !(id in info.corrections)) list.push([c.margin ?? -1, id]);
  });
  list.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  return list.map((x) => x[1]);
}

function frameColors(info) {
  const colors = [null, ...info.prediction];
  for (const [id, c] of Object.entries(info.corrections)) colors[+id] = c;
  return colors;
}

async function loadCut() {
  S.cut = await api.get('/api/cut');
  $('cut-name').textContent = S.cut.name;
  palette.setColors(S.cut.palette);
  renderStrip($('strip'), S.cut.frames, S.current, (n) => openFrame(n), S.stamp);
  showJob(S.cut.job);
}

async function openFrame(name, keepView = false) {
  S.pending++;
  try {
    await showFrame(name, keepView);
  } finally {
    S.pending--;
  }
}

async function showFrame(name, keepView) {
  const [info, { seg, lines }] = await Promise.all([
    api.get(`/api/frames/${encodeURIComponent(name)}`), layers(name)]);
  const changed = S.current !== name;
  S.current = name;
  S.frame = { ...info, seg, colors: frameColors(info) };
  S.frame.flagged = flaggedOf(info);
  S.selected = 0;
  await loadLinesImage(lines);
  view.setFrame(seg, S.frame.colors, lines, marks());
  if (changed && !keepView) view.fit();
  $('waiting').textContent = info.coloured ? '' : 'colouring… this frame appears when it is done';
  updateHeader();
  renderStrip($('strip'), S.cut.frames, S.current, (n) => openFrame(n), S.stamp);
  const firstSheet = S.cut.sheets[0];
  if (firstSheet && !refs.current) refs.show({ kind: 'sheet', name: firstSheet }, 0);
}

function loadLinesImage(url) {
  const img = $('lines');
  if (img.src === url) return Promise.resolve();
  img.src = url;
  return img.decode().catch(() => {});
}

function marks() {
  const f = S.frame;
  return {
    outlines: $('t-outlines').checked,
    flagged: $('t-flags').checked && f ? new Set(f.flagged) : null,
  };
}

function updateHeader() {
  const f = S.frame;
  $('frame-name').textContent = `frame ${f.name} · ${f.segments} segments · ${f.flagged.length} flagged`;
  const st = $('frame-status');
  st.textContent = statusLabel(f.status);
  st.className = `badge st-${f.status}`;
  $('approve').textContent = f.approved ? 'Reopen' : 'Approve';
  $('undo').disabled = !(S.undo.get(f.name) || []).length;
  $('redo').disabled = !(S.redo.get(f.name) || []).length;
  const entry = S.cut.frames.find((x) => x.name === f.name);
  if (entry) Object.assign(entry, {
    status: f.status, version: f.version, approved: f.approved,
    flagged: f.flagged.length, corrected: Object.keys(f.corrections).length,
  });
}

function showInfo(id) {
  const f = S.frame;
  if (!f || !id) {
    $('info').textContent = 'Hover a segment.';
    return;
  }
  const c = f.colors[id];
  const conf = f.confidence[id - 1];
  const lines = [`segment ${id}`, `colour ${hex(c)} alpha ${c ? c[3] : '-'}`];
  if (id in f.corrections) lines.push('corrected by hand');
  if (conf) {
    const num = (x) => (x === null ? 'n/a' : x.toFixed(3));
    lines.push(`similarity ${num(conf.similarity)} · margin ${num(conf.margin)}`);
    const src = conf.source;
    const ref = src && f.references[src.reference];
    if (ref) {
      lines.push(`from ${ref.kind} ${ref.name}, segment ${src.segment}`);
      refs.show(ref, src.segment);
    } else if (src) {
      lines.push(`from reference ${src.reference}, segment ${src.segment}`);
    }
  }
  $('info').textContent = lines.join('\n');
}

function editable() {
  if (!S.frame || !S.frame.coloured) return false;
  if (S.frame.approved) {
    banner(`frame ${S.frame.name} is approved; Reopen it to change it`);
    return false;
  }
  return true;
}

// Colours painted during a stroke, before it is sent: segment -> before.
let strokeBefore = new Map();

function paintLocal(id) {
  if (!editable() || !palette.current) return;
  const f = S.frame;
  if (!strokeBefore.has(id)) strokeBefore.set(id, id in f.corrections ? f.corrections[id] : null);
  f.colors[id] = palette.current;
  view.repaint(f.colors);
}

function commitStroke() {
  if (!strokeBefore.size) return;
  const changes = {};
  const undo = {};
  for (const [id, before] of strokeBefore) {
    changes[id] = palette.current;
    undo[id] = before;
  }
  strokeBefore = new Map();
  applyChanges(changes, undo, true);
}

/** Applies `changes` (segment -> colour or null) locally, then saves them. */
function applyChanges(changes, inverse, record) {
  const f = S.frame;
  const name = f.name;
  const t0 = performance.now();
  for (const [id, c] of Object.entries(changes)) {
    if (c) f.corrections[id] = c; else delete f.corrections[id];
    f.colors[+id] = c || f.prediction[+id - 1];
  }
  view.repaint(f.colors);
  const repaint = performance.now() - t0;
  if (record) {
    if (!S.undo.has(name)) S.undo.set(name, []);
    S.undo.get(name).push({ changes, inverse });
    S.redo.set(name, []);
  }
  S.frame.flagged = flaggedOf(f);
  view.setMarks(marks());
  updateHeader();
  send(name, `/api/frames/${encodeURIComponent(name)}/fix`, () => ({ changes }), t0, repaint);
}

/** Sends actions one after another, each on the frame's latest version. */
function send(name, path, body, t0 = performance.now(), repaint = null) {
  S.pending++;
  S.queue = S.queue.then(async () => {
    try {
      const f = S.frame;
      const res = await api.post(path, { base_version: f.version, ...body() });
      if (S.frame && S.frame.name === name) {
        Object.assign(S.frame, { version: res.version, approved: res.approved, status: res.status });
        S.frame.corrections = res.corrections;
        updateHeader();
      }
      if (repaint !== null) S.timing.fixes.push({ repaint_ms: repaint, saved_ms: performance.now() - t0 });
      renderStrip($('strip'), S.cut.frames, S.current, (n) => openFrame(n), S.stamp);
    } catch (e) {
      if (e.status === 409 && e.body && e.body.current) {
        banner(`frame ${name} was changed elsewhere (another tab?): reloaded it; your last action was not applied`);
        S.undo.set(name, []);
        S.redo.set(name, []);
        if (S.current === name) await openFrame(name, true);
      } else {
        banner(`not saved: ${e.message}`);
        if (S.current === name) await openFrame(name, true);
      }
    } finally {
      S.pending--;
    }
  });
  return S.queue;
}

function undo(redo = false) {
  const f = S.frame;
  if (!f || !editable()) return;
  const from = (redo ? S.redo : S.undo).get(f.name) || [];
  const to = redo ? S.undo : S.redo;
  const step = from.pop();
  if (!step) return;
  if (!to.has(f.name)) to.set(f.name, []);
  to.get(f.name).push(step);
  applyChanges(redo ? step.changes : step.inverse, null, false);
}

async function approve() {
  const f = S.frame;
  if (!f || !f.coloured) return;
  const approving = !f.approved;
  // Busy until the next frame is shown: a second A must approve that one.
  S.pending++;
  try {
    await send(f.name, `/api/frames/${encodeURIComponent(f.name)}/approve`, () => ({ approved: approving }));
    if (approving && S.frame.approved) {
      const next = S.cut.frames.find((x) => !x.approved && x.name > f.name)
        || S.cut.frames.find((x) => !x.approved);
      if (next) await openFrame(next.name);
    }
  } finally {
    S.pending--;
  }
}

async function recolor() {
  if (!S.frame) return;
  S.pending++;
  try {
    const res = await api.post('/api/recolor', { from: S.frame.name });
    showJob(res.job);
  } catch (e) {
    banner(e.message);
  } finally {
    S.pending--;
  }
}

async function exportCut(frames) {
  try {
    const res = await api.post('/api/export', frames ? { frames } : {});
    const links = [];
    for (const e of res.frames) for (const file of e.files) links.push(file);
    links.push(res.manifest);
    $('exports').replaceChildren(...links.map((p) => {
      const a = document.createElement('a');
      a.href = api.withToken(`/files/out/${p.split('/').map(encodeURIComponent).join('/')}`);
      a.textContent = p;
      a.target = '_blank';
      return a;
    }));
    banner(`exported ${links.length - 1} files to ${S.cut.name} export/`, true);
  } catch (e) {
    banner(e.message);
  }
}

function nextFlagged() {
  const f = S.frame;
  if (!f || !f.flagged.length) {
    banner('no flagged segment left in this frame', true);
    return;
  }
  const i = f.flagged.indexOf(S.selected);
  S.selected = f.flagged[(i + 1) % f.flagged.length];
  view.focus(S.selected);
  view.highlight(S.selected, [255, 0, 150, 170]);
  showInfo(S.selected);
}

function step(delta) {
  const names = S.cut.frames.map((x) => x.name);
  const i = names.indexOf(S.current) + delta;
  if (i >= 0 && i < names.length) openFrame(names[i]);
}

/** Whether job state `a` is later than `b`: the answer to a request and
 *  the event stream may arrive in either order. */
function newer(a, b) {
  if (!b) return true;
  if (a.id !== b.id) return a.id > b.id;
  if (!b.running) return false;
  return !a.running || a.done >= b.done;
}

function showJob(job) {
  if (!newer(job, S.job)) return;
  const was = S.job && S.job.running;
  S.job = job;
  $('job').classList.toggle('on', !!job.running || !!job.error);
  $('job-bar').max = Math.max(1, job.total);
  $('job-bar').value = job.done;
  $('job-text').textContent = job.running
    ? `colouring ${job.done}/${job.total}` + (job.from ? ` (after ${job.from})` : '')
    : job.error ? `colouring failed: ${job.error}` : '';
  $('recolor').disabled = !!job.running;
  if (was && !job.running) {
    S.stamp = Date.now();
    S.pending++;
    loadCut()
      .then(() => S.current && openFrame(S.current, true))
      .finally(() => { S.pending--; });
    banner(job.failed ? `${job.failed} frames failed` : 'colouring done', !job.failed);
  }
}

function onEvent(e) {
  if (e.type === 'job') {
    showJob(e);
  } else if (e.type === 'frame') {
    refs.forget(e.name);
    const entry = S.cut && S.cut.frames.find((x) => x.name === e.name);
    if (entry && !entry.coloured) {
      entry.coloured = true;
      renderStrip($('strip'), S.cut.frames, S.current, (n) => openFrame(n), S.stamp);
    }
    const f = S.frame;
    if (f && f.name === e.name && S.pending === 0 && (e.version !== f.version || (S.job && S.job.running))) {
      openFrame(e.name, true);
    }
  }
}

function keys(e) {
  if (e.target instanceof Element && e.target.closest('input, textarea')) return;
  const k = e.key;
  if ((e.ctrlKey || e.metaKey) && (k === 'z' || k === 'Z')) {
    e.preventDefault();
    undo(e.shiftKey);
  } else if ((e.ctrlKey || e.metaKey) && (k === 'y' || k === 'Y')) {
    e.preventDefault();
    undo(true);
  } else if (e.ctrlKey || e.metaKey || e.altKey) {
    return;
  } else if (k >= '1' && k <= '9') {
    palette.pickKey(+k);
  } else if (k === 'f' || k === 'F') {
    nextFlagged();
  } else if (k === 'Enter' && S.selected && editable()) {
    const before = S.selected in S.frame.corrections ? S.frame.corrections[S.selected] : null;
    applyChanges({ [S.selected]: palette.current }, { [S.selected]: before }, true);
    nextFlagged();
  } else if (k === 'n' || k === 'N' || k === 'ArrowRight') {
    step(1);
  } else if (k === 'p' || k === 'P' || k === 'ArrowLeft') {
    step(-1);
  } else if (k === 'a' || k === 'A') {
    approve();
  } else if (k === 'l' || k === 'L') {
    $('t-lines').click();
  } else if (k === 'o' || k === 'O') {
    $('t-outlines').click();
  } else if (k === 'h' || k === 'H') {
    $('t-flags').click();
  } else if (k === '0') {
    view.fit();
  }
}

function wire() {
  $('approve').addEventListener('click', approve);
  $('recolor').addEventListener('click', recolor);
  $('undo').addEventListener('click', () => undo(false));
  $('redo').addEventListener('click', () => undo(true));
  $('fit').addEventListener('click', () => view.fit());
  $('export-frame').addEventListener('click', () => S.frame && exportCut([S.frame.name]));
  $('export-cut').addEventListener('click', () => exportCut(null));
  $('custom').addEventListener('change', (e) => {
    const h = e.target.value;
    palette.addCustom([1, 3, 5].map((i) => parseInt(h.slice(i, i + 2), 16)).concat(255));
  });
  $('t-lines').addEventListener('change', (e) => view.showLines(e.target.checked));
  for (const id of ['t-outlines', 't-flags']) $(id).addEventListener('change', () => S.frame && view.setMarks(marks()));
  window.addEventListener('keydown', keys);
}

/** What the browser test and timing scripts read. */
window.__dacon = {
  get ready() { return S.ready; },
  timing: S.timing,
  idle: () => S.pending === 0 && !(S.job && S.job.running),
  frame: () => S.frame && {
    name: S.frame.name, version: S.frame.version, approved: S.frame.approved,
    status: S.frame.status, segments: S.frame.segments, flagged: [...S.frame.flagged],
    corrections: { ...S.frame.corrections }, coloured: S.frame.coloured,
  },
  cut: () => S.cut && S.cut.frames.map((f) => ({ ...f })),
  current: () => palette.current,
  clientPoint: (x, y) => view.clientPoint(x, y),
  /** A pixel deep inside segment `id` (the one farthest from its edge on a
   *  coarse search), so that a click there lands on it at any zoom. */
  pointOf(id) {
    const s = S.frame.seg;
    const b = s.box.subarray(id * 4, id * 4 + 4);
    let best = null, bestD = -1;
    const inside = (x, y) => x >= 0 && y >= 0 && x < s.w && y < s.h && s.labels[y * s.w + x] === id;
    for (let y = b[1]; y <= b[3]; y++) {
      for (let x = b[0]; x <= b[2]; x++) {
        if (!inside(x, y)) continue;
        let d = 0;
        while (d < 40 && inside(x + d + 1, y) && inside(x - d - 1, y) && inside(x, y + d + 1) && inside(x, y - d - 1)
          && inside(x + d + 1, y + d + 1) && inside(x - d - 1, y - d - 1) && inside(x + d + 1, y - d - 1) && inside(x - d - 1, y + d + 1)) d++;
        if (d > bestD) { bestD = d; best = [x, y]; }
      }
    }
    return best;
  },
};

async function start() {
  wire();
  try {
    await loadCut();
    api.events(onEvent);
    const first = S.cut.frames.find((f) => f.coloured && !f.approved) || S.cut.frames[0];
    await openFrame(first.name);
    S.timing.load = performance.now();
    S.ready = true;
  } catch (e) {
    banner(`cannot load the cut: ${e.message}`);
    $('waiting').textContent = e.message;
  }
}

start();
