// guests.mjs — the Guests page against a real bastion, a real agentd and
// a real LXC guest (tests/integration/test_guest_console.py starts them):
// the list per node, a guest's detail with its snapshots (a real one,
// taken through a signed job), and its console in the page: typing a
// command into the guest's shell and reading its answer in the terminal,
// a second console refused while it is open, leaving it; a viewer sees
// no actions. Environment: BASE, ARTIFACTS, OPERATOR, VIEWER, NODE,
// GUEST, and SNAPSHOT (a snapshot the guest has).
import { openBrowser, cred, check, log } from "./lib.mjs";

const BASE = process.env.BASE;
const NODE = process.env.NODE;
const GUEST = process.env.GUEST;
const [OP, OP_PW] = cred(process.env.OPERATOR);
const [VW, VW_PW] = cred(process.env.VIEWER);

const b = await openBrowser(BASE, process.env.ARTIFACTS);
const { newPage, login, shot } = b;

// The terminal's text, row by row.
const screen = (page) => page.evaluate(() =>
  [...document.querySelectorAll("#guest-console-term .xterm-rows > div")].map((d) => d.textContent).join("\n"));

async function waitScreen(page, re, what) {
  const deadline = Date.now() + 30000;
  let text = "";
  while (Date.now() < deadline) {
    text = await screen(page);
    if (re.test(text)) return text;
    await page.waitForTimeout(200);
  }
  throw new Error("the console never showed " + what + ":\n" + text);
}

await b.run(async () => {
  let { ctx, page } = await newPage();
  await login(page, OP, OP_PW);
  await page.click("#nav a[data-page=guests]");
  await page.waitForSelector(`#gs-list tr[data-guest="${GUEST}"]`);
  // 1. The list: the guest with its node, type and state; the node's
  // absent driver badged.
  const row = `#gs-list tr[data-guest="${GUEST}"]`;
  check((await page.textContent(row + " td[data-label=Node]")) === NODE, "node named");
  check((await page.textContent(row + " td[data-label=Type]")) === "LXC", "type");
  check((await page.textContent(row + " td[data-label=State]")) === "running", "state");
  await shot(page, "01-guests-list.png");

  // 2. The detail: snapshots listed with their actions.
  await page.click(row + " a.gs-open");
  await page.waitForSelector("#gs-detail:not([hidden]) h2");
  check(await page.locator(`#gs-detail tr[data-snapshot="${process.env.SNAPSHOT}"]`).count() === 1, "snapshot listed");
  check(await page.locator("#gs-snap-form").count() === 1, "a snapshot can be taken");
  check(await page.locator("#gs-actions button[data-action=shutdown]").count() === 1, "actions for an operator");

  // 3. The console: type a command, read its answer in the terminal.
  await page.click("#gs-console-show");
  await page.click("#gs-console-open");
  await page.waitForFunction(() => /connected/.test(document.getElementById("gs-console-status")?.textContent));
  await page.click("#guest-console-term");
  await page.keyboard.type("\n");
  await page.waitForTimeout(300);
  await page.keyboard.type("echo from-the-page-$((6*7))\n");
  await waitScreen(page, /from-the-page-42/, "the command's answer");
  await shot(page, "02-console.png");

  // 4. Another session on the same guest is refused while this one is open.
  const second = await newPage();
  await login(second.page, OP, OP_PW);
  await second.page.click("#nav a[data-page=guests]");
  await second.page.click(row + " a.gs-open");
  await second.page.click("#gs-console-show");
  await second.page.click("#gs-console-open");
  await second.page.waitForFunction(() => document.getElementById("gs-console-status")?.dataset.code === "console_busy");
  await second.ctx.close();
  // The refusal is the 409 the browser logs: expected, not a problem.
  for (let i = b.problems.length - 1; i >= 0; i--)
    if (/status of 409/.test(b.problems[i])) b.problems.splice(i, 1);

  // 5. Leave: the session is over (and audited; Python checks).
  await page.click("#gs-console-leave");
  await page.waitForFunction(() => /left the console/.test(document.getElementById("gs-console-status")?.textContent));
  await ctx.close();

  // 6. A viewer: the list, no actions, no console.
  ({ ctx, page } = await newPage());
  await login(page, VW, VW_PW);
  await page.click("#nav a[data-page=guests]");
  await page.click(row + " a.gs-open");
  await page.waitForSelector("#gs-detail:not([hidden]) h2");
  check(await page.locator("#gs-actions").count() === 0, "no actions for a viewer");
  check(await page.locator("#gs-console-show").count() === 0, "no console for a viewer");
  await shot(page, "03-viewer.png");
  log("guests page and console ok");
  return "guests";
});
