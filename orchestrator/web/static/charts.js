// Charts drawn as plain SVG strings: scatter and line, parallel coordinates, heatmap, bars, curves.
// Each takes data already shaped for it and returns markup; the viewBox keeps text undistorted.
import { esc, num } from "./format.js";

const STOPS = [[68, 1, 84], [59, 82, 139], [33, 145, 140], [94, 201, 98], [253, 231, 37]]; // viridis
export function color(t) {
  t = Math.min(1, Math.max(0, Number.isFinite(t) ? t : 0));
  const i = Math.min(STOPS.length - 2, Math.floor(t * (STOPS.length - 1)));
  const f = t * (STOPS.length - 1) - i;
  const c = STOPS[i].map((a, k) => Math.round(a + f * (STOPS[i + 1][k] - a)));
  return `rgb(${c.join(",")})`;
}

const finite = (v) => typeof v === "number" && Number.isFinite(v);
function extent(values, log = false) {
  const ok = values.filter((v) => finite(v) && (!log || v > 0));
  if (!ok.length) return [0, 1];
  let lo = Math.min(...ok), hi = Math.max(...ok);
  if (lo === hi) { const pad = Math.abs(lo) * 0.1 || 1; lo -= pad; hi += pad; }
  return [lo, hi];
}
// a scale from [lo, hi] to [a, b], in log space when asked
function scale([lo, hi], [a, b], log = false) {
  const f = log ? Math.log : (v) => v;
  const l = f(lo), h = f(hi);
  return (v) => a + ((f(v) - l) / (h - l || 1)) * (b - a);
}
function ticks([lo, hi], count = 5, log = false) {
  if (log && lo > 0) {
    const out = [];
    for (let k = 0; k < count; k++) out.push(Math.exp(Math.log(lo) + (k / (count - 1)) * (Math.log(hi) - Math.log(lo))));
    return out;
  }
  return Array.from({ length: count }, (_, k) => lo + (k / (count - 1)) * (hi - lo));
}
const empty = (text) => `<div class="empty">${esc(text)}</div>`;

// points [[x, y, extra?]]; line: a step-free polyline in x order; logX for log-scaled parameters
export function xy(points, { line = false, xLabel = "", yLabel = "", logX = false, width = 560, height = 260, highlight = null } = {}) {
  const good = points.filter((p) => finite(p[0]) && finite(p[1]) && (!logX || p[0] > 0));
  if (!good.length) return empty("No data yet.");
  const L = 62, R = 14, T = 14, B = 42;
  const xd = extent(good.map((p) => p[0]), logX), yd = extent(good.map((p) => p[1]));
  const sx = scale(xd, [L, width - R], logX), sy = scale(yd, [height - B, T]);
  const yt = ticks(yd).map((v) => `<line class="grid" x1="${L}" x2="${width - R}" y1="${sy(v)}" y2="${sy(v)}"/><text x="${L - 6}" y="${sy(v) + 4}" text-anchor="end">${num(v, 3)}</text>`).join("");
  const xt = ticks(xd, 5, logX).map((v) => `<text x="${sx(v)}" y="${height - B + 16}" text-anchor="middle">${num(v, 3)}</text>`).join("");
  const body = line
    ? `<path d="${good.map((p, i) => `${i ? "L" : "M"}${sx(p[0]).toFixed(1)},${sy(p[1]).toFixed(1)}`).join("")}" fill="none" stroke="#2f5bd3" stroke-width="2"/>`
    : good.map((p) => `<circle cx="${sx(p[0]).toFixed(1)}" cy="${sy(p[1]).toFixed(1)}" r="3.2" fill="#2f5bd3" fill-opacity=".5"/>`).join("");
  const hi = highlight && finite(highlight[0]) && finite(highlight[1])
    ? `<circle cx="${sx(highlight[0])}" cy="${sy(highlight[1])}" r="6" fill="none" stroke="#d64545" stroke-width="2"><title>best</title></circle>` : "";
  return `<svg class="chart" viewBox="0 0 ${width} ${height}" role="img">${yt}
    <line class="axis" x1="${L}" x2="${width - R}" y1="${height - B}" y2="${height - B}"/><line class="axis" x1="${L}" x2="${L}" y1="${T}" y2="${height - B}"/>
    ${body}${hi}${xt}<text class="label" x="${(L + width - R) / 2}" y="${height - 6}" text-anchor="middle">${esc(xLabel)}</text>
    <text class="label" transform="translate(14 ${(T + height - B) / 2}) rotate(-90)" text-anchor="middle">${esc(yLabel)}</text></svg>`;
}

