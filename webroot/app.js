// app.js — the Bastion panel: hash routes, one page at a time, data only
// from /api/v1 (same origin, session cookie, CSRF header on mutations).
import { api, get, post, put, patch, del, setCsrf, ApiError } from "./api.js";
import { el, clear, fmtTime, fmtBytes, badge, table, td, notice } from "./dom.js";
import { jobsPage, jobPage } from "./jobs.js";

const ROLE_RANK = { viewer: 1, operator: 2, admin: 3 };
const ACTIVE = new Set(["queued", "installing"]);
const state = { me: null, settings: null, timer: null, page: "" };

const main = () => document.getElementById("main");
const can = (role) => state.me && ROLE_RANK[state.me.role] >= ROLE_RANK[role];

function stopPolling() {
  if (state.timer) clearInterval(state.timer);
  state.timer = null;
}

function poll(fn, ms) {
  stopPolling();
  state.timer = setInterval(() => { fn().catch(onError); }, ms);
}

function onError(e) {
  if (e instanceof ApiError && e.status === 401) {
    state.me = null;
    stopPolling();
    showLogin("Your session ended; log in again.");
    return;
  }
  console.warn(e);
}

function page(title, ...content) {
  const m = clear(main());
  // A page part may be null (nothing for this role): DOM append() would
  // print it.
  m.append(el("h1", { text: title }), ...content.filter((c) => c !== null && c !== undefined && c !== false));
  document.title = title + " · Bastion";
  return m;
}

function errorText(e) {
  return e instanceof ApiError ? (e.code ? e.code + ": " : "") + e.message : String(e);
}

// ---- session -------------------------------------------------------------

function setHeader() {
  const logged = !!state.me;
  document.getElementById("nav").hidden = !logged;
  document.getElementById("whoami").hidden = !logged;
  if (!logged) return;
  document.getElementById("who-name").textContent = state.me.user;
  const r = document.getElementById("who-role");
  r.textContent = state.me.role;
  r.className = "badge role-" + state.me.role;
  for (const a of document.querySelectorAll("#nav a")) {
    a.hidden = a.hasAttribute("data-admin") && !can("admin");
    a.classList.toggle("current", a.dataset.page === state.page);
  }
  const b = document.getElementById("banner");
  const s = state.settings || {};
  const parts = [];
  if (s.read_only) parts.push("Read-only mode: nothing can be changed.");
  if (s.production) parts.push("Production mode: destructive actions need an admin and a confirmation.");
  b.textContent = parts.join(" ");
  b.hidden = parts.length === 0;
}

async function loadMe() {
  try {
    state.me = await get("/session");
    setCsrf(state.me.csrf_token);
  } catch (e) {
    if (e instanceof ApiError && e.status === 401) state.me = null;
    else throw e;
  }
  if (state.me) {
    try { state.settings = await get("/settings"); } catch (e) { state.settings = null; }
  }
}

function showLogin(message) {
  state.page = "login";
  setHeader();
  const err = el("div");
  if (message) err.append(notice(message, "info"));
  const user = el("input", { id: "login-user", name: "username", autocomplete: "username", required: true, autofocus: true });
  const pass = el("input", { id: "login-pass", name: "password", type: "password", autocomplete: "current-password", required: true });
  const form = el("form", { class: "card login", id: "login-form" },
    el("label", {}, "User name", user),
    el("label", {}, "Password", pass),
    err,
    el("button", { type: "submit", class: "primary", text: "Log in" }));
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    clear(err);
    try {
      const r = await post("/session", { username: user.value, password: pass.value });
      setCsrf(r.csrf_token);
      await loadMe();
      if (location.hash === "" || location.hash === "#/login") location.hash = "#/machines";
      else route();
    } catch (e) {
      err.append(notice(e instanceof ApiError && e.status === 401 ? "Wrong user name or password." : errorText(e)));
    }
  });
  page("Log in", form);
}

async function logout() {
  try { await del("/session"); } catch (e) { /* gone anyway */ }
  state.me = null;
  setCsrf("");
  stopPolling();
  location.hash = "#/login";
}

function passwordChange() {
  const old = el("input", { type: "password", autocomplete: "current-password", required: true });
  const nw = el("input", { type: "password", autocomplete: "new-password", minlength: 8, required: true });
  const out = el("div");
  const form = el("form", { class: "card login" },
    el("p", { text: "You logged in with a one-time password: choose your own." }),
    el("label", {}, "Current password", old), el("label", {}, "New password", nw), out,
    el("button", { type: "submit", class: "primary", text: "Change password" }));
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    clear(out);
    try {
      await put("/users/" + encodeURIComponent(state.me.user) + "/password", { old_password: old.value, password: nw.value });
      await loadMe();
      route();
    } catch (e) { out.append(notice(errorText(e))); }
  });
  page("Change password", form);
}

