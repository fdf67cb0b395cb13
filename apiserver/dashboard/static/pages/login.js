// The login form: POST /api/auth/login, then back to where the user was going (?next=).

import {h} from "../lib/dom.js";
import {apiPost} from "../lib/api.js";
import {navigate} from "../lib/router.js";

export const title = "Sign in";

/** Only in-app paths: "/x" but never "//host" (an open redirect). */
export function safeNext(value) {
  if (!value || !value.startsWith("/") || value.startsWith("//") || value.startsWith("/login")) {
    return "/";
  }
  return value;
}

export function render(view) {
  const next = safeNext(view.query.get("next"));
  const error = h("p", {class: "form-error", role: "alert", hidden: true});
  const username = h("input", {id: "login-username", name: "username", autocomplete: "username", required: true});
  const password = h("input", {
    id: "login-password",
    name: "password",
    type: "password",
    autocomplete: "current-password",
    required: true,
  });
  const submit = h("button", {type: "submit", class: "btn btn-primary btn-block"}, "Sign in");
  const form = h(
    "form",
    {class: "login-form", "aria-labelledby": "login-title"},
    h("div", {class: "login-brand"}, "kanade"),
    h("h1", {id: "login-title"}, "Sign in"),
    error,
    h("div", {class: "form-field"}, h("label", {for: "login-username"}, "User name"), username),
    h("div", {class: "form-field"}, h("label", {for: "login-password"}, "Password"), password),
    submit,
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    submit.disabled = true;
    error.hidden = true;
    try {
      await apiPost("/api/auth/login", {username: username.value, password: password.value});
      navigate(next, {replace: true});
    } catch (err) {
      error.textContent = message(err);
      error.hidden = false;
      password.value = "";
      password.focus();
    } finally {
      submit.disabled = false;
    }
  });
  view.root.append(h("div", {class: "login-page"}, form));
  username.focus();
}

function message(err) {
  if (err.status === 401) return "Wrong user name or password.";
  if (err.status === 429) {
    const wait = Number.parseInt(err.retryAfter ?? "", 10);
    const when = Number.isFinite(wait) ? ` Try again in ${waitText(wait)}.` : " Try again later.";
    return `Too many failed sign-ins.${when}`;
  }
  return `Sign-in failed: ${err.message}`;
}

function waitText(seconds) {
  if (seconds < 90) return `${seconds} s`;
  return `${Math.ceil(seconds / 60)} min`;
}