// dims [{name, values (one per row), log}], the last one the metric that colours the lines
export function parallel(dims, { goal = "maximize", width = 1160, height = 320 } = {}) {
  const n = dims[0]?.values.length || 0;
  if (!n || dims.length < 2) return empty("Parallel coordinates need results and at least one varied parameter.");
  const L = 50, R = 70, T = 34, B = 26;
  const step = (width - L - R) / (dims.length - 1);
  const axes = dims.map((d, i) => {
    const categorical = d.values.some((v) => v != null && typeof v !== "number");
    const levels = categorical ? [...new Set(d.values.map(String))].sort() : null;
    const dom = categorical ? [0, Math.max(levels.length - 1, 1)] : extent(d.values, d.log);
    const s = scale(dom, [height - B, T], d.log && !categorical);
    const y = (v) => (categorical ? s(levels.indexOf(String(v))) : finite(v) && (!d.log || v > 0) ? s(v) : null);
    return { ...d, x: L + i * step, y, dom, levels };
  });
  const metric = axes[axes.length - 1];
  const md = extent(metric.values);
  const good = (v) => (goal === "maximize" ? (v - md[0]) / (md[1] - md[0]) : (md[1] - v) / (md[1] - md[0]));
  const order = [...Array(n).keys()].sort((a, b) => good(metric.values[a]) - good(metric.values[b])); // best drawn last
  const lines = order.map((r) => {
    const pts = axes.map((a) => [a.x, a.y(a.values[r])]);
    if (pts.some((p) => p[1] == null)) return "";
    return `<polyline points="${pts.map((p) => `${p[0].toFixed(1)},${p[1].toFixed(1)}`).join(" ")}" stroke="${color(good(metric.values[r]))}"/>`;
  }).join("");
  const axisMarks = axes.map((a) => {
    const labels = a.levels
      ? a.levels.map((l, k) => `<text x="${a.x + 5}" y="${a.y(l) + 4}">${esc(l)}</text>`).join("")
      : [a.dom[1], a.dom[0]].map((v) => `<text x="${a.x + 5}" y="${(v === a.dom[1] ? T : height - B) + 4}">${num(v, 3)}</text>`).join("");
    return `<line class="axis" x1="${a.x}" x2="${a.x}" y1="${T}" y2="${height - B}"/>${labels}
      <text class="label" x="${a.x}" y="${T - 14}" text-anchor="middle">${esc(a.name)}</text>`;
  }).join("");
  return `<svg class="chart parallel" viewBox="0 0 ${width} ${height}" role="img"><g class="lines">${lines}</g>${axisMarks}</svg>`;
}

