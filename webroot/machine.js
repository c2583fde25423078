// machine.js — one machine: its state and install progress, the install
// form and actions for operators, its hardware and its event timeline.
import { get, post, del, ApiError } from "./api.js";
import { el, clear, fmtTime, fmtBytes, badge, table, td, notice, progressBar } from "./dom.js";
import { state, can, errorText, ACTIVE } from "./ui.js";

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

function installForm(m, roles, oses, onDone) {
  const out = el("div");
  const host = el("input", { id: "install-hostname", name: "hostname", required: true, pattern: "[A-Za-z0-9.\\-]+", value: m.hostname || "" });
  const role = el("select", { id: "install-role", name: "role" }, roles.map((r) => el("option", { value: r.name, text: r.name })));
  // Every OS bastion can install, the default first selected; one that
  // cannot be installed now (an image with a problem, kickstart without a
  // repo) is listed but not selectable.
  const os = el("select", { id: "install-os", name: "os" }, oses.map((o) => el("option", {
    value: o.name, text: o.name + " (" + o.method + (o.available ? "" : ", unavailable") + ")",
    disabled: !o.available, selected: !!o.default })));
  const keys = el("textarea", { id: "install-keys", name: "ssh_keys", rows: 3, placeholder: "ssh-ed25519 AAAA… one key per line" });
  const form = el("form", { class: "card", id: "install-form" }, el("h2", { text: "Install" }),
    el("label", {}, "Host name", host), el("label", {}, "Role", role),
    el("label", {}, "Operating system", os),
    el("label", {}, "SSH public keys", keys), out,
    el("button", { type: "submit", class: "primary", id: "install-submit", text: "Queue install" }));
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    clear(out);
    const ssh = keys.value.split("\n").map((s) => s.trim()).filter(Boolean);
    try {
      await post("/machines/" + encodeURIComponent(m.mac) + "/install", { hostname: host.value.trim(), role: role.value, os: os.value, ssh_keys: ssh });
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

export async function machinePage(r, mac) {
  const head = el("div"), left = el("div", { class: "col" }), right = el("div", { class: "col" });
  const timeline = el("ol", { class: "timeline", id: "timeline" });
  r.page("Machine " + mac, head, el("div", { class: "grid" }, left, right));
  right.append(el("section", { class: "card" }, el("h2", { text: "Events" }), timeline));
  let after = 0, lastState = null, roles = [], oses = [];
  if (can("operator")) {
    // Without the roles and OSes there is no install form; the rest of
    // the page still works, so the error is shown and the page goes on.
    try { [roles, oses] = await Promise.all([get("/roles"), get("/os")]); } catch (e) { r.fail(e); }
    r.check();
  }

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
      if (["discovered", "failed", "queued"].includes(m.state) && roles.length) left.append(installForm(m, roles, oses, () => r.refresh()));
      const a = actionsCard(m, () => r.refresh());
      if (a) left.append(a);
    }
    left.append(hardwareCard(m.hardware));
  }

  async function refresh() {
    const m = await get("/machines/" + encodeURIComponent(mac));
    r.check();
    renderHead(m);
    if (m.state !== lastState) { lastState = m.state; renderActions(m); }
    const evs = await get("/machines/" + encodeURIComponent(mac) + "/events?after=" + after + "&limit=1000");
    r.check();
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
  try { await r.poll(refresh, 2000); }
  catch (e) {
    if (e instanceof ApiError && e.status === 404) { clear(head).append(notice("No machine " + mac + ".")); return; }
    throw e;
  }
}
