// SOF monitor: reads /v1/stats, /v1/runs and the /v1/runs/stream event stream of the
// server that serves this page (relative URLs, so the page works mounted under a prefix).
// No framework and no CDN: everything the page needs ships in the sof-serve wheel.
"use strict";

const $ = (sel) => document.querySelector(sel);
const SVG = "http://www.w3.org/2000/svg";
const REFRESH_MS = 2000;
let selectedRun = null;
let statsTimer = null;

function el(tag, attrs = {}, text) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  if (text !== undefined) node.textContent = text;
  return node;
}
function svg(tag, attrs = {}, text) {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  if (text !== undefined) node.textContent = text;
  return node;
}
const ms = (v) => (v === null || v === undefined ? "–" : `${Number(v).toFixed(1)} ms`);
const pct = (v) => (v === null || v === undefined ? "–" : `${(v * 100).toFixed(2)} %`);
const num = (v) => (v === null || v === undefined ? "–" : String(v));

async function getJSON(url, options) {
  const answer = await fetch(url, options);
  let body = null;
  try { body = await answer.json(); } catch (e) { body = null; }
  return { status: answer.status, body };
}

// --- figures -------------------------------------------------------------------------

function setMetric(name, value, format) {
  for (const cell of document.querySelectorAll(`[data-metric="${name}"]`)) {
    cell.dataset.value = value === null || value === undefined ? "" : String(value);
    cell.textContent = format(value);
  }
}

function renderStats(stats) {
  const paths = stats.comparison.paths;
  for (const path of ["sof", "legacy"]) {
    const p = paths[path];
    setMetric(`${path}.count`, p.count, num);
    setMetric(`${path}.errors`, p.errors, num);
    setMetric(`${path}.error_rate`, p.error_rate, pct);
    setMetric(`${path}.p50`, p.latency_ms.p50, ms);
    setMetric(`${path}.p95`, p.latency_ms.p95, ms);
    setMetric(`${path}.fallbacks`, p.fallbacks, num);
  }
  const shadow = stats.comparison.shadow;
  setMetric("shadow.differences", shadow.differences,
            (v) => `${v} of ${shadow.runs} shadow runs`);
  renderRollout(stats.rollout);
  renderKpis(stats.kpis);
  renderAlerts(stats.alerts, stats.auto_rollback, stats.alert_source);
  renderSkills(stats.skills);
  $("#updated").textContent = `updated ${new Date().toLocaleTimeString()}`;
}

function renderRollout(rollout) {
  const enabled = $("#sof-enabled");
  enabled.textContent = rollout.use_sof_framework ? "enabled" : "disabled";
  enabled.dataset.value = String(rollout.use_sof_framework);
  const percentage = $("#rollout-percentage");
  percentage.textContent = `${rollout.sof_rollout_percentage} %`;
  percentage.dataset.value = String(rollout.sof_rollout_percentage);
  const overrides = Object.entries(rollout.overridden_by || {});
  $("#rollout-override").textContent = overrides.length
    ? `(overridden by ${overrides.map(([k, s]) => `${s} for ${k}`).join(", ")})` : "";
}

function stateCell(state) {
  const text = { ok: "OK", alert: "ALERT", none: "no data", warming: "collecting" }[state] || state;
  return el("td", { class: `state-${state}`, "data-state": state }, text);
}

function renderKpis(rows) {
  const body = $("#kpis tbody");
  body.replaceChildren(...rows.map((r) => {
    const tr = el("tr", { "data-kpi": r.name });
    tr.append(el("th", {}, r.name), el("td", {}, r.target), el("td", {}, r.value ?? "–"),
              stateCell(r.state), el("td", { class: "muted" }, r.note || ""));
    return tr;
  }));
}

