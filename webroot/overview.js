// overview.js — the fleet at a glance, the panel's first page: nodes by
// attention level with their reasons, open alerts, silences in force and
// the channels' delivery health (DESIGN §14). Refreshed every 5 s.
import { get, ApiError } from "./api.js";
import { el, clear, fmtTime, badge, table, td } from "./dom.js";

const LEVELS = ["critical", "warning", "ok"];

function reasonList(reasons) {
  if (!reasons.length) return "—";
  return el("ul", { class: "reasons" }, reasons.map((x) => el("li", {},
    badge(x.level), " ", el("span", { class: "mono", text: x.reason + (x.subject ? " " + x.subject : "") }),
    el("span", { class: "muted", text: " — " + x.message }))));
}

function nodesTable(nodes) {
  const order = (n) => LEVELS.indexOf(n.level);
  const rows = nodes.slice().sort((a, b) => order(a) - order(b) || a.node.localeCompare(b.node))
    .map((n) => el("tr", { "data-node": n.node, "data-level": n.level },
      td("Node", n.mac ? el("a", { href: "#/machine/" + encodeURIComponent(n.mac), text: n.node }) : n.node),
      td("Level", badge(n.level)),
      td("Reasons", reasonList(n.reasons)),
      td("Last heartbeat", fmtTime(n.heartbeat_at))));
  return table(["Node", "Level", "Reasons", "Last heartbeat"], rows,
    { cls: "attention", empty: "No agents enrolled yet." });
}

function alertsTable(alerts) {
  const rows = alerts.map((a) => el("tr", { "data-alert": String(a.id) },
    td("Node", a.node),
    td("Reason", el("span", { class: "mono", text: a.reason + (a.subject ? " " + a.subject : "") })),
    td("Level", badge(a.level)),
    td("Opened", fmtTime(a.opened_at)),
    td("Message", a.message)));
  return table(["Node", "Reason", "Level", "Opened", "Message"], rows,
    { cls: "alerts", empty: "No open alerts." });
}

function silencesTable(list) {
  const rows = list.map((s) => el("tr", {},
    td("Node", s.node), td("Reason", el("span", { class: "mono", text: s.reason })),
    td("Until", fmtTime(s.until)), td("By", s.actor || "—")));
  return table(["Node", "Reason", "Until", "By"], rows, { cls: "silences", empty: "No silences." });
}

function channelsTable(list) {
  const rows = list.map((c) => {
    const last = c.last_delivery;
    return el("tr", { "data-channel": c.name },
      td("Channel", c.name), td("Type", c.type), td("Min level", c.min_level),
      td("Delivered", String(c.delivered)), td("Failed", String(c.failed)),
      td("Last", last ? el("span", {}, badge(last.result === "ok" ? "ok" : "error"), " ",
        fmtTime(last.time), last.error ? el("span", { class: "muted", text: " " + last.error }) : null) : "—"));
  });
  return table(["Channel", "Type", "Min level", "Delivered", "Failed", "Last"], rows,
    { cls: "channels", empty: "No channels configured ([channel NAME] in bastion.conf)." });
}

export async function overviewPage(r) {
  const counts = el("div", { class: "counts", id: "attention-counts" });
  const nodes = el("section", { id: "overview-nodes" });
  const alerts = el("section", { id: "overview-alerts" });
  const silences = el("section", { id: "overview-silences" });
  const channels = el("section", { id: "overview-channels" });
  r.page("Fleet overview", counts,
    el("h2", { text: "Nodes" }), nodes,
    el("h2", { text: "Open alerts" }), alerts,
    el("h2", { text: "Silences" }), silences,
    el("h2", { text: "Channels" }), channels);

  async function refresh() {
    const [att, open, sil] = await Promise.all([get("/attention?all=1"), get("/alerts?state=open"), get("/silences")]);
    // Channels are for operators and admins; a viewer sees why not.
    let chans = null;
    try { chans = await get("/channels"); }
    catch (e) { if (!(e instanceof ApiError && e.status === 403)) throw e; }
    r.check();
    clear(counts).append(...LEVELS.map((l) => el("span", { class: "count", "data-level": l },
      badge(l), " ", el("strong", { text: String(att.filter((n) => n.level === l).length) }))));
    clear(nodes).append(nodesTable(att));
    clear(alerts).append(alertsTable(open));
    clear(silences).append(silencesTable(sil));
    clear(channels).append(chans ? channelsTable(chans) : el("p", { class: "muted", text: "Channels are shown to operators and admins." }));
  }
  await r.poll(refresh, 5000);
}
