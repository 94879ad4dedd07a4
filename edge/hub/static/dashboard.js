// GeoEdge control-room dashboard: plain JavaScript, no build step, no CDN.
//
// Data (JSON from this hub, WGS84 degrees): /api/map (stations, latest waterline and datum
// shoreline per station, cavities, tile URL), /api/stations (health), /api/shoreline (chart),
// /api/images/... (TimeX, overlays, snippets). The map is an SVG in Web Mercator (EPSG:3857):
// XYZ raster tiles under the data when the hub's [hub] tile_url is set, else a lon/lat grid.
"use strict";

const SVG = "http://www.w3.org/2000/svg";
const R = 6378137; // Web Mercator sphere radius, m
const TILE = 256; // px
const REFRESH_MS = 10000;
const CLASS_COLOURS = { cavity: "#d62728", pipe: "#1f77b4", rebar: "#7f7f7f", void: "#9467bd" };
const OTHER_COLOURS = ["#2ca02c", "#ff7f0e", "#8c564b", "#e377c2", "#17becf", "#bcbd22"];

const state = {
  map: null, // the last /api/map
  view: null, // {x, y, scale}: centre (Mercator m) and px per m
  selected: null, // {kind, id}
  classColours: {},
};

// -- helpers ---------------------------------------------------------------------------------

function el(name, attrs, parent) {
  const node = document.createElementNS(SVG, name);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
  if (parent) parent.appendChild(node);
  return node;
}

function html(name, attrs, text, parent) {
  const node = document.createElement(name);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
  if (text !== undefined && text !== null) node.textContent = text;
  if (parent) parent.appendChild(node);
  return node;
}

async function getJSON(url) {
  const response = await fetch(url, { headers: { Accept: "application/json" } });
  if (!response.ok) throw new Error(`${url}: HTTP ${response.status}`);
  return response.json();
}

function mercator(lon, lat) {
  const clamped = Math.max(-85.05112878, Math.min(85.05112878, lat));
  return [(R * lon * Math.PI) / 180, R * Math.log(Math.tan(Math.PI / 4 + (clamped * Math.PI) / 360))];
}

function lonLat(x, y) {
  return [(x / R) * (180 / Math.PI), (2 * Math.atan(Math.exp(y / R)) - Math.PI / 2) * (180 / Math.PI)];
}

function colourOf(cls) {
  if (CLASS_COLOURS[cls]) return CLASS_COLOURS[cls];
  if (!state.classColours[cls]) {
    const n = Object.keys(state.classColours).length;
    state.classColours[cls] = OTHER_COLOURS[n % OTHER_COLOURS.length];
  }
  return state.classColours[cls];
}

function niceStep(span) {
  const raw = span / 6;
  const p = Math.pow(10, Math.floor(Math.log10(raw)));
  for (const m of [1, 2, 5, 10]) if (m * p >= raw) return m * p;
  return 10 * p;
}

