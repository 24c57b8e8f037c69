// The open chat: its header (members and their presence), the messages with infinite scroll
// back through history, who is typing, the composer (which also edits a message, or answers
// one: a reply), and a message's thread (its replies) beside them.

import { h, replace } from "../dom.js";
import { textLength } from "../ids.js";
import { messageElement, pendingElement } from "./messages.js";

const MAX_TEXT = 100_000;
const WARN_TEXT = 90_000;
const NEAR_BOTTOM_PX = 48;
const MUTE_MS = 8 * 3600 * 1000;

export class ChatView {
  constructor(app, { onMembers }) {
    this.app = app;
    this.nodes = new Map(); // message_id -> element, reused while the message is unchanged
    this.editing = null; // the message being edited in the composer
    this.replyingTo = null; // the message the composer's next send answers
    this.shownChannel = null;
    this.highlightId = null;

    this.title = h("h2", { id: "chat-title" });
    this.people = h("p", { class: "people", "data-testid": "chat-people" });
    this.membersButton = h(
      "button",
      { type: "button", class: "secondary", onclick: onMembers, hidden: true },
      "Members",
    );
    this.pinsButton = h(
      "button",
      { type: "button", class: "secondary", onclick: () => this.openPins().catch((e) => app.notify(e.message)) },
      "Pins",
    );
    // The user's notification level for the chat, and a mute of 8 hours (mentions still notify).
    this.level = h(
      "select",
      {
        "aria-label": "Notify me of",
        "data-testid": "notify-level",
        onchange: () => this.setNotifications(this.level.value, this.mutedUntil()),
      },
      h("option", { value: "all" }, "All messages"),
      h("option", { value: "mentions" }, "Mentions only"),
      h("option", { value: "none" }, "Nothing"),
    );
    this.muteButton = h("button", {
      type: "button",
      class: "secondary",
      "data-testid": "mute",
      onclick: () => {
        const muted = this.mutedUntil();
        const until = muted ? null : new Date(Date.now() + MUTE_MS).toISOString();
        this.setNotifications(this.level.value, until);
      },
    }, "Mute");
    this.notifyControl = h("div", { class: "notify-level", hidden: true }, this.level, this.muteButton);
    this.older = h(
      "button",
      { type: "button", class: "link load-older", onclick: () => app.loadOlder() },
      "Load older messages",
    );
    this.list = h("ol", { class: "message-list", "data-testid": "messages" });
    this.newer = h("div", { class: "jumped", hidden: true },
      h("span", {}, "You are viewing older messages."),
      h("button", { type: "button", class: "link", onclick: () => app.loadNewer() }, "Load newer"),
      h("button", { type: "button", onclick: () => app.backToLatest() }, "Jump to latest"),
    );
    this.scroller = h(
      "div",
      { class: "messages", role: "log", "aria-labelledby": "chat-title", tabindex: "0" },
      this.older,
      this.list,
    );
    this.text = h("textarea", {
      id: "composer-text",
      rows: "2",
      placeholder: "Write a message",
      "aria-label": "Message",
      onkeydown: (event) => {
        if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
          event.preventDefault();
          this.submit();
        } else if (event.key === "Escape" && this.editing) {
          this.stopEditing();
        }
      },
      oninput: () => {
        this.count();
        if (!this.editing && this.text.value) app.typed();
      },
    });
    this.typingLine = h("p", { class: "typing", "aria-live": "polite", "data-testid": "typing" });
    this.editBanner = h(
      "div",
      { class: "editing", hidden: true },
      h("span", {}, "Editing a message"),
      h("button", { type: "button", class: "link", onclick: () => this.stopEditing() }, "Cancel edit"),
    );
    this.replyLabel = h("span", {});
    this.replyBanner = h(
      "div",
      { class: "replying", hidden: true, "data-testid": "replying" },
      this.replyLabel,
      h("button", { type: "button", class: "link", onclick: () => this.stopReplying() }, "Cancel reply"),
    );
    this.threadTitle = h("h3", {}, "Thread");
    this.threadList = h("ol", { class: "message-list", "data-testid": "thread" });
    this.threadPanel = h(
      "aside",
      { class: "thread", hidden: true, "aria-label": "Thread" },
      h(
        "header",
        {},
        this.threadTitle,
        h("button", { type: "button", class: "link", onclick: () => this.closeThread() }, "Close panel"),
      ),
      this.threadList,
    );
    this.sendButton = h("button", { type: "submit" }, "Send");
    this.counter = h("span", { class: "counter", "aria-live": "polite" });
    this.composer = h(
      "form",
      {
        class: "composer",
        onsubmit: (event) => {
          event.preventDefault();
          this.submit();
        },
      },
      this.text,
      this.counter,
      this.sendButton,
    );
    this.empty = h("p", { class: "empty" }, "Pick a chat, or start one.");
    this.element = h(
      "section",
      { class: "chat", "aria-label": "Chat" },
      h(
        "header",
        { class: "chat-header" },
        h("div", {}, this.title, this.people),
        h("div", { class: "header-actions" }, this.notifyControl, this.pinsButton, this.membersButton),
      ),
      this.newer,
      this.scroller,
      this.typingLine,
      this.editBanner,
      this.replyBanner,
      this.composer,
      this.threadPanel,
    );

