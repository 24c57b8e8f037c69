// Log in or sign up. Every login is a new device of the account, with its own token.

import { ApiError } from "../api.js";
import { h } from "../dom.js";
import { describeError } from "../errors.js";

export function renderLogin(root, api, { notice, onLoggedIn }) {
  const alert = h("p", { class: "form-error", role: "alert" }, notice || "");
  const username = h("input", {
    id: "login-username",
    name: "username",
    autocomplete: "username",
    required: true,
    minlength: "3",
    maxlength: "32",
    pattern: "[a-z0-9_.\\-]+",
    title: "3-32 of a-z, 0-9, _ . -",
  });
  const password = h("input", {
    id: "login-password",
    name: "password",
    type: "password",
    autocomplete: "current-password",
    required: true,
    minlength: "8",
    maxlength: "128",
  });
  const busy = (on) => {
    for (const b of form.querySelectorAll("button")) b.disabled = on;
  };
  const submit = async (signUp) => {
    if (!form.reportValidity()) return;
    busy(true);
    alert.textContent = "";
    try {
      if (signUp) await api.signUp(username.value, password.value);
      const login = await api.logIn(username.value, password.value, "Web browser");
      onLoggedIn({ ...login, username: username.value });
    } catch (error) {
      const code = error instanceof ApiError ? error.code : "network";
      alert.textContent = describeError(code, error.message);
      busy(false);
    }
  };
  const form = h(
    "form",
    {
      class: "login",
      "aria-labelledby": "login-title",
      onsubmit: (event) => {
        event.preventDefault();
        submit(event.submitter && event.submitter.value === "signup");
      },
    },
    h("h1", { id: "login-title" }, "Parley"),
    h("label", { for: "login-username" }, "Username"),
    username,
    h("label", { for: "login-password" }, "Password"),
    password,
    alert,
    h(
      "div",
      { class: "actions" },
      h("button", { type: "submit", value: "login" }, "Log in"),
      h("button", { type: "submit", value: "signup", class: "secondary" }, "Sign up"),
    ),
  );
  root.replaceChildren(form);
  username.focus();
}
