// Invite links: a group's owners and admins make, copy and revoke them (docs/protocol.md,
// Invite links); whoever opens one (#join=CODE) sees the group's name and size, and joins.

import { h, replace } from "../dom.js";
import { describeError } from "../errors.js";
import { joinLink } from "../routes.js";

const LIFETIMES = [
  ["Never expires", ""],
  ["1 hour", "3600"],
  ["1 day", "86400"],
  ["7 days", "604800"],
];

function dialog(title, testId) {
  const alert = h("p", { class: "form-error", role: "alert" });
  const body = h("div", { class: "dialog-body" });
  const element = h(
    "dialog",
    { "aria-label": title, "data-testid": testId },
    h(
      "header",
      {},
      h("h2", {}, title),
      h("button", { type: "button", class: "link", onclick: () => element.close() }, "Close"),
    ),
    alert,
    body,
  );
  document.body.append(element);
  element.addEventListener("close", () => element.remove());
  const guard = async (run) => {
    alert.textContent = "";
    try {
      await run();
    } catch (error) {
      alert.textContent = error.code ? describeInviteError(error) : error.message;
    }
  };
  return { element, body, guard };
}

function describeInviteError(error) {
  if (error.code === "not_found") return "This invite link does not work: it was revoked, expired or used up.";
  if (error.code === "too_many_invites") return "This group has too many invite links: revoke one first.";
  if (error.code === "blocked") return "You cannot join this group: a block stands between you and one of its admins.";
  if (error.code === "rate_limited") return "Too many invite links tried: wait a while and retry.";
  return describeError(error.code, error.message);
}

// The group's links, for its owners and admins: make one (shown with a Copy button, this once:
// the server keeps only its hash), and revoke any.
export function showInvites(app, channelId) {
  const { element, body, guard } = dialog("Invite links", "invites-dialog");
  const list = h("ul", { class: "rows" });
  const made = h("div", { class: "made-link" });
  const lifetime = h(
    "select",
    { id: "invite-lifetime" },
    LIFETIMES.map(([label, value]) => h("option", { value }, label)),
  );
  const uses = h("input", { id: "invite-uses", type: "number", min: "1", max: "1000", placeholder: "any" });
  const draw = async () => {
    const { invites } = await app.api.invites(channelId);
    replace(
      list,
      invites.map((invite) =>
        h(
          "li",
          { dataset: { inviteId: invite.invite_id } },
          h(
            "span",
            { class: "grow" },
            `${invite.code_prefix}… · used ${invite.uses}${invite.max_uses ? ` of ${invite.max_uses}` : ""}`,
            h("small", {}, invite.usable ? (invite.expires_at ? ` · until ${new Date(invite.expires_at).toLocaleString()}` : " · no expiry") : " · no longer works"),
          ),
          h(
            "button",
            {
              type: "button",
              class: "secondary",
              onclick: () =>
                guard(async () => {
                  await app.api.revokeInvite(channelId, invite.invite_id);
                  await draw();
                }),
            },
            "Revoke",
          ),
        ),
      ),
      invites.length ? null : h("li", { class: "empty" }, "No invite links."),
    );
  };
  const form = h(
    "form",
    {
      class: "inline",
      onsubmit: (event) => {
        event.preventDefault();
        guard(async () => {
          const options = {};
          if (lifetime.value) options.expiresInS = Number(lifetime.value);
          if (uses.value) options.maxUses = Number(uses.value);
          const invite = await app.api.createInvite(channelId, options);
          const link = h("input", { readonly: true, value: joinLink(invite.code), "aria-label": "New invite link", "data-testid": "invite-link" });
          const copied = h("span", { role: "status" });
          replace(
            made,
            link,
            h(
              "button",
              {
                type: "button",
                onclick: async () => {
                  link.select();
                  try {
                    await navigator.clipboard.writeText(link.value);
                    copied.textContent = "Copied.";
                  } catch {
                    copied.textContent = "Select the link and copy it.";
                  }
                },
              },
              "Copy",
            ),
            copied,
            h("small", {}, "Shown this once: anyone with the link can join."),
          );
          await draw();
        });
      },
    },
    h("label", { for: "invite-lifetime" }, "Expires"),
    lifetime,
    h("label", { for: "invite-uses" }, "Uses"),
    uses,
    h("button", { type: "submit" }, "Create link"),
  );
  replace(body, form, made, list);
  guard(draw);
  element.showModal();
}

// An invite link opened: the group's name and size, and a Join button.
export function showJoin(app, code, { onJoined }) {
  const { element, body, guard } = dialog("Join a group", "join-dialog");
  guard(async () => {
    const preview = await app.api.previewInvite(code);
    const join = h(
      "button",
      {
        type: "button",
        onclick: () =>
          guard(async () => {
            const channel = await app.api.joinByInvite(code);
            await app.loadChannels();
            element.close();
            await onJoined(channel.channel_id);
          }),
      },
      preview.member ? "Open" : "Join",
    );
    const members = `${preview.member_count} member${preview.member_count === 1 ? "" : "s"}`;
    replace(body, h("p", {}, h("strong", { "data-testid": "join-name" }, preview.name), ` · ${members}`), join);
  });
  element.showModal();
}
