// GeoEdge labelling page: correct a water mask with a brush, polygons and a GrabCut assist.
// The mask is one byte per image pixel (0 land, 1 water, 2 sky, 255 ignore), exchanged with
// the server as raw bytes at the image's full resolution. No framework, no build step.
"use strict";

const COLOURS = { 0: [0, 0, 0, 0], 1: [30, 144, 255, 110], 2: [186, 85, 211, 120], 255: [128, 128, 128, 160] };
const NAMES = { 0: "land", 1: "water", 2: "sky", 255: "ignore" };
const $ = (id) => document.getElementById(id);

const state = {
  images: [], index: 0, W: 0, H: 0,
  mask: null,      // Uint8Array W*H, classes
  drawn: null,     // Uint8Array W*H, 1 where the operator set the class by hand
  overlay: null,   // ImageData of the overlay canvas
  tool: "brush", cls: 1, radius: 12, zoom: 1,
  undo: [], redo: [], dirty: false, leaveArmed: false,
  stroke: null,    // {before, drawnBefore, last: [x, y]} while the brush is down
  polygon: [],     // vertices [x, y] in image pixels
  busy: false,
};

function setStatus(text, pageState) {
  $("status").textContent = text;
  if (pageState) document.body.dataset.state = pageState;
}

function fail(err) {
  state.busy = false;
  setStatus("error: " + err.message, "error");
}

// ---- drawing on the overlay -------------------------------------------------------------

function paintRect(x0, y0, x1, y1) {
  // recolour overlay pixels of [x0, x1) x [y0, y1) from the mask and show them
  x0 = Math.max(0, Math.floor(x0)); y0 = Math.max(0, Math.floor(y0));
  x1 = Math.min(state.W, Math.ceil(x1)); y1 = Math.min(state.H, Math.ceil(y1));
  if (x1 <= x0 || y1 <= y0) return;
  const d = state.overlay.data, W = state.W;
  for (let y = y0; y < y1; y++) {
    for (let i = y * W + x0, end = y * W + x1; i < end; i++) {
      const c = COLOURS[state.mask[i]];
      const o = 4 * i;
      d[o] = c[0]; d[o + 1] = c[1]; d[o + 2] = c[2]; d[o + 3] = c[3];
    }
  }
  $("overlay").getContext("2d").putImageData(state.overlay, 0, 0, x0, y0, x1 - x0, y1 - y0);
}

function paintAll() { paintRect(0, 0, state.W, state.H); }

function drawDraft(cursor) {
  const ctx = $("draft").getContext("2d");
  ctx.clearRect(0, 0, state.W, state.H);
  const lw = Math.max(1, 2 / state.zoom);
  ctx.lineWidth = lw;
  if (state.polygon.length) {
    ctx.strokeStyle = "#ff0"; ctx.fillStyle = "#ff0";
    ctx.beginPath();
    state.polygon.forEach(([x, y], k) => (k ? ctx.lineTo(x, y) : ctx.moveTo(x, y)));
    if (cursor) ctx.lineTo(cursor[0], cursor[1]);
    ctx.stroke();
    for (const [x, y] of state.polygon) ctx.fillRect(x - 2 * lw, y - 2 * lw, 4 * lw, 4 * lw);
  }
  if (cursor && state.tool === "brush") {
    ctx.strokeStyle = "#fff";
    ctx.beginPath();
    ctx.arc(cursor[0], cursor[1], state.radius, 0, 2 * Math.PI);
    ctx.stroke();
  }
}

// ---- edits and undo ---------------------------------------------------------------------

function beginEdit() {
  return { before: state.mask.slice(), drawnBefore: state.drawn.slice() };
}

