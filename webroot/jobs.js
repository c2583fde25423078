// jobs.js — jobs on agents: the list, a form to run a command on a node
// (operators), and one job's output, followed live.
import { get, post } from "./api.js";
import { el, clear, fmtTime, badge, table, td, notice } from "./dom.js";

const DONE = new Set(["done", "failed", "refused", "expired"]);

function decode(b64) {
  try {
    const bin = atob(b64);
    const bytes = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
    return new TextDecoder().decode(bytes);
  } catch (e) { return ""; }
}

function runForm(ui) {
  const out = el("div");
  const target = el("input", { id: "job-target", required: true, placeholder: "agent id, host name or MAC" });
  const cmd = el("input", { id: "job-command", required: true, placeholder: "uptime", class: "mono" });
  const timeout = el("input", { id: "job-timeout", type: "number", min: 1, max: 604800, value: 600 });
  const form = el("form", { class: "card inline-form", id: "job-form" }, el("h2", { text: "Run a command" }),
    el("label", {}, "Target", target), el("label", {}, "Command (/bin/sh -c)", cmd),
    el("label", {}, "Timeout (s)", timeout), el("button", { type: "submit", class: "primary", text: "Run" }), out);
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    clear(out);
    const t = target.value.trim();
    let headers;
    if (ui.settings() && ui.settings().production) {
      const typed = window.prompt("Production mode: type the target again to run this command on it");
      if (typed === null) return;
      headers = { "X-Confirm": typed.trim() };
    }
    try {
      const job = await post("/jobs", { target: t, kind: "exec",
        args: { argv: [cmd.value], shell: true, timeout: Number(timeout.value) || 600 } }, headers);
      location.hash = "#/job/" + encodeURIComponent(job.id);
    } catch (e) { out.append(notice(ui.errorText(e))); }
  });
  return form;
}

export async function jobsPage(ui) {
  const list = el("div");
  ui.page("Jobs", ui.can("operator") && !(ui.settings() && ui.settings().read_only) ? runForm(ui) : null, list);
  async function load() {
    const jobs = await get("/jobs?limit=100");
    clear(list).append(table(["Id", "Target", "Kind", "Status", "By", "Created"], jobs.map((j) => el("tr", {},
      td("Id", el("a", { href: "#/job/" + encodeURIComponent(j.id), text: String(j.id) })),
      td("Target", j.hostname || j.agent_id || "—"),
      td("Kind", j.kind + (j.args && j.args.argv ? ": " + j.args.argv.join(" ") : "")),
      td("Status", badge(j.status), j.exit_code !== null && j.exit_code !== undefined ? " exit " + j.exit_code : ""),
      td("By", j.created_by || "—"), td("Created", fmtTime(j.created_at)))), { empty: "No jobs yet." }));
  }
  await load();
  ui.poll(load, 5000);
}

export async function jobPage(ui, id) {
  const head = el("div", { class: "card summary" });
  const pre = el("pre", { class: "output", id: "job-output" });
  ui.page("Job " + id, head, ui.can("operator") ? el("section", { class: "card" }, el("h2", { text: "Output" }), pre)
    : el("p", { class: "muted", text: "Job output is for operators and admins." }));
  let after = 0;
  async function refresh() {
    const j = await get("/jobs/" + encodeURIComponent(id));
    clear(head).append(el("div", { class: "summary-row" }, badge(j.status),
      el("strong", { text: j.hostname || j.agent_id }), el("span", { class: "mono", text: j.mac || "" })),
      el("p", { class: "mono", text: j.kind + (j.args && j.args.argv ? ": " + j.args.argv.join(" ") : "") }),
      el("p", { class: "muted", text: "By " + (j.created_by || "—") + " · created " + fmtTime(j.created_at) +
        (j.finished_at ? " · finished " + fmtTime(j.finished_at) : "") +
        (j.exit_code !== null && j.exit_code !== undefined ? " · exit code " + j.exit_code : "") +
        (j.signal ? " · signal " + j.signal : "") + (j.timed_out ? " · timed out" : "") }),
      j.error ? notice(j.error) : null);
    if (ui.can("operator")) {
      const o = await get("/jobs/" + encodeURIComponent(id) + "/output?after=" + after);
      for (const c of o.chunks || []) {
        after = Math.max(after, c.seq);
        pre.append(el("span", { class: "stream-" + c.stream, text: decode(c.data) }));
      }
    }
    return DONE.has(j.status);
  }
  if (!(await refresh())) {
    ui.poll(async () => { if (await refresh()) ui.stop(); }, 1000);
  }
}
