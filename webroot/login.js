// login.js — the login page.
import { post, setCsrf, ApiError } from "./api.js";
import { el, clear, notice } from "./dom.js";
import { errorText } from "./ui.js";

// loggedIn() runs once the session is open (the router goes on from there).
export function loginPage(r, message, loggedIn) {
  const err = el("div");
  if (message) err.append(notice(message, "info"));
  const user = el("input", { id: "login-user", name: "username", autocomplete: "username", required: true, autofocus: true });
  const pass = el("input", { id: "login-pass", name: "password", type: "password", autocomplete: "current-password", required: true });
  const form = el("form", { class: "card login", id: "login-form" },
    el("label", {}, "User name", user),
    el("label", {}, "Password", pass),
    err,
    el("button", { type: "submit", class: "primary", text: "Log in" }));
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    clear(err);
    try {
      const s = await post("/session", { username: user.value, password: pass.value });
      setCsrf(s.csrf_token);
      await loggedIn();
    } catch (e) {
      err.append(notice(e instanceof ApiError && e.status === 401 ? "Wrong user name or password." : errorText(e)));
    }
  });
  r.page("Log in", form);
}
