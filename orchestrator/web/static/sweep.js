// One sweep, live: progress and budget, the best trial, the optimizer's belief, parallel
// coordinates, slices, importance, intermediate values, the trial table, failures and events.
import { $, API, api, askToken, follow, toast, token } from "./api.js";
import { esc, num, params } from "./format.js";
import { bars, curves, parallel, xy } from "./charts.js";
import { renderProgress } from "./progress.js";
import { posteriorPanel } from "./posterior.js";
import { trialTable } from "./trials.js";

const card = (id, title, span, extra = "") => `<section class="card span-${span}" id="card-${id}"><div class="row"><h2>${title}</h2>${extra}</div><div id="${id}"></div></section>`;

export async function sweepView(id) {
  const detail = await api(`/sweeps/${encodeURIComponent(id)}`);
  const enc = encodeURIComponent(id);
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
      ${card("progress", "Progress", 8)}${card("budget", "Budget", 4)}
      ${card("best-trial", "Best trial", 6)}${card("optimizer", "Optimizer's view", 6)}
      ${card("posterior", "Live posterior: the model's belief", 12)}
      ${card("parallel", "Parallel coordinates", 12, `<label class="small muted">metric <select id="metric" aria-label="metric"></select></label>`)}
      ${card("slices", "Slices: the metric against each parameter", 12)}
      ${card("history", "History: best so far", 6)}${card("importance", "Parameter importance", 6)}
      ${card("curves", "Intermediate values", 6)}${card("failures", "Failures by error class", 6)}
      ${card("trials", "Trials", 12)}
      <section class="card span-8"><h2>Events</h2><div id="events" class="events"><div class="empty">Waiting for events…</div></div></section>
      <section class="card span-4"><h2>Links</h2><ul>
        <li><a href="${API}/sweeps/${enc}/results?format=csv">results (CSV)</a> · <a href="${API}/sweeps/${enc}/results?format=parquet">Parquet</a></li>
        <li><a href="${API}/sweeps/${enc}/report" id="report-link">report</a></li>
        ${detail.links.flower ? `<li><a href="${esc(detail.links.flower)}" target="_blank" rel="noopener">Flower</a></li>` : ""}
      </ul></section>
    </div>`;
  renderProgress(detail);
  renderOptimizer(detail.optimizer || {});
  renderFailures(detail.failures);
  controls(id);
  const refreshTable = trialTable($("#trials"), id);
  const refreshPosterior = posteriorPanel($("#posterior"), id);
  let chartsAt = 0, failed = detail.counts.failed;
  const refresh = () => { chartsAt = Date.now(); renderCharts(id).catch(() => {}); refreshTable(); };
  refresh();
  $("#metric").onchange = () => renderCharts(id).catch(() => {});
  return follow(`/sweeps/${enc}/events`, (type, data) => {
    if (type === "progress" || type === "finished") {
      renderProgress(data);
      if (type === "finished" || Date.now() - chartsAt > 4000) refresh();
      if (data.counts.failed !== failed || type === "finished") {
        failed = data.counts.failed;
        api(`/sweeps/${enc}`).then((d) => renderFailures(d.failures)).catch(() => {});
      }
    } else if (type === "refit") { renderOptimizer(data); refreshPosterior(); }
    else if (type === "info" || type === "alert") addEvent(data);
  });
}

function controls(id) {
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
}

function renderOptimizer(o) {
  if (!o.phase) { $("#optimizer").innerHTML = `<p class="muted">No refit yet (a grid sweep, or too few results).</p>`; return; }
  const region = (r) => `${Object.entries(r.bounds || {}).map(([k, [lo, hi]]) => `${k} ${num(lo, 3)}–${num(hi, 3)}`).join(" · ")}${r.predicted != null ? ` <span class="muted">(predicted ${num(r.predicted)})</span>` : ""}`;
  const regions = (o.promising_regions || []).slice(0, 4).map((r) => `<li class="small">${region(r)}</li>`).join("");
  const inc = o.incumbent;
  $("#optimizer").innerHTML = `<dl class="kv">
      <dt>phase</dt><dd>${esc(o.phase)}</dd>
      <dt>model confidence</dt><dd>${o.phase === "model" ? num(o.confidence_level, 2) : "—"}</dd>
      <dt>incumbent</dt><dd>${inc ? `<b>${num(inc.value)}</b> <span class="small">${esc(params(inc.parameters))}</span>` : "—"}</dd>
      <dt>last refit</dt><dd>${o.created_at ? new Date(o.created_at).toLocaleTimeString() : "—"}</dd></dl>
    ${regions ? `<h3>promising regions</h3><ul class="tight">${regions}</ul>` : ""}
    <details class="small"><summary class="muted">what the last refit did</summary>${esc(o.summary || "")}</details>`;
}

function renderBest(insights) {
  const best = insights.best || [];
  $("#best-trial").innerHTML = best.length ? best.map((b) => `
    <div class="best">
      <div class="kpis"><div><span>${esc(b.metric)} (${b.goal === "maximize" ? "max" : "min"})</span><b class="big" id="best-value">${num(b.value)}${b.stderr != null ? ` <small>± ${num(b.stderr, 2)}</small>` : ""}</b></div>
        <div><span>trial</span><b class="big">#${esc(b.index)}</b></div><div><span>completed trials</span><b class="big">${num(b.completed)}</b></div></div>
      <div class="best-tables">${kvTable("parameters", b.parameters)}${kvTable("its other metrics", Object.fromEntries(Object.entries(b.metrics || {}).filter(([k]) => k !== b.metric)))}</div>
      <div class="mono muted small">${esc(b.experiment_id)}</div>
    </div>`).join("") : `<div class="empty">No completed trial yet.</div>`;
}

const kvTable = (title, obj) => (Object.keys(obj).length ? `<table class="kv-table"><caption>${esc(title)}</caption>${Object.entries(obj).map(([k, v]) => `<tr><th>${esc(k)}</th><td class="num">${typeof v === "number" ? num(v) : esc(v)}</td></tr>`).join("")}</table>` : "");

let chartSeq = 0;
async function renderCharts(id) {
  const mine = ++chartSeq;
  const enc = encodeURIComponent(id);
  const chosen = $("#metric").value;
  const [rows, insights] = await Promise.all([
    api(`/sweeps/${enc}/results?format=json&status=completed&limit=5000`),
    api(`/sweeps/${enc}/insights${chosen ? "?metric=" + encodeURIComponent(chosen) : ""}`),
  ]);
  if (mine !== chartSeq) return; // a newer refresh is on its way: never draw older rows over it
  const sel = $("#metric");
  sel.innerHTML = insights.metrics.map((m) => `<option ${m === insights.metric ? "selected" : ""}>${esc(m)}</option>`).join("");
  renderBest(insights);
  const metric = insights.metric, column = "metric." + metric;
  const objective = (insights.objectives || []).find((o) => o.metric === metric);
  const goal = objective?.goal || "maximize";
  const log = new Set(insights.log || []);
  const names = insights.parameters;
  const usable = rows.filter((r) => typeof r[column] === "number");
  const best = insights.best.find((b) => b.metric === metric);
  // parallel coordinates: varied parameters, then the metric
  const dims = [...names.map((n) => ({ name: n, values: usable.map((r) => r["param." + n]), log: log.has(n) })), { name: metric, values: usable.map((r) => r[column]) }];
  $("#parallel").innerHTML = metric ? parallel(dims, { goal }) : `<div class="empty">No metric yet.</div>`;
  $("#slices").innerHTML = names.length
    ? `<div class="slices">${names.slice(0, 8).map((n) => `<div><h3>${esc(n)}</h3>${xy(usable.map((r) => [r["param." + n], r[column]]), { xLabel: n, yLabel: metric, logX: log.has(n), width: 380, height: 250, highlight: best ? [best.parameters[n], best.value] : null })}</div>`).join("")}</div>`
    : `<div class="empty">No varied parameter.</div>`;
  const ordered = [...usable].sort((a, b) => String(a.timestamp).localeCompare(String(b.timestamp)));
  let run = null;
  const curve = ordered.map((r, i) => { const v = r[column]; run = run == null ? v : goal === "maximize" ? Math.max(run, v) : Math.min(run, v); return [i + 1, run]; });
  $("#history").innerHTML = xy(curve, { line: true, xLabel: "completed trials", yLabel: `best ${metric} (${goal === "maximize" ? "max" : "min"})` });
  const none = names.length < 2 ? "Importance ranks two or more varied parameters." : undefined;
  $("#importance").innerHTML = bars((insights.importance || []).map((e) => ({ label: e.parameter, value: e.total, low: e.total_ci?.[0], high: e.total_ci?.[1] })), { none })
    + (insights.importance?.length ? `<p class="muted small">Total Sobol' index of ${esc(metric)} (${esc(insights.importance[0].method || "")}): the share of its variance that involves the parameter.</p>` : "");
  const list = insights.curves || [];
  // a sweep whose project reports no intermediate values has no such panel
  $("#card-curves").hidden = !list.length;
  $("#card-failures").className = `card span-${list.length ? 6 : 12}`;
  $("#curves").innerHTML = curves(list.map((c) => ({ values: c.values, stopped: c.status === "early_stopped" })))
    + (list.length ? `<div class="legend small"><span><i class="kept-line"></i>ran to the end <b>${list.filter((c) => c.status !== "early_stopped").length}</b></span><span><i class="stopped-line"></i>stopped early <b>${list.filter((c) => c.status === "early_stopped").length}</b></span></div>` : "");
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
