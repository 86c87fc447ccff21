// GET /: the status page. One self-contained HTML document (inline CSS and JavaScript, nothing
// fetched but ./status from the same endpoint), so it works offline and behind a path-prefixing
// proxy (kubectl proxy). Read-only: it only GETs /status, at most once a second, one request at a
// time. Every text that comes from /status goes into the DOM through textContent or
// setAttribute, never through HTML parsing, so a pool or worker name cannot inject markup.
import { createHash } from "node:crypto";

const STYLE = `
body{font:14px/1.4 system-ui,sans-serif;margin:0 1.5em 2em;color:#1f2933;background:#f7f8fa}
h1{font-size:20px;margin:.8em 0 .2em}h2{font-size:17px;margin:0 0 .3em}
#summary span{margin-right:1.2em}.ok{color:#18794e;font-weight:600}.bad{color:#c0392b;font-weight:600}.muted{color:#6b7785}
section.pool{background:#fff;border:1px solid #d9dee5;border-radius:6px;padding:.8em 1em;margin:1em 0}
.meta{margin:.2em 0}.spread{display:flex;gap:1.2em;align-items:flex-start;flex-wrap:wrap;margin:.6em 0}.spread>div{flex:1 1 360px}
.verdict{font-weight:600;margin:.2em 0}.verdict[data-verdict=spread]{color:#b45309}.verdict[data-verdict=balanced]{color:#18794e}
svg{background:#fbfcfd;border:1px solid #e3e7ec}.legend span{display:inline-block;margin-right:.8em;font-size:12px}
table{border-collapse:collapse;width:100%;font-size:13px}th,td{text-align:left;padding:3px 8px;border-bottom:1px solid #eef0f3;white-space:nowrap}
th{color:#52606d;font-weight:600}td.num{text-align:right;font-variant-numeric:tabular-nums}
.bar{display:inline-block;width:60px;height:6px;background:#e3e7ec;margin-left:6px;vertical-align:middle}.bar i{display:block;height:100%;background:#3b82f6}
`;