function renderAlerts(rows, autoRollback, source) {
  const body = $("#alerts tbody");
  body.replaceChildren(...rows.map((r) => {
    const tr = el("tr", { "data-alert": r.kind });
    const fmt = r.unit === "s" ? (v) => (v === null ? "–" : `${Number(v).toFixed(2)} s`) : pct;
    const threshold = r.unit === "s" ? `> ${r.threshold} s` : `> ${pct(r.threshold)}`;
    tr.append(el("th", {}, r.label), el("td", {}, threshold), el("td", {}, fmt(r.value)),
              stateCell(r.state), el("td", { class: "muted" }, r.note || ""));
    return tr;
  }));
  const auto = $("#auto-rollback");
  if (autoRollback && typeof autoRollback === "object") {
    const on = autoRollback.enabled ?? autoRollback.on;
    const last = autoRollback.last || autoRollback.last_rollback;
    const step = autoRollback.step ? ` (step down ${autoRollback.step} points)` : "";
    const what = last ? `; last: ${last.what || ""} ${last.why ? `because ${last.why}` : ""}` +
      `${last.at ? ` at ${last.at}` : ""}` : "";
    auto.textContent = `Automatic rollback: ${on ? "on" : "off"}${on ? step : ""}${what}` +
      ` (alerts from the ${source})`;
  } else {
    auto.textContent = `Automatic rollback: not installed (alerts from the ${source})`;
  }
}

function renderSkills(rows) {
  const body = $("#skills tbody");
  body.replaceChildren(...rows.map((r) => {
    const tr = el("tr", { "data-skill": r.skill });
    tr.append(el("th", {}, r.skill), el("td", {}, r.plugin ?? ""),
              el("td", { "data-field": "runs", "data-value": r.runs }, num(r.runs)),
              el("td", { "data-field": "errors", "data-value": r.errors }, num(r.errors)),
              el("td", {}, pct(r.error_rate)), el("td", {}, ms(r.p50_ms)),
              el("td", {}, ms(r.p95_ms)));
    return tr;
  }));
}

// --- runs ----------------------------------------------------------------------------

function runRow(run) {
  const tr = el("tr", { "data-run": run.run_id });
  const when = run.finished_at ? new Date(run.finished_at).toLocaleTimeString() : "";
  const path = run.fallback ? `${run.path} (fallback: ${run.fallback_reason})` : run.path;
  tr.append(el("td", {}, when), el("td", {}, (run.query || "").slice(0, 80)),
            el("td", { class: `path-${run.path}` }, path), el("td", {}, run.status),
            el("td", {}, ms(run.duration_ms)));
  tr.addEventListener("click", () => showRun(run.run_id));
  if (run.run_id === selectedRun) tr.classList.add("selected");
  return tr;
}

function renderRuns(runs) {
  $("#runs tbody").replaceChildren(...runs.map(runRow));
  if (selectedRun === null && runs.length) showRun(runs[0].run_id);
}

function addRun(run) {
  const body = $("#runs tbody");
  body.prepend(runRow(run));
  while (body.children.length > 20) body.lastElementChild.remove();
  if (selectedRun === null) showRun(run.run_id);
}

async function showRun(runId) {
  selectedRun = runId;
  for (const tr of document.querySelectorAll("#runs tbody tr")) {
    tr.classList.toggle("selected", tr.dataset.run === runId);
  }
  const { status, body } = await getJSON(`v1/runs/${encodeURIComponent(runId)}`);
  if (status !== 200) return;
  $("#run-detail").hidden = false;
  $("#run-id").textContent = runId;
  const route = body.route;
  $("#run-summary").textContent =
    `"${body.query}" — ${body.status} on the ${route.path} path` +
    (route.fallback ? ` (fell back: ${route.fallback_reason})` : "") +
    `, ${ms(body.duration_ms)}, executor ${body.executor}`;
  drawGraph(body.graph);
  drawTimeline(body.timeline);
}

// --- plan graph: skills in stage columns, an arrow per key one feeds another -----------

