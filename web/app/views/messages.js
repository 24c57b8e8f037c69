// One message as an element. Long texts are cut to a preview with "Show more": a
// 100,000-character text costs the page nothing until it is opened. Text is set as text.

import { h } from "../dom.js";
import { routeHash } from "../routes.js";

const PREVIEW_CHARS = 2000;

function timeOf(iso) {
  const date = new Date(iso);
  return h(
    "time",
    { datetime: iso, title: date.toLocaleString() },
    date.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" }),
  );
}

// `@name`s as the server reads them (schemas/mentions.py): not inside a word or an address.
const MENTION = /(?<![A-Za-z0-9_.@-])@[A-Za-z0-9_.-]{3,32}(?![A-Za-z0-9_.-])/g;

// The text with its `@name`s marked: only for a message that mentions someone.
function withMentions(body, text) {
  let at = 0;
  for (const match of text.matchAll(MENTION)) {
    body.append(text.slice(at, match.index), h("mark", { class: "mention" }, match[0]));
    at = match.index + match[0].length;
  }
  body.append(text.slice(at));
}

function textBlock(text, mentions = null) {
  const body = h("p", { class: "text" });
  if (text.length <= PREVIEW_CHARS) {
    if (mentions && mentions.length) withMentions(body, text);
    else body.textContent = text;
    return [body];
  }
  body.textContent = text.slice(0, PREVIEW_CHARS) + "…";
  const toggle = h("button", { type: "button", class: "link show-more" }, "Show more");
  let open = false;
  toggle.addEventListener("click", () => {
    open = !open;
    body.textContent = open ? text : text.slice(0, PREVIEW_CHARS) + "…";
    toggle.textContent = open ? "Show less" : "Show more";
  });
  return [body, toggle];
}

export const EMOJI = ["👍", "❤️", "😂", "🎉", "😮", "😢"];

function reactionChips(message, { myId, nameOf, onReact }) {
  // One order whatever the source (live frames in arrival order, history by the server's):
  // the picker's, then any other emoji in code point order.
  const rank = (emoji) => (EMOJI.includes(emoji) ? EMOJI.indexOf(emoji) : EMOJI.length);
  const entries = Object.entries(message.reactions || {})
    .filter(([, users]) => users.length)
    .sort(([a], [b]) => rank(a) - rank(b) || (a < b ? -1 : a > b ? 1 : 0));
  if (!entries.length) return null;
  return h(
    "div",
    { class: "reactions" },
    entries.map(([emoji, users]) => {
      const mine = users.includes(myId);
      const who = users.map(nameOf).join(", ");
      return h(
        "button",
        {
          type: "button",
          class: mine ? "chip mine" : "chip",
          "aria-pressed": mine ? "true" : "false",
          title: `${who}${mine ? " (click to take yours back)" : ""}`,
          dataset: { emoji },
          onclick: () => onReact(emoji),
        },
        `${emoji} ${users.length}`,
      );
    }),
  );
}

function actionBar(message, { canEdit, canDelete, onEdit, onDelete, onReact }) {
  const picker = h(
    "div",
    { class: "picker", role: "group", "aria-label": "Pick a reaction", hidden: true },
    EMOJI.map((emoji) =>
      h(
        "button",
        {
          type: "button",
          class: "link",
          "aria-label": `React ${emoji}`,
          onclick: () => {
            picker.hidden = true;
            onReact(emoji);
          },
        },
        emoji,
      ),
    ),
  );
  // Deleting asks once more, in place: a second click on the same spot confirms.
  const del = canDelete
    ? h("button", {
        type: "button",
        class: "link danger",
        onclick: () => {
          if (del.dataset.confirm) return onDelete();
          del.dataset.confirm = "yes";
          del.textContent = "Confirm delete";
          return undefined;
        },
      }, "Delete")
    : null;
  return h(
    "div",
    { class: "message-actions" },
    h("button", {
      type: "button",
      class: "link",
      "aria-expanded": "false",
      onclick: (event) => {
        picker.hidden = !picker.hidden;
        event.currentTarget.setAttribute("aria-expanded", String(!picker.hidden));
      },
    }, "React"),
    canEdit ? h("button", { type: "button", class: "link", onclick: onEdit }, "Edit") : null,
    del,
    picker,
  );
}

// A delivered message: its text (or a tombstone), "(edited …)", reactions and the actions the
// user may take on it. `.seen-by` and `.change-status` are filled in by the chat on each draw.
export function messageElement(message, options) {
  const { senderName, mine } = options;
  const body = message.deleted
    ? [h("p", { class: "tombstone" }, "message deleted")]
    : textBlock(message.text, message.mentions);
  const mentionsMe = !message.deleted && (message.mentions || []).includes(options.myId);
  return h(
    "li",
    {
      class: (mine ? "message mine" : "message") + (mentionsMe ? " mentions-me" : ""),
      dataset: { messageId: message.message_id, state: message.deleted ? "deleted" : "sent" },
    },
    h(
      "div",
      { class: "meta" },
      h("span", { class: "sender" }, senderName),
      h(
        "a",
        {
          class: "permalink",
          href: routeHash(message.channel_id, message.message_id) || "#",
          "aria-label": "Link to this message",
        },
        timeOf(message.sent_at),
      ),
      message.edited_at && !message.deleted
        ? h("span", { class: "edited", title: `edited ${new Date(message.edited_at).toLocaleString()}` },
            "(edited ", timeOf(message.edited_at), ")")
        : null,
    ),
    ...body,
    message.deleted ? null : reactionChips(message, options),
    message.deleted ? null : actionBar(message, options),
    h("div", { class: "change-status" }),
    h("p", { class: "seen-by", hidden: true }),
  );
}

// A send of this tab not yet confirmed by its echo: "sending", or refused with a reason.
export function pendingElement(item, { senderName, onRetry, onDiscard }) {
  const state = item.error ? "failed" : item.accepted ? "accepted" : "sending";
  const status = item.error
    ? h("p", { class: "send-error", role: "alert" }, item.error)
    : h("p", { class: "send-status" }, item.accepted ? "Sent" : "Sending…");
  return h(
    "li",
    { class: "message mine pending", dataset: { clientMsgId: item.client_msg_id, state } },
    h("div", { class: "meta" }, h("span", { class: "sender" }, senderName)),
    ...textBlock(item.text),
    status,
    item.error
      ? h(
          "div",
          { class: "actions" },
          item.retryable ? h("button", { type: "button", onclick: onRetry }, "Retry") : null,
          h("button", { type: "button", class: "secondary", onclick: onDiscard }, "Discard"),
        )
      : null,
  );
}
