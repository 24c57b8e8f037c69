// Dialogs: friends and requests, this account's devices, a new group, a group's members,
// the account's settings.
// Each shows the server's error in its own alert line.

import { h, replace } from "../dom.js";
import { describeError } from "../errors.js";
import { showInvites } from "./invites.js";

// `kind` "group": the dialog creates groups or adds members (errors.js words its refusals).
function dialogShell(title, testId, kind = null) {
  const alert = h("p", { class: "form-error", role: "alert" });
  const body = h("div", { class: "dialog-body" });
  const dialog = h(
    "dialog",
    { "aria-label": title, "data-testid": testId },
    h(
      "header",
      {},
      h("h2", {}, title),
      h("button", { type: "button", class: "link", onclick: () => dialog.close() }, "Close"),
    ),
    alert,
    body,
  );
  document.body.append(dialog);
  dialog.addEventListener("close", () => dialog.remove());
  const guard = async (run) => {
    alert.textContent = "";
    try {
      await run();
    } catch (error) {
      alert.textContent = error.code ? describeError(error.code, error.message, kind) : error.message;
    }
  };
  return { dialog, body, guard };
}

function inlineForm(label, placeholder, button, onSubmit) {
  const input = h("input", { "aria-label": label, placeholder, required: true });
  return h(
    "form",
    {
      class: "inline",
      onsubmit: (event) => {
        event.preventDefault();
        onSubmit(input.value, () => (input.value = ""));
      },
    },
    input,
    h("button", { type: "submit" }, button),
  );
}

export function showFriends(app, { onChat }) {
  const { dialog, body, guard } = dialogShell("Friends", "friends-dialog");
  const list = h("ul", { class: "rows" });
  const draw = () =>
    replace(
      list,
      [...app.friends.values()].map((f) => {
        const presence = app.presence.get(f.user_id);
        const status = {
          friend: presence ? presence.status : "friend",
          requested: "request sent",
          pending: "wants to be your friend",
        }[f.status];
        return h(
          "li",
          { dataset: { userId: f.user_id } },
          h("span", { class: "grow" }, f.username, h("small", {}, ` ${status}`)),
          f.status === "pending"
            ? h("button", { type: "button", onclick: () => act(() => app.api.befriend(f.user_id)) }, "Accept")
            : null,
          f.status === "friend"
            ? h("button", { type: "button", onclick: () => guard(async () => { dialog.close(); await onChat(f.user_id); }) }, "Chat")
            : null,
          h(
            "button",
            { type: "button", class: "secondary", onclick: () => act(() => app.api.unfriend(f.user_id)) },
            f.status === "friend" ? "Remove" : f.status === "pending" ? "Decline" : "Cancel",
          ),
        );
      }),
      app.friends.size ? null : h("li", {}, "No friends yet."),
    );
  const act = (run) =>
    guard(async () => {
      await run();
      await app.loadFriends();
      draw();
    });
  replace(
    body,
    inlineForm("Friend's username or user id", "Username or user id", "Send request", (value, done) =>
      act(async () => {
        await app.befriend(value);
        done();
      }),
    ),
    list,
  );
  draw();
  dialog.showModal();
  act(async () => {});
}

export function showDevices(app, { onLoggedOutHere }) {
  const { dialog, body, guard } = dialogShell("Devices", "devices-dialog");
  const list = h("ul", { class: "rows" });
  const draw = async () => {
    const { devices } = await app.api.devices();
    replace(
      list,
      devices.map((d) =>
        h(
          "li",
          { dataset: { deviceId: d.device_id } },
          h(
            "span",
            { class: "grow" },
            d.name || "Unnamed device",
            h("small", {}, d.current ? " this browser" : ` since ${new Date(d.created_at).toLocaleString()}`),
          ),
          d.current
            ? null
            : h(
                "button",
                {
                  type: "button",
                  class: "secondary",
                  onclick: () => guard(async () => { await app.api.revokeDevice(d.device_id); await draw(); }),
                },
                "Log out",
              ),
        ),
      ),
    );
  };
  replace(
    body,
    list,
    h(
      "button",
      {
        type: "button",
        class: "danger",
        onclick: () =>
          guard(async () => {
            await app.api.revokeAllDevices();
            dialog.close();
            onLoggedOutHere();
          }),
      },
      "Log out everywhere",
    ),
  );
  dialog.showModal();
  guard(draw);
}

export function showNewGroup(app, { onCreated }) {
  const { dialog, body, guard } = dialogShell("New group", "group-dialog", "group");
  const name = h("input", { id: "group-name", required: true, maxlength: "100" });
  const members = h("input", { id: "group-members", required: true, placeholder: "usernames or user ids, comma separated" });
  replace(
    body,
    h(
      "form",
      {
        onsubmit: (event) => {
          event.preventDefault();
          guard(async () => {
            const texts = members.value.split(/[\s,]+/).filter(Boolean);
            const channelId = await app.createGroup(name.value, texts);
            dialog.close();
            await onCreated(channelId);
          });
        },
      },
      h("label", { for: "group-name" }, "Name"),
      name,
      h("label", { for: "group-members" }, "Members"),
      members,
      h("button", { type: "submit" }, "Create group"),
    ),
  );
  dialog.showModal();
}