function drawGraph(graph) {
  const box = $("#plan-graph");
  box.replaceChildren();
  if (!graph || !graph.nodes.length) { box.textContent = "no plan (answered without SOF skills)"; return; }
  const W = 190, H = 34, GX = 120, GY = 16;
  const columns = {};
  const at = {};
  for (const node of graph.nodes) {
    const stage = node.stage ?? 0;
    columns[stage] = (columns[stage] || 0) + 1;
    at[node.skill] = { x: 10 + stage * (W + GX), y: 10 + (columns[stage] - 1) * (H + GY) };
  }
  const rows = Math.max(...Object.values(columns));
  const stages = Object.keys(columns).length;
  const root = svg("svg", { width: 20 + stages * (W + GX) - GX, height: 20 + rows * (H + GY),
                            "data-figure": "plan-graph" });
  const defs = svg("defs");
  const marker = svg("marker", { id: "arrow", viewBox: "0 0 10 10", refX: "10", refY: "5",
                                 markerWidth: "7", markerHeight: "7", orient: "auto" });
  marker.append(svg("path", { d: "M0,0 L10,5 L0,10 z", fill: "#6b7385" }));
  defs.append(marker);
  root.append(defs);
  for (const edge of graph.edges) {
    const a = at[edge.from], b = at[edge.to];
    if (!a || !b) continue;
    const x1 = a.x + W, y1 = a.y + H / 2, x2 = b.x, y2 = b.y + H / 2;
    const g = svg("g", { "data-edge": `${edge.from}->${edge.to}` });
    g.append(svg("path", { d: `M${x1},${y1} C${x1 + GX / 2},${y1} ${x2 - GX / 2},${y2} ${x2},${y2}`,
                           fill: "none", stroke: "#6b7385", "marker-end": "url(#arrow)" }));
    g.append(svg("text", { x: (x1 + x2) / 2, y: (y1 + y2) / 2 - 4, "text-anchor": "middle" }, edge.key));
    root.append(g);
  }
  for (const node of graph.nodes) {
    const p = at[node.skill];
    const g = svg("g", { "data-node": node.skill });
    g.append(svg("rect", { x: p.x, y: p.y, width: W, height: H, rx: 6, fill: "#eef3fd",
                           stroke: "#2f6fdf" }));
    g.append(svg("text", { x: p.x + W / 2, y: p.y + H / 2 + 4, "text-anchor": "middle" }, node.skill));
    root.append(g);
  }
  box.append(root);
}

// --- timeline: one bar per skill on a time axis, stages as bands -----------------------

function niceStep(total) {
  const raw = total / 6;
  const mag = Math.pow(10, Math.floor(Math.log10(raw || 1)));
  for (const m of [1, 2, 5, 10]) if (raw <= m * mag) return m * mag;
  return 10 * mag;
}

