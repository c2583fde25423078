// ui.js — what the page modules share: who is logged in, the header, and
// the route a page renders for. Every navigation makes a new Route; only
// the newest one is live. A page that is still loading or polling when
// the user leaves it finds its route stale: it renders nothing more,
// schedules nothing more, and cannot touch the next page's timer.
import { ApiError } from "./api.js";
import { el, clear, notice } from "./dom.js";

const ROLE_RANK = { viewer: 1, operator: 2, admin: 3 };
export const ACTIVE = new Set(["queued", "installing"]);
// settingsError: why the settings could not be read (shown in the banner).
export const state = { me: null, settings: null, settingsError: "", page: "" };

export const can = (role) => !!state.me && ROLE_RANK[state.me.role] >= ROLE_RANK[role];
export const main = () => document.getElementById("main");

export function errorText(e) {
  return e instanceof ApiError ? (e.code ? e.code + ": " : "") + e.message : String(e && e.message || e);
}

// What a stale route's page throws to stop where it is; route() ignores it.
export const STALE = new Error("stale route");

let live = null;           // the Route on screen
let generation = 0;
let sessionEnded = () => {};
// app.js says what a 401 leads to (the login page).
export function onSessionEnd(fn) { sessionEnded = fn; }

export class Route {
  constructor() {
    if (live) live.stop();
    live = this;
    this.gen = ++generation;
    this.timer = null;
    this.fn = null;
    this.busy = false;       // a run of fn is in flight
    this.again = false;      // run fn once more as soon as it is done
    this.stopped = false;
    this.errors = null;      // the page's error area
  }

  get live() { return live === this; }

  // After an await: go on only while this route is on screen.
  check() { if (!this.live) throw STALE; }

  // The page: a title, an error area, the content. A null part is skipped
  // (DOM append() would print it).
  page(title, ...content) {
    this.check();
    this.errors = el("div", { class: "page-errors", id: "page-errors" });
    const m = clear(main());
    m.append(el("h1", { text: title }), this.errors, ...content.filter((c) => c !== null && c !== undefined && c !== false));
    document.title = title + " · Bastion";
    return m;
  }

  // An error of this page's own doing (a refresh, a side request): shown
  // in its error area; a lost session goes back to the login page.
  fail(e) {
    if (e === STALE || !this.live) return;
    if (e instanceof ApiError && e.status === 401) { this.stop(); sessionEnded(); return; }
    if (!this.errors) { console.error(e); return; }
    clear(this.errors).append(notice(errorText(e)));
  }

  clearErrors() { if (this.live && this.errors) clear(this.errors); }

  // Runs fn now, then again ms after each run ends, while this route is
  // live and until fn returns true. One run at a time. The first run's
  // error is thrown (the page cannot show itself); later ones go to the
  // error area and polling goes on (the next refresh may succeed).
  async poll(fn, ms) {
    this.fn = fn;
    this.ms = ms;
    return this.run(true);
  }

  // Refresh now (after a filter change, say): or, if a refresh is in
  // flight, once more right after it.
  refresh() { this.run(false); }

  async run(first) {
    if (!this.live || this.stopped || !this.fn) return;
    if (this.busy) { this.again = true; return; }
    clearTimeout(this.timer);
    this.timer = null;
    this.busy = true;
    let done = false;
    try {
      done = (await this.fn()) === true;
      this.clearErrors();
    } catch (e) {
      if (first && e !== STALE) { this.busy = false; throw e; }
      this.fail(e);
    }
    this.busy = false;
    if (done) this.stopped = true;
    if (!this.live || this.stopped) return;
    if (this.again) { this.again = false; return this.run(false); }
    this.timer = setTimeout(() => this.run(false), this.ms);
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.timer);
    this.timer = null;
  }
}

export function setHeader() {
  const logged = !!state.me;
  document.getElementById("nav").hidden = !logged;
  document.getElementById("whoami").hidden = !logged;
  if (!logged) return;
  document.getElementById("who-name").textContent = state.me.user;
  const r = document.getElementById("who-role");
  r.textContent = state.me.role;
  r.className = "badge role-" + state.me.role;
  for (const a of document.querySelectorAll("#nav a")) {
    a.hidden = a.hasAttribute("data-admin") && !can("admin");
    a.classList.toggle("current", a.dataset.page === state.page);
  }
  const b = document.getElementById("banner");
  const s = state.settings || {};
  const parts = [];
  if (state.settingsError) parts.push("The settings could not be read (" + state.settingsError + "): read-only and production mode are not shown.");
  if (s.read_only) parts.push("Read-only mode: nothing can be changed.");
  if (s.production) parts.push("Production mode: destructive actions need an admin and a confirmation.");
  b.textContent = parts.join(" ");
  b.hidden = parts.length === 0;
}
