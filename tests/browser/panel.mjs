// panel.mjs — drives Debian's chromium (headless, through playwright-core)
// through the Bastion panel against a real bastion. Run by
// tests/integration/test_panel.py, which starts bastion, makes the users
// and the machine, and plays the installer: it talks to this script one
// line at a time (we print "STEP name", it answers "go" on stdin).
// Environment: BASE (https://127.0.0.1:PORT), MAC, ARTIFACTS (directory),
// OPERATOR, VIEWER, ADMIN ("name:password").
import { chromium } from "playwright-core";
import fs from "node:fs";
import path from "node:path";
import readline from "node:readline";

const BASE = process.env.BASE;
const MAC = process.env.MAC;
const ART = process.env.ARTIFACTS;
const cred = (v) => { const i = v.indexOf(":"); return [v.slice(0, i), v.slice(i + 1)]; };
const [OP, OP_PW] = cred(process.env.OPERATOR);
const [VW, VW_PW] = cred(process.env.VIEWER);
const [AD, AD_PW] = cred(process.env.ADMIN);
const T = 15000;

const lines = readline.createInterface({ input: process.stdin });
const pending = [];
const waiting = [];
lines.on("line", (l) => { const w = waiting.shift(); if (w) w(l); else pending.push(l); });
function step(name) {
  process.stdout.write("STEP " + name + "\n");
  return new Promise((resolve) => {
    if (pending.length) resolve(pending.shift()); else waiting.push(resolve);
  });
}
const log = (...a) => process.stderr.write("panel: " + a.join(" ") + "\n");

function check(cond, msg) { if (!cond) throw new Error("check failed: " + msg); }

// A fresh profile: playwright-core makes a new temporary --user-data-dir
// for every launch (and refuses one passed in args) and removes it after.
const browser = await chromium.launch({
  executablePath: "/usr/bin/chromium",
  headless: true,
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
const problems = [];
let rc = 1;

async function newPage(viewport) {
  const ctx = await browser.newContext({ ignoreHTTPSErrors: true, viewport: viewport || { width: 1280, height: 860 } });
  const page = await ctx.newPage();
  page.setDefaultTimeout(T);
  page.on("pageerror", (e) => problems.push("page error: " + e.message));
  page.on("console", (m) => {
    // A CSP violation or a script error is a bug in the panel; refused
    // API calls (the viewer's forced request) are expected noise.
    const t = m.text();
    if (m.type() === "error" && !/status of (401|403)/.test(t)) problems.push("console: " + t);
  });
  return { ctx, page };
}

// Chromium drops a navigation when it sees the host's network change (in
// a fresh test namespace, addresses may still be settling): try again.
async function go(page, url) {
  for (let i = 0; ; i++) {
    try { return await page.goto(url); }
    catch (e) {
      if (i >= 4 || !String(e.message).includes("ERR_NETWORK_CHANGED")) throw e;
      log("network changed, retrying " + url);
      await page.waitForTimeout(500);
    }
  }
}

async function login(page, user, pw) {
  await go(page, BASE + "/#/machines");
  await page.fill("#login-user", user);
  await page.fill("#login-pass", pw);
  await page.click("#login-form button[type=submit]");
  await page.waitForSelector("#whoami:not([hidden])");
  check((await page.textContent("#who-name")) === user, "logged in as " + user);
}

const shot = (page, name) => page.screenshot({ path: path.join(ART, name), fullPage: true });

try {
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
  await go(page, BASE + "/#/machine/" + encodeURIComponent(MAC));
  await page.waitForSelector("#timeline li:has-text('installing packages')");
  await shot(page, "05-machine-installing.png");
  await step("progress-seen"); // the test reports done
  await page.waitForSelector(".summary .badge.state-installed", { timeout: 20000 });
  await shot(page, "06-machine-installed.png");
  await page.click("#nav a[data-page=jobs]");
  await page.waitForSelector("#job-form");
  await page.waitForSelector("main table");
  await shot(page, "06b-jobs-operator.png");
  await ctx.close();

  // 4. An admin sees the operator's install in the audit log.
  ({ ctx, page } = await newPage());
  await login(page, AD, AD_PW);
  await page.click("#nav a[data-page=audit]");
  await page.waitForSelector("#audit-filters");
  await page.fill("#audit-action", "machine.install");
  await page.click("#audit-filters button[type=submit]");
  const auditRow = page.locator("table.audit tbody tr", { hasText: MAC }).filter({ hasText: "user: " + OP });
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

  check(problems.length === 0, "browser reported:\n" + problems.join("\n"));
  process.stdout.write("OK " + forced.join(" ") + "\n");
  await browser.close();
  rc = 0;
} catch (e) {
  log(e.stack || String(e));
  for (const c of browser.contexts()) for (const p of c.pages()) await shot(p, "failure.png").catch(() => {});
  if (problems.length) log(problems.join("\n"));
  await browser.close().catch(() => {});
  process.stdout.write("FAIL\n");
}
process.exit(rc);