// a grid z[row][col] over xs (columns) and ys (rows); marks [{x, y, kind, title}] on top
export function heatmap({ xs, ys, z, xLabel, yLabel, logX = false, logY = false, marks = [], reverse = false, width = 520, height = 420, legend = "" }) {
  const L = 64, R = 78, T = 12, B = 46;
  const flat = z.flat().filter(finite);
  if (!flat.length) return empty("No model values.");
  const zd = extent(flat);
  const sx = scale([xs[0], xs[xs.length - 1]], [L, width - R], logX);
  const sy = scale([ys[0], ys[ys.length - 1]], [height - B, T], logY);
  // cell edges halfway between grid values (in the axis' own scale)
  const edges = (vs, s) => vs.map((v, i) => [i ? (s(vs[i - 1]) + s(v)) / 2 : s(v), i < vs.length - 1 ? (s(v) + s(vs[i + 1])) / 2 : s(v)]);
  const ex = edges(xs, sx), ey = edges(ys, sy);
  const t = (v) => { const u = (v - zd[0]) / (zd[1] - zd[0]); return reverse ? 1 - u : u; };
  let cells = "";
  for (let r = 0; r < ys.length; r++) for (let c = 0; c < xs.length; c++) {
    const v = z[r][c];
    if (!finite(v)) continue;
    const x0 = Math.min(...ex[c]), y0 = Math.min(...ey[r]);
    cells += `<rect x="${x0.toFixed(1)}" y="${y0.toFixed(1)}" width="${(Math.abs(ex[c][1] - ex[c][0]) + 0.6).toFixed(1)}" height="${(Math.abs(ey[r][1] - ey[r][0]) + 0.6).toFixed(1)}" fill="${color(t(v))}"/>`;
  }
  const shapes = {
    observed: (x, y) => `<circle cx="${x}" cy="${y}" r="3.6" class="m-observed"/>`,
    next: (x, y) => `<path d="M${x - 5},${y - 5}L${x + 5},${y + 5}M${x - 5},${y + 5}L${x + 5},${y - 5}" class="m-next"/>`,
    best: (x, y) => `<path d="M${x},${y - 8}L${x + 2.4},${y - 2.5}L${x + 8},${y - 2.5}L${x + 3.5},${y + 1.5}L${x + 5},${y + 7.5}L${x},${y + 4}L${x - 5},${y + 7.5}L${x - 3.5},${y + 1.5}L${x - 8},${y - 2.5}L${x - 2.4},${y - 2.5}Z" class="m-best"/>`,
  };
  const markup = marks.filter((m) => finite(m.x) && finite(m.y)).map((m) => `<g>${shapes[m.kind](Math.round(sx(m.x) * 10) / 10, Math.round(sy(m.y) * 10) / 10)}<title>${esc(m.title || "")}</title></g>`).join("");
  const xt = ticks([xs[0], xs[xs.length - 1]], 5, logX).map((v) => `<text x="${sx(v)}" y="${height - B + 16}" text-anchor="middle">${num(v, 3)}</text>`).join("");
  const yt = ticks([ys[0], ys[ys.length - 1]], 5, logY).map((v) => `<text x="${L - 6}" y="${sy(v) + 4}" text-anchor="end">${num(v, 3)}</text>`).join("");
  const lx = width - R + 16, lh = height - B - T;
  const bar = Array.from({ length: 40 }, (_, k) => `<rect x="${lx}" y="${T + (k * lh) / 40}" width="14" height="${lh / 40 + 0.5}" fill="${color(reverse ? k / 39 : 1 - k / 39)}"/>`).join("");
  return `<svg class="chart heat" viewBox="0 0 ${width} ${height}" role="img">${cells}${markup}
    <rect x="${L}" y="${T}" width="${width - R - L}" height="${height - B - T}" fill="none" class="frame"/>${xt}${yt}
    <text class="label" x="${(L + width - R) / 2}" y="${height - 8}" text-anchor="middle">${esc(xLabel)}</text>
    <text class="label" transform="translate(14 ${(T + height - B) / 2}) rotate(-90)" text-anchor="middle">${esc(yLabel)}</text>
    ${bar}<text x="${lx + 18}" y="${T + 9}">${num(zd[1], 3)}</text><text x="${lx + 18}" y="${height - B}">${num(zd[0], 3)}</text>
    </svg>`;
}

// items [{label, value, low?, high?}], values in [0, 1]
export function bars(items, { width = 560, none = "Not enough results to rank the parameters yet." } = {}) {
  if (!items.length) return empty(none);
  const row = 30, L = 120, R = 50, T = 8, height = T * 2 + row * items.length;
  const sx = (v) => L + Math.max(0, Math.min(1, v)) * (width - L - R);
  const body = items.map((it, i) => {
    const y = T + i * row;
    const ci = finite(it.low) && finite(it.high) ? `<line x1="${sx(it.low)}" x2="${sx(it.high)}" y1="${y + row / 2}" y2="${y + row / 2}" class="ci"/>` : "";
    return `<text x="${L - 8}" y="${y + row / 2 + 4}" text-anchor="end">${esc(it.label)}</text>
      <rect x="${L}" y="${y + 6}" width="${Math.max(1, sx(it.value) - L)}" height="${row - 12}" rx="3" fill="#2f5bd3" fill-opacity=".8"/>${ci}
      <text x="${width - R + 10}" y="${y + row / 2 + 4}">${num(it.value, 2)}</text>`;
  }).join("");
  return `<svg class="chart" viewBox="0 0 ${width} ${height}" role="img">${body}</svg>`;
}

