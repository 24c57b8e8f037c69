// This tab's sends and changes (edits, deletes, reactions): the client library's Sender, with
// its outbox in sessionStorage (a reload keeps it) and refusals worded for the user.

import { Sender as ClientSender } from "/client/index.js";
import { describeError } from "./errors.js";

export class Sender extends ClientSender {
  constructor(connection, session, onChange) {
    super(connection, {
      deviceId: session.device_id,
      storage: sessionStorage,
      describe: describeError,
      onChange,
    });
    this.session = session;
  }

  edit(message, text) {
    if (!text.trim() || text === message.text) return null;
    return super.edit(message, text);
  }

  remove(message) {
    return this.delete(message);
  }

  // Toggles the user's `emoji` on a message.
  react(message, emoji) {
    const removed = ((message.reactions || {})[emoji] || []).includes(this.session.user_id);
    return super.react(message, emoji, removed);
  }

  // An error frame; returns what to tell the user.
  refused(frame) {
    const item = frame.ref ? this.outbox.get(frame.ref) : null;
    super.refused(frame);
    return describeError(frame.code, frame.message, item ? item.kind : null);
  }
}
