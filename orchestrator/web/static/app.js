// quantum-orchestrator dashboard: plain JavaScript over /api/v1, live through Server-Sent Events.
// No framework and no CDN: the page works offline, inside the wheel.
"use strict";

const API = "/api/v1";
const STATES = ["completed", "reused", "failed", "early_stopped", "cancelled", "running", "queued", "pending"];
const $ = (sel, root = document) => root.querySelector(sel);
const esc = (v) => String(v ?? "").replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
const money = (v) => (v == null ? "—" : "$" + Number(v).toFixed(2));
// significant digits, plain where readable (0.0123, 4,321), exponent only for the very large or small
const num = (v, d = 4) => {
  if (v == null || !Number.isFinite(Number(v))) return "—";
  const a = Math.abs(v);
  if (a !== 0 && (a >= 1e6 || a < 1e-3)) return Number(v).toExponential(d - 2);
  return Number(Number(v).toPrecision(d)).toLocaleString(undefined, { maximumSignificantDigits: d });
};
let current = null; // the live view's teardown

// -- token: kept in this tab only (sessionStorage), sent as a bearer header ----------------------
const token = {
  get: () => sessionStorage.getItem("orchestrator-token"),
  set: (t) => sessionStorage.setItem("orchestrator-token", t),
  clear: () => sessionStorage.removeItem("orchestrator-token"),
};
function askToken() {
  const dialog = $("#token-dialog");
  $("#token-input").value = "";
  dialog.showModal();
  return new Promise((resolve) => {
    const done = (ok) => {
      dialog.close();
      $("#token-form").onsubmit = null;
      $("#token-cancel").onclick = null;
      if (ok) token.set($("#token-input").value.trim());
      updateTokenButton();
      resolve(ok);
    };
    $("#token-form").onsubmit = (e) => { e.preventDefault(); done(true); };
    $("#token-cancel").onclick = () => done(false);
  });
}
function updateTokenButton() { $("#token-button").textContent = token.get() ? "Token set ✓" : "Set token"; }

function headers(extra = {}) {
  const t = token.get();
  return t ? { ...extra, Authorization: "Bearer " + t } : extra;
}
async function api(path, options = {}) {
  const res = await fetch(API + path, { ...options, headers: headers(options.headers) });
  if (res.status === 401) {
    token.clear();
    if (await askToken()) return api(path, options);
    throw new Error("a token is needed");
  }
  const body = res.headers.get("content-type")?.includes("json") ? await res.json() : await res.text();
  if (!res.ok) throw new Error(body?.error?.message || res.statusText);
  return body;
}
function toast(text) {
  const el = $("#toast");
  el.textContent = text;
  el.classList.add("show");
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => el.classList.remove("show"), 3500);
}

// -- Server-Sent Events over fetch (EventSource cannot send the Authorization header) -----------
function follow(path, onEvent) {
  let lastId = null, stopped = false, controller = null;
  async function connect() {
    while (!stopped) {
      controller = new AbortController();
      try {
        const res = await fetch(API + path, {
          headers: headers(lastId ? { "Last-Event-ID": lastId } : {}),
          signal: controller.signal,
        });
        if (!res.ok) throw new Error(res.statusText);
        const reader = res.body.getReader();
        const decoder = new TextDecoder();
        let buffer = "";
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buffer += decoder.decode(value, { stream: true });
          let cut;
          while ((cut = buffer.indexOf("\n\n")) >= 0) {
            const block = buffer.slice(0, cut);
            buffer = buffer.slice(cut + 2);
            const event = { type: "message", data: "" };
            for (const line of block.split("\n")) {
              const [field, ...rest] = line.split(":");
              const value = rest.join(":").replace(/^ /, "");
              if (field === "event") event.type = value;
              else if (field === "data") event.data += value;
              else if (field === "id") lastId = value;
            }
            if (event.data) onEvent(event.type, JSON.parse(event.data));
            if (event.type === "finished") { stopped = true; return; }
          }
        }
      } catch (err) {
        if (stopped) return;
      }
      await new Promise((r) => setTimeout(r, 2000)); // then resume after the last id seen
    }
  }
  connect();
  return () => { stopped = true; controller?.abort(); };
}

