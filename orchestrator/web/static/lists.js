// The sweeps list (tick two or more to compare them), the workers, and sweeps side by side.
import { $, api } from "./api.js";
import { duration, esc, money, num, params } from "./format.js";
import { progressLine, stateBar, tally } from "./progress.js";
import { series } from "./charts.js";

const chosen = new Set();

export async function sweepsView() {
  const sweeps = await api("/sweeps");
  const rows = sweeps.map((s) => {
    const line = progressLine(s), t = tally(s);
    return `<tr data-id="${esc(s.execution_id)}">
      <td><input type="checkbox" class="pick" value="${esc(s.execution_id)}" ${chosen.has(s.execution_id) ? "checked" : ""} aria-label="compare ${esc(s.name)}"></td>
      <td><a href="#/sweep/${encodeURIComponent(s.execution_id)}">${esc(s.name || s.execution_id)}</a>
          <div class="mono muted small">${esc(s.execution_id)}</div></td>
      <td><span class="pill ${esc(s.state)}">${esc(s.state)}</span></td>
      <td><div class="row">${stateBar(s, true)}<span class="muted small">${t.whole ? Math.min(100, Math.floor((100 * (t.max != null ? t.runs : t.finished)) / (t.max ?? t.total))) : 0}%</span></div></td>
      <td class="num">${num(line.shown)} ${esc(line.of)}${line.notes.length ? `<div class="muted small">${esc(line.notes.join(" · "))}</div>` : ""}</td>
      <td class="num">${money(s.cost)}</td>
      <td class="muted small">${s.started_at ? new Date(s.started_at).toLocaleString() : "—"}</td>
    </tr>`;
  }).join("");
  $("#view").innerHTML = `
    <div class="head"><h1>Sweeps</h1><span class="muted">${sweeps.length} on this broker</span>
      <div class="actions"><button type="button" id="compare" class="primary" disabled>Compare selected</button></div></div>
    <div class="card">${sweeps.length ? `<table><thead><tr><th></th><th>sweep</th><th>state</th><th>progress</th>
      <th class="num">finished</th><th class="num">cost</th><th>started</th></tr></thead><tbody>${rows}</tbody></table>`
      : `<div class="empty">No sweeps yet. Submit one with <code>POST /api/v1/sweeps</code> or <code>orchestrator submit</code>.</div>`}</div>`;
  const button = $("#compare");
  const sync = () => { button.disabled = chosen.size < 2; button.textContent = `Compare selected${chosen.size ? ` (${chosen.size})` : ""}`; };
  document.querySelectorAll("input.pick").forEach((box) => {
    box.onchange = () => { box.checked ? chosen.add(box.value) : chosen.delete(box.value); sync(); };
  });
  button.onclick = () => { location.hash = "#/compare/" + [...chosen].map(encodeURIComponent).join(","); };
  sync();
}

