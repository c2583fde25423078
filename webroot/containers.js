// containers.js — the Docker containers of the nodes (DESIGN §12): a node
// selector (or all), the list with state and health from the agents'
// latest reports (stale and unreachable engines said so), one container's
// detail in tabs, actions for operators (signed jobs), a log viewer that
// draws only the lines in view (30,000 lines stay smooth) with the whole
// log as a download, and exec with its output streamed like a job's.
import { get, post } from "./api.js";
import { el, clear, fmtTime, fmtBytes, badge, table, td, notice } from "./dom.js";
import { can, errorText, state } from "./ui.js";
import { outputDecoder } from "./job.js";

const DONE = new Set(["done", "failed", "refused", "expired"]);
const ACTIONS = ["start", "stop", "restart", "pause", "unpause", "kill", "remove"];
const TABS = ["overview", "state", "stats", "ports", "networks", "mounts", "env", "labels", "logs", "exec"];
const LINE_PX = 18;            // one log line's height (style.css .logview)
const OUTPUT_PAGE = 1000;

const enc = encodeURIComponent;
const nodePath = (agent, ref) => "/agents/" + enc(agent) + "/containers" + (ref ? "/" + enc(ref) : "");

// What a node's report says beside its containers.
function nodeBadges(n) {
  const out = [];
  if (!n.engine) out.push(el("span", { class: "badge state-stale", text: "no report" }));
  else if (!n.engine.reachable) out.push(el("span", { class: "badge state-failed", title: n.engine.error || "",
    text: n.engine.present === false ? "no engine" : "unreachable" }));
  if (n.engine && n.stale) out.push(el("span", { class: "badge state-stale", text: "stale" }));
  return out;
}

// Follows job id: its output chunks, decoded, to onText(stream, text);
// resolves with the finished job. r: the route (stops with it).
async function followJob(r, id, onText) {
  const text = outputDecoder();
  let after = 0;
  for (;;) {
    const j = await get("/jobs/" + enc(id));
    r.check();
    const finished = DONE.has(j.status);
    for (;;) {
      const o = await get("/jobs/" + enc(id) + "/output?after=" + after + "&limit=" + OUTPUT_PAGE);
      r.check();
      for (const c of o.chunks || []) {
        if (c.seq <= after) continue;
        after = c.seq;
        onText(c.stream, text.chunk(c.stream, c.data));
      }
      if ((o.chunks || []).length < OUTPUT_PAGE) break;
    }
    if (finished) {
      for (const [stream, rest] of text.end()) onText(stream, rest);
      return j;
    }
    await new Promise((res) => setTimeout(res, 500));
  }
}

// A log viewer: the lines are kept in an array; only those in view are
// in the DOM, so 30,000 lines scroll as fast as 30.
function logViewer() {
  const lines = [];
  let partial = "";
  const inner = el("pre", { class: "logview-lines" });
  const spacer = el("div", { class: "logview-spacer" }, inner);
  const box = el("div", { class: "logview", id: "ct-logview", tabindex: 0 }, spacer);
  const count = el("span", { class: "muted", id: "ct-log-count", text: "0 lines" });
  let pending = false;
  let follow = true;             // keep the end in view (unless scrolled up)
  function draw() {
    pending = false;
    const total = lines.length + (partial ? 1 : 0);
    spacer.style.height = total * LINE_PX + "px";
    const first = Math.max(0, Math.floor(box.scrollTop / LINE_PX) - 20);
    const last = Math.min(total, first + Math.ceil(box.clientHeight / LINE_PX) + 40);
    inner.style.transform = "translateY(" + first * LINE_PX + "px)";
    const shown = lines.slice(first, last);
    if (partial && last === total) shown.push(partial);
    inner.textContent = shown.join("\n");
    count.textContent = lines.length + " lines";
    if (follow && box.scrollTop + box.clientHeight < box.scrollHeight - LINE_PX) {
      box.scrollTop = box.scrollHeight;
      pending = true;
      requestAnimationFrame(draw);
    }
  }
  // Drawn once per frame, however many chunks came in it.
  const later = () => { if (!pending) { pending = true; requestAnimationFrame(draw); } };
  box.addEventListener("scroll", () => {
    follow = box.scrollTop + box.clientHeight >= box.scrollHeight - LINE_PX;
    later();
  });
  return {
    box, count,
    add(text) {
      const parts = (partial + text).split("\n");
      partial = parts.pop();
      for (const p of parts) lines.push(p);
      later();
    },
    clear() { lines.length = 0; partial = ""; box.scrollTop = 0; follow = true; draw(); },
    text() { return lines.join("\n") + (lines.length ? "\n" : "") + partial; },
  };
}