// -- views ---------------------------------------------------------------------------------------
function stateBar(counts, total, thin = false) {
  const whole = Math.max(total || 0, STATES.reduce((s, k) => s + (counts[k] || 0), 0), 1);
  const parts = STATES.filter((k) => k !== "pending" && counts[k])
    .map((k) => `<span class="s-${k}" style="width:${(100 * counts[k]) / whole}%" title="${k}: ${counts[k]}"></span>`);
  return `<div class="bar${thin ? " thin" : ""}">${parts.join("")}</div>`;
}

async function sweepsView() {
  const sweeps = await api("/sweeps");
  const rows = sweeps.map((s) => `
    <tr data-id="${esc(s.execution_id)}">
      <td><a href="#/sweep/${encodeURIComponent(s.execution_id)}">${esc(s.name || s.execution_id)}</a>
          <div class="mono muted small">${esc(s.execution_id)}</div></td>
      <td><span class="pill ${esc(s.state)}">${esc(s.state)}</span></td>
      <td><div class="row">${stateBar(s.counts, s.total, true)}<span class="muted small">${s.total ? Math.floor((100 * s.finished) / s.total) : 0}%</span></div></td>
      <td class="num">${s.finished} / ${s.total}</td>
      <td class="num">${money(s.cost)}</td>
      <td class="muted small">${s.started_at ? new Date(s.started_at).toLocaleString() : "—"}</td>
    </tr>`).join("");
  $("#view").innerHTML = `
    <div class="head"><h1>Sweeps</h1><span class="muted">${sweeps.length} on this broker</span></div>
    <div class="card">${sweeps.length ? `<table><thead><tr><th>sweep</th><th>state</th><th>progress</th>
      <th class="num">finished</th><th class="num">cost</th><th>started</th></tr></thead><tbody>${rows}</tbody></table>`
      : `<div class="empty">No sweeps yet. Submit one with <code>POST /api/v1/sweeps</code> or <code>orchestrator submit</code>.</div>`}</div>`;
}

async function workersView() {
  const workers = await api("/workers");
  const code = (w) => (w.code || []).map((v) => `<span class="pill mono" title="${esc(v)}">${esc(v.replace("sha256:", "").slice(0, 12))}</span>`).join(" ") || "-";
  const rows = workers.map((w) => `<tr><td class="mono">${esc(w.hostname)}</td><td>${esc(w.host || "")}</td><td>${w.queues.map((q) => `<span class="pill">${esc(q)}</span>`).join(" ")}</td>
    <td class="num">${w.concurrency}</td><td>${code(w)}</td><td class="num">${w.heartbeat_age_s.toFixed(1)} s</td></tr>`).join("");
  $("#view").innerHTML = `<div class="head"><h1>Workers</h1><span class="muted">${workers.length} alive (heartbeat within 20 s)</span></div>
    <div class="card">${workers.length ? `<table><thead><tr><th>worker</th><th>machine</th><th>queues</th><th class="num">concurrency</th><th>code cached</th><th class="num">heartbeat age</th></tr></thead><tbody>${rows}</tbody></table>`
      : `<div class="empty">No live workers. Start one with <code>orchestrator worker</code>.</div>`}</div>`;
}

function fmtDuration(s) {
  if (s == null) return "—";
  s = Math.round(s);
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), r = s % 60;
  return h ? `${h} h ${m} min` : m ? `${m} min ${r} s` : `${r} s`;
}