// curves [{values, stopped}]: intermediate values against the step
export function curves(list, { width = 560, height = 260, yLabel = "reported value" } = {}) {
  const all = list.flatMap((c) => c.values.filter(finite));
  if (!all.length) return empty("No run reported intermediate values.");
  const L = 62, R = 14, T = 14, B = 42;
  const steps = Math.max(...list.map((c) => c.values.length));
  const sx = scale([1, Math.max(steps, 2)], [L, width - R]), sy = scale(extent(all), [height - B, T]);
  const paths = list.map((c) => {
    const pts = c.values.map((v, i) => (finite(v) ? `${sx(i + 1).toFixed(1)},${sy(v).toFixed(1)}` : null)).filter(Boolean);
    const end = c.stopped && pts.length ? `<circle cx="${pts[pts.length - 1].split(",")[0]}" cy="${pts[pts.length - 1].split(",")[1]}" r="3" class="stop-mark"/>` : "";
    return `<polyline points="${pts.join(" ")}" class="${c.stopped ? "stopped" : "kept"}"/>${end}`;
  }).join("");
  const yt = ticks(extent(all)).map((v) => `<line class="grid" x1="${L}" x2="${width - R}" y1="${sy(v)}" y2="${sy(v)}"/><text x="${L - 6}" y="${sy(v) + 4}" text-anchor="end">${num(v, 3)}</text>`).join("");
  const xt = ticks([1, Math.max(steps, 2)]).map((v) => `<text x="${sx(v)}" y="${height - B + 16}" text-anchor="middle">${Math.round(v)}</text>`).join("");
  return `<svg class="chart curves" viewBox="0 0 ${width} ${height}" role="img">${yt}<g>${paths}</g>${xt}
    <line class="axis" x1="${L}" x2="${width - R}" y1="${height - B}" y2="${height - B}"/>
    <text class="label" x="${(L + width - R) / 2}" y="${height - 6}" text-anchor="middle">step</text>
    <text class="label" transform="translate(14 ${(T + height - B) / 2}) rotate(-90)" text-anchor="middle">${esc(yLabel)}</text></svg>`;
}

// several named lines [{name, points: [[x, y]]}] on shared axes, with a legend
export function series(list, { xLabel = "", yLabel = "", width = 1160, height = 300 } = {}) {
  const all = list.flatMap((s) => s.points).filter((p) => finite(p[0]) && finite(p[1]));
  if (!all.length) return empty("No results to compare yet.");
  const L = 62, R = 14, T = 14, B = 42;
  const palette = ["#2f5bd3", "#d64545", "#1f9d55", "#d99a1e", "#a07cd8", "#3aa6a0"];
  const xd = extent(all.map((p) => p[0])), yd = extent(all.map((p) => p[1]));
  const sx = scale(xd, [L, width - R]), sy = scale(yd, [height - B, T]);
  const yt = ticks(yd).map((v) => `<line class="grid" x1="${L}" x2="${width - R}" y1="${sy(v)}" y2="${sy(v)}"/><text x="${L - 6}" y="${sy(v) + 4}" text-anchor="end">${num(v, 3)}</text>`).join("");
  const xt = ticks(xd).map((v) => `<text x="${sx(v)}" y="${height - B + 16}" text-anchor="middle">${num(Math.round(v), 3)}</text>`).join("");
  const lines = list.map((s, i) => `<path d="${s.points.map((p, k) => `${k ? "L" : "M"}${sx(p[0]).toFixed(1)},${sy(p[1]).toFixed(1)}`).join("")}" fill="none" stroke="${palette[i % palette.length]}" stroke-width="2.2"><title>${esc(s.name)}</title></path>`).join("");
  const legend = list.map((s, i) => `<span><i style="background:${palette[i % palette.length]}"></i>${esc(s.name)}</span>`).join("");
  return `<svg class="chart" viewBox="0 0 ${width} ${height}" role="img">${yt}${lines}${xt}
    <line class="axis" x1="${L}" x2="${width - R}" y1="${height - B}" y2="${height - B}"/><line class="axis" x1="${L}" x2="${L}" y1="${T}" y2="${height - B}"/>
    <text class="label" x="${(L + width - R) / 2}" y="${height - 6}" text-anchor="middle">${esc(xLabel)}</text>
    <text class="label" transform="translate(14 ${(T + height - B) / 2}) rotate(-90)" text-anchor="middle">${esc(yLabel)}</text></svg>
    <div class="legend">${legend}</div>`;
}
