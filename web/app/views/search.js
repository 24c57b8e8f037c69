// Search: a box in the sidebar, the results (newest first) with their snippets, "More results"
// through `next_before`, and a result opens its chat at that message. Snippet parts are text:
// each one a text node, or a <mark> holding text for a match.

import { h, replace } from "../dom.js";
import { describeError } from "../errors.js";
import { textLength } from "../ids.js";

const MAX_QUERY = 200;
const PAGE = 20;

// What the user reads for a refused search.
function searchError(error, q) {
  switch (error.code) {
    case "invalid":
      return textLength(q) > MAX_QUERY
        ? `The search is too long: at most ${MAX_QUERY} characters (this one has ${textLength(q)}).`
        : "Nothing to search for: use letters, digits or emoji (punctuation is not searched).";
    case "too_broad":
      return "That search is too broad: add words, or search only the open chat.";
    case "not_member":
      return "You are not a member of that chat any more.";
    default:
      return describeError(error.code, error.message);
  }
}

function when(iso) {
  const date = new Date(iso);
  return h(
    "time",
    { datetime: iso, title: date.toLocaleString() },
    date.toLocaleString([], { month: "short", day: "numeric", hour: "2-digit", minute: "2-digit" }),
  );
}

export function snippetElement(parts) {
  return h(
    "span",
    { class: "snippet" },
    parts.map((part) => (part.match ? h("mark", {}, part.text) : part.text)),
  );
}

export class SearchView {
  constructor(app, { onOpen }) {
    this.app = app;
    this.onOpen = onOpen;
    this.asked = 0; // answers to an older search are dropped
    this.query = null; // {q, channelId} of the results shown

    this.input = h("input", {
      type: "search",
      "aria-label": "Search messages",
      placeholder: "Search messages",
      onkeydown: (event) => {
        if (event.key === "Escape") this.clear();
      },
    });
    this.onlyHere = h("input", { type: "checkbox", "aria-label": "Only the open chat" });
    this.onlyHereLabel = h("label", { class: "only-here" }, this.onlyHere, " Only the open chat");
    this.status = h("p", { class: "search-status", role: "status", "data-testid": "search-status" });
    this.error = h("p", { class: "form-error", role: "alert", "data-testid": "search-error" });
    this.list = h("ol", { class: "search-results", "data-testid": "search-results" });
    this.more = h(
      "button",
      { type: "button", class: "link", hidden: true, onclick: () => this.loadMore() },
      "More results",
    );
    this.closeButton = h(
      "button",
      { type: "button", class: "link", hidden: true, onclick: () => this.clear() },
      "Clear search",
    );
    this.form = h(
      "form",
      {
        class: "search",
        role: "search",
        onsubmit: (event) => {
          event.preventDefault();
          this.submit();
        },
      },
      h("div", { class: "inline" }, this.input, h("button", { type: "submit" }, "Search")),
      this.onlyHereLabel,
    );
    this.element = h(
      "section",
      { class: "search-panel", "aria-label": "Search" },
      this.form,
      this.error,
      this.status,
      this.list,
      this.more,
      this.closeButton,
    );
    this.update();
  }

  // The open chat changed: the "only this chat" option follows it.
  update() {
    const channel = this.app.current;
    this.onlyHere.disabled = !channel;
    if (!channel) this.onlyHere.checked = false;
  }

  clear() {
    this.asked += 1;
    this.query = null;
    this.input.value = "";
    this.error.textContent = "";
    this.status.textContent = "";
    this.list.replaceChildren();
    this.more.hidden = true;
    this.closeButton.hidden = true;
  }

  submit() {
    const q = this.input.value;
    if (!q.trim()) return this.clear();
    const channelId = this.onlyHere.checked && this.app.currentId ? this.app.currentId : null;
    this.query = { q, channelId };
    this.list.replaceChildren();
    return this.fetch(null);
  }

  loadMore() {
    if (this.query && this.nextBefore) this.fetch(this.nextBefore);
  }

  async fetch(before) {
    const asked = ++this.asked;
    const { q, channelId } = this.query;
    this.error.textContent = "";
    this.status.textContent = "Searching…";
    this.more.hidden = true;
    this.closeButton.hidden = false;
    let page;
    try {
      page = await this.app.api.search(q, { channelId, before, limit: PAGE });
    } catch (error) {
      if (asked !== this.asked) return;
      this.status.textContent = "";
      this.error.textContent = searchError(error, q);
      return;
    }
    if (asked !== this.asked) return;
    this.nextBefore = page.next_before;
    this.list.append(...page.results.map((result) => this.resultElement(result)));
    const n = this.list.childElementCount;
    const where = channelId ? ` in ${this.chatName(channelId, null)}` : "";
    this.status.textContent =
      n === 0 ? `No messages found${where}.` :
      `${n}${page.next_before ? "+" : ""} result${n === 1 ? "" : "s"}${where}`;
    this.more.hidden = !page.next_before;
  }

  chatName(channelId, channel) {
    const known = this.app.channels.get(channelId);
    if (known) return this.app.channelName(known);
    return channel && channel.name ? channel.name : "Direct chat";
  }

  resultElement({ message, channel, snippet }) {
    return h(
      "li",
      {},
      h(
        "button",
        {
          type: "button",
          class: "search-result",
          dataset: { channelId: message.channel_id, messageId: message.message_id },
          onclick: () => this.onOpen(message.channel_id, message.message_id),
        },
        h(
          "span",
          { class: "meta" },
          h("span", { class: "chat-name" }, this.chatName(message.channel_id, channel)),
          h("span", { class: "sender" }, this.app.nameOf(message.sender_id)),
          when(message.sent_at),
        ),
        snippetElement(snippet),
      ),
    );
  }
}