    // Scrolled to the top: fetch the page before.
    new IntersectionObserver((entries) => {
      if (entries.some((e) => e.isIntersecting) && this.list.childElementCount) app.loadOlder();
    }, { root: this.scroller }).observe(this.older);
    this.scroller.addEventListener("scroll", () => {
      const timeline = this.timeline();
      if (timeline && timeline.window && this.nearBottom()) app.loadNewer();
    });
  }

  timeline() {
    return this.app.currentId ? this.app.timelines.get(this.app.currentId) : null;
  }

  nearBottom() {
    const s = this.scroller;
    return s.scrollHeight - s.scrollTop - s.clientHeight < NEAR_BOTTOM_PX;
  }

  submit() {
    const text = this.text.value;
    if (!text.trim()) return;
    if (this.editing) {
      this.app.sender.edit(this.editing, text);
      this.stopEditing();
    } else {
      this.app.send(text, this.replyingTo ? this.replyingTo.message_id : null);
      this.text.value = "";
      this.stopReplying();
    }
    this.count();
    this.text.focus();
  }

  startReplying(message) {
    this.stopEditing();
    this.replyingTo = message;
    replace(this.replyLabel, `Replying to ${this.app.nameOf(message.sender_id)}: ${message.text.slice(0, 80)}`);
    this.replyBanner.hidden = false;
    this.text.focus();
  }

  stopReplying() {
    this.replyingTo = null;
    this.replyBanner.hidden = true;
  }

  // A message's thread: the message, then its replies (the newest 100).
  async openThread(message) {
    this.threadOf = message;
    this.threadPanel.hidden = false;
    replace(this.threadTitle, `Thread of ${this.app.nameOf(message.sender_id)}`);
    const { messages } = await this.app.api.history(message.channel_id, { thread: message.message_id, limit: 100 });
    if (this.threadOf !== message) return; // another thread was opened meanwhile
    this.showInPanel([message, ...messages]);
  }

  // The open chat's pinned messages, the most recently pinned first, in the same panel.
  async openPins() {
    const channelId = this.app.currentId;
    if (!channelId) return;
    this.threadOf = channelId;
    this.threadPanel.hidden = false;
    replace(this.threadTitle, "Pinned messages");
    const { messages } = await this.app.api.pins(channelId);
    if (this.threadOf !== channelId) return;
    this.showInPanel(messages);
    if (!messages.length) this.threadList.replaceChildren(h("li", { class: "empty" }, "No pinned messages."));
  }

  showInPanel(messages) {
    const me = this.app.session.user_id;
    const element = (m) =>
      messageElement(m, {
        senderName: this.app.nameOf(m.sender_id),
        mine: m.sender_id === me,
        myId: me,
        nameOf: (id) => this.app.nameOf(id),
        onReact: (emoji) => this.app.sender.react(m, emoji),
      });
    this.threadList.replaceChildren(...messages.map(element));
  }

  closeThread() {
    this.threadOf = null;
    this.threadPanel.hidden = true;
    this.threadList.replaceChildren();
  }

  startEditing(message) {
    if (!this.editing) this.draft = this.text.value; // given back when the edit ends
    this.editing = message;
    this.text.value = message.text;
    this.editBanner.hidden = false;
    this.sendButton.textContent = "Save";
    this.count();
    this.text.focus();
  }

  stopEditing() {
    if (!this.editing) return;
    this.editing = null;
    this.text.value = this.draft || "";
    this.draft = undefined;
    this.editBanner.hidden = true;
    this.sendButton.textContent = "Send";
    this.count();
  }

  renderTyping() {
    const channelId = this.app.currentId;
    const names = channelId ? this.app.typing.who(channelId).map((id) => this.app.nameOf(id)) : [];
    this.typingLine.textContent =
      names.length === 0 ? "" :
      names.length === 1 ? `${names[0]} is typing…` :
      names.length <= 3 ? `${names.join(", ")} are typing…` : "Several people are typing…";
  }

  count() {
    const n = this.text.value.length > WARN_TEXT ? textLength(this.text.value) : 0;
    this.counter.textContent = n > WARN_TEXT ? `${n.toLocaleString()} / ${MAX_TEXT.toLocaleString()}` : "";
    this.counter.classList.toggle("over", n > MAX_TEXT);
  }

  // The open chat's mute, if it is not over: its end (an ISO string), else null.
  mutedUntil() {
    const settings = this.app.current && this.app.current.notifications;
    const until = settings && settings.muted_until;
    return until && Date.parse(until) > Date.now() ? until : null;
  }

  setNotifications(level, mutedUntil) {
    const channelId = this.app.currentId;
    this.app.setNotifications(channelId, level, mutedUntil).catch((error) => this.app.notify(error.message));
  }

  renderHeader() {
    const channel = this.app.current;
    this.element.classList.toggle("none", !channel);
    this.notifyControl.hidden = !channel || !channel.notifications;
    if (!channel) {
      replace(this.title, "Parley");
      replace(this.people, "Pick a chat, or start one.");
      this.membersButton.hidden = true;
      this.pinsButton.hidden = true;
      return;
    }
    this.pinsButton.hidden = false;
    if (channel.notifications) {
      this.level.value = channel.notifications.level;
      const muted = this.mutedUntil();
      this.muteButton.textContent = muted ? "Unmute" : "Mute";
      this.muteButton.title = muted ? `Muted until ${new Date(muted).toLocaleString()}` : "Mute for 8 hours";
    }
    replace(this.title, this.app.channelName(channel));
    this.membersButton.hidden = channel.type !== "group";
    const others = channel.members.filter((m) => m !== this.app.session.user_id);
    replace(
      this.people,
      others.map((userId) => {
        const presence = this.app.presence.get(userId);
        const status = this.app.isFriend(userId) && presence ? presence.status : null;
        return h(
          "span",
          { class: "person", dataset: { userId, presence: status || "unknown" } },
          h("span", { class: "dot", "aria-hidden": "true" }),
          this.app.nameOf(userId),
          status ? h("span", { class: "presence" }, ` (${status})`) : null,
        );
      }),
    );
  }

  // This tab's edits, deletes and reactions of the message not yet confirmed, or refused.
  drawChangeStatus(node, message) {
    const status = node.querySelector(".change-status");
    const pending = this.app.sender.pendingChanges(message.message_id);
    const labels = { edit: "Saving the edit…", delete: "Deleting…", react: "Reacting…" };
    replace(
      status,
      pending.map((item) =>
        item.error
          ? h(
              "p",
              { class: "send-error", role: "alert" },
              item.error,
              " ",
              item.retryable
                ? h("button", { type: "button", class: "link", onclick: () => this.app.sender.retry(item.client_msg_id) }, "Retry")
                : null,
              h("button", { type: "button", class: "link", onclick: () => this.app.sender.discard(item.client_msg_id) }, "Dismiss"),
            )
          : h("p", { class: "send-status" }, labels[item.kind]),
      ),
    );
  }

  render(what, highlightId = null) {
    if (highlightId) this.highlightId = highlightId;
    this.renderHeader();
    const channel = this.app.current;
    this.composer.hidden = !channel;
    if (!channel) {
      this.list.replaceChildren();
      this.older.hidden = true;
      return;
    }
    const timeline = this.timeline();
    const switched = this.shownChannel !== channel.channel_id;
    if (switched) {
      this.nodes.clear();
      this.shownChannel = channel.channel_id;
      this.stopEditing();
      this.stopReplying();
      this.closeThread();
    }
    this.renderTyping();
    const stick = switched || this.nearBottom();
    const fromBottom = this.scroller.scrollHeight - this.scroller.scrollTop;

    const messages = timeline.window ? timeline.window.messages : timeline.live;
    const me = this.app.session.user_id;
    const seenBy = this.app.receipts.seenBy(channel.channel_id, messages, me);
    const items = messages.map((m) => {
      const canEdit = this.app.canEdit(m);
      const canDelete = this.app.canDelete(m);
      const canReport = this.app.canReport(m);
      const canPin = this.app.canPin(m);
      const quoted = m.quote ? this.app.nameOf(m.quote.sender_id) : "";
      const pinner = m.pinned_by ? this.app.nameOf(m.pinned_by) : "";
      const version = `${m.rev || 0}|${canEdit}|${canDelete}|${canPin}|${canReport}|${this.app.nameOf(m.sender_id)}|${quoted}|${pinner}`;
      let node = this.nodes.get(m.message_id);
      if (!node || node.version !== version) {
        node = messageElement(m, {
          senderName: this.app.nameOf(m.sender_id),
          mine: m.sender_id === me,
          myId: me,
          nameOf: (id) => this.app.nameOf(id),
          canEdit,
          canDelete,
          canReport,
          onReport: (reason, note) => this.app.report(m, reason, note),
          canPin,
          onPin: () => this.app.sender.pin(m, Boolean(m.pinned_by)),
          onEdit: () => this.startEditing(m),
          onDelete: () => this.app.sender.remove(m),
          onReact: (emoji) => this.app.sender.react(m, emoji),
          onReply: () => this.startReplying(m),
          onThread: () => this.openThread(m).catch((error) => this.app.notify(error.message)),
        });
        node.version = version;
        this.nodes.set(m.message_id, node);
      }
      node.classList.toggle("highlight", m.message_id === this.highlightId);
      this.drawChangeStatus(node, m);
      const seen = node.querySelector(".seen-by");
      const readers = seenBy.get(m.message_id);
      seen.hidden = !readers;
      seen.textContent = readers ? `Seen by ${readers.map((id) => this.app.nameOf(id)).join(", ")}` : "";
      return node;
    });
    if (!timeline.window) {
      for (const item of this.app.sender.pendingSends(channel.channel_id)) {
        items.push(
          pendingElement(item, {
            senderName: this.app.nameOf(me),
            onRetry: () => this.app.sender.retry(item.client_msg_id),
            onDiscard: () => this.app.sender.discard(item.client_msg_id),
          }),
        );
      }
    }
    // Only when something changed: replacing the nodes would take the focus off a button.
    const shown = this.list.children;
    if (shown.length !== items.length || items.some((node, i) => shown[i] !== node)) {
      this.list.replaceChildren(...items);
    }
    const reachedStart = timeline.window ? timeline.window.reachedStart : timeline.reachedStart;
    this.older.hidden = Boolean(reachedStart);
    this.newer.hidden = !timeline.window;

    const target = this.highlightId && this.nodes.get(this.highlightId);
    if (target && (what === "jump" || switched)) {
      target.scrollIntoView({ block: "center" });
    } else if (what === "older") {
      this.scroller.scrollTop = this.scroller.scrollHeight - fromBottom; // keep the reader's place
    } else if (stick && !timeline.window) {
      this.scroller.scrollTop = this.scroller.scrollHeight;
    }
  }
}
