// The trial table: pages, sorting and filtering done by the API (GET .../trials), so a sweep of
// any size sends 50 rows at a time. Click a header to sort (again to reverse); type a filter
// such as `x > 0.5; status = completed` and press Enter.
import { $, api } from "./api.js";
import { esc, num, shortName, value } from "./format.js";

const PAGE = 50;
const HIDDEN = new Set(["experiment_id", "project_name", "repeat", "timestamp", "worker_host", "error_message"]);

export function trialTable(root, sweepId) {
  const state = { sort: null, order: "asc", filter: "", offset: 0, seq: 0 };
  root.innerHTML = `
    <div class="row table-tools">
      <input id="trial-filter" class="filter" type="search" placeholder="filter, e.g. x > 0.5; status = completed" aria-label="filter trials">
      <span class="muted small" id="trial-count"></span>
      <span class="spacer"></span>
      <button type="button" id="trial-prev" class="ghost">‹ prev</button><button type="button" id="trial-next" class="ghost">next ›</button>
    </div>
    <div class="table-wrap"><table id="trials" class="trials"><thead></thead><tbody></tbody></table></div>
    <p class="small alert-text" id="trial-error"></p>`;
  const load = async () => {
    const mine = ++state.seq;
    const q = new URLSearchParams({ offset: state.offset, limit: PAGE, order: state.order });
    if (state.sort) q.set("sort", state.sort);
    if (state.filter) q.set("filter", state.filter);
    let page;
    try {
      page = await api(`/sweeps/${encodeURIComponent(sweepId)}/trials?${q}`);
      $("#trial-error", root).textContent = "";
    } catch (err) {
      $("#trial-error", root).textContent = err.message;
      return;
    }
    if (mine !== state.seq) return;
    draw(page);
  };
  const draw = (page) => {
    const cols = page.columns.filter((c) => !HIDDEN.has(c));
    const arrow = (c) => (c === state.sort ? (state.order === "asc" ? " ▲" : " ▼") : "");
    $("thead", root).innerHTML = `<tr>${cols.map((c) => `<th data-col="${esc(c)}" class="sortable ${c.startsWith("metric.") ? "metric" : c.startsWith("param.") ? "param" : ""}" title="sort by ${esc(shortName(c))}">${esc(shortName(c))}${arrow(c)}</th>`).join("")}</tr>`;
    $("tbody", root).innerHTML = page.rows.map((r) => `<tr>${cols.map((c) => cell(c, r[c], r)).join("")}</tr>`).join("")
      || `<tr><td colspan="${cols.length || 1}" class="empty">No trials match.</td></tr>`;
    const last = Math.min(page.offset + page.rows.length, page.total);
    $("#trial-count", root).textContent = page.total
      ? `${num(page.offset + 1)}–${num(last)} of ${num(page.total)}${page.total !== page.count ? ` (filtered from ${num(page.count)})` : ""}`
      : `0 of ${num(page.count)}`;
    $("#trial-prev", root).disabled = page.offset === 0;
    $("#trial-next", root).disabled = last >= page.total;
    root.querySelectorAll("th.sortable").forEach((th) => {
      th.onclick = () => {
        const col = th.dataset.col;
        state.order = state.sort === col && state.order === "asc" ? "desc" : "asc";
        state.sort = col;
        state.offset = 0;
        load();
      };
    });
  };
  $("#trial-filter", root).onkeydown = (e) => {
    if (e.key === "Enter") { state.filter = e.target.value.trim(); state.offset = 0; load(); }
  };
  $("#trial-filter", root).onsearch = (e) => { state.filter = e.target.value.trim(); state.offset = 0; load(); };
  $("#trial-prev", root).onclick = () => { state.offset = Math.max(0, state.offset - PAGE); load(); };
  $("#trial-next", root).onclick = () => { state.offset += PAGE; load(); };
  load();
  return load; // refresh
}

function cell(column, v, row) {
  if (column === "status") return `<td><span class="pill ${esc(v)}" title="${esc(row.error_message || "")}">${esc(String(v).replace("_", " "))}</span></td>`;
  if (column === "cost") return `<td class="num">${v == null ? "—" : "$" + num(v, 3)}</td>`;
  if (column === "execution_time") return `<td class="num">${v == null ? "—" : num(v, 3) + " s"}</td>`;
  if (typeof v === "number") return `<td class="num">${value(v)}</td>`;
  return `<td>${esc(value(v))}</td>`;
}
