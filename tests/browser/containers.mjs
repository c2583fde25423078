// containers.mjs — the Containers page against a real bastion, a real
// agentd and a real Docker engine (tests/integration/test_containers.py
// starts them): the list with state and node, a node whose engine cannot
// be reached badged so, a detail tab, stop and start acting on the real
// engine (the Python side checks it at each STEP), a log viewer that
// stays responsive with 30,000 lines and downloads the whole log, exec
// output streamed with its exit code, and a viewer who sees no actions.
// Environment: BASE, ARTIFACTS, OPERATOR, VIEWER, ADMIN, NODE, BADNODE.
import fs from "node:fs";
import { openBrowser, cred, check, log, step } from "./lib.mjs";

const BASE = process.env.BASE;
const NODE = process.env.NODE;
const BADNODE = process.env.BADNODE;
const [OP, OP_PW] = cred(process.env.OPERATOR);
const [VW, VW_PW] = cred(process.env.VIEWER);

const b = await openBrowser(BASE, process.env.ARTIFACTS);
const { newPage, go, login, shot } = b;

async function openContainers(page) {
  await page.click("#nav a[data-page=containers]");
  await page.waitForSelector("#ct-list tr[data-container=web1]");
}

async function openDetail(page, name) {
  await page.click(`#ct-list tr[data-container=${name}] a.ct-open`);
  await page.waitForSelector("#ct-detail:not([hidden]) h2");
}

const stateCell = (page, name) => page.textContent(`#ct-list tr[data-container=${name}] td[data-label=State]`);

await b.run(async () => {
  let { ctx, page } = await newPage();
  await login(page, OP, OP_PW);
  await openContainers(page);
  // 1. The list: every container with its node and state; the node whose
  // engine is not reachable is badged, not shown as empty.
  check((await stateCell(page, "web1")) === "running", "web1 running");
  check((await stateCell(page, "idle1")) === "created", "idle1 created");
  check((await page.textContent("#ct-list tr[data-container=web1] td[data-label=Node]")) === NODE, "node named");
  const note = await page.textContent(`#ct-nodes p[data-node=${BADNODE}]`);
  check(/unreachable/.test(note), "the bad node's engine is unreachable: " + note);
  await shot(page, "01-containers-list.png");
  // The node selector narrows the list to one node.
  const agentId = await page.evaluate((n) => [...document.querySelectorAll("#ct-node option")]
    .find((o) => o.textContent === n).value, NODE);
  await page.selectOption("#ct-node", agentId);
  await page.waitForURL(/#\/containers\/.+/);
  // The list of "all" is still on the page until the new one is drawn:
  // wait for the other node's note to go, then for this node's rows.
  await page.waitForSelector(`#ct-nodes p[data-node=${BADNODE}]`, { state: "detached" });
  await page.waitForSelector("#ct-list tr[data-container=web1]");
  check(await page.locator(`#ct-nodes p[data-node=${BADNODE}]`).count() === 0, "one node only");

  // 2. Detail tabs: env is masked, state says running.
  await openDetail(page, "web1");
  await page.click("#ct-detail button[data-tab=env]");
  const env = await page.textContent("#ct-env");
  check(env.includes("DB_PASSWORD=********") && env.includes("PLAIN=visible"), "env masked: " + env);
  await page.click("#ct-detail button[data-tab=state]");
  await page.waitForSelector("#ct-tab dl.kv");
  check((await page.textContent("#ct-tab dl.kv")).includes("running"), "state tab");
  await shot(page, "02-container-state.png");

  // 3. stop, then start: the real engine follows (checked by Python).
  await page.click("#ct-actions button[data-action=stop]");
  await page.waitForSelector("#ct-action-out .notice.ok", { timeout: 30000 });
  await page.waitForFunction(() => document.querySelector("#ct-list tr[data-container=web1] td[data-label=State]")
    ?.textContent === "exited", null, { timeout: 20000 });
  await step("stopped");
  await page.click("#ct-actions button[data-action=start]");
  await page.waitForFunction(() => document.querySelector("#ct-action-out .notice.ok")?.textContent.startsWith("start"),
    null, { timeout: 30000 });
  await page.waitForFunction(() => document.querySelector("#ct-list tr[data-container=web1] td[data-label=State]")
    ?.textContent === "running", null, { timeout: 20000 });
  await step("started");

  // 4. The log viewer with 30,000 lines: all read, few in the DOM,
  // scrolling to the end shows the last, and the download is whole.
  await openDetail(page, "chatty");
  await page.click("#ct-detail button[data-tab=logs]");
  await page.fill("#ct-log-tail", "0");
  await page.click("#ct-log-form button[type=submit]");
  await page.waitForFunction(() => document.getElementById("ct-log-count")?.textContent === "30000 lines",
    null, { timeout: 60000 });
  const domLines = await page.evaluate(() => document.querySelector(".logview-lines").textContent.split("\n").length);
  check(domLines < 200, "only the lines in view are drawn: " + domLines);
  const ms = await page.evaluate(async () => {
    const box = document.getElementById("ct-logview");
    const t0 = performance.now();
    for (let i = 0; i < 20; i++) {
      box.scrollTop = (i + 1) * box.scrollHeight / 20;
      await new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)));
    }
    return (performance.now() - t0) / 20;
  });
  log("log viewer: " + ms.toFixed(1) + " ms per scroll frame with 30,000 lines");
  check(ms < 250, "scrolling stays responsive: " + ms + " ms per frame");
  const shown = await page.textContent(".logview-lines");
  check(shown.trimEnd().endsWith("line 30000"), "the last line in view at the end: " + shown.slice(-40));
  await shot(page, "03-log-viewer.png");
  const [download] = await Promise.all([page.waitForEvent("download"), page.click("#ct-log-download")]);
  const text = fs.readFileSync(await download.path(), "utf8");
  const lines = text.split("\n").filter(Boolean);
  check(lines.length === 30000 && lines[0] === "line 1" && lines[29999] === "line 30000",
    "the whole log downloaded: " + lines.length);

  // 5. exec: output streamed, the exit code shown.
  await openDetail(page, "web1");
  await page.click("#ct-detail button[data-tab=exec]");
  await page.fill("#ct-exec-command", "echo from-exec; sleep 1; echo err >&2; exit 3");
  await page.click("#ct-exec-form button[type=submit]");
  await page.waitForFunction(() => document.getElementById("ct-exec-exit")?.textContent === "exit code 3",
    null, { timeout: 30000 });
  const out = await page.textContent("#ct-exec-output");
  check(out === "from-exec\nerr\n", "exec output: " + JSON.stringify(out));
  await shot(page, "04-exec.png");
  await ctx.close();

  // 6. A viewer: the list and the details, no actions, no exec.
  ({ ctx, page } = await newPage());
  await login(page, VW, VW_PW);
  await openContainers(page);
  await openDetail(page, "web1");
  check(await page.locator("#ct-actions").count() === 0, "no actions for a viewer");
  await page.click("#ct-detail button[data-tab=exec]");
  check((await page.textContent("#ct-tab")).includes("operators"), "exec is for operators");
  await shot(page, "05-viewer.png");
  await ctx.close();
  return "containers page";
});
