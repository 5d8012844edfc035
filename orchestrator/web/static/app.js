// quantum-orchestrator dashboard: plain JavaScript modules over /api/v1, live through Server-Sent
// Events. No framework, no build step, no CDN: the page works offline, inside the wheel.
//   api.js       fetch, the token, events        format.js   numbers for people
//   charts.js    SVG charts                      progress.js progress and budget
//   lists.js     sweeps, workers, comparison     sweep.js    one sweep, live
//   trials.js    the trial table                 posterior.js the model's belief
import { $, api, askToken, updateTokenButton } from "./api.js";
import { esc } from "./format.js";
import { compareView, sweepsView, workersView } from "./lists.js";
import { sweepView } from "./sweep.js";

let current = null; // the live view's teardown

async function route() {
  const hash = location.hash || "#/";
  if (current) { current(); current = null; }
  document.querySelectorAll("[data-nav]").forEach((a) => a.classList.toggle("active", a.dataset.nav === (hash === "#/workers" ? "workers" : "sweeps")));
  try {
    if (hash.startsWith("#/sweep/")) {
      current = await sweepView(decodeURIComponent(hash.slice(8)));
    } else if (hash.startsWith("#/compare/")) {
      const ids = hash.slice(10).split(",").filter(Boolean).map(decodeURIComponent);
      await compareView(ids);
      const timer = setInterval(() => compareView(ids).catch(() => {}), 10000);
      current = () => clearInterval(timer);
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
