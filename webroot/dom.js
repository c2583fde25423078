// dom.js — building the page without ever parsing data as HTML: every
// string goes in through textContent or an attribute.
export function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "class") e.className = v;
    else if (k === "text") e.textContent = String(v);
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else if (v === true) e.setAttribute(k, "");
    else e.setAttribute(k, String(v));
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null || c === false) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}

export function clear(node) {
  while (node.firstChild) node.removeChild(node.firstChild);
  return node;
}

export function fmtTime(s) {
  if (!s) return "—";
  const d = new Date(s);
  return isNaN(d) ? String(s) : d.toLocaleString();
}

export function fmtBytes(n) {
  if (n === undefined || n === null || n < 0) return "—";
  const u = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (n >= 1024 && i < u.length - 1) { n /= 1024; i++; }
  return (i ? n.toFixed(1) : n) + " " + u[i];
}

export function badge(state) {
  return el("span", { class: "badge state-" + String(state || "unknown").replace(/[^a-z]/g, ""), text: state || "unknown" });
}

export function table(headers, rows, opts) {
  const t = el("table", { class: "data" + (opts && opts.cls ? " " + opts.cls : "") });
  t.append(el("thead", {}, el("tr", {}, headers.map((h) => el("th", { text: h })))));
  const tb = el("tbody");
  if (!rows.length) {
    tb.append(el("tr", {}, el("td", { colspan: headers.length, class: "muted", text: (opts && opts.empty) || "Nothing here yet." })));
  }
  for (const r of rows) tb.append(r);
  t.append(tb);
  return el("div", { class: "table-wrap" }, t);
}

// A data cell that keeps its header as a label for the phone layout.
export function td(label, ...content) {
  return el("td", { "data-label": label }, ...content);
}

export function notice(msg, kind) {
  return el("p", { class: "notice " + (kind || "error"), role: kind === "ok" ? "status" : "alert", text: msg });
}

export function progressBar(pct, label) {
  const p = Math.max(0, Math.min(100, Number(pct) || 0));
  return el("div", { class: "progress", title: label || "" },
    el("progress", { max: 100, value: p }),
    el("span", { class: "progress-text", text: p + "%" + (label ? " · " + label : "") }));
}
