// jobs.mjs — the jobs page against a real bastion and a real enrolled
// agentd (tests/integration/test_panel.py starts both): an operator runs a
// command whose output comes over time and sees it arrive live, with its
// exit code; an admin finds the job in the audit log and, in production
// mode, has to name the node to run one; a viewer gets no form and is
// refused when forcing a request; a node that stops heartbeating is
// shown stale on the agents page.
// Environment: BASE, ARTIFACTS, OPERATOR, VIEWER, ADMIN ("name:password"),
// NODE (the agent's host name), AGENT (its id).
import { openBrowser, cred, check, log, step } from "./lib.mjs";

const BASE = process.env.BASE;
const NODE = process.env.NODE;
const AGENT = process.env.AGENT;
const [OP, OP_PW] = cred(process.env.OPERATOR);
const [VW, VW_PW] = cred(process.env.VIEWER);
const [AD, AD_PW] = cred(process.env.ADMIN);
// The € (e2 82 ac) is cut in two by the sleep: its first two bytes come
// in one chunk, the last in the next.
const COMMAND = "echo first; printf '\\342\\202'; sleep 2; printf '\\254 second\\n'; exit 3";

const b = await openBrowser(BASE, process.env.ARTIFACTS);
const { newPage, go, login, shot } = b;
const output = (page) => page.textContent("#job-output");

// Chooses the node, types the command, runs it: the job's page opens.
async function runCommand(page, command, shotName) {
  await page.click("#nav a[data-page=jobs]");
  await page.waitForSelector("#job-form");
  const label = await page.textContent(`#job-target option[value="${AGENT}"]`);
  check(label.includes(NODE), "the node is offered by name: " + label);
  await page.selectOption("#job-target", AGENT);
  await page.fill("#job-command", command);
  if (shotName) await shot(page, shotName);
  await page.click("#job-form button[type=submit]");
}

