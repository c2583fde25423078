// audit.js — the audit log (admins): filters, rows, and whether the hash
// chain is intact.
import { get } from "./api.js";
import { el, clear, fmtTime, badge, table, td, notice } from "./dom.js";
import { errorText } from "./ui.js";

export async function auditPage(r) {
  const since = el("input", { id: "audit-since", placeholder: "1h, 7d, 2024-05-01" });
  const actor = el("input", { id: "audit-actor", placeholder: "user name" });
  const action = el("input", { id: "audit-action", placeholder: "machine. (prefix)" });
  const limit = el("select", { id: "audit-limit" }, [50, 100, 500, 1000].map((n) => el("option", { value: n, text: n, selected: n === 100 })));
  const out = el("div");
  const verify = el("span", { class: "muted", id: "audit-verify" });
  const form = el("form", { class: "toolbar filters", id: "audit-filters" },
    el("label", {}, "Since", since), el("label", {}, "Actor", actor), el("label", {}, "Action", action),
    el("label", {}, "Rows", limit), el("button", { type: "submit", text: "Filter" }));
  r.page("Audit log", form, verify, out);
  let latest = 0;
  async function load() {
    const q = new URLSearchParams();
    if (since.value.trim()) q.set("since", since.value.trim());
    if (actor.value.trim()) q.set("actor", actor.value.trim());
    if (action.value.trim()) q.set("action", action.value.trim());
    q.set("limit", limit.value);
    // Only the answer to the latest filter is shown: an earlier one that
    // arrives late must not land next to it.
    const mine = ++latest;
    clear(out);
    let rows;
    try { rows = await get("/audit?" + q.toString()); }
    catch (e) { if (mine === latest) out.append(notice(errorText(e))); return; }
    if (mine !== latest) return;
    rows.reverse();
    clear(out).append(table(["Time", "Actor", "Source", "Action", "Target", "Result"], rows.map((a) => el("tr", { class: "result-" + a.result },
      td("Time", fmtTime(a.time)),
      td("Actor", a.actor_type + ": " + a.actor),
      td("Source", el("span", { class: "mono", text: a.source })),
      td("Action", el("span", { class: "mono", text: a.action })),
      td("Target", el("span", { class: "mono", text: a.target || "—" })),
      td("Result", badge(a.result), a.error ? el("div", { class: "muted small", text: a.error }) : null))),
      { cls: "audit", empty: "No rows match." }));
  }
  form.addEventListener("submit", (ev) => { ev.preventDefault(); load().catch((e) => r.fail(e)); });
  await load();
  get("/audit/verify").then((v) => {
    verify.textContent = v.ok ? "Chain verified: " + v.rows + " rows intact." : "Chain BROKEN at row " + v.first_bad_id + ": " + v.reason;
    verify.className = v.ok ? "muted" : "notice error";
  }).catch((e) => {
    verify.textContent = "The chain could not be verified: " + errorText(e);
    verify.className = "notice error";
  });
}