function kv(rows) {
  return el("dl", { class: "kv" }, rows.filter(([, v]) => v !== undefined).map(([k, v]) =>
    [el("dt", { text: k }), el("dd", {}, v === null || v === "" ? "—" : v)]).flat());
}

function tabBody(tab, c) {
  const list = (a, headers, row, empty) => table(headers, (a || []).map(row), { empty });
  switch (tab) {
  case "overview":
    return kv([["Name", c.name], ["ID", el("span", { class: "mono", text: c.id })], ["Image", c.image],
      ["Command", el("span", { class: "mono", text: c.command || "" })], ["Created", fmtTime(c.created * 1000)],
      ["Node", c.hostname], ["Restart policy", c.restart_policy]]);
  case "state":
    return kv([["State", badge(c.state)], ["Status", c.status], ["Health", c.health || "—"],
      ["Started", fmtTime(c.started_at)], ["Finished", fmtTime(c.finished_at)],
      ["Exit code", String(c.exit_code)], ["Restarts", String(c.restart_count)],
      ["PID", String(c.pid)], ["OOM killed", c.oom_killed ? "yes" : "no"]]);
  case "stats":
    if (!c.stats) return el("p", { class: "muted", text: "No sample: the container is not running." });
    return kv([["CPU", c.stats.cpu_percent === null || c.stats.cpu_percent === undefined ? "— (next report)"
      : c.stats.cpu_percent.toFixed(1) + " %"], ["Memory", fmtBytes(c.stats.memory_bytes)],
      ["Memory limit", fmtBytes(c.stats.memory_limit_bytes)]]);
  case "ports":
    return list(c.ports, ["Address", "Public", "Private", "Protocol"], (p) => el("tr", {},
      td("Address", p.ip || "*"), td("Public", p.public_port ? String(p.public_port) : "—"),
      td("Private", String(p.private_port)), td("Protocol", p.type)), "No published ports.");
  case "networks":
    return list(c.networks, ["Network", "Address", "Gateway", "MAC"], (n) => el("tr", {},
      td("Network", n.name), td("Address", n.ip ? n.ip + "/" + n.prefix_len : "—"),
      td("Gateway", n.gateway || "—"), td("MAC", el("span", { class: "mono", text: n.mac || "—" }))), "No networks.");
  case "mounts":
    return list(c.mounts, ["Type", "Source", "Destination", "Mode"], (m) => el("tr", {},
      td("Type", m.type), td("Source", el("span", { class: "mono", text: m.name || m.source })),
      td("Destination", el("span", { class: "mono", text: m.destination })), td("Mode", m.rw ? "rw" : "ro")), "No mounts.");
  case "env":
    return el("div", {}, el("p", { class: "muted", text: "Secret-looking values are masked on the node." }),
      el("pre", { class: "output", id: "ct-env", text: (c.env || []).join("\n") || "—" }));
  case "labels":
    return list(Object.entries(c.labels || {}), ["Label", "Value"], ([k, v]) => el("tr", {},
      td("Label", el("span", { class: "mono", text: k })), td("Value", v)), "No labels.");
  }
  return null;
}

