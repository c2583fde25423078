// jobs.js — jobs on agents: the list, a form to run a command on a node
// (operators; admins only in production mode, with a confirmation that
// names the node), and one job's output, followed live while it runs.
import { get, post } from "./api.js";
import { el, clear, fmtTime, badge, table, td, notice } from "./dom.js";

const DONE = new Set(["done", "failed", "refused", "expired"]);
const OUTPUT_PAGE = 1000;     // chunks per request (the API's default)

function decode(b64) {
  try {
    const bin = atob(b64);
    const bytes = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
    return new TextDecoder().decode(bytes);
  } catch (e) { return ""; }
}

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

function runForm(ui, agents) {
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
    if (ui.settings() && ui.settings().production) {
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
    } catch (e) { out.append(notice(ui.errorText(e))); }
  });
  return form;
}

// The form, or why there is none, for this user and these switches.
async function runCard(ui) {
  const s = ui.settings() || {};
  if (!ui.can("operator") || s.read_only) return null;
  if (s.production && !ui.can("admin")) {
    return el("p", { class: "notice info", id: "job-form-note", text: "Production mode: only admins run commands on nodes." });
  }
  const agents = (await get("/agents")).filter((a) => !a.revoked);
  if (!agents.length) {
    return el("p", { class: "muted", id: "job-form-note", text: "No enrolled agents to run a command on." });
  }
  return runForm(ui, agents);
}

const exitText = (j) => j.exit_code !== null && j.exit_code !== undefined ? "exit " + j.exit_code : "";

export async function jobsPage(ui) {
  const list = el("div");
  ui.page("Jobs", await runCard(ui), list);
  async function load() {
    const jobs = await get("/jobs?limit=100");
    clear(list).append(table(["Id", "Target", "Kind", "Status", "By", "Created"], jobs.map((j) => el("tr", { "data-job": j.id },
      td("Id", el("a", { href: "#/job/" + encodeURIComponent(j.id), text: String(j.id) })),
      td("Target", j.hostname || j.agent_id || "—"),
      td("Kind", j.kind + (j.args && j.args.argv ? ": " + j.args.argv.join(" ") : "")),
      td("Status", badge(j.status), exitText(j) ? " " + exitText(j) : ""),
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
  let after = 0, busy = false, finished = false;

  function renderHead(j) {
    const extra = [j.signal ? "signal " + j.signal : null, j.timed_out ? "timed out" : null].filter(Boolean).join(" · ");
    // el() skips a null child; DOM append() would print it as "null".
    clear(head).append(...[el("div", { class: "summary-row" }, badge(j.status),
      el("strong", { text: j.hostname || j.agent_id }), el("span", { class: "mono", text: j.mac || "" }),
      exitText(j) ? el("span", { id: "job-exit", class: "exit " + (j.exit_code === 0 ? "exit-ok" : "exit-bad"),
        text: "exit code " + j.exit_code }) : null,
      extra ? el("span", { class: "muted", text: extra }) : null),
      el("p", { class: "mono", text: j.kind + (j.args && j.args.argv ? ": " + j.args.argv.join(" ") : "") }),
      el("p", { class: "muted", text: "By " + (j.created_by || "—") + " · created " + fmtTime(j.created_at) +
        (j.started_at ? " · started " + fmtTime(j.started_at) : "") +
        (j.finished_at ? " · finished " + fmtTime(j.finished_at) : "") }),
      j.error ? notice(j.error) : null].filter(Boolean));
  }

  // New output since the last call, page after page, in sequence order.
  async function drain() {
    for (;;) {
      const o = await get("/jobs/" + encodeURIComponent(id) + "/output?after=" + after + "&limit=" + OUTPUT_PAGE);
      const chunks = o.chunks || [];
      const atEnd = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 4;
      for (const c of chunks) {
        if (c.seq <= after) continue;
        after = c.seq;
        pre.append(el("span", { class: "stream-" + c.stream, text: decode(c.data) }));
      }
      if (atEnd) pre.scrollTop = pre.scrollHeight;    // follow, unless scrolled up
      if (chunks.length < OUTPUT_PAGE) return;
    }
  }

  // The job first, then its output: once it is seen finished, the output
  // read after it is complete.
  async function refresh() {
    if (busy || finished) return finished;
    busy = true;
    try {
      const j = await get("/jobs/" + encodeURIComponent(id));
      renderHead(j);
      if (ui.can("operator")) await drain();
      finished = DONE.has(j.status);
      return finished;
    } finally { busy = false; }
  }
  if (!(await refresh())) {
    ui.poll(async () => { if (await refresh()) ui.stop(); }, 1000);
  }
}