function drawTimeline(line) {
  const box = $("#timeline");
  box.replaceChildren();
  if (!line || !line.skills.length) { box.textContent = "no skills ran"; return; }
  const LABEL = 200, WIDTH = 640, ROW = 22, TOP = 24;
  const end = Math.max(line.total_ms || 0, ...line.skills.map((s) => s.end_ms)) || 1;
  const x = (t) => LABEL + (t / end) * WIDTH;
  const height = TOP + line.skills.length * ROW + 26;
  const root = svg("svg", { width: LABEL + WIDTH + 30, height, "data-figure": "timeline",
                            "data-total-ms": end });
  line.stages.forEach((stage, i) => {
    root.append(svg("rect", { x: x(stage.start_ms), y: TOP - 6,
                              width: Math.max(1, x(stage.end_ms) - x(stage.start_ms)),
                              height: line.skills.length * ROW + 4,
                              fill: i % 2 ? "#f1f2f6" : "#e7ebf5", "data-stage": stage.stage }));
    root.append(svg("text", { x: x(stage.start_ms) + 2, y: TOP - 9 }, `stage ${stage.stage + 1}`));
  });
  const step = niceStep(end);
  const axisY = TOP + line.skills.length * ROW + 4;
  root.append(svg("line", { x1: LABEL, y1: axisY, x2: LABEL + WIDTH, y2: axisY, stroke: "#6b7385" }));
  for (let t = 0; t <= end + 1e-9; t += step) {
    root.append(svg("line", { x1: x(t), y1: axisY, x2: x(t), y2: axisY + 4, stroke: "#6b7385" }));
    root.append(svg("text", { x: x(t), y: axisY + 16, "text-anchor": "middle" },
                    `${+t.toFixed(3)} ms`));
  }
  line.skills.forEach((s, i) => {
    const y = TOP + i * ROW;
    const colour = s.status === "success" ? "#2f6fdf" : "#d64545";
    root.append(svg("text", { x: LABEL - 6, y: y + 13, "text-anchor": "end" }, s.skill));
    const bar = svg("rect", { x: x(s.start_ms), y, width: Math.max(2, x(s.end_ms) - x(s.start_ms)),
                              height: ROW - 6, rx: 3, fill: colour, "data-skill": s.skill,
                              "data-start-ms": s.start_ms, "data-end-ms": s.end_ms });
    bar.append(svg("title", {}, `${s.skill}: ${(s.end_ms - s.start_ms).toFixed(2)} ms (${s.status})`));
    root.append(bar);
    root.append(svg("text", { x: x(s.end_ms) + 4, y: y + 13 }, ms(s.end_ms - s.start_ms)));
  });
  if (!line.measured) root.append(svg("text", { x: LABEL, y: height - 2 }, "(laid out from durations)"));
  box.append(root);
}

// --- rollout control -------------------------------------------------------------------

function say(text, kind) {
  const message = $("#rollout-message");
  message.textContent = text;
  message.className = kind;
}

async function admin(method, path, body) {
  const token = $("#token-input").value.trim();
  const headers = { "Content-Type": "application/json" };
  if (token) headers.Authorization = `Bearer ${token}`;
  const { status, body: answer } = await getJSON(path, {
    method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  if (status === 200) {
    renderRollout(answer);
    say(`Done: ${answer.change.what}.`, "done");
  } else if (status === 401) {
    say("Refused: the admin token is missing or wrong (401).", "error");
  } else if (status === 404) {
    say("Admin is off on this server: start it with SOF_ADMIN_TOKEN set (404).", "error");
  } else {
    say(`Refused (${status}): ${answer && answer.error ? answer.error.message : "unknown error"}`, "error");
  }
  refreshStats();
}

$("#rollout-form").addEventListener("submit", (event) => {
  event.preventDefault();
  admin("PUT", "v1/admin/rollout", { percentage: Number($("#rollout-input").value) });
});
$("#rollback").addEventListener("click", () => admin("POST", "v1/admin/disable"));

// --- refresh and live stream -----------------------------------------------------------

async function refreshStats() {
  const { status, body } = await getJSON("v1/stats");
  if (status === 200) renderStats(body);
}

function scheduleStats() {
  if (statsTimer === null) statsTimer = setTimeout(() => { statsTimer = null; refreshStats(); }, 200);
}

async function start() {
  const [, runs] = await Promise.all([refreshStats(), getJSON("v1/runs?limit=20")]);
  if (runs.status === 200) renderRuns(runs.body.runs);
  setInterval(refreshStats, REFRESH_MS);
  const stream = new EventSource("v1/runs/stream");
  stream.addEventListener("open", () => { $("#live").textContent = "live"; $("#live").classList.add("on"); });
  stream.addEventListener("error", () => { $("#live").textContent = "reconnecting…"; $("#live").classList.remove("on"); });
  stream.addEventListener("run", (event) => { addRun(JSON.parse(event.data)); scheduleStats(); });
  document.body.dataset.ready = "true";
}

start();
