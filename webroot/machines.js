// machines.js — the machines page: every machine, its state, and for the
// ones installing a progress bar; refreshed every 2 s with one request
// (the list carries the progress), never two at a time.
import { get } from "./api.js";
import { el, clear, fmtTime, fmtBytes, badge, table, td, progressBar } from "./dom.js";
import { ACTIVE } from "./ui.js";

const STATES = ["all", "discovering", "discovered", "queued", "installing", "installed", "active", "failed"];

function hardware(s) {
  return [s.cpu_threads ? s.cpu_threads + " CPU" : null, s.memory_bytes ? fmtBytes(s.memory_bytes) : null,
    s.disks ? s.disks + " disk" + (s.disks > 1 ? "s" : "") : null].filter(Boolean).join(" · ") || "—";
}

function progressOf(p) {
  const label = [p.stage, p.message].filter(Boolean).join(": ");
  return progressBar(p.percent, label);
}

export async function machinesPage(r) {
  const body = el("div");
  const filter = el("select", { id: "state-filter", "aria-label": "Filter by state" },
    STATES.map((s) => el("option", { value: s, text: s })));
  r.page("Machines", el("div", { class: "toolbar" }, el("label", { class: "inline" }, "State ", filter)), body);

  async function refresh() {
    const q = filter.value === "all" ? "" : "?state=" + encodeURIComponent(filter.value);
    const list = await get("/machines" + q);
    r.check();
    const rows = list.map((m) => el("tr", { "data-mac": m.mac },
      td("MAC", el("a", { href: "#/machine/" + encodeURIComponent(m.mac), class: "mono", text: m.mac })),
      td("State", badge(m.state), ACTIVE.has(m.state) && m.progress ? progressOf(m.progress) : null),
      td("Host name", m.hostname || "—"),
      td("IP", el("span", { class: "mono", text: m.ip || "—" })),
      td("Hardware", hardware(m.summary || {})),
      td("Last boot", fmtTime(m.last_boot_at))));
    clear(body).append(table(["MAC", "State", "Host name", "IP", "Hardware", "Last boot"], rows,
      { cls: "machines", empty: "No machines yet: PXE-boot one on the provisioning network." }));
  }
  // A filter change refreshes now, or right after the refresh in flight.
  filter.addEventListener("change", () => r.refresh());
  await r.poll(refresh, 2000);
}
