// panel.mjs — drives Debian's chromium (headless, through playwright-core)
// through the Bastion panel against a real bastion. Run by
// tests/integration/test_panel.py, which starts bastion, makes the users
// and the machine, and plays the installer: it talks to this script one
// line at a time (we print "STEP name", it answers "go" on stdin).
// Environment: BASE (https://127.0.0.1:PORT), MAC, ARTIFACTS (directory),
// OPERATOR, VIEWER, ADMIN ("name:password").
import { openBrowser, cred, check, step, hold, apiRequests } from "./lib.mjs";

const BASE = process.env.BASE;
const MAC = process.env.MAC;
const [OP, OP_PW] = cred(process.env.OPERATOR);
const [VW, VW_PW] = cred(process.env.VIEWER);
const [AD, AD_PW] = cred(process.env.ADMIN);

const b = await openBrowser(BASE, process.env.ARTIFACTS);
const { newPage, go, login, shot } = b;

await b.run(async () => {
  // 1. The operator logs in and sees the discovered machine.
  let { ctx, page } = await newPage();
  const resp = await go(page, BASE + "/");
  const csp = resp.headers()["content-security-policy"] || "";
  check(csp.includes("default-src 'none'") && csp.includes("script-src 'self'"), "CSP on /: " + csp);
  await shot(page, "01-login.png");
  await login(page, OP, OP_PW);
  const row = page.locator(`tr[data-mac="${MAC}"]`);
  await row.waitFor();
  check((await row.locator(".badge").first().textContent()) === "discovered", "machine is discovered");
  await shot(page, "02-machines-operator.png");

  // 2. Queue an install through the machine page's form.
  await row.locator("a").first().click();
  await page.waitForSelector("#install-form");
  await page.fill("#install-hostname", "web1.lab");
  await page.selectOption("#install-role", "worker");
  const oses = await page.locator("#install-os option").allTextContents();
  check(oses.includes("fedora-40 (kickstart)"), "the OS list offers fedora-40 by kickstart: " + oses);
  await page.selectOption("#install-os", "fedora-40");
  await page.fill("#install-keys", "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGmiGf1hhbxbcvYOUcw0WlcRbFhRLfP0uj9dCkpWxrJ9 panel@test");
  await page.click("#install-submit");
  await page.waitForSelector(".summary .badge.state-queued");
  await shot(page, "03-machine-queued.png");
  await step("queued");       // the test boots the installer and reports progress

  // 3. Progress events arrive by polling (every 2 s).
  await page.waitForSelector("#timeline li:has-text('installing packages')", { timeout: 20000 });
  await page.waitForSelector(".summary progress");
  const pct = await page.getAttribute(".summary progress", "value");
  check(Number(pct) === 40, "progress bar at 40%, got " + pct);
  await go(page, BASE + "/#/machines");
  await page.waitForSelector(`tr[data-mac="${MAC}"] .progress-text:has-text('40%')`);
  await shot(page, "04-machines-progress.png");
  // One request per refresh (the list carries the progress), not one
  // more per installing machine.
  let reqs = await apiRequests(page, 4500);
  check(reqs.length >= 1 && reqs.length <= 3 && reqs.every((u) => u === "/api/v1/machines"),
    "the machines page asks once per refresh: " + reqs.join(" "));
  // No refresh starts while one is in flight: with the list held back
  // (and the filter changed meanwhile), nothing else is asked; once it
  // comes, the page asks again at once, with the new filter.
  let held = await hold(page, /\/api\/v1\/machines(\?|$)/);
  await held.seen;
  await page.selectOption("#state-filter", "installing");
  reqs = await apiRequests(page, 4500);
  check(reqs.length === 0, "nothing asked while a refresh is in flight: " + reqs.join(" "));
  const next = page.waitForRequest((q) => q.url().includes("/api/v1/machines?state=installing"), { timeout: 1500 });
  held.release();
  await next;
  await page.waitForSelector(`tr[data-mac="${MAC}"] .progress-text:has-text('40%')`);
  await go(page, BASE + "/#/machine/" + encodeURIComponent(MAC));
  await page.waitForSelector("#timeline li:has-text('installing packages')");
  await shot(page, "05-machine-installing.png");
  await step("progress-seen"); // the test reports done
  await page.waitForSelector(".summary .badge.state-installed", { timeout: 20000 });
  await shot(page, "06-machine-installed.png");
  // Leaving a page while it still waits for data: it renders nothing
  // when the answer comes, and does not touch the next page's timer.
  const machinePath = "/api/v1/machines/" + encodeURIComponent(MAC);
  // The page behind nav is left for the machine page while re is held.
  const leaveWhileWaiting = async (nav, re, what) => {
    held = await hold(page, re);
    await page.click(`#nav a[data-page=${nav}]`);
    await held.seen;
    await go(page, BASE + "/#/machine/" + encodeURIComponent(MAC));
    await page.waitForSelector("#timeline li");
    held.release();
    reqs = await apiRequests(page, 4500);
    check((await page.textContent("main h1")) === "Machine " + MAC, what + ": the machine page stays: " + await page.textContent("main h1"));
    check(reqs.filter((u) => u === machinePath).length >= 2 && reqs.every((u) => u.startsWith(machinePath)),
      what + ": the machine page keeps refreshing, alone: " + reqs.join(" "));
  };
  await leaveWhileWaiting("agents", /\/api\/v1\/agents$/, "agents answered late");
  await leaveWhileWaiting("machines", /\/api\/v1\/machines$/, "machines answered late");
  await page.click("#nav a[data-page=jobs]");
  // No agent here: the jobs page says so instead of offering a form.
  await page.waitForSelector("#job-form-note:has-text('No enrolled agents')");
  await page.waitForSelector("main table");
  await shot(page, "06b-jobs-operator.png");
  await ctx.close();

  // 4. An admin sees the operator's install in the audit log.
  ({ ctx, page } = await newPage());
  await login(page, AD, AD_PW);
  const auditRow = (await b.auditRows(page, "machine.install")).filter({ hasText: MAC })
    .filter({ hasText: "user: " + OP });
  await auditRow.first().waitFor();
  check((await auditRow.first().textContent()).includes("machine.install"), "audit row names the action");
  await shot(page, "07-audit-admin.png");
  await page.click("#nav a[data-page=settings]");
  await page.waitForSelector("#setting-read_only");
  await shot(page, "08-settings-admin.png");
  await ctx.close();

  // 5. A viewer: no action buttons, and a forced request is refused.
  ({ ctx, page } = await newPage());
  await login(page, VW, VW_PW);
  await go(page, BASE + "/#/machine/" + encodeURIComponent(MAC));
  await page.waitForSelector("#timeline li");
  check(await page.locator("#actions, #install-form, #reprovision, #forget").count() === 0, "viewer sees no actions");
  check(await page.locator("main button").count() === 0, "viewer sees no buttons on the machine page");
  check(await page.locator("#nav a[data-page=audit]").isHidden(), "viewer has no audit link");
  await shot(page, "09-machine-viewer.png");
  const forced = await page.evaluate(async (mac) => {
    const me = await (await fetch("/api/v1/session")).json();
    const h = { "Content-Type": "application/json", "X-CSRF-Token": me.csrf_token };
    const a = await fetch("/api/v1/machines/" + mac + "/reprovision", { method: "POST", headers: h, body: "{}" });
    const b = await fetch("/api/v1/machines/" + mac, { method: "DELETE", headers: h });
    return [a.status, (await a.json()).error.code, b.status, (await b.json()).error.code];
  }, MAC);
  check(forced[0] === 403 && forced[1] === "forbidden" && forced[2] === 403 && forced[3] === "forbidden",
    "viewer's forced requests refused: " + forced.join(" "));
  await ctx.close();

  // 6. The same panel on a phone.
  ({ ctx, page } = await newPage({ width: 390, height: 844 }));
  await login(page, OP, OP_PW);
  await page.locator(`tr[data-mac="${MAC}"]`).waitFor();
  await shot(page, "10-machines-phone.png");
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  check(overflow <= 1, "no horizontal scrolling on a phone (" + overflow + "px)");
  await ctx.close();

  return forced.join(" ");
});