// ---- machines ------------------------------------------------------------

function progressBar(pct, label) {
  const p = Math.max(0, Math.min(100, Number(pct) || 0));
  return el("div", { class: "progress", title: label || "" },
    el("progress", { max: 100, value: p }),
    el("span", { class: "progress-text", text: p + "%" + (label ? " · " + label : "") }));
}

async function machinesPage() {
  const body = el("div");
  const filter = el("select", { id: "state-filter", "aria-label": "Filter by state" },
    ["all", "discovering", "discovered", "queued", "installing", "installed", "active", "failed"]
      .map((s) => el("option", { value: s, text: s })));
  page("Machines", el("div", { class: "toolbar" }, el("label", { class: "inline" }, "State ", filter)), body);
  const progress = new Map();   // mac -> {after, percent, stage, message}

  async function refresh() {
    const q = filter.value === "all" ? "" : "?state=" + encodeURIComponent(filter.value);
    const list = await get("/machines" + q);
    for (const m of list) {
      if (!ACTIVE.has(m.state)) continue;
      const p = progress.get(m.mac) || { after: 0, percent: 0, stage: "", message: "" };
      const evs = await get("/machines/" + encodeURIComponent(m.mac) + "/events?after=" + p.after + "&limit=1000");
      for (const ev of evs) {
        p.after = Math.max(p.after, ev.id);
        if (ev.progress !== null && ev.progress !== undefined && ev.progress >= 0) p.percent = ev.progress;
        if (ev.message) p.message = ev.message;
      }
      progress.set(m.mac, p);
    }
    const rows = list.map((m) => {
      const p = progress.get(m.mac);
      const s = m.summary || {};
      return el("tr", { "data-mac": m.mac },
        td("MAC", el("a", { href: "#/machine/" + encodeURIComponent(m.mac), class: "mono", text: m.mac })),
        td("State", badge(m.state), ACTIVE.has(m.state) && p ? progressBar(p.percent, p.message) : null),
        td("Host name", m.hostname || "—"),
        td("IP", el("span", { class: "mono", text: m.ip || "—" })),
        td("Hardware", [s.cpu_threads ? s.cpu_threads + " CPU" : null, s.memory_bytes ? fmtBytes(s.memory_bytes) : null,
          s.disks ? s.disks + " disk" + (s.disks > 1 ? "s" : "") : null].filter(Boolean).join(" · ") || "—"),
        td("Last boot", fmtTime(m.last_boot_at)));
    });
    clear(body).append(table(["MAC", "State", "Host name", "IP", "Hardware", "Last boot"], rows,
      { cls: "machines", empty: "No machines yet: PXE-boot one on the provisioning network." }));
  }
  filter.addEventListener("change", () => refresh().catch(onError));
  await refresh();
  poll(refresh, 2000);
}

function hardwareCard(hw) {
  if (!hw) return el("section", { class: "card" }, el("h2", { text: "Hardware" }), el("p", { class: "muted", text: "No discovery report yet." }));
  const cpu = hw.cpu || {}, dmi = hw.dmi || {};
  const dl = el("dl", { class: "kv" });
  const add = (k, v) => dl.append(el("dt", { text: k }), el("dd", { text: v === undefined || v === "" ? "—" : v }));
  add("System", [dmi.vendor, dmi.product].filter(Boolean).join(" "));
  add("Serial", dmi.serial);
  add("Firmware", hw.firmware);
  add("CPU", (cpu.model || "") + (cpu.threads ? " (" + cpu.sockets + " socket, " + cpu.cores + " cores, " + cpu.threads + " threads)" : ""));
  add("Memory", fmtBytes(hw.memory && hw.memory.total_bytes));
  const disks = (hw.disks || []).map((d) => el("tr", {},
    td("Disk", el("span", { class: "mono", text: d.name })), td("Size", fmtBytes(d.size_bytes)),
    td("Model", d.model || "—"), td("Type", d.rotational ? "HDD" : "SSD")));
  const nics = (hw.nics || []).map((n) => el("tr", {},
    td("NIC", el("span", { class: "mono", text: n.name })), td("MAC", el("span", { class: "mono", text: n.mac })),
    td("Driver", n.driver || "—"), td("Speed", n.speed_mbps > 0 ? n.speed_mbps + " Mb/s" : "—")));
  return el("section", { class: "card" }, el("h2", { text: "Hardware" }), dl,
    table(["Disk", "Size", "Model", "Type"], disks, { empty: "No disks." }),
    table(["NIC", "MAC", "Driver", "Speed"], nics, { empty: "No NICs." }));
}

