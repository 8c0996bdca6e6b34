// The dispatcher's page: waves of a day, the selected wave's plan on a map and a timeline,
// moves, locks, re-plans and publication, refreshed while vans move. No build step, no
// dependencies: it must load on a laptop with no internet.
"use strict";

const config = JSON.parse(document.body.dataset.config);
const COLORS = ["#2f6fdb", "#d9480f", "#2b8a3e", "#9c36b5", "#c2255c", "#0b7285", "#e67700",
  "#5c940d", "#364fc7", "#a61e4d", "#087f5b", "#862e9c", "#d6336c", "#1864ab", "#5f3dc4"];
const state = { key: null, waves: [], wave: null, plan: null, selected: null, version: null };
const $ = (id) => document.getElementById(id);

function keyFromPage() {
  const fromHash = new URLSearchParams(location.hash.slice(1)).get("key");
  if (fromHash) {
    sessionStorage.setItem("fulfill-key", fromHash);
    history.replaceState(null, "", location.pathname + location.search);
  }
  return sessionStorage.getItem("fulfill-key");
}

async function api(method, path, body) {
  const response = await fetch(path, {
    method,
    headers: { "Authorization": `Bearer ${state.key}`, "Content-Type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const data = response.status === 204 ? null : await response.json();
  if (response.status === 401) { askForKey(); }
  if (!response.ok) { const error = new Error(data.detail || data.title); error.problem = data; throw error; }
  return data;
}

function say(text, kind = "") { $("message").textContent = text; $("message").className = kind; }
// Local times of the node, with the offset the server computed: the browser's own time zone
// database may differ from the server's, and the dispatcher must see what customers were told.
const offsetOf = () => (state.plan || state.wave || { utc_offset_min: 0 }).utc_offset_min;
const fmtTime = (iso, offset = offsetOf()) => iso ? new Date(Date.parse(iso) + offset * 60000).toISOString().slice(11, 16) : "–";
const esc = (text) => String(text ?? "").replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
const colorOf = (index) => COLORS[index % COLORS.length];

// Waves.

async function loadWaves() {
  const day = $("day").value;
  state.waves = await api("GET", `/v1/waves?date=${day}`);
  const list = $("waves");
  list.replaceChildren();
  if (!state.waves.length) { list.innerHTML = '<p class="muted">No waves this day.</p>'; }
  for (const wave of state.waves) {
    const item = document.createElement("div");
    item.className = "wave" + (state.wave && state.wave.id === wave.id ? " selected" : "");
    item.dataset.wave = wave.id;
    const plan = wave.latest_plan;
    item.innerHTML = `<b>${esc(wave.node)}</b> · cutoff ${fmtTime(wave.cutoff_at, wave.utc_offset_min)}
      <span class="badge ${wave.status}">${wave.status}</span><br>
      <small>${wave.fulfillments} deliveries${plan ? ` · plan v${plan.version} ${plan.status}, ${plan.distance_km.toFixed(1)} km, ${plan.unassigned} unassigned` : " · no plan yet"}${wave.planning ? " · planning…" : ""}</small>`;
    item.addEventListener("click", () => selectWave(wave.id));
    list.append(item);
  }
  if (!state.wave && state.waves.length) { await selectWave(state.waves[0].id); }
}

async function selectWave(waveId) {
  state.wave = state.waves.find((w) => w.id === waveId) || (await api("GET", `/v1/waves/${waveId}`));
  state.selected = null;
  for (const item of document.querySelectorAll(".wave")) {
    item.classList.toggle("selected", Number(item.dataset.wave) === waveId);
  }
  await loadPlan();
}

async function loadPlan() {
  if (!state.wave) { return; }
  try {
    state.plan = await api("GET", `/v1/waves/${state.wave.id}/plan`);
  } catch (error) {
    state.plan = null;
    say(state.wave.planning ? "Planning…" : "This wave has no plan yet: plan it now.", "warn");
  }
  render();
}

// Drawing.

function render() {
  renderFigures();
  renderMap();
  renderTimeline();
  renderUnassigned();
  renderStop();
  $("publish").disabled = !state.plan || state.plan.status !== "draft";
  $("replan").disabled = !state.wave;
}

function renderFigures() {
  const plan = state.plan;
  const figures = $("figures");
  if (!plan) { figures.replaceChildren(); return; }
  const items = [
    ["Plan", `v${plan.version} · ${plan.status}`], ["Stops", plan.stops], ["Vans", plan.vans_used],
    ["Distance", `${plan.distance_km.toFixed(1)} km`], ["Driving + service", `${plan.duration_h.toFixed(1)} h`],
    ["Cost", plan.cost.toFixed(2)], ["Unassigned", plan.unassigned],
    ["Late", plan.routes.reduce((n, r) => n + r.stops.filter((s) => s.late).length, 0)],
    ["Engine", `${plan.engine} · ${plan.solve_seconds.toFixed(1)} s`],
  ];
  figures.innerHTML = items.map(([k, v]) => `<div><small class="muted">${k}</small><b data-figure="${k}">${v}</b></div>`).join("");
  if (plan.warnings.length && state.warnedFor !== plan.id) { state.warnedFor = plan.id; say(plan.warnings.join("; "), "warn"); }
}

function projection(points, width, height) {
  // Web Mercator, fitted to the points: the same projection as map tiles, so both line up.
  const x = (lon) => (lon + 180) / 360;
  const y = (lat) => { const s = Math.sin(lat * Math.PI / 180); return 0.5 - Math.log((1 + s) / (1 - s)) / (4 * Math.PI); };
  const xs = points.map((p) => x(p.lon)), ys = points.map((p) => y(p.lat));
  const minX = Math.min(...xs), maxX = Math.max(...xs), minY = Math.min(...ys), maxY = Math.max(...ys);
  const scale = 0.92 * Math.min(width / Math.max(maxX - minX, 1e-9), height / Math.max(maxY - minY, 1e-9));
  const offX = (width - scale * (maxX - minX)) / 2, offY = (height - scale * (maxY - minY)) / 2;
  return { scale, minX, minY, offX, offY,
    at: (p) => [offX + scale * (x(p.lon) - minX), offY + scale * (y(p.lat) - minY)] };
}

function tiles(proj, width, height) {
  if (!config.tile_url) { return ""; }
  const zoom = Math.max(0, Math.min(18, Math.floor(Math.log2(proj.scale / 256))));
  const n = 2 ** zoom, size = proj.scale / n;
  const first = (v, min, off) => Math.floor((min + (0 - off) / proj.scale) * n);
  const parts = [];
  for (let tx = first(0, proj.minX, proj.offX); tx <= Math.floor((proj.minX + (width - proj.offX) / proj.scale) * n); tx++) {
    for (let ty = first(0, proj.minY, proj.offY); ty <= Math.floor((proj.minY + (height - proj.offY) / proj.scale) * n); ty++) {
      const url = config.tile_url.replace("{z}", zoom).replace("{x}", tx).replace("{y}", ty);
      const px = proj.offX + (tx / n - proj.minX) * proj.scale, py = proj.offY + (ty / n - proj.minY) * proj.scale;
      parts.push(`<image href="${url}" x="${px}" y="${py}" width="${size}" height="${size}"/>`);
    }
  }
  return `<g opacity="0.6">${parts.join("")}</g>`;
}

function renderMap() {
  const svg = $("map");
  const plan = state.plan;
  if (!plan) { svg.innerHTML = ""; return; }
  const { width, height } = svg.getBoundingClientRect();
  svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
  const stops = plan.routes.flatMap((r) => r.stops).concat(plan.unassigned_stops);
  const proj = projection([plan.depot, ...stops], width, height);
  const parts = [tiles(proj, width, height)];
  const depot = proj.at(plan.depot);
  plan.routes.forEach((route, i) => {
    const path = [depot, ...route.stops.map((s) => proj.at(s)), depot].map((p) => p.map((v) => v.toFixed(1)).join(",")).join(" ");
    parts.push(`<polyline class="route" data-van="${route.van}" points="${path}" fill="none" stroke="${colorOf(i)}" stroke-width="${route.locked ? 3 : 1.6}" ${route.locked ? 'stroke-dasharray="6 3"' : ""} opacity="0.8"/>`);
  });
  plan.routes.forEach((route, i) => {
    for (const stop of route.stops) {
      const [cx, cy] = proj.at(stop);
      const sel = state.selected === stop.fulfillment ? " sel" : "";
      parts.push(`<circle class="stop${sel}" data-stop="${stop.fulfillment}" cx="${cx.toFixed(1)}" cy="${cy.toFixed(1)}" r="${stop.late ? 5 : 3.5}" fill="${stop.late ? "#b3261e" : colorOf(i)}"><title>${route.van} #${stop.position + 1} · ETA ${fmtTime(stop.eta)} · ${stop.status}</title></circle>`);
    }
    if (route.last_position) {
      const [vx, vy] = proj.at(route.last_position);
      parts.push(`<rect class="van" data-van="${route.van}" x="${vx - 5}" y="${vy - 5}" width="10" height="10" fill="${colorOf(i)}" stroke="#000"><title>${route.van} at ${fmtTime(route.last_position.at)}</title></rect>`);
    }
  });
  for (const stop of plan.unassigned_stops) {
    const [cx, cy] = proj.at(stop);
    parts.push(`<circle class="stop unassigned" data-stop="${stop.fulfillment}" cx="${cx.toFixed(1)}" cy="${cy.toFixed(1)}" r="4"><title>unassigned: ${esc(stop.reason)}</title></circle>`);
  }
  parts.push(`<rect class="depot" x="${depot[0] - 7}" y="${depot[1] - 7}" width="14" height="14" fill="#1d2329"><title>${esc(plan.node)}</title></rect>`);
  svg.innerHTML = parts.join("");
}

function renderTimeline() {
  const plan = state.plan;
  const box = $("timeline");
  if (!plan || !plan.routes.length) { box.replaceChildren(); return; }
  const start = Math.min(...plan.routes.map((r) => Date.parse(r.depart_at)));
  const end = Math.max(...plan.routes.map((r) => Date.parse(r.return_at)), ...plan.routes.flatMap((r) => r.stops.map((s) => Date.parse(s.eta || r.return_at))));
  const pct = (t) => (100 * (Date.parse(t) - start) / Math.max(end - start, 1)).toFixed(2);
  const lanes = plan.routes.map((route, i) => {
    const ticks = route.stops.map((s) => `<span class="tick${s.late ? " late" : ""}" data-stop="${s.fulfillment}" style="left:${pct(s.eta)}%;background:${colorOf(i)}" title="#${s.position + 1} ${fmtTime(s.eta)} (window ${fmtTime(s.window.start)}–${fmtTime(s.window.end)})"></span>`).join("");
    const now = route.last_position ? `<span class="van" style="left:${pct(route.last_position.at)}%"></span>` : "";
    return `<div class="lane" data-van="${route.van}"><span class="name" title="click to lock or unlock">${route.locked ? "🔒 " : ""}${route.van}</span>
      <div class="track"><span class="bar" style="left:${pct(route.depart_at)}%;width:${(pct(route.return_at) - pct(route.depart_at)).toFixed(2)}%;background:${colorOf(i)}"></span>${ticks}${now}</div>
      <small class="muted">${route.stops.length} · ${route.distance_km.toFixed(0)} km</small></div>`;
  });
  box.innerHTML = `<p class="muted">${fmtTime(new Date(start).toISOString())} – ${fmtTime(new Date(end).toISOString())} · click a van's name to lock or unlock its route</p>` + lanes.join("");
}

function renderUnassigned() {
  const plan = state.plan;
  const box = $("unassigned");
  if (!plan || !plan.unassigned_stops.length) { box.textContent = "None."; return; }
  box.innerHTML = `<table><tr><th>Order</th><th>Reason</th></tr>${plan.unassigned_stops.map((s) =>
    `<tr data-stop="${s.fulfillment}"><td>${s.order.slice(0, 8)}</td><td>${esc(s.reason)}</td></tr>`).join("")}</table>`;
}

function findStop(id) {
  for (const route of state.plan.routes) {
    const stop = route.stops.find((s) => s.fulfillment === id);
    if (stop) { return [stop, route]; }
  }
  return [state.plan.unassigned_stops.find((s) => s.fulfillment === id), null];
}

function renderStop(force = false) {
  const box = $("stop");
  // Live refreshes must not wipe a move the dispatcher is filling in.
  const key = `${state.plan && state.plan.id}:${state.selected}`;
  if (!force && key === state.formFor && $("move")) { return; }
  state.formFor = key;
  if (!state.plan || !state.selected) { box.textContent = "Click a stop on the map or the timeline."; return; }
  const [stop, route] = findStop(state.selected);
  if (!stop) { state.selected = null; box.textContent = "Click a stop."; return; }
  const vans = state.plan.routes.map((r) => r.van);
  box.innerHTML = `<table>
    <tr><td>Order</td><td>${stop.order.slice(0, 8)}</td></tr>
    <tr><td>Van</td><td>${route ? `${route.van} #${stop.position + 1}` : "unassigned"}</td></tr>
    <tr><td>Window</td><td>${fmtTime(stop.window.start)}–${fmtTime(stop.window.end)}</td></tr>
    <tr><td>ETA</td><td class="${stop.late ? "late" : ""}">${fmtTime(stop.eta)}${stop.late ? " (late)" : ""}</td></tr>
    <tr><td>Status</td><td>${stop.status}</td></tr>
    <tr><td>Load</td><td>${stop.parcels} parcel(s), ${stop.weight_kg.toFixed(1)} kg</td></tr></table>
    <label for="move-van">Move to</label>
    <select id="move-van">${vans.map((v) => `<option ${route && route.van === v ? "selected" : ""}>${v}</option>`).join("")}<option value="">(unassigned)</option></select>
    <label for="move-position">Position (1 is first; empty: last)</label>
    <input id="move-position" type="number" min="1" style="width:80px">
    <label><input id="move-force" type="checkbox"> force, even if it breaks a window or capacity</label>
    <p><button id="move" class="primary">Move</button></p>`;
  $("move").addEventListener("click", moveSelected);
}

// Actions.

async function moveSelected() {
  const van = $("move-van").value || null;
  const position = $("move-position").value ? Number($("move-position").value) - 1 : null;
  try {
    const result = await api("POST", `/v1/plans/${state.plan.id}/moves`, { stop: state.selected, van, position, force: $("move-force").checked });
    state.plan = result.plan;
    render();
    say(result.warnings.length ? `Moved, with warnings: ${result.warnings.join("; ")}` : `Moved: plan v${result.plan.version}.`, result.warnings.length ? "warn" : "");
    await loadWaves();
  } catch (error) {
    say(`Move refused: ${error.message}`, "error");
  }
}

async function replan() {
  try {
    const asked = await api("POST", `/v1/waves/${state.wave.id}/plan`);
    state.version = asked.version;
    say("Planning… locked routes and routes on the road are kept.");
    await loadWaves();
  } catch (error) { say(error.message, "error"); }
}

async function publish() {
  try {
    state.plan = await api("POST", `/v1/plans/${state.plan.id}/publish`);
    say(`Published v${state.plan.version}: routes sent to the drivers.`);
    render();
    await loadWaves();
  } catch (error) { say(error.message, "error"); }
}

async function toggleLock(van) {
  const route = state.plan.routes.find((r) => r.van === van);
  try {
    state.plan = await api("POST", `/v1/plans/${state.plan.id}/routes/${encodeURIComponent(van)}/lock`, { locked: !route.locked });
    render();
  } catch (error) { say(error.message, "error"); }
}

// Live updates: the wave list every few seconds; the plan when it changes or vans move.

async function refresh() {
  if (!state.key) { return; }
  try {
    await loadWaves();
    const wave = state.waves.find((w) => state.wave && w.id === state.wave.id);
    const newest = wave && wave.latest_plan;
    const moving = state.plan && state.plan.status === "published";
    if (newest && (!state.plan || newest.id !== state.plan.id || moving)) {
      state.wave = wave;
      await loadPlan();
    }
    if (state.version && wave && wave.planned_version >= state.version) {
      say(`Plan v${wave.latest_plan.version} is ready.`);
      state.version = null;
    }
    $("live").textContent = `updated ${new Date().toLocaleTimeString()}`;
  } catch (error) { $("live").textContent = `offline: ${error.message}`; }
}

function askForKey() {
  $("app").style.display = "none";
  $("keyform").style.display = "block";
}

async function start() {
  state.key = keyFromPage();
  if (!state.key) { askForKey(); return; }
  $("keyform").style.display = "none";
  $("app").style.display = "grid";
  $("day").value = $("day").value || config.today;
  await loadWaves();
  setInterval(refresh, config.poll_ms);
}

$("usekey").addEventListener("click", () => { sessionStorage.setItem("fulfill-key", $("key").value.trim()); start(); });
$("forget").addEventListener("click", () => { sessionStorage.removeItem("fulfill-key"); state.key = null; askForKey(); });
$("day").addEventListener("change", () => { state.wave = null; state.plan = null; loadWaves(); });
$("replan").addEventListener("click", replan);
$("publish").addEventListener("click", publish);
document.addEventListener("click", (event) => {
  const stop = event.target.closest("[data-stop]");
  if (stop && state.plan) { state.selected = stop.dataset.stop; renderStop(true); renderMap(); return; }
  const lane = event.target.closest(".lane .name");
  if (lane && state.plan) { toggleLock(lane.parentElement.dataset.van); }
});
window.addEventListener("resize", () => renderMap());
start();
