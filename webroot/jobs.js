// jobs.js — jobs on agents: the list, and a form to run a command on a
// node (operators; admins only in production mode, with a confirmation
// that names the node). One job's page is job.js.
import { get, post } from "./api.js";
import { el, clear, fmtTime, badge, table, td, notice } from "./dom.js";
import { can, errorText, state } from "./ui.js";

const agentLabel = (a) => (a.hostname || a.id) + (a.mac ? " (" + a.mac + ")" : "");
const macKey = (s) => String(s || "").toLowerCase().replace(/[^0-9a-f]/g, "");

// Whether what was typed names this agent: its host name, id or MAC (any
// spelling), as the API takes for a target.
function names(a, typed) {
  const t = typed.trim();
  if (!t) return false;
  if (t === a.id || (a.hostname && t.toLowerCase() === a.hostname.toLowerCase())) return true;
  return !!a.mac && macKey(t).length === 12 && macKey(t) === macKey(a.mac);
}

function runForm(agents) {
  const out = el("div");
  const target = el("select", { id: "job-target", required: true },
    agents.map((a) => el("option", { value: a.id, text: agentLabel(a) })));
  const cmd = el("input", { id: "job-command", required: true, placeholder: "uptime", class: "mono" });
  const timeout = el("input", { id: "job-timeout", type: "number", min: 1, max: 604800, value: 600 });
  const form = el("form", { class: "card inline-form", id: "job-form" }, el("h2", { text: "Run a command" }),
    el("label", {}, "Node", target), el("label", {}, "Command (/bin/sh -c)", cmd),
    el("label", {}, "Timeout (s)", timeout), el("button", { type: "submit", class: "primary", text: "Run" }), out);
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    clear(out);
    const a = agents.find((x) => x.id === target.value);
    if (!a) return;
    let headers;
    if (state.settings && state.settings.production) {
      // The API wants X-Confirm to repeat the target; the operator
      // proves they mean this node by typing its name.
      const typed = window.prompt("Production mode: type the host name or MAC of " + agentLabel(a) +
        " to run this command on it");
      if (typed === null) return;
      if (!names(a, typed)) {
        out.append(notice("\"" + typed.trim() + "\" does not name " + agentLabel(a) + ": nothing was run."));
        return;
      }
      headers = { "X-Confirm": a.id };
    }
    try {
      const job = await post("/jobs", { target: a.id, kind: "exec",
        args: { argv: [cmd.value], shell: true, timeout: Number(timeout.value) || 600 } }, headers);
      location.hash = "#/job/" + encodeURIComponent(job.id);
    } catch (e) { out.append(notice(errorText(e))); }
  });
  return form;
}

// The form, or why there is none, for this user and these switches.
async function runCard(r) {
  const s = state.settings || {};
  if (!can("operator") || s.read_only) return null;
  if (s.production && !can("admin")) {
    return el("p", { class: "notice info", id: "job-form-note", text: "Production mode: only admins run commands on nodes." });
  }
  const agents = (await get("/agents")).filter((a) => !a.revoked);
  r.check();
  if (!agents.length) {
    return el("p", { class: "muted", id: "job-form-note", text: "No enrolled agents to run a command on." });
  }
  return runForm(agents);
}

export const exitText = (j) => j.exit_code !== null && j.exit_code !== undefined ? "exit " + j.exit_code : "";

export async function jobsPage(r) {
  const list = el("div");
  r.page("Jobs", await runCard(r), list);
  async function load() {
    const jobs = await get("/jobs?limit=100");
    r.check();
    clear(list).append(table(["Id", "Target", "Kind", "Status", "By", "Created"], jobs.map((j) => el("tr", { "data-job": j.id },
      td("Id", el("a", { href: "#/job/" + encodeURIComponent(j.id), text: String(j.id) })),
      td("Target", j.hostname || j.agent_id || "—"),
      td("Kind", j.kind + (j.args && j.args.argv ? ": " + j.args.argv.join(" ") : "")),
      td("Status", badge(j.status), exitText(j) ? " " + exitText(j) : ""),
      td("By", j.created_by || "—"), td("Created", fmtTime(j.created_at)))), { empty: "No jobs yet." }));
  }
  await r.poll(load, 5000);
}