function installForm(m, roles, onDone) {
  const out = el("div");
  const host = el("input", { id: "install-hostname", name: "hostname", required: true, pattern: "[A-Za-z0-9.\\-]+", value: m.hostname || "" });
  const role = el("select", { id: "install-role", name: "role" }, roles.map((r) => el("option", { value: r.name, text: r.name })));
  const keys = el("textarea", { id: "install-keys", name: "ssh_keys", rows: 3, placeholder: "ssh-ed25519 AAAA… one key per line" });
  const form = el("form", { class: "card", id: "install-form" }, el("h2", { text: "Install" }),
    el("label", {}, "Host name", host), el("label", {}, "Role", role),
    el("label", {}, "SSH public keys", keys), out,
    el("button", { type: "submit", class: "primary", id: "install-submit", text: "Queue install" }));
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    clear(out);
    const ssh = keys.value.split("\n").map((s) => s.trim()).filter(Boolean);
    try {
      await post("/machines/" + encodeURIComponent(m.mac) + "/install", { hostname: host.value.trim(), role: role.value, ssh_keys: ssh });
      out.append(notice("Install queued: the machine installs on its next network boot.", "ok"));
      onDone();
    } catch (e) { out.append(notice(errorText(e))); }
  });
  return form;
}

function confirmHeaders(mac, what) {
  const s = state.settings || {};
  if (!s.production) {
    return window.confirm(what + " " + mac + "?") ? {} : null;
  }
  const typed = window.prompt("Production mode: type the MAC address to " + what.toLowerCase() + " " + mac);
  if (typed === null) return null;
  return { "X-Confirm": typed.trim() };
}

function actionsCard(m, onDone) {
  const out = el("div");
  const buttons = [];
  const destructiveOk = can("admin") || !(state.settings && state.settings.production);
  if (destructiveOk && ["installed", "active", "failed"].includes(m.state)) {
    buttons.push(el("button", { type: "button", id: "reprovision", text: "Reprovision", onclick: async () => {
      const h = confirmHeaders(m.mac, "Reprovision");
      if (h === null) return;
      clear(out);
      try { await post("/machines/" + encodeURIComponent(m.mac) + "/reprovision", {}, h); out.append(notice("Reprovision queued.", "ok")); onDone(); }
      catch (e) { out.append(notice(errorText(e))); }
    } }));
  }
  if (destructiveOk) {
    buttons.push(el("button", { type: "button", id: "forget", class: "danger", text: "Forget", onclick: async () => {
      const h = confirmHeaders(m.mac, "Forget");
      if (h === null) return;
      clear(out);
      try { await del("/machines/" + encodeURIComponent(m.mac), h); location.hash = "#/machines"; }
      catch (e) { out.append(notice(errorText(e))); }
    } }));
  }
  if (!buttons.length) return null;
  return el("section", { class: "card", id: "actions" }, el("h2", { text: "Actions" }), el("div", { class: "buttons" }, buttons), out);
}

async function machinePage(mac) {
  const head = el("div"), left = el("div", { class: "col" }), right = el("div", { class: "col" });
  const timeline = el("ol", { class: "timeline", id: "timeline" });
  page("Machine " + mac, head, el("div", { class: "grid" }, left, right));
  let after = 0, lastState = null, roles = [];
  if (can("operator")) { try { roles = await get("/roles"); } catch (e) { roles = []; } }

  function renderHead(m) {
    const inst = m.install;
    clear(head).append(el("div", { class: "card summary" },
      el("div", { class: "summary-row" }, badge(m.state), el("strong", { text: m.hostname || "(no host name)" }),
        el("span", { class: "mono", text: m.ip || "" })),
      inst && ACTIVE.has(m.state) ? progressBar(inst.progress, inst.stage + (inst.message ? ": " + inst.message : "")) : null,
      inst ? el("p", { class: "muted", text: "Install: role " + inst.role + ", " + inst.os + " on " + (inst.disk || "?") + ", status " + inst.status }) : null,
      el("p", { class: "muted", text: "Boots: " + m.boots + " (" + m.boots_in_state + " in this state) · last " + fmtTime(m.last_boot_at) + " · UUID " + (m.uuid || "—") })));
  }

  function renderActions(m) {
    clear(left);
    if (can("operator") && !(state.settings && state.settings.read_only)) {
      if (["discovered", "failed", "queued"].includes(m.state) && roles.length) left.append(installForm(m, roles, refresh));
      const a = actionsCard(m, refresh);
      if (a) left.append(a);
    }
    left.append(hardwareCard(m.hardware));
  }

  async function refresh() {
    const m = await get("/machines/" + encodeURIComponent(mac));
    renderHead(m);
    if (m.state !== lastState) { lastState = m.state; renderActions(m); }
    const evs = await get("/machines/" + encodeURIComponent(mac) + "/events?after=" + after + "&limit=1000");
    for (const ev of evs) {
      after = Math.max(after, ev.id);
      timeline.prepend(el("li", { class: "event", "data-id": ev.id },
        el("time", { text: fmtTime(ev.time) }), " ",
        ev.state ? badge(ev.state) : null, " ",
        el("span", { class: "source", text: ev.source || "" }), " ",
        el("span", { class: "message", text: ev.message || "" }),
        ev.progress !== null && ev.progress !== undefined && ev.progress >= 0 ? el("span", { class: "pct", text: " " + ev.progress + "%" }) : null));
    }
  }
  right.append(el("section", { class: "card" }, el("h2", { text: "Events" }), timeline));
  try { await refresh(); }
  catch (e) {
    if (e instanceof ApiError && e.status === 404) { clear(head).append(notice("No machine " + mac + ".")); return; }
    throw e;
  }
  poll(refresh, 2000);
}

