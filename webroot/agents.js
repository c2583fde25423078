// agents.js — the enrolled node agents: heartbeat, certificate, status.
import { get } from "./api.js";
import { el, fmtTime, badge, table, td } from "./dom.js";

export async function agentsPage(r) {
  const list = await get("/agents");
  const soon = Date.now() + 7 * 86400e3;
  const rows = list.map((a) => el("tr", {},
    td("Agent", el("span", { class: "mono", text: a.id })),
    td("Host name", a.hostname || "—"),
    td("MAC", el("span", { class: "mono", text: a.mac || "—" })),
    td("Last heartbeat", fmtTime(a.last_heartbeat_at)),
    td("Certificate expires", el("span", { class: a.cert_expires_at && new Date(a.cert_expires_at) < soon ? "warn" : "", text: fmtTime(a.cert_expires_at) })),
    td("Status", badge(a.revoked ? "revoked" : a.stale ? "stale" : "enrolled"))));
  // page() renders only while this route is on screen.
  r.page("Agents", table(["Agent", "Host name", "MAC", "Last heartbeat", "Certificate expires", "Status"], rows,
    { empty: "No agents enrolled." }));
}