function fmtBytes(n) {
  if (n === null || n === undefined) return "–";
  const units = ["B", "KB", "MB", "GB", "TB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i += 1; }
  return `${n.toFixed(i ? 1 : 0)} ${units[i]}`;
}

function fmtTime(iso) {
  return iso ? iso.replace("T", " ").replace(/\.\d+Z$|Z$/, " UTC") : "–";
}

// -- map -------------------------------------------------------------------------------------

function mapSize() {
  const svg = document.getElementById("map");
  const box = svg.getBoundingClientRect();
  return [Math.max(box.width, 100), Math.max(box.height, 100)];
}

function allPoints(m) {
  const pts = [];
  for (const s of m.stations) if (s.lon !== null && s.lat !== null) pts.push([s.lon, s.lat]);
  for (const w of m.waterlines) pts.push(...w.line);
  for (const w of m.shorelines) pts.push(...w.line);
  for (const c of m.cavities) if (c.lon !== null && c.lat !== null) pts.push([c.lon, c.lat]);
  return pts;
}

function fitView(m) {
  const pts = allPoints(m).map(([lon, lat]) => mercator(lon, lat));
  const [w, h] = mapSize();
  if (!pts.length) return { x: 0, y: 0, scale: w / (2 * Math.PI * R) };
  const xs = pts.map((p) => p[0]);
  const ys = pts.map((p) => p[1]);
  const spanX = Math.max(Math.max(...xs) - Math.min(...xs), 50);
  const spanY = Math.max(Math.max(...ys) - Math.min(...ys), 50);
  return {
    x: (Math.max(...xs) + Math.min(...xs)) / 2,
    y: (Math.max(...ys) + Math.min(...ys)) / 2,
    scale: 0.85 * Math.min(w / spanX, h / spanY),
  };
}

function toScreen(lon, lat) {
  const [x, y] = mercator(lon, lat);
  const [w, h] = mapSize();
  return [w / 2 + (x - state.view.x) * state.view.scale, h / 2 - (y - state.view.y) * state.view.scale];
}

function drawTiles(layer, url) {
  const [w, h] = mapSize();
  const world = 2 * Math.PI * R;
  const z = Math.max(0, Math.min(19, Math.round(Math.log2((state.view.scale * world) / TILE))));
  const n = Math.pow(2, z);
  const tileM = world / n; // tile size, m
  const left = state.view.x - w / 2 / state.view.scale;
  const top = state.view.y + h / 2 / state.view.scale;
  const x0 = Math.floor((left + world / 2) / tileM);
  const y0 = Math.floor((world / 2 - top) / tileM);
  const x1 = Math.floor((left + w / state.view.scale + world / 2) / tileM);
  const y1 = Math.floor((world / 2 - (top - h / state.view.scale)) / tileM);
  const px = tileM * state.view.scale;
  for (let ty = Math.max(0, y0); ty <= Math.min(n - 1, y1); ty += 1) {
    for (let tx = x0; tx <= x1; tx += 1) {
      const wrapped = ((tx % n) + n) % n;
      const href = url.replace("{z}", z).replace("{x}", wrapped).replace("{y}", ty);
      const mx = tx * tileM - world / 2;
      const my = world / 2 - ty * tileM;
      el("image", {
        href,
        x: w / 2 + (mx - state.view.x) * state.view.scale,
        y: h / 2 - (my - state.view.y) * state.view.scale,
        width: px + 0.5,
        height: px + 0.5,
        preserveAspectRatio: "none",
      }, layer);
    }
  }
}

function drawGrid(layer) {
  const [w, h] = mapSize();
  const [lon0, lat0] = lonLat(state.view.x - w / 2 / state.view.scale, state.view.y - h / 2 / state.view.scale);
  const [lon1, lat1] = lonLat(state.view.x + w / 2 / state.view.scale, state.view.y + h / 2 / state.view.scale);
  const step = niceStep(Math.max(lon1 - lon0, lat1 - lat0));
  const digits = Math.max(0, -Math.floor(Math.log10(step)));
  const g = el("g", { class: "grid" }, layer);
  for (let lon = Math.ceil(lon0 / step) * step; lon <= lon1; lon += step) {
    const [sx] = toScreen(lon, lat0);
    el("line", { x1: sx, y1: 0, x2: sx, y2: h }, g);
    el("text", { x: sx + 2, y: h - 4 }, g).textContent = `${lon.toFixed(digits)}°`;
  }
  for (let lat = Math.ceil(lat0 / step) * step; lat <= lat1; lat += step) {
    const [, sy] = toScreen(lon0, lat);
    el("line", { x1: 0, y1: sy, x2: w, y2: sy }, g);
    el("text", { x: 2, y: sy - 2 }, g).textContent = `${lat.toFixed(digits)}°`;
  }
}

function pathOf(line) {
  return line.map(([lon, lat], i) => `${i ? "L" : "M"}${toScreen(lon, lat).map((v) => v.toFixed(1)).join(",")}`).join("");
}

function isSelected(kind, id) {
  return state.selected && state.selected.kind === kind && state.selected.id === id;
}

function drawMap() {
  const m = state.map;
  const svg = document.getElementById("map");
  svg.replaceChildren();
  if (!m) return;
  const base = el("g", { class: "basemap" }, svg);
  if (m.tile_url) drawTiles(base, m.tile_url);
  else drawGrid(base);
  document.getElementById("map-note").textContent = m.tile_url ? "" : "(grid: no tile URL set)";
  const data = el("g", {}, svg);
  for (const s of m.shorelines) {
    const p = el("path", { d: pathOf(s.line), class: "shoreline", "data-id": s.id }, data);
    if (isSelected("shoreline", s.id)) p.classList.add("selected");
    p.addEventListener("click", () => select("shoreline", s.id));
  }
  for (const wl of m.waterlines) {
    const p = el("path", { d: pathOf(wl.line), class: "waterline", "data-id": wl.id }, data);
    if (isSelected("waterline", wl.id)) p.classList.add("selected");
    p.addEventListener("click", () => select("waterline", wl.id));
  }
  // Stations over the lines (a station sits on its waterline), cavities over the stations
  // (a GPR unit sits among its cavities): each stays clickable, a station also by its label.
  for (const s of m.stations) {
    if (s.lon === null || s.lat === null) continue;
    const [sx, sy] = toScreen(s.lon, s.lat);
    const g = el("g", { class: "station", "data-station": s.station }, data);
    const dot = el("circle", { cx: sx, cy: sy, r: 8 }, g);
    if (isSelected("station", s.station)) dot.classList.add("selected");
    el("text", { x: sx + 11, y: sy + 4 }, g).textContent = s.station;
    g.addEventListener("click", () => select("station", s.station));
  }
  for (const c of m.cavities) {
    if (c.lon === null || c.lat === null) continue;
    const [sx, sy] = toScreen(c.lon, c.lat);
    const dot = el("circle", {
      cx: sx, cy: sy, r: 7, class: "cavity", fill: colourOf(c.class), "data-id": c.id,
    }, data);
    el("title", {}, dot).textContent = `${c.class} ${c.station} ${fmtTime(c.time)}`;
    if (isSelected("cavity", c.id)) dot.classList.add("selected");
    dot.addEventListener("click", () => select("cavity", c.id));
  }
  drawLegend(m);
}

function drawLegend(m) {
  const legend = document.getElementById("legend");
  legend.replaceChildren();
  const item = (colour, text, line) => {
    const span = html("span", {}, null, legend);
    const mark = html("i", {}, null, span);
    mark.style.background = colour;
    if (line) { mark.style.height = "3px"; mark.style.borderRadius = "0"; mark.style.verticalAlign = "3px"; }
    span.append(text);
  };
  item("#16324f", "station");
  item("#1f6fd1", "latest waterline", true);
  item("#d17a1f", "datum shoreline", true);
  for (const cls of [...new Set(m.cavities.map((c) => c.class))].sort()) item(colourOf(cls), cls);
  // Cavities from a unit without GNSS have no place on the map: list them, still clickable.
  const unplaced = m.cavities.filter((c) => c.lon === null || c.lat === null);
  if (unplaced.length) {
    const line = html("div", { id: "unplaced" }, `${unplaced.length} cavit${unplaced.length > 1 ? "ies" : "y"} without a position: `, legend);
    for (const c of unplaced.slice(0, 50)) {
      const button = html("button", { type: "button", "data-id": c.id }, `${c.class} ${c.station} ${fmtTime(c.time)}`, line);
      button.style.borderColor = colourOf(c.class);
      button.addEventListener("click", () => select("cavity", c.id));
    }
  }
}

function enablePanZoom() {
  const svg = document.getElementById("map");
  let drag = null;
  svg.addEventListener("mousedown", (e) => { drag = [e.clientX, e.clientY]; });
  window.addEventListener("mouseup", () => { drag = null; });
  window.addEventListener("mousemove", (e) => {
    if (!drag || !state.view) return;
    state.view.x -= (e.clientX - drag[0]) / state.view.scale;
    state.view.y += (e.clientY - drag[1]) / state.view.scale;
    drag = [e.clientX, e.clientY];
    drawMap();
  });
  svg.addEventListener("wheel", (e) => {
    if (!state.view) return;
    e.preventDefault();
    state.view.scale *= e.deltaY < 0 ? 1.25 : 0.8;
    drawMap();
  }, { passive: false });
  svg.addEventListener("dblclick", () => { state.view = fitView(state.map); drawMap(); });
}

// -- selection and images --------------------------------------------------------------------

function figure(image, caption, parent) {
  const fig = html("figure", {}, null, parent);
  html("img", {
    src: image.url, alt: caption, width: image.width, height: image.height,
    "data-kind": image.kind,
  }, null, fig);
  html("figcaption", {}, `${caption} · ${image.width}×${image.height} px · ${fmtTime(image.time)}`, fig);
}

async function showImages(urls, box) {
  let shown = 0;
  for (const [url, caption] of urls) {
    try {
      const found = await getJSON(url);
      for (const image of found.images) {
        figure(image, `${caption}${image.view ? ` (${image.view})` : ""}`, box);
        shown += 1;
      }
    } catch (err) {
      console.warn(String(err));
    }
  }
  if (!shown) html("p", { class: "muted" }, "no image received for this item", box);
}

function fields(rows) {
  const table = document.getElementById("detail-fields");
  table.replaceChildren();
  for (const [k, v] of rows) {
    if (v === undefined) continue;
    const tr = html("tr", {}, null, table);
    html("td", {}, k, tr);
    html("td", {}, v === null ? "–" : String(v), tr);
  }
}

async function select(kind, id) {
  state.selected = { kind, id };
  drawMap();
  const m = state.map;
  const title = document.getElementById("detail-title");
  const box = document.getElementById("detail-images");
  box.replaceChildren();
  const q = encodeURIComponent;
  if (kind === "cavity") {
    const c = m.cavities.find((x) => x.id === id);
    if (!c) return; // gone from the map since the click (only the newest are kept)
    title.textContent = `cavity ${id}`;
    fields([["station", c.station], ["time", fmtTime(c.time)], ["class", c.class],
      ["confidence", c.confidence], ["depth to top, m", c.depth_top_m], ["width, m", c.width_m],
      ["lon, lat", c.lon === null || c.lat === null ? null : `${c.lon.toFixed(6)}, ${c.lat.toFixed(6)}`]]);
    await showImages([[`/api/images?message=${q(id)}`, "B-scan snippet"]], box);
  } else if (kind === "waterline" || kind === "shoreline") {
    const line = (kind === "waterline" ? m.waterlines : m.shorelines).find((x) => x.id === id);
    if (!line) return; // replaced by a newer one since the click
    title.textContent = `${kind} ${line.station}`;
    fields([["station", line.station], ["time", fmtTime(line.time)], ["points", line.line.length]]);
    const source = kind === "waterline" ? id : line.waterline_id;
    await showImages(source ? [[`/api/images?message=${q(source)}`, "waterline overlay"]] : [], box);
  } else {
    title.textContent = `station ${id}`;
    fields([["station", id]]);
    await showImages([
      [`/api/images/latest?station=${q(id)}&kind=timex`, "latest TimeX"],
      [`/api/images/latest?station=${q(id)}&kind=overlay`, "latest overlay"],
      [`/api/images/latest?station=${q(id)}&kind=snippet`, "latest cavity snippet"],
    ], box);
  }
}

// -- shoreline chart -------------------------------------------------------------------------

// The station's transects come with the series (/api/shoreline?station=S: every transect with
// its points, oldest first, and the least-squares trend in m/yr with its standard error).
async function drawChart() {
  const station = document.getElementById("chart-station").value;
  const transectSel = document.getElementById("chart-transect");
  const svg = document.getElementById("chart");
  const trendText = document.getElementById("chart-trend");
  if (!station) { svg.replaceChildren(); return; }
  const data = await getJSON(`/api/shoreline?station=${encodeURIComponent(station)}`);
  const ids = data.transects.map((t) => t.id);
  const keep = transectSel.value;
  transectSel.replaceChildren(...ids.map((t) => html("option", { value: t }, t)));
  if (ids.includes(keep)) transectSel.value = keep;
  svg.replaceChildren();
  trendText.textContent = "";
  const series = data.transects.find((t) => t.id === transectSel.value);
  if (!series) {
    el("text", { x: 48, y: 40 }, svg).textContent = "no shoreline from this station yet";
    return;
  }
  const pts = series.points.map((p) => [Date.parse(p.time), p.distance_m]);
  const box = svg.getBoundingClientRect();
  const [w, h] = [Math.max(box.width, 200), Math.max(box.height, 120)];
  const pad = { l: 48, r: 12, t: 10, b: 24 };
  if (!pts.length) {
    el("text", { x: pad.l, y: h / 2, class: "muted" }, svg).textContent = "no shoreline points";
    return;
  }
  const ts = pts.map((p) => p[0]);
  const ds = pts.map((p) => p[1]);
  let [t0, t1] = [Math.min(...ts), Math.max(...ts)];
  let [d0, d1] = [Math.min(...ds), Math.max(...ds)];
  if (t1 - t0 < 1000) { t0 -= 3600e3; t1 += 3600e3; }
  if (d1 - d0 < 0.5) { d0 -= 0.5; d1 += 0.5; }
  const padD = (d1 - d0) * 0.08;
  d0 -= padD; d1 += padD;
  const sx = (t) => pad.l + ((t - t0) / (t1 - t0)) * (w - pad.l - pad.r);
  const sy = (d) => h - pad.b - ((d - d0) / (d1 - d0)) * (h - pad.t - pad.b);
  const axis = el("g", { class: "axis" }, svg);
  el("line", { x1: pad.l, y1: h - pad.b, x2: w - pad.r, y2: h - pad.b }, axis);
  el("line", { x1: pad.l, y1: pad.t, x2: pad.l, y2: h - pad.b }, axis);
  const step = niceStep(d1 - d0);
  for (let d = Math.ceil(d0 / step) * step; d <= d1; d += step) {
    el("text", { x: pad.l - 4, y: sy(d) + 3, "text-anchor": "end" }, axis).textContent = d.toFixed(step < 1 ? 1 : 0);
  }
  el("text", { x: 4, y: pad.t + 8 }, axis).textContent = "m";
  for (const [t, anchor] of [[t0, "start"], [(t0 + t1) / 2, "middle"], [t1, "end"]]) {
    el("text", { x: sx(t), y: h - 6, "text-anchor": anchor }, axis).textContent = new Date(t).toISOString().slice(0, 10);
  }
  const rate = series.rate_m_per_yr;
  if (rate !== null && rate !== undefined) {
    // A least-squares line passes through the means of its points.
    const year = 365.25 * 86400e3;
    const tm = ts.reduce((a, b) => a + b, 0) / ts.length;
    const dm = ds.reduce((a, b) => a + b, 0) / ds.length;
    const at = (t) => dm + (rate * (t - tm)) / year;
    el("line", { class: "trend", x1: sx(t0), y1: sy(at(t0)), x2: sx(t1), y2: sy(at(t1)) }, svg);
    const se = series.stderr_m_per_yr;
    trendText.textContent = `trend ${rate.toFixed(2)}${se === null || se === undefined ? "" : ` ± ${se.toFixed(2)}`} m/yr (n = ${pts.length})`;
  } else {
    trendText.textContent = `n = ${pts.length}`;
  }
  for (const [t, d] of pts) el("circle", { class: "pt", cx: sx(t), cy: sy(d), r: 3.5 }, svg);
}

function fillStationSelector() {
  const stationSel = document.getElementById("chart-station");
  const beach = new Set(state.map.waterlines.map((w) => w.station));
  const stations = state.map.stations.map((s) => s.station).sort((a, b) => beach.has(b) - beach.has(a) || a.localeCompare(b));
  const keep = stationSel.value;
  stationSel.replaceChildren(...stations.map((s) => html("option", { value: s }, s)));
  if (stations.includes(keep)) stationSel.value = keep;
}

// -- health table ----------------------------------------------------------------------------

async function drawHealth() {
  const data = await getJSON("/api/stations");
  const body = document.querySelector("#health tbody");
  body.replaceChildren();
  for (const s of data.stations) {
    const st = s.stats || {};
    const tr = html("tr", { class: s.online ? "online" : "offline", "data-station": s.station }, null, body);
    html("td", {}, s.station, tr);
    html("td", { class: s.online ? "good" : "bad" }, s.online ? "online" : (s.state || "unknown"), tr);
    html("td", { class: s.stale ? "bad" : "good" }, s.stale ? "stale" : "fresh", tr);
    html("td", {}, fmtTime(s.last_seen), tr);
    html("td", {}, st.queue_depth === undefined ? "–" : `${st.queue_depth} queued`, tr);
    const disk = st.disk_free_bytes || {};
    html("td", {}, disk.outbox === undefined ? "–" : `${fmtBytes(disk.outbox)} (products ${fmtBytes(disk.products)})`, tr);
    html("td", {}, st.temperature_c === undefined || st.temperature_c === null ? "–" : `${st.temperature_c.toFixed(1)} °C`, tr);
    html("td", { class: st.stalled ? "bad" : "" }, st.stalled || "–", tr);
  }
}

// -- refresh ---------------------------------------------------------------------------------

async function refresh() {
  try {
    const first = state.map === null;
    state.map = await getJSON("/api/map");
    if (first || !state.view) state.view = fitView(state.map);
    drawMap();
    fillStationSelector();
    await Promise.all([drawChart(), drawHealth()]);
    document.getElementById("updated").textContent = `updated ${new Date().toISOString().slice(11, 19)} UTC`;
  } catch (err) {
    document.getElementById("updated").textContent = `cannot reach the hub: ${err.message}`;
  }
}

document.getElementById("chart-station").addEventListener("change", () => drawChart());
document.getElementById("chart-transect").addEventListener("change", () => drawChart());
window.addEventListener("resize", () => { if (state.map) drawMap(); });
enablePanZoom();
refresh();
setInterval(refresh, REFRESH_MS);