// ---- agents --------------------------------------------------------------

async function agentsPage() {
  const list = await get("/agents");
  const soon = Date.now() + 7 * 86400e3;
  const rows = list.map((a) => el("tr", {},
    td("Agent", el("span", { class: "mono", text: a.id })),
    td("Host name", a.hostname || "—"),
    td("MAC", el("span", { class: "mono", text: a.mac || "—" })),
    td("Last heartbeat", fmtTime(a.last_heartbeat_at)),
    td("Certificate expires", el("span", { class: a.cert_expires_at && new Date(a.cert_expires_at) < soon ? "warn" : "", text: fmtTime(a.cert_expires_at) })),
    td("Status", badge(a.revoked ? "revoked" : a.stale ? "stale" : "enrolled"))));
  page("Agents", table(["Agent", "Host name", "MAC", "Last heartbeat", "Certificate expires", "Status"], rows,
    { empty: "No agents enrolled." }));
}

// ---- audit ---------------------------------------------------------------

async function auditPage() {
  const since = el("input", { id: "audit-since", placeholder: "1h, 7d, 2024-05-01" });
  const actor = el("input", { id: "audit-actor", placeholder: "user name" });
  const action = el("input", { id: "audit-action", placeholder: "machine. (prefix)" });
  const limit = el("select", { id: "audit-limit" }, [50, 100, 500, 1000].map((n) => el("option", { value: n, text: n, selected: n === 100 })));
  const out = el("div");
  const verify = el("span", { class: "muted" });
  const form = el("form", { class: "toolbar filters", id: "audit-filters" },
    el("label", {}, "Since", since), el("label", {}, "Actor", actor), el("label", {}, "Action", action),
    el("label", {}, "Rows", limit), el("button", { type: "submit", text: "Filter" }));
  page("Audit log", form, verify, out);
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
    clear(out).append(table(["Time", "Actor", "Source", "Action", "Target", "Result"], rows.map((r) => el("tr", { class: "result-" + r.result },
      td("Time", fmtTime(r.time)),
      td("Actor", r.actor_type + ": " + r.actor),
      td("Source", el("span", { class: "mono", text: r.source })),
      td("Action", el("span", { class: "mono", text: r.action })),
      td("Target", el("span", { class: "mono", text: r.target || "—" })),
      td("Result", badge(r.result), r.error ? el("div", { class: "muted small", text: r.error }) : null))),
      { cls: "audit", empty: "No rows match." }));
  }
  form.addEventListener("submit", (ev) => { ev.preventDefault(); load().catch(onError); });
  await load();
  get("/audit/verify").then((v) => {
    verify.textContent = v.ok ? "Chain verified: " + v.rows + " rows intact." : "Chain BROKEN at row " + v.first_bad_id + ": " + v.reason;
    verify.className = v.ok ? "muted" : "notice error";
  }).catch(() => {});
}

// ---- settings ------------------------------------------------------------

