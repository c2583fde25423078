// tokens.js — API tokens: the list, revoking one, creating one (shown
// once), with the scopes this user's role allows.
import { get, post, del } from "./api.js";
import { el, clear, fmtTime, badge, table, td, notice } from "./dom.js";
import { can, errorText } from "./ui.js";

export async function tokensPage(r) {
  const out = el("div"), list = el("div");
  const scopes = can("admin") ? ["read", "provision", "exec", "admin"] : can("operator") ? ["read", "provision", "exec"] : ["read"];
  const scope = el("select", { id: "token-scope" }, scopes.map((s) => el("option", { value: s, text: s })));
  const expires = el("input", { id: "token-expires", value: "90d", required: true, pattern: "[0-9]+[smhdw]" });
  const desc = el("input", { id: "token-desc", placeholder: "what it is for" });
  const form = el("form", { class: "card inline-form", id: "token-form" }, el("h2", { text: "New API token" }),
    el("label", {}, "Scope", scope), el("label", {}, "Expires in", expires), el("label", {}, "Description", desc),
    el("button", { type: "submit", class: "primary", text: "Create" }), out);
  r.page("API tokens", list, form);
  async function load() {
    const toks = await get("/apitokens");
    clear(list).append(table(["Id", "User", "Scope", "Description", "Expires", "Last used", "Status", ""], toks.map((t) => el("tr", {},
      td("Id", String(t.id)), td("User", t.user), td("Scope", t.scope), td("Description", t.description || "—"),
      td("Expires", fmtTime(t.expires_at)), td("Last used", fmtTime(t.last_used_at) + (t.last_used_address ? " from " + t.last_used_address : "")),
      td("Status", badge(t.status)),
      td("", t.status === "active" ? el("button", { type: "button", class: "danger", text: "Revoke", onclick: async () => {
        if (!window.confirm("Revoke token " + t.id + "?")) return;
        clear(out);
        try { await del("/apitokens/" + t.id); await load(); } catch (e) { out.append(notice(errorText(e))); }
      } }) : null))), { empty: "No API tokens." }));
  }
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    clear(out);
    try {
      const t = await post("/apitokens", { scope: scope.value, expires: expires.value.trim(), description: desc.value.trim() });
      out.append(el("div", { class: "notice ok", role: "status" }, "Token created; it is shown only now: ",
        el("code", { class: "secret", text: t.token })));
      await load();
    } catch (e) { out.append(notice(errorText(e))); }
  });
  await load();
}