function endEdit(edit) {
  // keep only the pixels that changed: index, class and hand-drawn flag before and after
  const idx = [];
  for (let i = 0; i < state.mask.length; i++) {
    if (state.mask[i] !== edit.before[i] || state.drawn[i] !== edit.drawnBefore[i]) idx.push(i);
  }
  if (!idx.length) return;
  const n = idx.length;
  const op = { idx: Uint32Array.from(idx), before: new Uint8Array(n), after: new Uint8Array(n),
    dBefore: new Uint8Array(n), dAfter: new Uint8Array(n) };
  for (let k = 0; k < n; k++) {
    const i = idx[k];
    op.before[k] = edit.before[i]; op.after[k] = state.mask[i];
    op.dBefore[k] = edit.drawnBefore[i]; op.dAfter[k] = state.drawn[i];
  }
  state.undo.push(op);
  state.redo = [];
  markDirty();
}

function applyOp(op, forward) {
  const cls = forward ? op.after : op.before, dr = forward ? op.dAfter : op.dBefore;
  let x0 = state.W, y0 = state.H, x1 = 0, y1 = 0;
  for (let k = 0; k < op.idx.length; k++) {
    const i = op.idx[k];
    state.mask[i] = cls[k]; state.drawn[i] = dr[k];
    const x = i % state.W, y = (i - x) / state.W;
    if (x < x0) x0 = x; if (x >= x1) x1 = x + 1; if (y < y0) y0 = y; if (y >= y1) y1 = y + 1;
  }
  paintRect(x0, y0, x1, y1);
  markDirty();
}

function undo() {
  const op = state.undo.pop();
  if (!op) { setStatus("nothing to undo"); return; }
  applyOp(op, false); state.redo.push(op); setStatus("undone (" + state.undo.length + " left)");
}

function redo() {
  const op = state.redo.pop();
  if (!op) { setStatus("nothing to redo"); return; }
  applyOp(op, true); state.undo.push(op); setStatus("redone");
}

function markDirty() { state.dirty = true; state.leaveArmed = false; }

function stamp(cx, cy) {
  const r = state.radius, r2 = r * r, W = state.W;
  const x0 = Math.max(0, Math.floor(cx - r)), x1 = Math.min(W - 1, Math.ceil(cx + r));
  const y0 = Math.max(0, Math.floor(cy - r)), y1 = Math.min(state.H - 1, Math.ceil(cy + r));
  for (let y = y0; y <= y1; y++) {
    for (let x = x0; x <= x1; x++) {
      const dx = x + 0.5 - cx, dy = y + 0.5 - cy;
      if (dx * dx + dy * dy <= r2) { state.mask[y * W + x] = state.cls; state.drawn[y * W + x] = 1; }
    }
  }
  paintRect(x0, y0, x1 + 1, y1 + 1);
}

function strokeTo(x, y) {
  const [lx, ly] = state.stroke.last;
  const steps = Math.max(1, Math.ceil(Math.hypot(x - lx, y - ly) / Math.max(1, state.radius / 2)));
  for (let k = 1; k <= steps; k++) stamp(lx + ((x - lx) * k) / steps, ly + ((y - ly) * k) / steps);
  state.stroke.last = [x, y];
}

function fillPolygon() {
  const pts = state.polygon;
  if (pts.length < 3) { setStatus("a polygon needs 3 vertices"); return; }
  const xs = pts.map((p) => p[0]), ys = pts.map((p) => p[1]);
  const x0 = Math.max(0, Math.floor(Math.min(...xs))), y0 = Math.max(0, Math.floor(Math.min(...ys)));
  const x1 = Math.min(state.W, Math.ceil(Math.max(...xs)) + 1), y1 = Math.min(state.H, Math.ceil(Math.max(...ys)) + 1);
  const off = document.createElement("canvas");
  off.width = Math.max(1, x1 - x0); off.height = Math.max(1, y1 - y0);
  const ctx = off.getContext("2d");
  ctx.fillStyle = "#fff";
  ctx.beginPath();
  // pixel (x, y) is covered when its centre (x + 0.5, y + 0.5) is inside the polygon
  pts.forEach(([x, y], k) => (k ? ctx.lineTo(x - x0, y - y0) : ctx.moveTo(x - x0, y - y0)));
  ctx.closePath();
  ctx.fill();
  const a = ctx.getImageData(0, 0, off.width, off.height).data;
  const edit = beginEdit();
  for (let y = y0; y < y1; y++) {
    for (let x = x0; x < x1; x++) {
      if (a[4 * ((y - y0) * off.width + (x - x0)) + 3] >= 128) {
        state.mask[y * state.W + x] = state.cls; state.drawn[y * state.W + x] = 1;
      }
    }
  }
  paintRect(x0, y0, x1, y1);
  endEdit(edit);
  state.polygon = [];
  drawDraft(null);
  setStatus("polygon filled with " + NAMES[state.cls]);
}

