// settings.js — read-only and production mode, the control listener's
// allowlist (admins change them), and the appliance's configuration
// (operators read it).
import { get, put } from "./api.js";
import { el, clear, notice } from "./dom.js";
import { state, can, errorText, setHeader } from "./ui.js";

export async function settingsPage(r) {
  const s = await get("/settings");
  r.check();
  state.settings = s;
  state.settingsError = "";
  setHeader();
  const out = el("div");
  const admin = can("admin");
  const sw = (key, label, help) => {
    const box = el("input", { type: "checkbox", id: "setting-" + key, checked: !!s[key], disabled: !admin });
    box.addEventListener("change", async () => {
      clear(out);
      try { await put("/settings/" + key, { value: box.checked ? "on" : "off" }); out.append(notice(label + " " + (box.checked ? "on" : "off") + ".", "ok")); }
      catch (e) { box.checked = !box.checked; out.append(notice(errorText(e))); }
      try { state.settings = await get("/settings"); state.settingsError = ""; }
      catch (e) { state.settingsError = errorText(e); }
      setHeader();
    });
    return el("label", { class: "switch" }, box, " ", el("strong", { text: label }), el("span", { class: "muted", text: " — " + help }));
  };
  const allow = el("input", { id: "setting-allowlist", value: (s.allowlist || []).join(", "), placeholder: "any", disabled: !admin });
  const allowForm = el("form", { class: "inline-form" }, el("label", {}, "Control listener allowlist (CIDRs)", allow),
    admin ? el("button", { type: "submit", text: "Save" }) : null);
  allowForm.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    clear(out);
    const v = allow.value.split(/[\s,]+/).filter(Boolean).join(",") || "any";
    try { await put("/settings/allowlist", { value: v }); out.append(notice("Allowlist saved.", "ok")); }
    catch (e) { out.append(notice(errorText(e))); }
  });
  const content = [el("section", { class: "card" },
    sw("read_only", "Read-only mode", "every change is refused"),
    sw("production", "Production mode", "forget, reprovision, revoke and jobs need an admin and a confirmation"),
    allowForm, out, admin ? null : el("p", { class: "muted", text: "Only admins change settings." }))];
  let cfgError = null;
  if (can("operator")) {
    // Operators may read the configuration: a failure here is a real one,
    // shown above the rest of the page, which still works without it.
    try {
      const cfg = await get("/config");
      const v = cfg.values || {};
      content.push(el("section", { class: "card" }, el("h2", { text: "Appliance" }),
        el("dl", { class: "kv" }, ["boot.dhcp_mode", "boot.interface", "boot.listen", "control.listen", "install.repo"]
          .flatMap((k) => [el("dt", { text: k }), el("dd", { class: "mono", text: v[k] || "—" })])),
        el("p", { class: "muted", text: "Changed with bastionctl config set on the appliance (" + cfg.path + ")." })));
    } catch (e) { cfgError = e; }
  }
  r.page("Settings", ...content);
  if (cfgError) r.fail(cfgError);
}
