// overview.mjs — the fleet overview, the panel's first page (DESIGN §14):
// nodes by attention level with their reasons, open alerts, silences and
// the channels' delivery health, for an admin and for a viewer (who is
// not shown the channels). Run by tests/integration/test_panel.py with a
// real agentd whose heartbeat says it is hot and its disk failing.
// Environment: BASE, ARTIFACTS, OPERATOR, VIEWER, ADMIN, NODE.
import { openBrowser, cred, check, step } from "./lib.mjs";

const BASE = process.env.BASE;
const NODE = process.env.NODE;
const [AD, AD_PW] = cred(process.env.ADMIN);
const [VW, VW_PW] = cred(process.env.VIEWER);

const b = await openBrowser(BASE, process.env.ARTIFACTS);
const { newPage, go, login, shot } = b;

await b.run(async () => {
  // 1. The first page is the overview: "/" with no route.
  let { ctx, page } = await newPage();
  await login(page, AD, AD_PW);
  await go(page, BASE + "/");
  await page.waitForSelector("main h1:has-text('Fleet overview')");
  check((await page.locator("#nav a[data-page=overview]").getAttribute("class") || "").includes("current"),
    "the Overview nav entry is the current one");
  check((await page.locator("#nav a").first().getAttribute("data-page")) === "overview", "Overview comes first in the nav");

  // 2. The node, critical, with its reasons.
  const row = page.locator(`table.attention tr[data-node="${NODE}"]`);
  await row.waitFor();
  check((await row.getAttribute("data-level")) === "critical", "the node is critical");
  const reasons = await row.locator("ul.reasons").innerText();
  for (const want of ["smart_failing sda", "temperature_high coretemp/Package id 0", "load_high", "memory_high"])
    check(reasons.includes(want), "reason " + want + " shown: " + reasons);
  check((await page.textContent("#attention-counts [data-level=critical] strong")) === "1", "one critical node counted");

  // 3. Open alerts and the channel that failed to deliver them.
  await page.waitForSelector("table.alerts tbody tr:has-text('smart_failing')");
  const ch = page.locator('table.channels tr[data-channel="dead"]');
  await ch.waitFor();
  await page.waitForFunction(() => {
    const r = document.querySelector('table.channels tr[data-channel="dead"]');
    return r && Number(r.children[4].textContent) >= 1;
  }, null, { timeout: 30000 });
  check((await ch.locator(".badge").textContent()) === "error", "the dead channel's last delivery failed");
  check(!(await page.textContent("main")).includes("hunter2"), "no channel secret on the page");
  await shot(page, "01-overview-admin.png");

  // 4. A silence made elsewhere shows up on the next refresh.
  await step("silence");
  await page.waitForSelector("table.silences tbody tr:has-text('smart_failing')", { timeout: 20000 });
  await shot(page, "02-overview-silenced.png");
  await ctx.close();

  // 5. A viewer sees the fleet but not the channels.
  ({ ctx, page } = await newPage());
  await login(page, VW, VW_PW);
  await page.click("#nav a[data-page=overview]");
  await page.waitForSelector(`table.attention tr[data-node="${NODE}"]`);
  await page.waitForSelector("#overview-channels p:has-text('operators and admins')");
  await shot(page, "03-overview-viewer.png");
  await ctx.close();
  return NODE;
});