// ---- server -----------------------------------------------------------------------------

async function api(path, options) {
  const r = await fetch(path, options);
  if (!r.ok) {
    let msg = r.status + " " + r.statusText;
    try { msg = (await r.json()).error || msg; } catch (e) { /* not JSON */ }
    throw new Error(msg);
  }
  return r;
}

async function loadImage(index) {
  state.busy = true;
  setStatus("loading…", "loading");
  state.index = index;
  const info = state.images[index];
  $("name").textContent = info.name;
  $("counter").textContent = "(" + (index + 1) + " / " + state.images.length + (info.labelled ? ", labelled" : "") + ")";
  const r = await api("/api/images/" + index + "/mask");
  const W = +r.headers.get("X-Width"), H = +r.headers.get("X-Height");
  const bytes = new Uint8Array(await r.arrayBuffer());
  const photo = $("photo");
  await new Promise((resolve, reject) => {
    photo.onload = resolve;
    photo.onerror = () => reject(new Error("cannot show " + info.name));
    photo.src = "/api/images/" + index + "/image";
  });
  Object.assign(state, { W, H, mask: bytes, drawn: new Uint8Array(W * H), undo: [], redo: [],
    dirty: false, leaveArmed: false, polygon: [], stroke: null });
  for (const id of ["overlay", "draft"]) { $(id).width = W; $(id).height = H; }
  state.overlay = $("overlay").getContext("2d").createImageData(W, H);
  paintAll();
  fit();
  $("source").textContent = "start: " + r.headers.get("X-Mask-Source");
  state.busy = false;
  setStatus("ready", "ready");
}

async function save() {
  if (state.busy) return;
  state.busy = true;
  setStatus("saving…", "busy");
  const r = await api("/api/images/" + state.index + "/save", { method: "POST", body: state.mask });
  const out = await r.json();
  state.images[state.index].labelled = true;
  state.dirty = false;
  state.busy = false;
  setStatus("saved " + out.mask + " (water " + (100 * out.fractions.water).toFixed(1) + " %)", "saved");
}

async function grabcut() {
  if (state.busy) return;
  state.busy = true;
  setStatus("GrabCut…", "busy");
  const body = new Uint8Array(2 * state.mask.length);
  body.set(state.mask, 0); body.set(state.drawn, state.mask.length);
  const r = await api("/api/images/" + state.index + "/grabcut", { method: "POST", body });
  const result = new Uint8Array(await r.arrayBuffer());
  const edit = beginEdit();
  state.mask.set(result);
  endEdit(edit);
  paintAll();
  state.busy = false;
  setStatus("GrabCut applied (undo with Ctrl+Z)", "ready");
}

function go(step) {
  const next = state.index + step;
  if (next < 0 || next >= state.images.length || state.busy) return;
  if (state.dirty && !state.leaveArmed) {
    state.leaveArmed = true;
    setStatus("unsaved changes: Ctrl+S saves, the same key again leaves without saving");
    return;
  }
  loadImage(next).catch(fail);
}

// ---- view -------------------------------------------------------------------------------

function setZoom(z) {
  state.zoom = Math.min(8, Math.max(0.05, z));
  const stack = $("stack");
  stack.style.width = state.W * state.zoom + "px";
  stack.style.height = state.H * state.zoom + "px";
}

function fit() { setZoom(($("viewport").clientWidth - 4) / state.W); }

function imagePoint(e) {
  const r = $("draft").getBoundingClientRect();
  return [((e.clientX - r.left) * state.W) / r.width, ((e.clientY - r.top) * state.H) / r.height];
}

