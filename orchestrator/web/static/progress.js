// Progress that reads right: runs against the run budget ("150 of max 150"), and what will not
// run (a budget reached, a cancel) shown as "not run", never as work done.
import { $ } from "./api.js";
import { duration, esc, money, num } from "./format.js";

const SEGMENTS = ["completed", "reused", "failed", "early_stopped", "running", "queued"];
const LABELS = { early_stopped: "stopped early", not_run: "not run" };

// what a sweep's counts mean for a reader
export function tally(st) {
  const c = st.counts || {};
  const runs = (c.completed || 0) + (c.failed || 0) + (c.early_stopped || 0);
  const total = st.total ?? st.planned ?? 0;
  const max = st.max_experiments ?? null;
  const done = ["completed", "failed", "cancelled", "timed_out"].includes(st.state);
  const reused = c.reused || 0;
  // a budgeted sweep's whole is its budget (and what it reused); the rest of the space never runs
  const whole = max != null ? Math.min(total || Infinity, max + reused) : total;
  const finished = runs + reused;
  const notRun = done ? Math.max(0, total - finished) : 0;
  return { runs, reused, total, max, whole, finished, notRun, done };
}

export function progressLine(st) {
  const t = tally(st);
  const of = t.max != null ? `of max ${num(t.max)}` : `of ${num(t.total)}${st.total == null ? " planned" : ""}`;
  const shown = t.max != null ? t.runs : t.finished;
  const notes = [];
  if (t.max != null && t.reused) notes.push(`${num(t.reused)} reused`);
  if (t.notRun) notes.push(`${num(t.notRun)} of ${num(t.total)} not run${st.state === "cancelled" ? " (cancelled)" : t.max != null ? " (run budget)" : ""}`);
  return { shown, of, notes };
}

export function stateBar(st, thin = false) {
  const t = tally(st), c = st.counts || {};
  const whole = Math.max(t.done ? t.finished + (t.max != null ? 0 : t.notRun) : t.whole, 1);
  const parts = SEGMENTS.filter((k) => c[k]).map((k) => `<span class="s-${k}" style="width:${(100 * c[k]) / whole}%" title="${LABELS[k] || k}: ${c[k]}"></span>`);
  if (t.done && t.max == null && t.notRun) parts.push(`<span class="s-not_run" style="width:${(100 * t.notRun) / whole}%" title="not run: ${t.notRun}"></span>`);
  return `<div class="bar${thin ? " thin" : ""}">${parts.join("")}</div>`;
}

export function renderProgress(st) {
  const t = tally(st), line = progressLine(st), c = st.counts || {};
  $("#state").className = "pill " + st.state;
  $("#state").textContent = st.state.replace("_", " ");
  const legend = [...SEGMENTS.map((k) => [k, c[k] || 0]), ["not_run", t.notRun]]
    .filter(([k, n]) => n || ["completed", "failed", "running"].includes(k))
    .map(([k, n]) => `<span><i class="s-${k}"></i>${LABELS[k] || k} <b>${num(n)}</b></span>`).join("");
  $("#progress").innerHTML = `
    <div class="kpis">
      <div><span>finished</span><b class="big" id="progress-line"><span id="finished">${line.shown}</span> <small>${esc(line.of)}</small></b>
        ${line.notes.length ? `<div class="muted small" id="progress-notes">${esc(line.notes.join(" · "))}</div>` : ""}</div>
      <div><span>ETA</span><b class="big">${st.done ? "—" : duration(st.eta_seconds)}</b></div>
      <div><span>elapsed</span><b class="big">${duration(st.elapsed_seconds)}</b></div>
      <div><span>workers</span><b class="big">${st.workers}</b></div>
    </div>
    ${stateBar(st)}
    <div class="legend">${legend}</div>
    ${st.paused_reason ? `<p class="small alert-text">${esc(st.paused_reason)}</p>` : ""}`;
  renderBudget(st);
  const buttons = { pause: st.state === "running", resume: st.state === "paused", cancel: !st.done && st.state !== "cancelling" };
  for (const [action, enabled] of Object.entries(buttons)) if ($(`#${action}`)) $(`#${action}`).disabled = !enabled;
}

function renderBudget(st) {
  const b = st.budget || {};
  const limit = b.limit;
  const pct = (v) => (limit ? Math.min(100, (100 * v) / limit) : 0);
  const level = limit && b.spent >= limit ? "over" : limit && b.spent >= 0.8 * limit ? "warn" : "";
  $("#budget").innerHTML = limit == null
    ? `<div class="kpis"><div><span>cost so far</span><b class="big">${money(st.cost)}</b></div></div><p class="muted small">No budget limit set for this sweep.</p>`
    : `<div class="kpis"><div><span>spent</span><b class="big">${money(b.spent)}</b></div><div><span>reserved</span><b class="big">${money(b.reserved)}</b></div><div><span>limit</span><b class="big">${money(limit)}</b></div></div>
       <div class="budget ${level}"><div class="spent" style="width:${pct(b.spent)}%"></div>
         <div class="reserved" style="left:${pct(b.spent)}%;width:${pct(b.reserved)}%"></div>
         ${[50, 80, 100].map((x) => `<div class="tick" style="left:${x}%"><b>${x}%</b></div>`).join("")}</div>
       ${(b.alerts || []).map((a) => `<div class="events"><div><span class="alert">${esc(a)}</span></div></div>`).join("") || `<p class="muted small">No budget alerts.</p>`}`;
}