export function showMembers(app, { onLeft }) {
  const { dialog, body, guard } = dialogShell("Members", "members-dialog", "group");
  const list = h("ul", { class: "rows" });
  const me = app.session.user_id;
  // The chat the dialog was opened for: what it does acts on that one only.
  const channelId = app.currentId;
  const draw = () => {
    const channel = app.currentId === channelId ? app.current : null;
    if (!channel) return dialog.close();
    const roles = channel.roles || {};
    return replace(
      list,
      channel.members.map((userId) =>
        h(
          "li",
          { dataset: { userId } },
          h(
            "span",
            { class: "grow" },
            app.nameOf(userId),
            h("small", {}, ` ${roles[userId] || "member"} · ${app.usernameOf(userId) ? "@" + app.usernameOf(userId) + " · " : ""}${userId}`),
          ),
          h(
            "button",
            {
              type: "button",
              class: "secondary",
              onclick: () =>
                guard(async () => {
                  await app.removeMember(userId, channelId);
                  if (userId === me) {
                    dialog.close();
                    onLeft();
                  } else draw();
                }),
            },
            userId === me ? "Leave" : "Remove",
          ),
        ),
      ),
    );
  };
  const managing = ["owner", "admin"].includes((app.current?.roles || {})[me]);
  replace(
    body,
    managing
      ? h("button", { type: "button", class: "secondary", onclick: () => showInvites(app, channelId) }, "Invite links")
      : null,
    inlineForm("Add member", "Username or user id", "Add", (value, done) =>
      guard(async () => {
        await app.addMember(value, channelId);
        done();
        draw();
      }),
    ),
    list,
  );
  draw();
  dialog.showModal();
}

// The account's export, saved as a file (docs/protocol.md, Export).
async function downloadExport(app) {
  const response = await app.api.exportData();
  const url = URL.createObjectURL(await response.blob());
  const link = h("a", { href: url, download: `parley-export-${app.session.user_id}.ndjson`, hidden: true });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
}

export function showSettings(app) {
  const { dialog, body, guard } = dialogShell("Settings", "settings-dialog");
  const saved = h("p", { class: "saved", role: "status" });
  const receipts = h("input", {
    type: "checkbox",
    id: "share-receipts",
    checked: Boolean(app.settings && app.settings.read_receipts),
    onchange: () =>
      guard(async () => {
        saved.textContent = "";
        receipts.disabled = true;
        try {
          const settings = await app.shareReadReceipts(receipts.checked);
          receipts.checked = settings.read_receipts;
          saved.textContent = "Saved.";
        } finally {
          receipts.disabled = false;
        }
      }),
  });
  const adds = h(
    "select",
    {
      id: "group-adds",
      onchange: () =>
        guard(async () => {
          saved.textContent = "";
          adds.disabled = true;
          try {
            const settings = await app.allowGroupAdds(adds.value);
            adds.value = settings.group_adds;
            saved.textContent = "Saved.";
          } finally {
            adds.disabled = false;
          }
        }),
    },
    h("option", { value: "everyone" }, "Everyone"),
    h("option", { value: "friends" }, "My friends"),
    h("option", { value: "nobody" }, "Nobody"),
  );
  adds.value = (app.settings && app.settings.group_adds) || "friends";
  const mine = app.people.get(app.session.user_id);
  const displayName = h("input", {
    id: "display-name",
    maxlength: "64",
    placeholder: "Display name",
    value: (mine && mine.display_name) || "",
  });
  const nameForm = h(
    "form",
    {
      class: "setting inline",
      onsubmit: (event) => {
        event.preventDefault();
        guard(async () => {
          saved.textContent = "";
          const name = displayName.value.trim();
          const profile = await app.setDisplayName(name || null);
          displayName.value = profile.display_name || "";
          saved.textContent = "Saved.";
        });
      },
    },
    h("label", { for: "display-name" }, "Your name "),
    displayName,
    h("button", { type: "submit" }, "Save name"),
  );
  replace(
    body,
    nameForm,
    h(
      "p",
      { class: "setting" },
      receipts,
      h("label", { for: "share-receipts" }, " Share read receipts"),
      h("small", {}, " Others in a chat see how far you have read."),
    ),
    h(
      "p",
      { class: "setting" },
      h("label", { for: "group-adds" }, "Who can add me to groups "),
      adds,
      h("small", {}, " Others are refused, and told it is your choice."),
    ),
    h(
      "p",
      { class: "setting" },
      h("button", { type: "button", class: "secondary", onclick: () => guard(() => downloadExport(app)) }, "Download my data"),
      h("small", {}, " Your account, chats and the messages you sent, one JSON object a line."),
    ),
    saved,
  );
  dialog.showModal();
}
