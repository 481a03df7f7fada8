// Login with a bearer token (the controller runs with --tokens-file). The token goes to the
// controller once, which answers with a session cookie the page cannot read (HttpOnly).
import { login } from "../api.js";
import { clear, h } from "../dom.js";

export function render(main, { onLogin }) {
  const error = h("p", { class: "error", id: "login-error", hidden: true });
  const input = h("input", { type: "password", id: "token", name: "token", autocomplete: "current-password", required: true, placeholder: "bearer token" });
  const form = h("form", { class: "card login", id: "login-form" },
    h("h2", {}, "Log in"),
    h("p", { class: "muted" }, "This cluster requires a token: one of the tokens in the controller's --tokens-file (the same as shoal --token)."),
    h("label", { for: "token" }, "Token"), input, error,
    h("button", { type: "submit", class: "primary", id: "login-submit" }, "Log in"));
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    error.hidden = true;
    try {
      await login(input.value);
      input.value = "";
      onLogin();
    } catch (err) {
      error.textContent = err.message;
      error.hidden = false;
    }
  });
  clear(main, form);
  input.focus();
}