function renderProgress(st) {
  const total = st.total ?? st.planned;
  $("#state").className = "pill " + st.state;
  $("#state").textContent = st.state;
  $("#progress").innerHTML = `
    <div class="kpis">
      <div><span>finished</span><b class="big" id="finished">${st.finished}</b> <span class="muted">of ${total}${st.total == null ? " (planned)" : ""}</span></div>
      <div><span>ETA</span><b class="big">${st.done ? "—" : fmtDuration(st.eta_seconds)}</b></div>
      <div><span>elapsed</span><b class="big">${fmtDuration(st.elapsed_seconds)}</b></div>
      <div><span>workers</span><b class="big">${st.workers}</b></div>
    </div>
    ${stateBar(st.counts, total)}
    <div class="legend">${STATES.map((k) => `<span><i class="s-${k}"></i>${k.replace("_", " ")} <b>${st.counts[k] || 0}</b></span>`).join("")}</div>`;
  const b = st.budget || {};
  const limit = b.limit;
  const pct = (v) => (limit ? Math.min(100, (100 * v) / limit) : 0);
  const level = limit && b.spent >= limit ? "over" : limit && b.spent >= 0.8 * limit ? "warn" : "";
  $("#budget").innerHTML = limit == null
    ? `<div class="kpis"><div><span>cost so far</span><b class="big">${money(st.cost)}</b></div></div><p class="muted small">No budget limit set for this sweep.</p>`
    : `<div class="kpis"><div><span>spent</span><b class="big">${money(b.spent)}</b></div><div><span>reserved</span><b class="big">${money(b.reserved)}</b></div><div><span>limit</span><b class="big">${money(limit)}</b></div></div>
       <div class="budget ${level}"><div class="spent" style="width:${pct(b.spent)}%"></div>
         <div class="reserved" style="left:${pct(b.spent)}%;width:${pct(b.reserved)}%"></div>
         ${[50, 80, 100].map((t) => `<div class="tick" style="left:${t}%"><b>${t}%</b></div>`).join("")}</div>
       ${(b.alerts || []).map((a) => `<div class="events"><div><span class="alert">${esc(a)}</span></div></div>`).join("") || `<p class="muted small">No budget alerts.</p>`}`;
  const buttons = { pause: st.state === "running", resume: st.state === "paused", cancel: !st.done && st.state !== "cancelling" };
  for (const [action, enabled] of Object.entries(buttons)) $(`#${action}`).disabled = !enabled;
  renderOptimizer(st.optimizer || {});
}

function renderOptimizer(o) {
  if (!o.phase) { $("#optimizer").innerHTML = `<p class="muted">No refit yet (non-adaptive sweep, or too few results).</p>`; return; }
  const regions = (o.promising_regions || []).slice(0, 4).map((r) => `<li class="mono small">${esc(JSON.stringify(r.bounds || r))}</li>`).join("");
  const picks = (o.refinement_points || []).slice(0, 5).map((p) => `<li class="mono small">${esc(JSON.stringify(p))}</li>`).join("");
  $("#optimizer").innerHTML = `<dl class="kv">
      <dt>phase</dt><dd>${esc(o.phase)}</dd>
      <dt>model confidence</dt><dd>${num(o.confidence_level, 2)}</dd>
      <dt>incumbent</dt><dd class="mono small">${o.incumbent ? esc(num(o.incumbent.value) + "  " + JSON.stringify(o.incumbent.parameters)) : "—"}</dd>
      <dt>last refit</dt><dd>${o.created_at ? new Date(o.created_at).toLocaleTimeString() : "—"}</dd></dl>
    <p class="small">${esc(o.summary || "")}</p>
    ${regions ? `<h3>promising regions</h3><ul>${regions}</ul>` : ""}
    ${picks ? `<h3>next picks</h3><ul>${picks}</ul>` : ""}`;
}

function addEvent(e) {
  const box = $("#events");
  if (!box) return;
  $(".empty", box)?.remove();
  const row = document.createElement("div");
  row.innerHTML = `<time>${new Date(e.ts * 1000).toLocaleTimeString()}</time><span class="${e.level === "alert" ? "alert" : ""}">${esc(e.message)}</span>`;
  box.prepend(row);
}

function renderFailures(groups) {
  $("#failures").innerHTML = groups.length ? groups.map((g) => `
    <details class="failure"><summary><b>${esc(g.error_class)}</b> <span class="pill failed">${g.count}</span></summary>
    ${g.examples.map((r) => `<div class="small"><span class="mono">${esc(r.experiment_id)}</span>: ${esc(r.error_message)}</div>
      ${r.log ? `<pre class="log">${esc(r.log)}</pre>` : ""}`).join("")}</details>`).join("")
    : `<p class="muted">No failures.</p>`;
}