await b.run(async () => {
  // 1. The operator runs a command on the node and watches it.
  let { ctx, page } = await newPage();
  await login(page, OP, OP_PW);
  await runCommand(page, COMMAND, "01-jobs-form-operator.png");
  await page.waitForURL(/#\/job\/\d+$/);
  const jobId = page.url().split("/").pop();
  // Live: the first line is on the page while the command still sleeps,
  // before the second line exists anywhere.
  await page.waitForFunction(() => (document.getElementById("job-output") || {}).textContent?.includes("first"),
    null, { timeout: 10000, polling: 50 });
  const early = await output(page);
  const earlyStatus = await page.textContent(".summary .badge");
  check(!early.includes("second"), "first is shown before second exists: " + JSON.stringify(early));
  // (The page reads the job before its output, so under load it may
  // still say "queued" or "sent" next to output that came after.)
  check(["queued", "sent", "running"].includes(earlyStatus), "the job is not over while first is shown: " + earlyStatus);
  check(await page.locator("#job-exit").count() === 0, "no exit code while it runs");
  await shot(page, "02-job-streaming.png");
  await page.waitForSelector("#job-exit:has-text('exit code 3')", { timeout: 20000 });
  check((await output(page)) === "first\n€ second\n", "the whole output, once, the cut € whole: " + JSON.stringify(await output(page)));
  check((await page.textContent(".summary .badge")) === "done", "the job is done");
  await shot(page, "03-job-done.png");
  // The list shows it, with its exit code.
  await page.click("#nav a[data-page=jobs]");
  const row = page.locator(`tr[data-job="${jobId}"]`);
  await row.waitFor();
  check((await row.textContent()).includes("exit 3"), "the list shows exit 3");
  check((await row.textContent()).includes(NODE), "the list names the node");
  await shot(page, "04-jobs-list.png");
  await ctx.close();

  // 2. A viewer: no form, no output, and a forced request is refused.
  ({ ctx, page } = await newPage());
  await login(page, VW, VW_PW);
  await page.click("#nav a[data-page=jobs]");
  await page.waitForSelector(`tr[data-job="${jobId}"]`);
  check(await page.locator("#job-form, #job-form-note, main form, main button").count() === 0, "viewer sees no run form");
  await shot(page, "05-jobs-viewer.png");
  await go(page, BASE + "/#/job/" + jobId);
  await page.waitForSelector(".summary .badge");
  check(await page.locator("#job-output").count() === 0, "viewer sees no output");
  const forced = await page.evaluate(async (agent) => {
    const me = await (await fetch("/api/v1/session")).json();
    const r = await fetch("/api/v1/jobs", { method: "POST", headers: { "Content-Type": "application/json",
      "X-CSRF-Token": me.csrf_token, "X-Confirm": agent },
      body: JSON.stringify({ target: agent, kind: "exec", args: { argv: ["id"] } }) });
    return [r.status, r.headers.get("content-type"), (await r.json()).error.code];
  }, AGENT);
  log("viewer's forced job: " + forced.join(" "));
  check(forced[0] === 403 && forced[1].startsWith("application/json") && forced[2] === "forbidden",
    "viewer's forced job refused: " + forced.join(" "));
  await ctx.close();

  // 3. The admin finds the job in the audit log.
  ({ ctx, page } = await newPage());
  await login(page, AD, AD_PW);
  const auditRow = (await b.auditRows(page, "job.create")).and(page.locator(".result-ok"))
    .filter({ hasText: "user: " + OP });
  await auditRow.first().waitFor();
  check((await auditRow.first().textContent()).includes("job.create"), "audit row names the action");
  await shot(page, "06-audit-job-create.png");

  // 4. Production mode: the admin turns it on; running a command now
  // needs the node's name typed again, and a wrong name runs nothing.
  await page.click("#nav a[data-page=settings]");
  await page.check("#setting-production");
  await page.waitForSelector("#banner:has-text('Production mode')");
  const answers = ["not-the-node", NODE];
  const prompts = [];
  page.on("dialog", async (d) => { prompts.push(d.message()); await d.accept(answers.shift()); });
  await runCommand(page, "echo production");
  await page.waitForSelector("#job-form .notice.error:has-text('does not name')");
  check(page.url().endsWith("#/jobs"), "a wrong confirmation runs nothing");
  await shot(page, "07-jobs-production-refused.png");
  await page.click("#job-form button[type=submit]");
  await page.waitForURL(/#\/job\/\d+$/);
  await page.waitForSelector("#job-exit:has-text('exit code 0')", { timeout: 20000 });
  check((await output(page)) === "production\n", "the confirmed command ran");
  check(prompts.length === 2 && prompts.every((m) => m.includes(NODE)), "the prompts name the node: " + prompts.join(" | "));
  await shot(page, "08-job-production-admin.png");
  await ctx.close();

  // 5. An operator in production mode: no form, a note why.
  ({ ctx, page } = await newPage());
  await login(page, OP, OP_PW);
  await page.click("#nav a[data-page=jobs]");
  await page.waitForSelector("#job-form-note:has-text('only admins')");
  check(await page.locator("#job-form").count() === 0, "no form for an operator in production mode");
  await ctx.close();

  // 6. The agents page: the node is enrolled; once it misses three
  // heartbeats (the test ages it in the database) it is shown stale.
  ({ ctx, page } = await newPage());
  await login(page, VW, VW_PW);
  const status = async () => {
    await page.click("#nav a[data-page=agents]");
    const r = page.locator("table.data tbody tr").filter({ hasText: NODE });
    await r.waitFor();
    return r.locator(".badge").textContent();
  };
  check((await status()) === "enrolled", "the node is enrolled");
  await step("silence");
  await page.click("#nav a[data-page=machines]");
  check((await status()) === "stale", "the silent node is stale");
  await shot(page, "09-agents-stale.png");
  await ctx.close();

  return jobId + " " + forced.join(" ");
});
