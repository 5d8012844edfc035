// The live posterior: the optimizer's GP mean and uncertainty over two chosen parameters, with
// the results so far (dots), the next picks (crosses) and the incumbent (star); redrawn at each refit.
import { $, api } from "./api.js";
import { esc, num, params } from "./format.js";
import { heatmap } from "./charts.js";

export function posteriorPanel(root, sweepId) {
  let seq = 0;
  const load = async () => {
    const mine = ++seq;
    const x = $("#post-x", root)?.value || "", y = $("#post-y", root)?.value || "";
    const q = new URLSearchParams({ size: 30 });
    if (x) q.set("x", x);
    if (y) q.set("y", y);
    let view;
    try { view = await api(`/sweeps/${encodeURIComponent(sweepId)}/posterior?${q}`); }
    catch (err) { root.innerHTML = `<div class="empty">${esc(err.message)}</div>`; return; }
    if (mine !== seq) return;
    draw(view);
  };
  const draw = (v) => {
    root.dataset.ready = v.ready;
    root.closest(".card").hidden = v.has_model === false; // a grid sweep has no belief to show
    root.dataset.refitAt = v.refit_at || "";
    const picker = (id, chosen) => `<select id="${id}" aria-label="${id}">${v.parameters.map((p) => `<option ${p === chosen ? "selected" : ""}>${esc(p)}</option>`).join("")}</select>`;
    const head = v.parameters.length >= 2
      ? `<div class="row">x ${picker("post-x", v.x?.name || v.parameters[0])} y ${picker("post-y", v.y?.name || v.parameters[1])}
         <span class="muted small">${v.refit_at ? "refit " + new Date(v.refit_at).toLocaleTimeString() : ""}</span></div>` : "";
    if (!v.ready) {
      root.innerHTML = `${head}<div class="empty" id="posterior-reason">${esc(v.reason)}</div>`;
    } else {
      const label = v.metric ? `${v.metric} (${v.goal === "maximize" ? "higher" : "lower"} is better)` : "scalarized objective (lower is better)";
      const marks = [
        ...v.observed.map((o) => ({ x: o.x, y: o.y, kind: "observed", title: `${o.experiment_id}: ${num(o.value)}` })),
        ...v.next.map((p) => ({ x: p[v.x.name], y: p[v.y.name], kind: "next", title: "next pick: " + params(p) })),
        ...(v.incumbent ? [{ x: v.incumbent[v.x.name], y: v.incumbent[v.y.name], kind: "best", title: "incumbent: " + params(v.incumbent) }] : []),
      ];
      const common = { xs: v.x.values, ys: v.y.values, xLabel: v.x.name, yLabel: v.y.name, logX: v.x.log, logY: v.y.log, marks };
      const fixed = Object.entries(v.fixed || {}).filter(([k]) => k !== v.x.name && k !== v.y.name);
      root.dataset.observed = v.observed.length;
      root.innerHTML = `${head}
        <div class="posterior">
          <figure><figcaption>GP mean of ${esc(label)}</figcaption>${heatmap({ ...common, z: v.mean, reverse: v.goal !== "maximize", legend: v.metric || "" })}</figure>
          <figure><figcaption>uncertainty (posterior standard deviation)</figcaption>${heatmap({ ...common, z: v.std, legend: "std" })}</figure>
        </div>
        <div class="legend small"><span><i class="dot"></i>results so far <b>${v.observed.length}</b></span><span><i class="cross">×</i>next picks <b>${v.next.length}</b></span><span><i class="star">★</i>incumbent</span>
          ${fixed.length ? `<span class="muted">others held at the incumbent's: ${esc(fixed.map(([k, val]) => `${k} ${typeof val === "number" ? num(val) : val}`).join(" · "))}</span>` : ""}</div>`;
    }
    for (const id of ["post-x", "post-y"]) { const s = $("#" + id, root); if (s) s.onchange = load; }
  };
  load();
  return load;
}
