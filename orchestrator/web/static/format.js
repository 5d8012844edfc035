// Numbers and values for people: significant digits, thousands separators, units.
export const esc = (v) => String(v ?? "").replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
export const money = (v) => (v == null ? "—" : "$" + Number(v).toLocaleString(undefined, { minimumFractionDigits: 2, maximumFractionDigits: 2 }));

// plain where readable (0.0123, 4,321.5), exponent only for the very large or very small
export function num(v, digits = 4) {
  if (v == null || v === "" || !Number.isFinite(Number(v))) return "—";
  const x = Number(v), a = Math.abs(x);
  if (a !== 0 && (a >= 1e6 || a < 1e-3)) return x.toExponential(Math.max(digits - 2, 1)).replace("e+", "e");
  if (Number.isInteger(x)) return x.toLocaleString();
  return Number(x.toPrecision(digits)).toLocaleString(undefined, { maximumSignificantDigits: digits });
}

// a parameter or cell value: numbers through num, the rest as text
export const value = (v, digits = 4) => (typeof v === "number" ? num(v, digits) : v == null ? "—" : String(v));

// {gamma: 1.2345678, beta: 0.5} -> "gamma 1.235 · beta 0.5"
export function params(obj, digits = 4) {
  return Object.entries(obj || {}).map(([k, v]) => `${k} ${value(v, digits)}`).join(" · ");
}

export const shortName = (column) => String(column).replace(/^(param|metric)\./, "");

export function duration(s) {
  if (s == null) return "—";
  s = Math.round(s);
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), r = s % 60;
  return h ? `${h} h ${m} min` : m ? `${m} min ${r} s` : `${r} s`;
}

export const pct = (part, whole) => (whole ? Math.floor((100 * part) / whole) : 0);