export async function containersPage(r, arg) {
  const agents = (await get("/agents")).filter((a) => !a.revoked);
  r.check();
  const sel = el("select", { id: "ct-node" }, el("option", { value: "all", text: "All nodes" }),
    agents.map((a) => el("option", { value: a.id, text: a.hostname || a.id })));
  sel.value = arg && agents.some((a) => a.id === arg) ? arg : "all";
  const nodes = el("div", { id: "ct-nodes", class: "node-badges" });
  const listBox = el("div", { id: "ct-list" });
  const detail = el("section", { class: "card", id: "ct-detail", hidden: true });
  r.page("Containers", el("div", { class: "inline-form" }, el("label", {}, "Node", sel)), nodes, listBox, detail);
  sel.addEventListener("change", () => { location.hash = "#/containers/" + enc(sel.value); });

  const actionOut = el("div", { id: "ct-action-out" });
  let current = null;            // { agent, id } shown in detail
  let tab = "overview";
  let lastData = [];

  function find(agent, ref) {
    const n = lastData.find((x) => x.agent_id === agent);
    return n && (n.containers || []).find((c) => c.id === ref);
  }

  async function act(agent, c, action, out) {
    clear(out);
    let headers;
    if (action === "remove") {
      if (state.settings && state.settings.production) {
        const typed = window.prompt("Production mode: type the container's name (" + c.name + ") to remove it");
        if (typed === null) return;
        if (typed.trim() !== c.name) { out.append(notice("\"" + typed.trim() + "\" is not " + c.name + ": nothing removed.")); return; }
        headers = { "X-Confirm": c.name };
      } else if (!window.confirm("Remove container " + c.name + "?")) return;
    }
    try {
      const job = await post(nodePath(agent, c.name) + "/" + action, undefined, headers);
      out.append(el("p", { class: "muted", id: "ct-action-status", text: action + ": job " + job.id + "…" }));
      const j = await followJob(r, job.id, () => {});
      clear(out).append(j.status === "done" ? notice(action + ": " + (j.error || "done"), "ok")
        : notice(action + " " + j.status + (j.error ? ": " + j.error : "")));
      r.refresh();
    } catch (e) {
      if (r.live) clear(out).append(notice(errorText(e)));
    }
  }

  function logsTab(agent, c) {
    const view = logViewer();
    const tail = el("input", { id: "ct-log-tail", type: "number", min: 0, value: 1000 });
    const follow = el("input", { id: "ct-log-follow", type: "checkbox" });
    const status = el("span", { class: "muted", id: "ct-log-status" });
    const dl = el("button", { type: "button", id: "ct-log-download", text: "Download log" });
    dl.addEventListener("click", () => {
      const url = URL.createObjectURL(new Blob([view.text()], { type: "text/plain" }));
      const a = el("a", { href: url, download: c.name + ".log" });
      document.body.append(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(url), 1000);
    });
    const form = el("form", { class: "inline-form", id: "ct-log-form" }, el("label", {}, "Last lines (0: all)", tail),
      el("label", {}, follow, " Follow"), el("button", { type: "submit", class: "primary", text: "Show" }), dl, status, view.count);
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      view.clear();
      const body = { follow: follow.checked };
      if (Number(tail.value) > 0) body.tail = Number(tail.value);
      try {
        const job = await post(nodePath(agent, c.name) + "/logs", body);
        status.textContent = "reading (job " + job.id + ")";
        const j = await followJob(r, job.id, (stream, s) => view.add(s));
        status.textContent = j.status === "done" ? "complete" : j.status + (j.error ? ": " + j.error : "");
      } catch (e) { if (r.live) status.textContent = errorText(e); }
    });
    return el("div", {}, can("operator") ? form : el("p", { class: "muted", text: "Logs are for operators and admins." }), view.box);
  }

  function execTab(agent, c) {
    if (!can("operator")) return el("p", { class: "muted", text: "exec is for operators and admins." });
    const cmd = el("input", { id: "ct-exec-command", class: "mono", required: true, placeholder: "ls -l /" });
    const pre = el("pre", { class: "output", id: "ct-exec-output" });
    const exit = el("p", { id: "ct-exec-exit", class: "muted" });
    const form = el("form", { class: "inline-form", id: "ct-exec-form" }, el("label", {}, "Command (/bin/sh -c in the container)", cmd),
      el("button", { type: "submit", class: "primary", text: "Run" }));
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      clear(pre);
      exit.textContent = "running…";
      try {
        const job = await post(nodePath(agent, c.name) + "/exec", { argv: ["/bin/sh", "-c", cmd.value] });
        const j = await followJob(r, job.id, (stream, s) => { if (s) pre.append(el("span", { class: "stream-" + stream, text: s })); });
        exit.textContent = j.exit_code !== null && j.exit_code !== undefined ? "exit code " + j.exit_code : j.status + (j.error ? ": " + j.error : "");
      } catch (e) { if (r.live) exit.textContent = errorText(e); }
    });
    return el("div", {}, form, pre, exit);
  }

  // The detail card: tabs, actions; logs and exec keep their state while
  // the list refreshes (only the data tabs are redrawn).
  function showDetail(agent, c, keepTool) {
    const out = actionOut;
    const tabs = el("div", { class: "tabs", role: "tablist" }, TABS.map((t) => el("button", {
      type: "button", role: "tab", "data-tab": t, class: t === tab ? "current" : "", text: t,
      onclick: () => { tab = t; showDetail(agent, find(agent, c.id) || c, false); } })));
    const actions = can("operator") ? el("div", { class: "actions", id: "ct-actions" }, ACTIONS.map((a) =>
      el("button", { type: "button", "data-action": a, class: a === "remove" || a === "kill" ? "danger" : "",
        text: a, onclick: () => act(agent, c, a, out) }))) : null;
    const body = tab === "logs" ? logsTab(agent, c) : tab === "exec" ? execTab(agent, c) : tabBody(tab, c);
    if (keepTool && (tab === "logs" || tab === "exec")) return;
    detail.hidden = false;
    clear(detail).append(...[el("h2", {}, c.name + " ", badge(c.state), c.health ? el("span", { class: "badge", text: c.health }) : null),
      actions, out, tabs, el("div", { id: "ct-tab" }, body)].filter(Boolean));
  }

  async function refresh() {
    const data = sel.value === "all" ? await get("/containers") : [await get(nodePath(sel.value))];
    r.check();
    lastData = data;
    clear(nodes).append(...data.filter((n) => nodeBadges(n).length).map((n) =>
      el("p", { class: "node-note", "data-node": n.hostname }, el("strong", { text: n.hostname }), " ", ...nodeBadges(n),
        n.engine && !n.engine.reachable && n.engine.error ? el("span", { class: "muted", text: " " + n.engine.error }) : null,
        n.engine && n.stale && n.age_s !== null ? el("span", { class: "muted", text: " report " + n.age_s + " s old" }) : null)));
    const rows = [];
    for (const n of data) for (const c of n.containers || []) {
      rows.push(el("tr", { "data-container": c.name },
        td("Node", n.hostname),
        td("Name", el("a", { href: "#", class: "ct-open", text: c.name, onclick: (ev) => {
          ev.preventDefault(); current = { agent: n.agent_id, id: c.id }; tab = "overview"; showDetail(n.agent_id, c, false); } })),
        td("Image", el("span", { class: "mono", text: c.image })),
        td("State", badge(c.state)),
        td("Health", c.health || "—"),
        td("Status", c.status),
        td("CPU", c.stats && typeof c.stats.cpu_percent === "number" ? c.stats.cpu_percent.toFixed(1) + " %" : "—"),
        td("Memory", c.stats ? fmtBytes(c.stats.memory_bytes) : "—")));
    }
    clear(listBox).append(table(["Node", "Name", "Image", "State", "Health", "Status", "CPU", "Memory"], rows,
      { empty: "No containers reported." }));
    if (current) {
      const c = find(current.agent, current.id);
      if (c) showDetail(current.agent, c, true);
    }
  }
  await r.poll(refresh, 3000);
}
