// One message as an element. Long texts are cut to a preview with "Show more": a
// 100,000-character text costs the page nothing until it is opened. Text is set as text.

import { h } from "../dom.js";

const PREVIEW_CHARS = 2000;

function timeOf(iso) {
  const date = new Date(iso);
  return h(
    "time",
    { datetime: iso, title: date.toLocaleString() },
    date.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" }),
  );
}

function textBlock(text) {
  const body = h("p", { class: "text" });
  if (text.length <= PREVIEW_CHARS) {
    body.textContent = text;
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

// A delivered message.
export function messageElement(message, { senderName, mine }) {
  return h(
    "li",
    {
      class: mine ? "message mine" : "message",
      dataset: { messageId: message.message_id, state: "sent" },
    },
    h(
      "div",
      { class: "meta" },
      h("span", { class: "sender" }, senderName),
      h(
        "a",
        {
          class: "permalink",
          href: `#channel=${message.channel_id}&message=${message.message_id}`,
          "aria-label": "Link to this message",
        },
        timeOf(message.sent_at),
      ),
    ),
    ...textBlock(message.text),
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