async function settingsPage() {
  const s = await get("/settings");
  state.settings = s;
  setHeader();
  const out = el("div");
  const admin = can("admin");
  const sw = (key, label, help) => {
    const box = el("input", { type: "checkbox", id: "setting-" + key, checked: !!s[key], disabled: !admin });
    box.addEventListener("change", async () => {
      clear(out);
      try { await put("/settings/" + key, { value: box.checked ? "on" : "off" }); out.append(notice(label + " " + (box.checked ? "on" : "off") + ".", "ok")); }
      catch (e) { box.checked = !box.checked; out.append(notice(errorText(e))); }
      state.settings = await get("/settings");
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
  if (can("operator")) {
    try {
      const cfg = await get("/config");
      const v = cfg.values || {};
      content.push(el("section", { class: "card" }, el("h2", { text: "Appliance" }),
        el("dl", { class: "kv" }, ["boot.dhcp_mode", "boot.interface", "boot.listen", "control.listen", "install.repo"]
          .flatMap((k) => [el("dt", { text: k }), el("dd", { class: "mono", text: v[k] || "—" })])),
        el("p", { class: "muted", text: "Changed with bastionctl config set on the appliance (" + cfg.path + ")." })));
    } catch (e) { /* not for this role */ }
  }
  page("Settings", ...content);
}

// ---- users and API tokens -------------------------------------------------

async function usersPage() {
  const out = el("div"), list = el("div");
  const name = el("input", { id: "user-name", required: true, pattern: "[a-z0-9._\\-]{1,32}" });
  const role = el("select", { id: "user-role" }, ["viewer", "operator", "admin"].map((r) => el("option", { value: r, text: r })));
  const form = el("form", { class: "card inline-form", id: "user-form" }, el("h2", { text: "New user" }),
    el("label", {}, "Name", name), el("label", {}, "Role", role), el("button", { type: "submit", class: "primary", text: "Add" }), out);
  page("Users", list, form);
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
      const r = await post("/users", { name: name.value.trim(), role: role.value });
      out.append(notice("User " + r.name + " added. One-time password (shown once): " + (r.password || "—"), "ok"));
      name.value = "";
      await load();
    } catch (e) { out.append(notice(errorText(e))); }
  });
  await load();
}

async function tokensPage() {
  const out = el("div"), list = el("div");
  const scopes = can("admin") ? ["read", "provision", "exec", "admin"] : can("operator") ? ["read", "provision", "exec"] : ["read"];
  const scope = el("select", { id: "token-scope" }, scopes.map((s) => el("option", { value: s, text: s })));
  const expires = el("input", { id: "token-expires", value: "90d", required: true, pattern: "[0-9]+[smhdw]" });
  const desc = el("input", { id: "token-desc", placeholder: "what it is for" });
  const form = el("form", { class: "card inline-form", id: "token-form" }, el("h2", { text: "New API token" }),
    el("label", {}, "Scope", scope), el("label", {}, "Expires in", expires), el("label", {}, "Description", desc),
    el("button", { type: "submit", class: "primary", text: "Create" }), out);
  page("API tokens", list, form);
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
      const r = await post("/apitokens", { scope: scope.value, expires: expires.value.trim(), description: desc.value.trim() });
      out.append(el("div", { class: "notice ok", role: "status" }, "Token created; it is shown only now: ",
        el("code", { class: "secret", text: r.token })));
      await load();
    } catch (e) { out.append(notice(errorText(e))); }
  });
  await load();
}

// ---- router --------------------------------------------------------------

// What the page modules (jobs.js) get to use.
const ui = { page, poll, stop: stopPolling, can, errorText, settings: () => state.settings };

const routes = {
  machines: machinesPage,
  jobs: () => jobsPage(ui),
  job: (arg) => jobPage(ui, decodeURIComponent(arg || "")),
  machine: (arg) => machinePage(decodeURIComponent(arg || "")),
  agents: agentsPage,
  audit: auditPage,
  settings: settingsPage,
  users: usersPage,
  tokens: tokensPage,
};

async function route() {
  stopPolling();
  const [name, arg] = location.hash.replace(/^#\/?/, "").split("/");
  if (!state.me) { showLogin(); return; }
  if (name === "login") { location.hash = "#/machines"; return; }
  if (state.me.must_change_password) { state.page = ""; setHeader(); passwordChange(); return; }
  const fn = routes[name] || machinesPage;
  state.page = routes[name] ? { machine: "machines", job: "jobs" }[name] || name : "machines";
  setHeader();
  try { await fn(arg); }
  catch (e) {
    if (e instanceof ApiError && e.status === 401) { onError(e); return; }
    page("Error", notice(errorText(e)));
  }
}

async function start() {
  document.getElementById("logout").addEventListener("click", logout);
  window.addEventListener("hashchange", () => { route(); });
  try { await loadMe(); } catch (e) { /* shown as the login page */ }
  await route();
}

start();