function selectTool(tool) {
  state.tool = tool;
  state.polygon = [];
  drawDraft(null);
  document.querySelectorAll("[data-tool]").forEach((b) => b.classList.toggle("active", b.dataset.tool === tool));
}

function selectClass(cls) {
  state.cls = cls;
  document.querySelectorAll("[data-class]").forEach((b) => b.classList.toggle("active", +b.dataset.class === cls));
}

function setRadius(r) { state.radius = Math.max(1, Math.min(400, Math.round(r))); $("size").textContent = state.radius; }

// ---- events -----------------------------------------------------------------------------

function wire() {
  const draft = $("draft");
  draft.addEventListener("mousedown", (e) => {
    if (e.button !== 0 || state.busy || !state.mask) return;
    const p = imagePoint(e);
    if (state.tool === "brush") {
      state.stroke = Object.assign(beginEdit(), { last: p });
      stamp(p[0], p[1]);
    } else {
      state.polygon.push(p);
      drawDraft(p);
    }
  });
  draft.addEventListener("mousemove", (e) => {
    if (!state.mask) return;
    const p = imagePoint(e);
    if (state.stroke) strokeTo(p[0], p[1]);
    drawDraft(p);
  });
  window.addEventListener("mouseup", () => {
    if (!state.stroke) return;
    const edit = state.stroke;
    state.stroke = null;
    endEdit(edit);
    setStatus("brush: " + NAMES[state.cls]);
  });
  document.querySelectorAll("[data-tool]").forEach((b) => b.addEventListener("click", () => selectTool(b.dataset.tool)));
  document.querySelectorAll("[data-class]").forEach((b) => b.addEventListener("click", () => selectClass(+b.dataset.class)));
  $("undo").addEventListener("click", undo);
  $("redo").addEventListener("click", redo);
  $("save").addEventListener("click", () => save().catch(fail));
  $("grabcut").addEventListener("click", () => grabcut().catch(fail));
  $("prev").addEventListener("click", () => go(-1));
  $("next").addEventListener("click", () => go(1));
  window.addEventListener("resize", () => state.W && fit());
  document.addEventListener("keydown", (e) => {
    const k = e.key, ctrl = e.ctrlKey || e.metaKey;
    let handled = true;
    if (ctrl && (k === "z" || k === "Z")) (e.shiftKey ? redo : undo)();
    else if (ctrl && (k === "y" || k === "Y")) redo();
    else if (ctrl && (k === "s" || k === "S")) save().catch(fail);
    else if (ctrl || e.altKey) handled = false;
    else if (k === "w" || k === "W") selectClass(1);
    else if (k === "l" || k === "L") selectClass(0);
    else if (k === "s" || k === "S") selectClass(2);
    else if (k === "i" || k === "I") selectClass(255);
    else if (k === "b" || k === "B") selectTool("brush");
    else if (k === "p" || k === "P") selectTool("polygon");
    else if (k === "g" || k === "G") grabcut().catch(fail);
    else if (k === "o" || k === "O") $("overlay").style.visibility = $("overlay").style.visibility === "hidden" ? "" : "hidden";
    else if (k === "[") setRadius(state.radius / 1.25);
    else if (k === "]") setRadius(state.radius * 1.25);
    else if (k === "Enter") fillPolygon();
    else if (k === "Escape") { state.polygon = []; drawDraft(null); setStatus("polygon cancelled"); }
    else if (k === "ArrowRight") go(1);
    else if (k === "ArrowLeft") go(-1);
    else if (k === "+" || k === "=") setZoom(state.zoom * 1.25);
    else if (k === "-") setZoom(state.zoom / 1.25);
    else if (k === "0") fit();
    else handled = false;
    if (handled) e.preventDefault();
  });
}

async function main() {
  wire();
  selectTool("brush");
  selectClass(1);
  setRadius(state.radius);
  const info = await (await api("/api/images")).json();
  state.images = info.images;
  document.title = "GeoEdge label: " + info.labeller;
  if (!state.images.length) { setStatus("no images", "error"); return; }
  await loadImage(0);
}

main().catch(fail);
