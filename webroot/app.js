// app.js — the Bastion panel: hash routes, one page at a time (one module
// each), data only from /api/v1 (same origin, session cookie, CSRF header
// on mutations).
import { get, del, setCsrf, ApiError } from "./api.js";
import { notice } from "./dom.js";
import { state, setHeader, errorText, onSessionEnd, Route, STALE } from "./ui.js";
import { loginPage } from "./login.js";
import { passwordPage } from "./password.js";
import { machinesPage } from "./machines.js";
import { overviewPage } from "./overview.js";
import { machinePage } from "./machine.js";
import { agentsPage } from "./agents.js";
import { jobsPage } from "./jobs.js";
import { jobPage } from "./job.js";
import { containersPage } from "./containers.js";
import { guestsPage } from "./guests.js";
import { auditPage } from "./audit.js";
import { settingsPage } from "./settings.js";
import { usersPage } from "./users.js";
import { tokensPage } from "./tokens.js";

// Page name -> [page function, the nav entry it belongs to].
const routes = {
  overview: [overviewPage, "overview"],
  machines: [machinesPage, "machines"],
  machine: [(r, arg) => machinePage(r, decodeURIComponent(arg || "")), "machines"],
  agents: [agentsPage, "agents"],
  jobs: [jobsPage, "jobs"],
  job: [(r, arg) => jobPage(r, decodeURIComponent(arg || "")), "jobs"],
  containers: [(r, arg) => containersPage(r, decodeURIComponent(arg || "")), "containers"],
  guests: [(r, arg) => guestsPage(r, decodeURIComponent(arg || "")), "guests"],
  audit: [auditPage, "audit"],
  settings: [settingsPage, "settings"],
  users: [usersPage, "users"],
  tokens: [tokensPage, "tokens"],
};

// The session and the settings. A lost session is not an error (the
// login page follows); the settings failing to load is shown in the
// banner, and the pages go on without them (the server still enforces
// read-only and production mode).
async function loadMe() {
  try {
    state.me = await get("/session");
    setCsrf(state.me.csrf_token);
  } catch (e) {
    if (e instanceof ApiError && e.status === 401) state.me = null;
    else throw e;
  }
  state.settings = null;
  state.settingsError = "";
  if (state.me) {
    try { state.settings = await get("/settings"); }
    catch (e) { state.settingsError = errorText(e); }
  }
}

function showLogin(message) {
  const r = new Route();
  state.page = "login";
  setHeader();
  loginPage(r, message, async () => {
    await loadMe();
    if (location.hash === "" || location.hash === "#/login") location.hash = "#/overview";
    else route();
  });
}

onSessionEnd(() => {
  state.me = null;
  showLogin("Your session ended; log in again.");
});

async function logout() {
  let message = "";
  try { await del("/session"); }
  catch (e) {
    // 401: the session was over already. Anything else: it may still be
    // open on the server, which the user should know.
    if (!(e instanceof ApiError && e.status === 401)) message = "Logging out failed (" + errorText(e) + "): the session may still be open.";
  }
  state.me = null;
  setCsrf("");
  if (message) showLogin(message);
  else if (location.hash === "#/login") showLogin();
  else location.hash = "#/login";
}

async function route() {
  const [name, arg] = location.hash.replace(/^#\/?/, "").split("/");
  if (!state.me) { showLogin(); return; }
  if (name === "login") { location.hash = "#/overview"; return; }
  const r = new Route();
  if (state.me.must_change_password) {
    state.page = "";
    setHeader();
    passwordPage(r, async () => { await loadMe(); route(); });
    return;
  }
  const [fn, nav] = routes[name] || routes.overview;
  state.page = nav;
  setHeader();
  try { await fn(r, arg); }
  catch (e) {
    if (e === STALE || !r.live) return;     // the user has moved on
    if (e instanceof ApiError && e.status === 401) { r.fail(e); return; }
    r.page("Error", notice(errorText(e)));
  }
}

async function start() {
  document.getElementById("logout").addEventListener("click", logout);
  window.addEventListener("hashchange", () => { route(); });
  try { await loadMe(); }
  catch (e) {
    // Not even the session could be read: the login page, saying why.
    showLogin("The panel could not reach the server (" + errorText(e) + ").");
    return;
  }
  await route();
}

start();
