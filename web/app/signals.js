// What the other members are doing in a channel, as the live signals tell it: who is typing
// (ephemeral, for `expires_in_ms`) and how far each has read (receipts).

import { compareIds, maxId } from "./ids.js";

const TYPING_EVERY_MS = 2500; // the gateway relays one per 2 s per socket and channel
const TYPING_TTL_MS = 6000; // a typing frame's `expires_in_ms` is this less its age

export class Typing {
  constructor(onChange) {
    this.onChange = onChange; // (channelId) => void
    this.byChannel = new Map(); // channel_id -> Map(user_id -> timer)
    this.lastMessage = new Map(); // "channel_id user_id" -> when their last message arrived
  }

  started(channelId, userId, expiresInMs) {
    // Typing and messages travel different paths: the typing that led to a message may
    // arrive after it. Typing that began before their last message arrived is that one.
    const began = Date.now() - (TYPING_TTL_MS - expiresInMs);
    if (began <= (this.lastMessage.get(`${channelId} ${userId}`) || 0)) return;
    let users = this.byChannel.get(channelId);
    if (!users) this.byChannel.set(channelId, (users = new Map()));
    clearTimeout(users.get(userId));
    users.set(userId, setTimeout(() => this.stopped(channelId, userId), expiresInMs));
    this.onChange(channelId);
  }

  messageArrived(channelId, userId) {
    this.lastMessage.set(`${channelId} ${userId}`, Date.now());
    this.stopped(channelId, userId);
  }

  // Expired, or that user's message arrived.
  stopped(channelId, userId) {
    const users = this.byChannel.get(channelId);
    if (!users || !users.has(userId)) return;
    clearTimeout(users.get(userId));
    users.delete(userId);
    this.onChange(channelId);
  }

  who(channelId) {
    const users = this.byChannel.get(channelId);
    return users ? [...users.keys()] : [];
  }

  clear() {
    for (const users of this.byChannel.values()) for (const timer of users.values()) clearTimeout(timer);
    this.byChannel.clear();
  }
}

// Tells the others that this user is typing: at most every 2.5 s per channel (the gateway
// drops repeats within 2 s). Typing within that time is told when it ends, so typing just
// after a send still shows.
export class TypingTeller {
  constructor(send, currentChannel) {
    this.send = send; // (channelId) => true if sent
    this.currentChannel = currentChannel; // () => the open chat's id
    this.toldAt = new Map(); // channel_id -> when it was last told
    this.timer = null;
  }

  typed() {
    const channelId = this.currentChannel();
    if (!channelId) return;
    const wait = (this.toldAt.get(channelId) || 0) + TYPING_EVERY_MS - Date.now();
    clearTimeout(this.timer);
    if (wait > 0) {
      this.timer = setTimeout(() => {
        if (this.currentChannel() === channelId) this.typed();
      }, wait);
    } else if (this.send(channelId)) {
      this.toldAt.set(channelId, Date.now());
    }
  }

  // A send, or leaving: what was typed is told by the message itself.
  cancel() {
    clearTimeout(this.timer);
  }
}

export class Receipts {
  constructor() {
    this.byChannel = new Map(); // channel_id -> Map(user_id -> message_id)
  }

  // The channel's receipts as GET /v1/channels/{id}/receipts gives them: those who stopped
  // sharing are left out, so this replaces what was known.
  replace(channelId, receipts) {
    this.byChannel.set(channelId, new Map(receipts.map((r) => [r.user_id, r.message_id])));
  }

  // A `receipts` frame: markers only move forward.
  moved(channelId, reads) {
    let users = this.byChannel.get(channelId);
    if (!users) this.byChannel.set(channelId, (users = new Map()));
    for (const { user_id: userId, message_id: messageId } of reads) {
      users.set(userId, maxId(users.get(userId), messageId));
    }
  }

  // message_id -> [user ids]: each reader under the newest of `messages` they have read
  // (shown in id order: a receipt may name a change, which is after its message).
  seenBy(channelId, messages, exceptUserId) {
    const users = this.byChannel.get(channelId);
    const seen = new Map();
    if (!users || !messages.length) return seen;
    for (const [userId, readId] of users) {
      if (userId === exceptUserId) continue;
      let lo = 0;
      let hi = messages.length; // the first message newer than readId
      while (lo < hi) {
        const mid = (lo + hi) >> 1;
        if (compareIds(messages[mid].message_id, readId) <= 0) lo = mid + 1;
        else hi = mid;
      }
      if (lo === 0) continue; // read up to before what is shown
      // Under their own message it says nothing: whoever sent it has seen it.
      if (messages[lo - 1].sender_id === userId) continue;
      const at = messages[lo - 1].message_id;
      if (!seen.has(at)) seen.set(at, []);
      seen.get(at).push(userId);
    }
    return seen;
  }
}
