// The signed-in page: the top bar (connection state, who you are), the chat list, and the chat.

import { h, replace } from "../dom.js";
import { describeError } from "../errors.js";
import { parseJoin, parseRoute, routeHash } from "../routes.js";
import { ChatView } from "./chat.js";
import { SearchView } from "./search.js";
import { showDevices, showFriends, showMembers, showNewGroup, showSettings } from "./dialogs.js";
import { showJoin } from "./invites.js";

const STATE_LABELS = {
  connecting: "Connecting…",
  online: "Online",
  reconnecting: "Reconnecting…",
  offline: "Offline",
};

// The URL without a hash: the chat list.
function clearHash() {
  if (location.hash) history.replaceState(null, "", location.pathname + location.search);
}

// Returns a function that detaches the page-wide listeners.
export function renderShell(root, app, { onLogOut, onLoggedOut }) {
  const listening = new AbortController();
  const { signal } = listening;
  const state = h("span", { class: "connection", role: "status", "data-testid": "connection" });
  const notices = h("div", { class: "notices", role: "alert", "data-testid": "notices" });
  const channelList = h("ul", { class: "channel-list", "data-testid": "channels" });
  const sidebarError = h("p", { class: "form-error", role: "alert" });

  const open = async (channelId, messageId = null) => {
    const hash = routeHash(channelId, messageId);
    if (!hash) return showList();
    if (location.hash !== hash) history.replaceState(null, "", hash);
    chat.highlightId = messageId;
    await app.open(channelId, messageId);
    chat.render(messageId ? "jump" : "chat");
  };
  const chat = new ChatView(app, { onMembers: () => showMembers(app, { onLeft: () => draw("chat") }) });
  const search = new SearchView(app, { onOpen: open });

  const direct = h("input", { "aria-label": "Username or user id", placeholder: "Username or user id", required: true });
  const directForm = h(
    "form",
    {
      class: "inline",
      onsubmit: async (event) => {
        event.preventDefault();
        sidebarError.textContent = "";
        try {
          const channelId = await app.openDirect(direct.value);
          direct.value = "";
          await open(channelId);
        } catch (error) {
          sidebarError.textContent = error.code ? describeError(error.code, error.message) : error.message;
        }
      },
    },
    direct,
    h("button", { type: "submit" }, "Chat"),
  );

  const me = app.session;
  root.replaceChildren(
    h(
      "header",
      { class: "topbar" },
      h("strong", { class: "brand" }, "Parley"),
      state,
      h(
        "span",
        { class: "me" },
        me.username || "",
        h("small", { "data-testid": "my-user-id", title: "Share this id so others can find you" }, ` id ${me.user_id}`),
      ),
      h("button", { type: "button", class: "secondary", onclick: () => showFriends(app, { onChat: (id) => app.openDirect(id).then(open) }) }, "Friends"),
      h("button", { type: "button", class: "secondary", onclick: () => showDevices(app, { onLoggedOutHere: onLoggedOut }) }, "Devices"),
      app.settings ? h("button", { type: "button", class: "secondary", onclick: () => showSettings(app) }, "Settings") : null,
      h("button", { type: "button", class: "secondary", onclick: onLogOut }, "Log out"),
    ),
    notices,
    h(
      "div",
      { class: "layout" },
      h(
        "nav",
        { class: "sidebar", "aria-label": "Chats" },
        h("h2", { class: "visually-hidden" }, "Chats"),
        search.element,
        directForm,
        h("button", { type: "button", class: "secondary", onclick: () => showNewGroup(app, { onCreated: open }) }, "New group"),
        sidebarError,
        channelList,
      ),
      chat.element,
    ),
  );

  const drawChannels = () =>
    replace(
      channelList,
      app.sortedChannels().map((c) => {
        // A channel where only mentions notify shows no unread badge, only its mentions.
        const unread = app.quiet(c) ? 0 : c.unread_count || 0;
        const mentions = c.mention_count || 0;
        return h(
          "li",
          {},
          h(
            "button",
            {
              type: "button",
              class: c.channel_id === app.currentId ? "channel current" : "channel",
              "aria-current": c.channel_id === app.currentId ? "true" : null,
              dataset: { channelId: c.channel_id },
              onclick: () => open(c.channel_id),
            },
            h("span", { class: "name" }, app.channelName(c)),
            unread
              ? h("span", { class: "badge", "data-testid": "unread", "aria-label": `${unread} unread` }, String(unread))
              : null,
            mentions
              ? h("span", { class: "badge mention", "data-testid": "mentions", "aria-label": `${mentions} mentions of you` }, `@${mentions}`)
              : null,
            app.quiet(c) ? h("span", { class: "quiet", "data-testid": "quiet", title: "Only mentions notify" }, "muted") : null,
          ),
        );
      }),
      app.channels.size ? null : h("li", { class: "empty" }, "No chats yet."),
    );
  const draw = (what) => {
    if (what === "typing") return chat.renderTyping();
    if (what === "settings") return undefined;
    if (what === "connection" || what === "all") {
      // The browser knows first when it has no network: the socket may not have noticed yet.
      const shown = navigator.onLine ? app.connection.state : "offline";
      state.dataset.state = shown;
      state.dataset.gateway = app.connection.url || "";
      state.textContent = STATE_LABELS[shown];
    }
    if (what !== "connection") {
      drawChannels();
      search.update();
    }
    if (what !== "channels" && what !== "connection") chat.render(what);
    return undefined;
  };

  let noticeTimer = null;
  app.addEventListener("change", (e) => draw(e.detail));
  app.addEventListener("notice", (e) => {
    notices.textContent = e.detail;
    clearTimeout(noticeTimer);
    noticeTimer = setTimeout(() => (notices.textContent = ""), 8000);
  });
  // Back to the chat list: no chat open, and no dialog left acting on one.
  function showList() {
    clearHash();
    for (const dialog of document.querySelectorAll("dialog[open]")) dialog.close();
    chat.highlightId = null;
    app.close();
  }
  // A route from the URL: only a chat of the user's (after a fresh look at the list, for one
  // joined a moment ago) is opened; anything else shows the chat list.
  const follow = async () => {
    if (parseJoin(location.hash)) return join();
    const route = parseRoute(location.hash);
    if (!route) return showList();
    if (!app.channels.has(route.channel)) await app.loadChannels().catch(() => {});
    if (!app.channels.has(route.channel)) return showList();
    return open(route.channel, route.message);
  };
  // An invite link opened: its dialog, over the chat list; joined, the group opens.
  function join() {
    const code = parseJoin(location.hash);
    clearHash();
    showJoin(app, code, { onJoined: open });
  }
  window.addEventListener("hashchange", () => follow(), { signal });
  document.addEventListener("visibilitychange", () => app.markSeen(), { signal });
  window.addEventListener("online", () => draw("connection"), { signal });
  window.addEventListener("offline", () => draw("connection"), { signal });

  draw("all");
  const route = parseRoute(location.hash);
  if (parseJoin(location.hash)) join();
  else if (route && app.channels.has(route.channel)) open(route.channel, route.message);
  else clearHash();
  return () => listening.abort();
}