// a small SVG chart: points (x, y), an optional step line; axes with min/max labels
function chart(points, { line = false, xLabel = "", yLabel = "" } = {}) {
  const W = 560, H = 240, L = 56, B = 30, T = 24, R = 12;
  const good = points.filter((p) => Number.isFinite(p[0]) && Number.isFinite(p[1]));
  if (!good.length) return `<div class="empty">No data yet.</div>`;
  const xs = good.map((p) => p[0]), ys = good.map((p) => p[1]);
  let [x0, x1, y0, y1] = [Math.min(...xs), Math.max(...xs), Math.min(...ys), Math.max(...ys)];
  if (x0 === x1) { x0 -= 1; x1 += 1; } if (y0 === y1) { y0 -= 1; y1 += 1; }
  const sx = (x) => L + ((x - x0) / (x1 - x0)) * (W - L - R), sy = (y) => H - B - ((y - y0) / (y1 - y0)) * (H - B - T);
  const grid = [0, 0.25, 0.5, 0.75, 1].map((f) => `<line class="grid" x1="${L}" x2="${W - R}" y1="${sy(y0 + f * (y1 - y0))}" y2="${sy(y0 + f * (y1 - y0))}"/>
    <text x="${L - 6}" y="${sy(y0 + f * (y1 - y0)) + 3}" text-anchor="end">${num(y0 + f * (y1 - y0), 3)}</text>`).join("");
  const body = line
    ? `<path d="${good.map((p, i) => `${i ? "L" : "M"}${sx(p[0]).toFixed(1)},${sy(p[1]).toFixed(1)}`).join("")}" fill="none" stroke="#2f5bd3" stroke-width="2"/>`
    : good.map((p) => `<circle cx="${sx(p[0]).toFixed(1)}" cy="${sy(p[1]).toFixed(1)}" r="3" fill="#2f5bd3" fill-opacity=".55"/>`).join("");
  return `<svg class="chart" viewBox="0 0 ${W} ${H}" preserveAspectRatio="none">${grid}
    <line class="axis" x1="${L}" x2="${W - R}" y1="${H - B}" y2="${H - B}"/><line class="axis" x1="${L}" x2="${L}" y1="${T}" y2="${H - B}"/>
    ${body}<text x="${L}" y="${H - 10}">${num(x0, 3)}</text><text x="${W - R}" y="${H - 10}" text-anchor="end">${num(x1, 3)}</text>
    <text x="${(W + L) / 2}" y="${H - 4}" text-anchor="middle">${esc(xLabel)}</text><text x="${L}" y="12" font-weight="600">${esc(yLabel)}</text></svg>`;
}

let chartRequest = 0;
async function renderCharts(id, detail) {
  const mine = ++chartRequest;
  const rows = await api(`/sweeps/${encodeURIComponent(id)}/results?format=json&status=completed&limit=5000`);
  if (mine !== chartRequest) return; // a newer request is on its way: never draw older rows over it
  const metrics = [...new Set(rows.flatMap((r) => Object.keys(r).filter((k) => k.startsWith("metric.") && typeof r[k] === "number")))];
  const params = [...new Set(rows.flatMap((r) => Object.keys(r).filter((k) => k.startsWith("param.") && typeof r[k] === "number")))];
  const objective = detail.objectives?.[0];
  const mSel = $("#metric"), pSel = $("#param");
  const keep = (sel, options, preferred) => {
    const old = sel.value;
    sel.innerHTML = options.map((o) => `<option>${esc(o)}</option>`).join("");
    sel.value = options.includes(old) ? old : options.includes(preferred) ? preferred : options[0] || "";
  };
  keep(mSel, metrics, objective ? "metric." + objective.metric : null);
  keep(pSel, params, null);
  const metric = mSel.value, param = pSel.value;
  const maximize = !objective || objective.goal === "maximize";
  const ordered = rows.filter((r) => typeof r[metric] === "number").sort((a, b) => String(a.timestamp).localeCompare(String(b.timestamp)));
  let best = null;
  const curve = ordered.map((r, i) => { const v = r[metric]; best = best == null ? v : maximize ? Math.max(best, v) : Math.min(best, v); return [i + 1, best]; });
  $("#best").innerHTML = chart(curve, { line: true, xLabel: "results", yLabel: `best ${metric.replace("metric.", "")} (${maximize ? "max" : "min"})` });
  $("#scatter").innerHTML = chart(rows.map((r) => [r[param], r[metric]]), { xLabel: param.replace("param.", ""), yLabel: metric.replace("metric.", "") });
}

