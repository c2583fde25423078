// users.js — user accounts (admins): the list, enabling and disabling,
// adding one with a one-time password.
import { get, post, patch } from "./api.js";
import { el, clear, fmtTime, badge, table, td, notice } from "./dom.js";
import { errorText } from "./ui.js";

export async function usersPage(r) {
  const out = el("div"), list = el("div");
  const name = el("input", { id: "user-name", required: true, pattern: "[a-z0-9._\\-]{1,32}" });
  const role = el("select", { id: "user-role" }, ["viewer", "operator", "admin"].map((x) => el("option", { value: x, text: x })));
  const form = el("form", { class: "card inline-form", id: "user-form" }, el("h2", { text: "New user" }),
    el("label", {}, "Name", name), el("label", {}, "Role", role), el("button", { type: "submit", class: "primary", text: "Add" }), out);
  r.page("Users", list, form);
  async function load() {
    const users = await get("/users");
    clear(list).append(table(["Name", "Role", "Status", "Last login", "Sessions", ""], users.map((u) => {
      const toggle = el("button", { type: "button", text: u.disabled ? "Enable" : "Disable", onclick: async () => {
        clear(out);
        try { await patch("/users/" + encodeURIComponent(u.name), { disabled: !u.disabled }); await load(); }
        catch (e) { out.append(notice(errorText(e))); }
      } });
      return el("tr", {}, td("Name", u.name), td("Role", el("span", { class: "badge role-" + u.role, text: u.role })),
        td("Status", u.disabled ? badge("disabled") : u.must_change_password ? badge("one-time password") : badge("active")),
        td("Last login", fmtTime(u.last_login_at)), td("Sessions", String(u.sessions ?? "—")), td("", toggle));
    })));
  }
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    clear(out);
    try {
      const u = await post("/users", { name: name.value.trim(), role: role.value });
      out.append(notice("User " + u.name + " added. One-time password (shown once): " + (u.password || "—"), "ok"));
      name.value = "";
      await load();
    } catch (e) { out.append(notice(errorText(e))); }
  });
  await load();
}
