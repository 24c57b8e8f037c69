// This tab's sends and changes (edits, deletes, reactions). They share the outbox: each is
// confirmed by its echo (a `message`, or an `edit`/`delete`/`reaction` frame with its
// client_msg_id) and sent again with the same client_msg_id after every reconnect, so the
// server makes one row of it whatever happened to the first try.

import { describeError } from "./errors.js";
import { newClientMsgId } from "./ids.js";
import { Outbox } from "./outbox.js";

export class Sender {
  constructor(connection, session, onChange) {
    this.connection = connection;
    this.session = session;
    this.onChange = onChange;
    this.outbox = new Outbox();
  }

  queue(fields) {
    const item = { client_msg_id: newClientMsgId(), accepted: false, error: null, ...fields };
    this.outbox.add(item);
    this.transmit(item);
    this.onChange();
  }

  send(channelId, text) {
    this.queue({ kind: "send", channel_id: channelId, text });
  }

  edit(message, text) {
    if (!text.trim() || text === message.text) return;
    const { channel_id: channelId, message_id: messageId } = message;
    this.queue({ kind: "edit", channel_id: channelId, message_id: messageId, text });
  }

  remove(message) {
    const { channel_id: channelId, message_id: messageId } = message;
    this.queue({ kind: "delete", channel_id: channelId, message_id: messageId });
  }

  // Toggles the user's `emoji` on a message.
  react(message, emoji) {
    const removed = ((message.reactions || {})[emoji] || []).includes(this.session.user_id);
    const { channel_id: channelId, message_id: messageId } = message;
    this.queue({ kind: "react", channel_id: channelId, message_id: messageId, emoji, removed });
  }

  // Changes of this tab to a message not yet confirmed (or refused).
  pendingChanges(messageId) {
    return this.outbox.items.filter((i) => i.message_id === messageId && i.kind !== "send");
  }

  transmit(item) {
    const kind = item.kind || "send"; // items queued before changes existed are sends
    const frame = { type: kind, client_msg_id: item.client_msg_id, channel_id: item.channel_id };
    if (kind !== "send") frame.message_id = item.message_id;
    if (kind === "send" || kind === "edit") frame.text = item.text;
    if (kind === "react") Object.assign(frame, { emoji: item.emoji, removed: item.removed });
    this.connection.send(frame);
  }


  retry(clientMsgId) {
    const item = this.outbox.update(clientMsgId, { error: null, retryable: false });
    if (item) this.transmit(item);
    this.onChange();
  }

  discard(clientMsgId) {
    this.outbox.remove(clientMsgId);
    this.onChange();
  }

  // Sends of this tab to a channel not yet confirmed (or refused).
  pendingSends(channelId) {
    return this.outbox.inChannel(channelId).filter((i) => !i.kind || i.kind === "send");
  }

  // After a reconnect's sync: everything not confirmed goes again.
  resend() {
    for (const item of this.outbox.unsent()) this.transmit(item);
  }

  // A row from the server; returns true if it confirmed an item of this tab.
  echoed(row) {
    if (row.sender_device_id !== this.session.device_id || !this.outbox.get(row.client_msg_id)) {
      return false;
    }
    this.outbox.remove(row.client_msg_id);
    return true;
  }

  // An error frame; returns what to tell the user.
  refused(frame) {
    const item = frame.ref ? this.outbox.get(frame.ref) : null;
    const text = describeError(frame.code, frame.message, item ? item.kind : null);
    if (item && frame.code !== "internal") {
      // Refused for good; a rate-limited one may be tried again by the user.
      this.outbox.update(frame.ref, { error: text, retryable: frame.code === "rate_limited" });
      this.onChange();
    }
    return text;
  }
}