async function sweepView(id) {
  const detail = await api(`/sweeps/${encodeURIComponent(id)}`);
  $("#view").innerHTML = `
    <div class="head">
      <div><a href="#/" class="small">← sweeps</a><h1 id="sweep-title">${esc(detail.name || id)}</h1>
        <div class="mono muted small" id="sweep-id">${esc(id)}</div></div>
      <span id="state" class="pill"></span>
      <div class="actions">
        <button id="pause" type="button">Pause</button><button id="resume" type="button">Resume</button>
        <button id="cancel" type="button" class="danger">Cancel</button>
      </div>
    </div>
    <div class="grid">
      <section class="card span-8"><h2>Progress</h2><div id="progress"></div></section>
      <section class="card span-4"><h2>Budget</h2><div id="budget"></div></section>
      <section class="card span-6"><div class="row"><h2>Best so far</h2><select id="metric" aria-label="metric"></select></div><div id="best"></div></section>
      <section class="card span-6"><div class="row"><h2>Metric against</h2><select id="param" aria-label="parameter"></select></div><div id="scatter"></div></section>
      <section class="card span-6"><h2>Optimizer's view</h2><div id="optimizer"></div></section>
      <section class="card span-6"><h2>Failures by error class</h2><div id="failures"></div></section>
      <section class="card span-8"><h2>Events</h2><div id="events" class="events"><div class="empty">Waiting for events…</div></div></section>
      <section class="card span-4"><h2>Links</h2><ul>
        <li><a href="${API}/sweeps/${encodeURIComponent(id)}/results?format=csv">results (CSV)</a> ·
            <a href="${API}/sweeps/${encodeURIComponent(id)}/results?format=parquet">Parquet</a></li>
        <li><a href="${API}/sweeps/${encodeURIComponent(id)}/report" id="report-link">report</a></li>
        ${detail.links.flower ? `<li><a href="${esc(detail.links.flower)}" target="_blank" rel="noopener">Flower</a></li>` : ""}
      </ul></section>
    </div>`;
  renderProgress(detail);
  renderFailures(detail.failures);
  for (const action of ["pause", "resume", "cancel"]) {
    $(`#${action}`).onclick = async () => {
      if (action === "cancel" && !confirm("Cancel this sweep? Pending experiments are dropped; results are kept.")) return;
      if (!token.get() && !(await askToken())) return;
      try {
        const r = await api(`/sweeps/${encodeURIComponent(id)}/${action}`, { method: "POST" });
        toast(`${action}: ${r.changed ? "done" : "no effect"} (state ${r.state})`);
        $("#state").textContent = r.state;
        $("#state").className = "pill " + r.state;
      } catch (err) { toast(err.message); }
    };
  }
  let chartsAt = 0, failed = detail.counts.failed;
  const refreshCharts = () => { chartsAt = Date.now(); renderCharts(id, detail).catch(() => {}); };
  refreshCharts();
  $("#metric").onchange = $("#param").onchange = refreshCharts;
  const stop = follow(`/sweeps/${encodeURIComponent(id)}/events`, (type, data) => {
    if (type === "progress" || type === "finished") {
      renderProgress(data);
      if (type === "finished" || Date.now() - chartsAt > 3000) refreshCharts();
      if (data.counts.failed !== failed || type === "finished") {
        failed = data.counts.failed;
        api(`/sweeps/${encodeURIComponent(id)}`).then((d) => renderFailures(d.failures)).catch(() => {});
      }
    } else if (type === "refit") renderOptimizer(data);
    else if (type === "info" || type === "alert") addEvent(data);
  });
  return stop;
}

// -- routing -------------------------------------------------------------------------------------
async function route() {
  const hash = location.hash || "#/";
  if (current) { current(); current = null; }
  document.querySelectorAll("[data-nav]").forEach((a) => a.classList.toggle("active", a.dataset.nav === (hash === "#/workers" ? "workers" : "sweeps")));
  try {
    if (hash.startsWith("#/sweep/")) {
      current = await sweepView(decodeURIComponent(hash.slice(8)));
    } else {
      const render = hash === "#/workers" ? workersView : sweepsView; // polled: lists are small
      await render();
      const timer = setInterval(() => render().catch(() => {}), 3000);
      current = () => clearInterval(timer);
    }
  } catch (err) {
    $("#view").innerHTML = `<div class="card empty">${esc(err.message)}</div>`;
  }
}

async function health() {
  try {
    const h = await api("/health");
    $("#broker").className = "pill " + (h.broker ? "ok" : "down");
    $("#broker").textContent = h.broker ? "broker reachable" : "broker unreachable";
  } catch { $("#broker").className = "pill down"; $("#broker").textContent = "server unreachable"; }
}

$("#token-button").onclick = () => askToken();
window.addEventListener("hashchange", () => route());
updateTokenButton();
health();
setInterval(health, 10000);
route();
