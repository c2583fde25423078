// guests.js — the VMs (libvirt) and LXC guests of the nodes (DESIGN §13):
// the list per node from the agents' latest reports (stale reports and
// absent drivers said so), one guest's detail with its disks, NICs and
// snapshots, actions for operators (signed jobs), and its console in a
// terminal (xterm.js, vendored: /ui/vendor/) over the same stream as
// `bastionctl guests console`.
import { get, post } from "./api.js";
import { el, clear, fmtTime, fmtBytes, badge, table, td, notice } from "./dom.js";
import { can, errorText } from "./ui.js";

const DONE = new Set(["done", "failed", "refused", "expired"]);
const ACTIONS = ["start", "shutdown", "stop", "reboot", "suspend", "resume"];
const enc = encodeURIComponent;
const guestPath = (agent, name) => "/agents/" + enc(agent) + "/guests/" + enc(name);

function b64encode(bytes) {
  let s = "";
  for (let i = 0; i < bytes.length; i += 0x8000) s += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(s);
}

function b64decode(s) {
  const bin = atob(s || "");
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

// What a node's report says beside its guests.
function nodeBadges(n) {
  const out = [];
  if (!n.received) out.push(el("span", { class: "badge state-stale", text: "no report" }));
  else if (n.stale) out.push(el("span", { class: "badge state-stale", text: "stale" }));
  for (const [name, d] of Object.entries(n.drivers || {})) {
    if (d.state === "ok") continue;
    out.push(el("span", { class: "badge " + (d.state === "error" ? "state-failed" : "state-stale"),
      title: d.detail || "", text: name + " " + d.state }));
  }
  return out;
}

// xterm.js writes its measurements and theme into <style> elements,
// which the panel's CSP (style-src 'self') refuses. While it builds the
// terminal, such elements are made inert ones (<xterm-style>, hidden by
// style.css), and their text is applied as constructed style sheets,
// again whenever it changes.
function inertStyles(fn) {
  const make = document.createElement;
  document.createElement = function (tag, opts) {
    return make.call(document, String(tag).toLowerCase() === "style" ? "xterm-style" : tag, opts);
  };
  try { return fn(); } finally { document.createElement = make; }
}

function adoptStyles(root) {
  const sheets = new Map();
  const sync = () => {
    for (const s of root.querySelectorAll("xterm-style")) {
      let sheet = sheets.get(s);
      if (!sheet) { sheet = new CSSStyleSheet(); sheets.set(s, sheet); }
      sheet.replaceSync(s.textContent);
    }
    const mine = [...sheets.values()];
    document.adoptedStyleSheets = [...document.adoptedStyleSheets.filter((x) => !mine.includes(x)), ...mine];
  };
  const mo = new MutationObserver(sync);
  mo.observe(root, { subtree: true, childList: true, characterData: true });
  sync();
  return () => {
    mo.disconnect();
    const mine = [...sheets.values()];
    document.adoptedStyleSheets = document.adoptedStyleSheets.filter((x) => !mine.includes(x));
  };
}

// A console session in box: the terminal, the stream both ways; resolves
// when it is over. Returns { close() }.
async function openConsole(r, box, status, agent, g, force) {
  let xterm;
  try {
    xterm = await import("./vendor/xterm.js");
  } catch (e) {
    throw new Error("the terminal (xterm.js) is not installed: make panel-deps");
  }
  r.check();
  if (!document.getElementById("xterm-css"))
    document.head.append(el("link", { rel: "stylesheet", id: "xterm-css", href: "/ui/vendor/xterm.css" }));
  const host = el("div", { class: "console-term", id: "guest-console-term" });
  clear(box).append(host);
  const term = inertStyles(() => {
    const t = new xterm.Terminal({ rows: 24, cols: 80, convertEol: false, cursorBlink: true });
    t.open(host);
    return t;
  });
  const unstyle = adoptStyles(host);
  const opened = await post(guestPath(agent, g.name) + "/console", { rows: term.rows, cols: term.cols, force });
  const sid = opened.stream;
  let over = false;
  const enc8 = new TextEncoder();
  let queue = Promise.resolve();
  const send = (body) => { queue = queue.then(() => over ? null : post("/streams/" + sid + "/input", body)).catch(() => {}); };
  const onData = term.onData((d) => send({ data: b64encode(enc8.encode(d)) }));
  const onResize = term.onResize((s) => send({ resize: [s.rows, s.cols] }));
  status.textContent = "connected (job " + opened.job.id + ")";
  term.focus();
  // Another page: the session ends now, not at the next long poll's end.
  const onHash = () => setTimeout(() => {
    if (r.live || over) return;
    post("/streams/" + sid + "/input", { close: true }).catch(() => {});
    finish("left the console");
  }, 0);
  window.addEventListener("hashchange", onHash);
  const finish = (why) => {
    if (over) return;
    over = true;
    window.removeEventListener("hashchange", onHash);
    onData.dispose();
    onResize.dispose();
    status.textContent = why;
    host.dataset.over = "1";
  };
  (async () => {
    try {
      while (!over && r.live) {
        const o = await get("/streams/" + sid + "/output?wait=20");
        const bytes = b64decode(o.data);
        if (bytes.length) term.write(bytes);
        if (o.ended) { finish("console over" + (o.exit_code ? " (exit " + o.exit_code + ")" : "")); break; }
      }
    } catch (e) {
      finish(e.status === 404 ? "the session was ended on bastion (taken over, or idle)" : errorText(e));
    }
    if (!r.live && !over) { over = true; post("/streams/" + sid + "/input", { close: true }).catch(() => {}); }
  })();
  return {
    sid,
    term,
    close() {
      if (over) return;
      send({ close: true });
      queue.then(() => finish("left the console"));
    },
    dispose() { unstyle(); term.dispose(); },
  };
}

export async function guestsPage(r, arg) {
  const agents = (await get("/agents")).filter((a) => !a.revoked);
  r.check();
  const sel = el("select", { id: "gs-node" }, el("option", { value: "all", text: "All nodes" }),
    agents.map((a) => el("option", { value: a.id, text: a.hostname || a.id })));
  sel.value = arg && agents.some((a) => a.id === arg) ? arg : "all";
  const nodes = el("div", { id: "gs-nodes", class: "node-badges" });
  const listBox = el("div", { id: "gs-list" });
  const detail = el("section", { class: "card", id: "gs-detail", hidden: true });
  const consoleCard = el("section", { class: "card", id: "gs-console", hidden: true });
  r.page("Guests", el("div", { class: "inline-form" }, el("label", {}, "Node", sel)), nodes, listBox, detail, consoleCard);
  sel.addEventListener("change", () => { location.hash = "#/guests/" + enc(sel.value); });

  const actionOut = el("div", { id: "gs-action-out" });
  let current = null;            // { agent, name } shown in detail
  let lastData = [];
  let session = null;            // the console open in this page

  const find = (agent, name) => {
    const n = lastData.find((x) => x.agent === agent);
    return n && (n.guests || []).find((g) => g.name === name);
  };

  async function waitJob(id) {
    for (;;) {
      const j = await get("/jobs/" + enc(id));
      r.check();
      if (DONE.has(j.status)) return j;
      await new Promise((res) => setTimeout(res, 500));
    }
  }

  async function act(agent, g, action, body) {
    clear(actionOut).append(el("p", { class: "muted", id: "gs-action-status", text: action + "…" }));
    try {
      const res = await post(guestPath(agent, g.name) + "/" + action, Object.assign({ type: g.type }, body || {}));
      const job = res.job || res;
      actionOut.firstChild.textContent = action + ": job " + job.id + "…";
      const j = await waitJob(job.id);
      clear(actionOut).append(j.status === "done" ? notice(action + ": " + (j.error || "done"), "ok")
        : notice(action + " " + j.status + (j.error ? ": " + j.error : "")));
      r.refresh();
    } catch (e) {
      if (r.live) clear(actionOut).append(notice(errorText(e)));
    }
  }

  function showConsole(agent, g) {
    const status = el("span", { class: "muted", id: "gs-console-status", text: "" });
    const force = el("input", { type: "checkbox", id: "gs-console-force" });
    const box = el("div", { id: "gs-console-box" });
    const leave = el("button", { type: "button", id: "gs-console-leave", text: "Leave", disabled: true });
    const open = el("button", { type: "button", class: "primary", id: "gs-console-open", text: "Connect" });
    open.addEventListener("click", async () => {
      if (session) { session.close(); session.dispose(); session = null; }
      open.disabled = true;
      status.textContent = "connecting…";
      try {
        session = await openConsole(r, box, status, agent, g, force.checked);
        leave.disabled = false;
      } catch (e) {
        if (r.live) {
          status.textContent = e.code === "console_busy" ? "busy: " + e.message : errorText(e);
          status.dataset.code = e.code || "";
        }
      }
      open.disabled = false;
    });
    leave.addEventListener("click", () => { if (session) session.close(); leave.disabled = true; });
    consoleCard.hidden = false;
    clear(consoleCard).append(el("h2", { text: "Console of " + g.name }),
      el("p", { class: "muted", text: g.type === "vm" ? "The VM's serial console." : "tty 0 of the LXC guest." }),
      el("div", { class: "inline-form" }, open, el("label", {}, force, " Take over a session in use"), leave, status), box);
  }

  function showDetail(agent, g) {
    const actions = can("operator") ? el("div", { class: "actions", id: "gs-actions" }, ACTIONS.map((a) =>
      el("button", { type: "button", "data-action": a, class: a === "stop" ? "danger" : "", text: a,
        onclick: () => act(agent, g, a) })),
    el("button", { type: "button", id: "gs-console-show", text: "console", onclick: () => showConsole(agent, g) })) : null;
    const snapName = el("input", { id: "gs-snap-name", pattern: "[a-zA-Z0-9][a-zA-Z0-9_.\\-]{0,63}", required: true, placeholder: "before-upgrade" });
    const snapForm = can("operator") ? el("form", { class: "inline-form", id: "gs-snap-form" },
      el("label", {}, "New snapshot", snapName), el("button", { type: "submit", class: "primary", text: "Take" })) : null;
    if (snapForm) snapForm.addEventListener("submit", (ev) => { ev.preventDefault(); act(agent, g, "snapshot", { snapshot: snapName.value }); });
    const snaps = table(["Snapshot", "Taken", "Current", ""], (g.snapshots || []).map((s) => el("tr", { "data-snapshot": s.name },
      td("Snapshot", s.name), td("Taken", fmtTime(s.created)), td("Current", s.current ? "yes" : ""),
      td("", can("operator") ? el("span", {},
        el("button", { type: "button", "data-snap-action": "rollback", text: "roll back",
          onclick: () => { if (window.confirm("Roll " + g.name + " back to " + s.name + "?")) act(agent, g, "rollback", { snapshot: s.name }); } }),
        " ",
        el("button", { type: "button", class: "danger", "data-snap-action": "snapshot-delete", text: "delete",
          onclick: () => { if (window.confirm("Delete snapshot " + s.name + "?")) act(agent, g, "snapshot-delete", { snapshot: s.name }); } })) : ""))),
    { empty: "No snapshots." });
    const disks = table(["Target", "Source", "Format", "Size"], (g.disks || []).map((d) => el("tr", {},
      td("Target", d.target), td("Source", el("span", { class: "mono", text: d.source || "" })), td("Format", d.format || "—"),
      td("Size", fmtBytes(d.size_bytes)))), { empty: "No disks." });
    const nics = table(["MAC", "Network", "Addresses"], (g.nics || []).map((n) => el("tr", {},
      td("MAC", el("span", { class: "mono", text: n.mac || "—" })), td("Network", n.network || "—"),
      td("Addresses", (n.addresses || []).join(", ") || "—"))), { empty: "No NICs." });
    detail.hidden = false;
    clear(detail).append(el("h2", {}, g.name + " ", badge(g.state), el("span", { class: "badge", text: g.type })),
      ...[actions, actionOut].filter(Boolean),
      el("dl", { class: "kv" }, el("dt", { text: "vCPUs" }), el("dd", { text: String(g.vcpus ?? "—") }),
        el("dt", { text: "Memory" }), el("dd", { text: g.memory_mib ? g.memory_mib + " MiB" : "—" }),
        el("dt", { text: "Autostart" }), el("dd", { text: g.autostart ? "yes" : "no" })),
      el("h3", { text: "Snapshots" }), ...[snapForm].filter(Boolean), snaps,
      el("h3", { text: "Disks" }), disks, el("h3", { text: "NICs" }), nics);
  }

  async function refresh() {
    const data = sel.value === "all" ? (await get("/guests")).nodes : [await get("/agents/" + enc(sel.value) + "/guests")];
    r.check();
    lastData = data;
    clear(nodes).append(...data.filter((n) => nodeBadges(n).length).map((n) =>
      el("p", { class: "node-note", "data-node": n.hostname }, el("strong", { text: n.hostname }), " ", ...nodeBadges(n))));
    const rows = [];
    for (const n of data) for (const g of n.guests || []) {
      rows.push(el("tr", { "data-guest": g.name },
        td("Node", n.hostname),
        td("Name", el("a", { href: "#", class: "gs-open", text: g.name, onclick: (ev) => {
          ev.preventDefault(); current = { agent: n.agent, name: g.name }; showDetail(n.agent, g); } })),
        td("Type", g.type === "vm" ? "VM" : "LXC"),
        td("State", badge(g.state)),
        td("vCPUs", String(g.vcpus ?? "—")),
        td("Memory", g.memory_mib ? g.memory_mib + " MiB" : "—"),
        td("Snapshots", String((g.snapshots || []).length))));
    }
    clear(listBox).append(table(["Node", "Name", "Type", "State", "vCPUs", "Memory", "Snapshots"], rows,
      { empty: "No guests reported." }));
    if (current && !detail.contains(document.activeElement)) {
      const g = find(current.agent, current.name);
      if (g) showDetail(current.agent, g);
    }
  }
  await r.poll(refresh, 3000);
}
