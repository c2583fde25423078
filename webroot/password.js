// password.js — choosing one's own password after a one-time one.
import { put } from "./api.js";
import { el, clear, notice } from "./dom.js";
import { state, errorText } from "./ui.js";

// changed() runs once the password is changed.
export function passwordPage(r, changed) {
  const old = el("input", { type: "password", autocomplete: "current-password", required: true });
  const nw = el("input", { type: "password", autocomplete: "new-password", minlength: 8, required: true });
  const out = el("div");
  const form = el("form", { class: "card login" },
    el("p", { text: "You logged in with a one-time password: choose your own." }),
    el("label", {}, "Current password", old), el("label", {}, "New password", nw), out,
    el("button", { type: "submit", class: "primary", text: "Change password" }));
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    clear(out);
    try {
      await put("/users/" + encodeURIComponent(state.me.user) + "/password", { old_password: old.value, password: nw.value });
      await changed();
    } catch (e) { out.append(notice(errorText(e))); }
  });
  r.page("Change password", form);
}
