// Boot: the login page, or the signed-in app for the device kept in localStorage.

import { Api } from "./api.js";
import { ChatApp } from "./chat-app.js";
import { clearSession, loadSession, saveSession } from "./session.js";
import { describeError } from "./errors.js";
import { renderLogin } from "./views/login.js";
import { renderShell } from "./views/shell.js";

const root = document.getElementById("root");
let app = null;
let detach = () => {};

function showLogin(notice = "") {
  renderLogin(root, new Api(), {
    notice,
    onLoggedIn: (login) => {
      saveSession({
        token: login.token,
        user_id: login.user_id,
        device_id: login.device_id,
        username: login.username,
      });
      start();
    },
  });
}

// This device's token no longer works: forget it and what it cached.
function loggedOut(notice) {
  if (app) {
    app.stop();
    app.timelines.clearAll();
    app.outbox.clear();
    app.people.clear();
  }
  app = null;
  detach();
  clearSession();
  history.replaceState(null, "", location.pathname);
  showLogin(notice);
}

async function start() {
  const session = loadSession();
  if (!session) return showLogin();
  const api = new Api({
    token: session.token,
    onUnauthorized: () => loggedOut(describeError("unauthorized")),
  });
  app = new ChatApp(api, session);
  app.addEventListener("unauthorized", (e) =>
    loggedOut(describeError(e.detail && e.detail.code === "suspended" ? "suspended" : "unauthorized")),
  );
  root.replaceChildren();
  try {
    await app.start();
  } catch (error) {
    if (!app) return undefined; // logged out meanwhile
    root.textContent = describeError(error.code, error.message);
    setTimeout(start, 3000); // the server is unreachable: try again
    return undefined;
  }
  detach = renderShell(root, app, {
    onLogOut: async () => {
      try {
        await api.logOut();
      } catch {
        // logged out locally all the same
      }
      loggedOut("You are logged out.");
    },
    onLoggedOut: () => loggedOut("You are logged out on every device."),
  });
  return undefined;
}

start();