const SCRIPT = `
"use strict";
const POLL_MS = 1000, RETRY_MS = 3000, ROWS_MAX = 500;
const COLORS = ["#2563eb","#dc2626","#16a34a","#9333ea","#ea580c","#0891b2","#ca8a04","#db2777"];
const SVG_NS = "http://www.w3.org/2000/svg";
function el(tag, cls, text) { const e = document.createElement(tag); if (cls) e.className = cls; if (text != null) e.textContent = String(text); return e; }
function svg(tag, attrs) { const e = document.createElementNS(SVG_NS, tag); for (const k in attrs) e.setAttribute(k, String(attrs[k])); return e; }
function dur(s) { if (s == null) return "–"; s = Math.floor(s); const d = Math.floor(s / 86400), h = Math.floor(s % 86400 / 3600), m = Math.floor(s % 3600 / 60), x = s % 60;
  return d ? d + "d " + h + "h" : h ? h + "h " + m + "m" : m ? m + "m " + x + "s" : x + "s"; }
function ago(iso) { return iso ? dur(Math.max(0, (Date.now() - Date.parse(iso)) / 1000)) + " ago" : ""; }
function bytes(n) { if (n == null) return "–"; const u = ["B","KiB","MiB","GiB","TiB"]; let i = 0; while (n >= 1024 && i < u.length - 1) { n /= 1024; i++; } return (i ? n.toFixed(1) : n) + " " + u[i]; }
function cpu(rate) { return rate == null ? "–" : (rate * 100).toFixed(1) + "%"; }
function exitText(e) { return e ? (e.signal ? e.signal : "code " + e.code) + ", " + ago(e.at) : "–"; }
function cell(tr, text, cls, title) { const td = el("td", cls, text); if (title) td.title = title; tr.append(td); return td; }

function proxyLine(p) {
  if (!p.proxy) return el("p", "meta muted", "supervisor mode: no proxy");
  const x = p.proxy;
  return el("p", "meta", "proxy: pid " + (x.pid ?? "–") + " · " + x.state + " · restarts " + x.restarts +
    (x.started_at ? " · started " + ago(x.started_at) : "") + (x.last_exit ? " · last exit " + exitText(x.last_exit) : ""));
}

function chart(cs) {
  const W = 360, H = 90, L = 34, B = 16, win = cs.window_seconds;
  let max = 0.05;
  for (const w of cs.workers) for (const pt of w.points) max = Math.max(max, pt[1]);
  max *= 1.1;
  const s = svg("svg", { width: W, height: H, viewBox: "0 0 " + W + " " + H, role: "img" });
  const title = svg("title", {}); title.textContent = "CPU rate of each worker over the last " + dur(win); s.append(title);
  const x = (t) => L + (W - L - 4) * (1 + t / win), y = (r) => H - B - (H - B - 4) * r / max;
  s.append(svg("line", { x1: L, y1: H - B, x2: W - 4, y2: H - B, stroke: "#9aa5b1" }), svg("line", { x1: L, y1: 4, x2: L, y2: H - B, stroke: "#9aa5b1" }));
  const label = (tx, ty, text, anchor) => { const t = svg("text", { x: tx, y: ty, "font-size": 10, fill: "#6b7785", "text-anchor": anchor }); t.textContent = text; s.append(t); };
  label(L - 3, 12, cpu(max), "end"); label(L - 3, H - B, "0", "end"); label(L, H - 3, "-" + dur(win), "start"); label(W - 4, H - 3, "now", "end");
  cs.workers.forEach((w, i) => {
    if (w.points.length === 0) return;
    const pts = w.points.filter((pt) => pt[0] >= -win).map((pt) => x(pt[0]).toFixed(1) + "," + y(pt[1]).toFixed(1)).join(" ");
    const line = svg("polyline", { points: pts, fill: "none", stroke: COLORS[i % COLORS.length], "stroke-width": 1.5 });
    const t = svg("title", {}); t.textContent = w.id; line.append(t); s.append(line);
  });
  return s;
}

function spreadBlock(cs) {
  const box = el("div", "spread");
  const text = el("div");
  const v = el("p", "verdict", cs.text); v.dataset.verdict = cs.verdict; text.append(v);
  text.append(el("p", "meta muted", "coefficient of variation of the workers' CPU rates over " + dur(cs.window_seconds) +
    " (balanced below " + Math.round(cs.balanced_below * 100) + "%) · " + cs.samples + " samples over " + dur(cs.covered_seconds) +
    " · workers observed ≥ " + dur(cs.min_window_seconds) + ": " + cs.workers_with_data + " of " + cs.workers.length));
  const legend = el("div", "legend");
  cs.workers.forEach((w, i) => { if (w.points.length === 0) return; const sp = el("span", null, "■ " + w.id + " " + cpu(w.cpu_seconds_per_second)); sp.style.color = COLORS[i % COLORS.length]; legend.append(sp); });
  text.append(legend);
  box.append(chart(cs), text);
  return box;
}

function workerTable(p) {
  const rates = new Map((p.cpu_spread ? p.cpu_spread.workers : []).map((w) => [w.id, w]));
  const table = el("table"), head = el("tr");
  for (const h of ["worker", "pid", "state", "ready", "uptime", "restarts", "last exit", "CPU", "RSS", "health check"]) head.append(el("th", null, h));
  table.append(head);
  const shown = p.workers.filter((w) => w.state !== "vacant");
  for (const w of shown.slice(0, ROWS_MAX)) {
    const tr = el("tr"); tr.dataset.worker = w.id;
    cell(tr, w.id, "id", w.multiprocess_worker_id);
    cell(tr, w.pid ?? "–", "pid num");
    cell(tr, w.state + (w.planned_restart ? " (restart: " + w.planned_restart.cause + ")" : w.held_back ? " (held back: " + w.held_back.cause + ")" : ""), "state");
    cell(tr, w.ready ? "yes" : "no", w.ready ? "ready ok" : "ready bad");
    cell(tr, dur(w.uptime_seconds), "uptime num");
    cell(tr, w.restarts + (w.planned_restarts ? " + " + w.planned_restarts + " planned" : ""), "restarts num");
    cell(tr, exitText(w.last_exit), "exit", w.last_exit ? w.last_exit.at : "");
    const r = rates.get(w.id);
    cell(tr, r && r.pid === w.pid ? cpu(r.last_cpu_seconds_per_second) : "–", "cpu num", r ? "over the window: " + cpu(r.cpu_seconds_per_second) : "");
    const rss = cell(tr, bytes(w.rss_bytes) + (p.memory_limit_bytes ? " / " + bytes(p.memory_limit_bytes) : ""), "rss num");
    if (p.memory_limit_bytes && w.rss_bytes != null) { const bar = el("span", "bar"), fill = el("i"); fill.style.width = Math.min(100, 100 * w.rss_bytes / p.memory_limit_bytes).toFixed(0) + "%"; bar.append(fill); rss.append(bar); }
    const hc = w.health_check;
    cell(tr, hc ? (hc.last_result ?? "pending") + (hc.consecutive_failures ? " (" + hc.consecutive_failures + "/" + hc.failure_threshold + " failed)" : "") + (hc.last_at ? ", " + ago(hc.last_at) : "") : "–", "health", hc && hc.last_detail ? hc.last_detail : "");
    table.append(tr);
  }
  if (shown.length > ROWS_MAX) { const tr = el("tr"); const td = el("td", "muted", "… and " + (shown.length - ROWS_MAX) + " more in /status"); td.colSpan = 10; tr.append(td); table.append(tr); }
  return table;
}

function poolSection(p) {
  const s = el("section", "pool"); s.dataset.pool = p.name;
  const h = el("h2", null, p.name + " "); h.append(el("span", p.healthy ? "ok" : "bad", p.healthy ? "healthy" : "not healthy"));
  if (p.removing) h.append(el("span", "muted", " (being removed)"));
  s.append(h, el("p", "meta", p.up + " of " + p.replicas + " workers up · " + p.running + " running · health check: " + (p.health_check ?? "none") +
    " · memory limit: " + (p.memory_limit_bytes ? bytes(p.memory_limit_bytes) : "none") + " · max restarts: " + (p.max_restarts < 0 ? "unlimited" : p.max_restarts)), proxyLine(p));
  if (p.cpu_spread) s.append(spreadBlock(p.cpu_spread));
  s.append(workerTable(p));
  return s;
}

function render(st) {
  document.getElementById("summary").replaceChildren(el("span", st.healthy ? "ok" : "bad", st.healthy ? "healthy" : "not healthy"),
    el("span", null, "phase: " + st.phase), el("span", "muted", "updated " + new Date().toLocaleTimeString()));
  document.getElementById("pools").replaceChildren(...st.pools.map(poolSection));
}

async function poll() {
  let wait = POLL_MS;
  try {
    const r = await fetch("status", { cache: "no-store", headers: { accept: "application/json" } });
    if (!r.ok) throw new Error("HTTP " + r.status);
    render(await r.json());
    document.getElementById("error").textContent = "";
  } catch (e) {
    wait = RETRY_MS;
    document.getElementById("error").textContent = "cannot reach Monoceros (" + e.message + "); retrying every " + RETRY_MS / 1000 + " s";
  }
  setTimeout(poll, wait);
}
poll();
`;

const hash = (text: string) => `'sha256-${createHash("sha256").update(text).digest("base64")}'`;

/**
 * What the page may do: run its own script and style (by hash), fetch from its own origin, and
 * nothing else (no other script, no image but its empty inline icon, which spares the browser a
 * request for /favicon.ico; no frame or form; it cannot be framed).
 */
export const STATUS_PAGE_CSP = `default-src 'none'; script-src ${hash(SCRIPT)}; style-src ${hash(STYLE)}; connect-src 'self'; img-src data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'`;

export const STATUS_PAGE_HTML = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<link rel="icon" href="data:,"><title>Monoceros status</title><style>${STYLE}</style></head>
<body><h1>Monoceros</h1><p id="summary" class="muted">loading /status…</p><p id="error" class="bad"></p>
<noscript>This page needs JavaScript; <a href="status">/status</a> has the same figures.</noscript>
<div id="pools"></div><p class="muted">Read-only; refreshed every second from <a href="status">/status</a>. Also <a href="metrics">/metrics</a>, <a href="health">/health</a>.</p>
<script>${SCRIPT}</script></body></html>
`;
