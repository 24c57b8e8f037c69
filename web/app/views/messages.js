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

export const REPORT_REASONS = ["spam", "harassment", "hate", "violence", "illegal", "other"];

// "Report": a reason and an optional note, sent to the group's owners and admins and to the
// operator. The form stays in the message until sent; then it says so.
function reportForm(onReport) {
  const reason = h(
    "select",
    { "aria-label": "Reason" },
    REPORT_REASONS.map((r) => h("option", { value: r }, r)),
  );
  const note = h("input", { type: "text", maxlength: "500", placeholder: "Note (optional)", "aria-label": "Note" });
  const status = h("span", { class: "report-status", role: "status" });
  const form = h(
    "form",
    { class: "report-form", hidden: true, "aria-label": "Report this message" },
    reason,
    note,
    h("button", { type: "submit", class: "link danger" }, "Send report"),
    status,
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    status.textContent = "Reporting…";
    try {
      await onReport(reason.value, note.value.trim() || undefined);
      form.replaceChildren(h("span", { class: "report-status", role: "status" }, "Reported. Thank you."));
    } catch (error) {
      status.textContent = error.message || "Not reported.";
    }
  });
  return form;
}

// What a reply shows of the message it answers: its sender's name and the start of its text,
// a tombstone once deleted, or nothing to show when the reader may not see that message.
function quoteBlock(message, { nameOf }) {
  if (!message.reply_to) return null;
  const quote = message.quote;
  return h(
    "blockquote",
    { class: "quote", dataset: { replyTo: message.reply_to, state: quote ? (quote.deleted ? "deleted" : "shown") : "hidden" } },
    quote ? h("span", { class: "quote-sender" }, nameOf(quote.sender_id)) : null,
    h(
      "span",
      { class: quote && !quote.deleted ? "quote-text" : "quote-text tombstone" },
      !quote ? "an earlier message" : quote.deleted ? "message deleted" : quote.text,
    ),
  );
}

function actionBar(message, { canEdit, canDelete, canPin, canReport, onEdit, onDelete, onReact, onReply, onPin, onReport }) {
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
  const report = canReport ? reportForm(onReport) : null;
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
    onReply ? h("button", { type: "button", class: "link", onclick: onReply }, "Reply") : null,
    canEdit ? h("button", { type: "button", class: "link", onclick: onEdit }, "Edit") : null,
    canPin && onPin
      ? h("button", { type: "button", class: "link", onclick: onPin }, message.pinned_by ? "Unpin" : "Pin")
      : null,
    del,
    report
      ? h("button", { type: "button", class: "link", onclick: () => { report.hidden = false; } }, "Report")
      : null,
    picker,
    report,
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
      message.pinned_by && !message.deleted
        ? h("span", { class: "pinned", title: `pinned ${new Date(message.pinned_at).toLocaleString()}` },
            `📌 Pinned by ${options.nameOf(message.pinned_by)}`)
        : null,
      message.edited_at && !message.deleted
        ? h("span", { class: "edited", title: `edited ${new Date(message.edited_at).toLocaleString()}` },
            "(edited ", timeOf(message.edited_at), ")")
        : null,
    ),
    message.deleted ? null : quoteBlock(message, options),
    ...body,
    message.reply_count && options.onThread
      ? h(
          "button",
          { type: "button", class: "link replies", onclick: options.onThread },
          message.reply_count === 1 ? "1 reply" : `${message.reply_count} replies`,
        )
      : null,
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