export async function compareView(ids) {
  const q = ids.map((i) => "ids=" + encodeURIComponent(i)).join("&");
  const sweeps = await api(`/compare?${q}`);
  const metrics = [...new Set(sweeps.flatMap((s) => s.best.map((b) => `${b.metric}|${b.goal}`)))];
  const bestOf = (s, key) => s.best.find((b) => `${b.metric}|${b.goal}` === key);
  // the winner of each objective is marked
  const winners = Object.fromEntries(metrics.map((key) => {
    const [, goal] = key.split("|");
    const vals = sweeps.map((s) => bestOf(s, key)?.value).filter((v) => v != null);
    return [key, vals.length ? (goal === "maximize" ? Math.max(...vals) : Math.min(...vals)) : null];
  }));
  const col = (s) => {
    const line = progressLine({ ...s, counts: { completed: s.runs, reused: s.reused }, state: s.state, total: s.total });
    return `<td>
      <div class="kpis compact"><div><span>runs</span><b>${num(s.runs)} <small>${esc(s.max_experiments != null ? `of max ${num(s.max_experiments)}` : `of ${num(s.total)}`)}</small></b></div>
        <div><span>cost</span><b>${money(s.cost)}</b></div><div><span>time</span><b>${duration(s.elapsed_seconds)}</b></div></div>
      ${line.notes.length ? `<div class="muted small">${esc(line.notes.join(" · "))}</div>` : ""}
    </td>`;
  };
  const bestRow = (key) => {
    const [metric, goal] = key.split("|");
    return `<tr><th>best ${esc(metric)} <span class="muted">(${goal === "maximize" ? "max" : "min"})</span></th>${sweeps.map((s) => {
      const b = bestOf(s, key);
      if (!b) return `<td class="muted">—</td>`;
      return `<td class="${b.value === winners[key] && sweeps.length > 1 ? "winner" : ""}"><b class="big">${num(b.value)}</b>${b.stderr != null ? ` <small>± ${num(b.stderr, 2)}</small>` : ""}
        <div class="small">${esc(params(b.parameters))}</div></td>`;
    }).join("")}</tr>`;
  };
  $("#view").innerHTML = `
    <div class="head"><div><a href="#/" class="small">← sweeps</a><h1>Sweeps side by side</h1></div></div>
    <div class="card"><table class="compare">
      <thead><tr><th></th>${sweeps.map((s) => `<th><a href="#/sweep/${encodeURIComponent(s.execution_id)}">${esc(s.name)}</a>
        <div class="mono muted small">${esc(s.execution_id)}</div><span class="pill ${esc(s.state)}">${esc(s.state)}</span></th>`).join("")}</tr></thead>
      <tbody>${metrics.map(bestRow).join("")}
        <tr><th>runs, cost, time</th>${sweeps.map(col).join("")}</tr>
        <tr><th>failed</th>${sweeps.map((s) => `<td class="num-left">${num(s.failed)}</td>`).join("")}</tr>
        <tr><th>cost per run</th>${sweeps.map((s) => `<td>${s.runs ? money(s.cost / s.runs) : "—"}</td>`).join("")}</tr>
      </tbody></table></div>
    ${metrics.length ? `<div class="card"><h2>Best so far: ${esc(metrics[0].split("|")[0])}</h2><div id="compare-history"></div></div>` : ""}`;
  if (metrics.length) await compareHistory(sweeps, metrics[0]);
}

// each sweep's best so far of one objective, against its completed trials
async function compareHistory(sweeps, key) {
  const [metric, goal] = key.split("|");
  const column = "metric." + metric;
  const lists = await Promise.all(sweeps.map((s) => api(`/sweeps/${encodeURIComponent(s.execution_id)}/results?format=json&status=completed&limit=5000`).catch(() => [])));
  const lines = sweeps.map((s, i) => {
    const rows = lists[i].filter((r) => typeof r[column] === "number").sort((a, b) => String(a.timestamp).localeCompare(String(b.timestamp)));
    let best = null;
    return { name: s.name, points: rows.map((r, k) => { const v = r[column]; best = best == null ? v : goal === "maximize" ? Math.max(best, v) : Math.min(best, v); return [k + 1, best]; }) };
  });
  const box = $("#compare-history");
  if (box) box.innerHTML = series(lines, { xLabel: "completed trials", yLabel: `best ${metric} (${goal === "maximize" ? "max" : "min"})` });
}

export async function workersView() {
  const workers = await api("/workers");
  const code = (w) => (w.code || []).map((v) => `<span class="pill mono" title="${esc(v)}">${esc(v.replace("sha256:", "").slice(0, 12))}</span>`).join(" ") || "-";
  const rows = workers.map((w) => `<tr><td class="mono">${esc(w.hostname)}</td><td>${esc(w.host || "")}</td><td>${w.queues.map((q) => `<span class="pill">${esc(q)}</span>`).join(" ")}</td>
    <td class="num">${w.concurrency}</td><td>${code(w)}</td><td class="num">${num(w.heartbeat_age_s, 2)} s</td></tr>`).join("");
  $("#view").innerHTML = `<div class="head"><h1>Workers</h1><span class="muted">${workers.length} alive (heartbeat within 20 s)</span></div>
    <div class="card">${workers.length ? `<table><thead><tr><th>worker</th><th>machine</th><th>queues</th><th class="num">concurrency</th><th>code cached</th><th class="num">heartbeat age</th></tr></thead><tbody>${rows}</tbody></table>`
      : `<div class="empty">No live workers. Start one with <code>orchestrator worker</code>.</div>`}</div>`;
}
