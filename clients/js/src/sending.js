// Sends and changes (edits, deletes, reactions) through the outbox: each is confirmed by its
// echo (a `message`, or an `edit`/`delete`/`reaction` frame with its client_msg_id from this
// device) and sent again with the same client_msg_id after every reconnect, so the server
// makes one row of it whatever happened to the first try.

import { newClientMsgId } from "./ids.js";
import { Outbox } from "./outbox.js";

export class Sender {
  // Options: `deviceId` (this device's; echoes are recognised by it), `storage` and `key` of
  // the outbox, `describe(code, message, kind)`: the text kept as a refused item's `error`
  // (the server's message by default), `onChange()`: called when the outbox changes.
  constructor(
    connection,
    { deviceId = null, storage = undefined, key = undefined, describe = undefined, onChange = () => {} } = {},
  ) {
    this.connection = connection;
    this.deviceId = deviceId;
    this.describe = describe || ((code, message) => message || code);
    this.onChange = onChange;
    this.outbox = new Outbox({ storage, key });
  }

  queue(fields) {
    const item = {
      client_msg_id: newClientMsgId(),
      accepted: false,
      error: null,
      code: null,
      ...fields,
    };
    this.outbox.add(item);
    this.transmit(item);
    this.onChange();
    return item;
  }

  // `replyTo`: the id of the message of the channel this one answers (a reply), if any.
  send(channelId, text, replyTo = null) {
    const fields = { kind: "send", channel_id: channelId, text };
    if (replyTo) fields.reply_to = replyTo;
    return this.queue(fields);
  }

  // `message`: any object with its channel_id and message_id (a message frame, a history row).
  edit(message, text) {
    const { channel_id: channelId, message_id: messageId } = message;
    return this.queue({ kind: "edit", channel_id: channelId, message_id: messageId, text });
  }

  delete(message) {
    const { channel_id: channelId, message_id: messageId } = message;
    return this.queue({ kind: "delete", channel_id: channelId, message_id: messageId });
  }

  pin(message, unpin = false) {
    const { channel_id: channelId, message_id: messageId } = message;
    return this.queue({ kind: unpin ? "unpin" : "pin", channel_id: channelId, message_id: messageId });
  }

  react(message, emoji, removed = false) {
    const { channel_id: channelId, message_id: messageId } = message;
    return this.queue({ kind: "react", channel_id: channelId, message_id: messageId, emoji, removed });
  }

  // Changes to a message not yet confirmed (or refused).
  pendingChanges(messageId) {
    return this.outbox.items.filter((i) => i.message_id === messageId && i.kind !== "send");
  }

  // Sends to a channel not yet confirmed (or refused).
  pendingSends(channelId) {
    return this.outbox.inChannel(channelId).filter((i) => !i.kind || i.kind === "send");
  }

  // The item's frame, if the socket is synced; otherwise it goes with the next resend().
  transmit(item) {
    const kind = item.kind || "send"; // items queued before changes existed are sends
    const frame = { type: kind, client_msg_id: item.client_msg_id, channel_id: item.channel_id };
    if (kind !== "send") frame.message_id = item.message_id;
    if (kind === "send" || kind === "edit") frame.text = item.text;
    if (kind === "send" && item.reply_to) frame.reply_to = item.reply_to;
    if (kind === "react") Object.assign(frame, { emoji: item.emoji, removed: item.removed });
    return this.connection.send(frame);
  }

  retry(clientMsgId) {
    const item = this.outbox.update(clientMsgId, { error: null, code: null, retryable: false });
    if (item) this.transmit(item);
    this.onChange();
    return item;
  }

  discard(clientMsgId) {
    this.outbox.remove(clientMsgId);
    this.onChange();
  }

  // After a reconnect's sync (`synced`): everything not confirmed goes again.
  resend() {
    for (const item of this.outbox.unsent()) this.transmit(item);
  }

  // An `accepted` frame: the server has the item durably; its echo follows.
  accepted(frame) {
    const item = this.outbox.get(frame.client_msg_id);
    if (item) {
      this.outbox.update(frame.client_msg_id, { accepted: true });
      this.onChange();
    }
    return item || null;
  }

  // A row from the server; returns the item of this device it confirms (now out of the
  // outbox), or null.
  echoed(row) {
    if (!this.deviceId || row.sender_device_id !== this.deviceId) return null;
    const item = this.outbox.get(row.client_msg_id);
    if (!item) return null;
    this.outbox.remove(row.client_msg_id);
    return item;
  }

  // An error frame; returns the item it refuses for good (kept in the outbox with its `code`
  // and `error` until retried or discarded), or null. An `internal` one stays unsent: it goes
  // again with the next resend().
  refused(frame) {
    const item = frame.ref ? this.outbox.get(frame.ref) : null;
    if (!item || frame.code === "internal") return null;
    // A rate-limited one may be tried again.
    this.outbox.update(frame.ref, {
      error: this.describe(frame.code, frame.message, item.kind || "send"),
      code: frame.code,
      retryable: frame.code === "rate_limited",
    });
    this.onChange();
    return item;
  }
}
