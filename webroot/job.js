// job.js — one job: its status and exit code, and (operators) its output,
// followed live while it runs.
import { get } from "./api.js";
import { el, clear, fmtTime, badge, notice } from "./dom.js";
import { can } from "./ui.js";
import { exitText } from "./jobs.js";

const DONE = new Set(["done", "failed", "refused", "expired"]);
const OUTPUT_PAGE = 1000;     // chunks per request (the API's default)

// The node cuts its output wherever a read() ended, which may be inside
// a UTF-8 character: one streaming decoder per stream keeps the bytes of
// a partial character until the chunk that completes it.
export function outputDecoder() {
  const decoders = new Map();
  return {
    // Throws on data that is not base64 (the page shows the error).
    chunk(stream, b64) {
      let d = decoders.get(stream);
      if (!d) decoders.set(stream, d = new TextDecoder());
      const bin = atob(b64);
      const bytes = new Uint8Array(bin.length);
      for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
      return d.decode(bytes, { stream: true });
    },
    // The output is over: what is left of a cut character, as U+FFFD.
    *end() {
      for (const [stream, d] of decoders) {
        const rest = d.decode();
        if (rest) yield [stream, rest];
      }
    },
  };
}

export async function jobPage(r, id) {
  const head = el("div", { class: "card summary" });
  const pre = el("pre", { class: "output", id: "job-output" });
  r.page("Job " + id, head, can("operator") ? el("section", { class: "card" }, el("h2", { text: "Output" }), pre)
    : el("p", { class: "muted", text: "Job output is for operators and admins." }));
  const text = outputDecoder();
  let after = 0;

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

  const show = (stream, s) => { if (s) pre.append(el("span", { class: "stream-" + stream, text: s })); };

  // New output since the last call, page after page, in sequence order.
  async function drain() {
    for (;;) {
      const o = await get("/jobs/" + encodeURIComponent(id) + "/output?after=" + after + "&limit=" + OUTPUT_PAGE);
      r.check();
      const chunks = o.chunks || [];
      const atEnd = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 4;
      for (const c of chunks) {
        if (c.seq <= after) continue;
        after = c.seq;
        show(c.stream, text.chunk(c.stream, c.data));
      }
      if (atEnd) pre.scrollTop = pre.scrollHeight;    // follow, unless scrolled up
      if (chunks.length < OUTPUT_PAGE) return;
    }
  }

  // The job first, then its output: once it is seen finished, the output
  // read after it is complete. True (no more polling) once it is.
  async function refresh() {
    const j = await get("/jobs/" + encodeURIComponent(id));
    r.check();
    renderHead(j);
    const finished = DONE.has(j.status);
    if (can("operator")) {
      await drain();
      if (finished) for (const [stream, rest] of text.end()) show(stream, rest);
    }
    return finished;
  }
  await r.poll(refresh, 1000);
}
