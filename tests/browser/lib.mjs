// lib.mjs — what the browser tests share: Debian's chromium through
// playwright-core, a fresh context per user, navigation that survives a
// settling network namespace, logging in through the panel's form,
// screenshots, and the line protocol with the Python side of the test
// (we print "STEP name", it answers one line on stdin).
import { chromium } from "playwright-core";
import path from "node:path";
import readline from "node:readline";

export const T = 15000;
export const cred = (v) => { const i = v.indexOf(":"); return [v.slice(0, i), v.slice(i + 1)]; };
export const log = (...a) => process.stderr.write("browser: " + a.join(" ") + "\n");
export function check(cond, msg) { if (!cond) throw new Error("check failed: " + msg); }

const lines = readline.createInterface({ input: process.stdin });
const pending = [];
const waiting = [];
lines.on("line", (l) => { const w = waiting.shift(); if (w) w(l); else pending.push(l); });
export function step(name) {
  process.stdout.write("STEP " + name + "\n");
  return new Promise((resolve) => {
    if (pending.length) resolve(pending.shift()); else waiting.push(resolve);
  });
}

// Holds back the first request whose URL matches re until release():
// { seen (a promise of its URL), release() }. Later ones go through.
export async function hold(page, re) {
  let release, requested;
  const gate = new Promise((r) => { release = r; });
  const seen = new Promise((r) => { requested = r; });
  await page.route(re, async (route) => {
    requested(route.request().url());
    await gate;
    await route.continue();
  }, { times: 1 });
  return { seen, release };
}

// The API requests (path and query) the page makes during ms.
export async function apiRequests(page, ms) {
  const seen = [];
  const on = (q) => { const u = new URL(q.url()); if (u.pathname.startsWith("/api/v1/")) seen.push(u.pathname + u.search); };
  page.on("request", on);
  await page.waitForTimeout(ms);
  page.off("request", on);
  return seen;
}

// One browser for a script. base: https://127.0.0.1:PORT; art: the
// directory for screenshots. problems collects page errors and console
// errors (a CSP violation or a script error is a bug in the panel;
// refused API calls, as a viewer's forced request, are expected noise).
export async function openBrowser(base, art) {
  // A fresh profile: playwright-core makes a new temporary --user-data-dir
  // for every launch (and refuses one passed in args) and removes it after.
  const browser = await chromium.launch({
    executablePath: "/usr/bin/chromium",
    headless: true,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
  const problems = [];
  const b = {
    browser, problems, base,
    async newPage(viewport) {
      const ctx = await browser.newContext({ ignoreHTTPSErrors: true, viewport: viewport || { width: 1280, height: 860 } });
      const page = await ctx.newPage();
      page.setDefaultTimeout(T);
      page.on("pageerror", (e) => problems.push("page error: " + e.message));
      page.on("console", (m) => {
        const t = m.text();
        if (m.type() === "error" && !/status of (401|403)/.test(t)) problems.push("console: " + t);
      });
      return { ctx, page };
    },
    // Chromium drops a navigation when it sees the host's network change
    // (in a fresh test namespace, addresses may still be settling): try again.
    async go(page, url) {
      for (let i = 0; ; i++) {
        try { return await page.goto(url); }
        catch (e) {
          if (i >= 4 || !String(e.message).includes("ERR_NETWORK_CHANGED")) throw e;
          log("network changed, retrying " + url);
          await page.waitForTimeout(500);
        }
      }
    },
    async login(page, user, pw) {
      await b.go(page, base + "/#/machines");
      await page.fill("#login-user", user);
      await page.fill("#login-pass", pw);
      await page.click("#login-form button[type=submit]");
      await page.waitForSelector("#whoami:not([hidden])");
      check((await page.textContent("#who-name")) === user, "logged in as " + user);
    },
    // Opens the audit page filtered by an action prefix: its rows.
    async auditRows(page, action) {
      await page.click("#nav a[data-page=audit]");
      await page.waitForSelector("#audit-filters");
      await page.fill("#audit-action", action);
      await page.click("#audit-filters button[type=submit]");
      return page.locator("table.audit tbody tr");
    },
    // A screenshot, after checking the page prints no JavaScript
    // placeholder where data should be.
    async shot(page, name) {
      const text = await page.evaluate(() => document.querySelector("main").innerText);
      check(!/\b(null|undefined|NaN|\[object Object\])\b/.test(text), name + ": a placeholder on the page:\n" + text);
      await page.screenshot({ path: path.join(art, name), fullPage: true });
    },
    // Runs the test body; prints "OK detail" or "FAIL" and exits.
    async run(body) {
      let rc = 1;
      try {
        const detail = await body();
        check(problems.length === 0, "browser reported:\n" + problems.join("\n"));
        process.stdout.write("OK " + (detail || "") + "\n");
        await browser.close();
        rc = 0;
      } catch (e) {
        log(e.stack || String(e));
        // The screenshot is a help for the failure already reported: a page
        // that cannot take one any more is no news.
        for (const c of browser.contexts()) for (const p of c.pages()) await p.screenshot({ path: path.join(art, "failure.png"), fullPage: true }).catch((e2) => log("no failure screenshot: " + e2.message));
        if (problems.length) log(problems.join("\n"));
        await browser.close().catch((e2) => log("closing the browser: " + e2.message));
        process.stdout.write("FAIL\n");
      }
      process.exit(rc);
    },
  };
  return b;
}
