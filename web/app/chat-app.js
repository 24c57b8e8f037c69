// The signed-in app: its state (channels, people, messages, sends) and what each server frame
// does to it. The views draw from this state; this module owns the connection.

import { Connection } from "./connection.js";
import { describeError } from "./errors.js";
import { compareIds, maxId, newClientMsgId } from "./ids.js";
import { Outbox } from "./outbox.js";
import { Timelines } from "./timeline.js";

const PAGE = 50;
const ACK_DELAY_MS = 300;
const CACHE_DELAY_MS = 500;

export class ChatApp extends EventTarget {
  constructor(api, session) {
    super();
    this.api = api;
    this.session = session;
    this.channels = new Map(); // channel_id -> channel from GET /v1/channels
    this.friends = new Map(); // user_id -> friend entry
    this.presence = new Map(); // user_id -> {status, last_active_at}
    this.timelines = new Timelines(session.user_id);
    this.outbox = new Outbox();
    this.currentId = null;
    this.readState = false; // the server keeps read markers and unread counts
    this.acked = new Map(); // channel_id -> last id acked (and read) by this tab
    this.timers = new Map();
    this.connection = new Connection(api, session.token, () =>
      this.timelines.cursors([...this.channels.keys()]),
    );
    this.connection.addEventListener("frame", (e) => this.onFrame(e.detail));
    this.connection.addEventListener("state", () => this.changed("connection"));
    this.connection.addEventListener("unauthorized", () => this.dispatchEvent(new Event("unauthorized")));
  }

  async start() {
    await Promise.all([this.loadChannels(), this.loadFriends()]);
    this.connection.start();
  }

  stop() {
    this.connection.stop();
    for (const timer of this.timers.values()) clearTimeout(timer);
  }

  changed(what) {
    this.dispatchEvent(new CustomEvent("change", { detail: what }));
  }

  notify(text) {
    this.dispatchEvent(new CustomEvent("notice", { detail: text }));
  }

  later(key, delayMs, run) {
    if (this.timers.has(key)) return;
    this.timers.set(
      key,
      setTimeout(() => {
        this.timers.delete(key);
        run();
      }, delayMs),
    );
  }

  // --- people ------------------------------------------------------------------------

  nameOf(userId) {
    if (userId === this.session.user_id) return this.session.username || "You";
    const friend = this.friends.get(userId);
    if (friend) return friend.display_name || friend.username;
    return `user …${userId.slice(-6)}`;
  }

  isFriend(userId) {
    const friend = this.friends.get(userId);
    return Boolean(friend && friend.status === "friend");
  }

  // A user id from what was typed: an id, or the username of someone on the friends list.
  // (The API has no lookup of users by name.)
  resolveUser(text) {
    const value = text.trim();
    if (/^[0-9]+$/.test(value)) return value;
    for (const friend of this.friends.values()) if (friend.username === value) return friend.user_id;
    throw new Error(
      `"${value}" is not on your friends list. Ask them for their user id (shown under their name).`,
    );
  }

  async loadFriends() {
    const { friends } = await this.api.friends();
    this.friends = new Map(friends.map((f) => [f.user_id, f]));
    for (const f of friends) if (f.presence) this.presence.set(f.user_id, f.presence);
    this.changed("friends");
  }

  // --- channels ----------------------------------------------------------------------

  async loadChannels() {
    const { channels } = await this.api.channels();
    this.channels = new Map(channels.map((c) => [c.channel_id, c]));
    this.readState = channels.some((c) => "unread_count" in c);
    this.changed("channels");
  }

  refreshChannelsSoon() {
    this.later("channels", 300, () => this.loadChannels().catch(() => {}));
  }

  // Newest activity first; a channel without messages counts from its creation (ids sort by time).
  sortedChannels() {
    const key = (c) => c.last_message_id || c.channel_id;
    return [...this.channels.values()].sort((a, b) => compareIds(key(b), key(a)));
  }

  channelName(channel) {
    if (channel.type === "group") return channel.name;
    const other = channel.members.find((m) => m !== this.session.user_id);
    return other ? this.nameOf(other) : "Notes to self";
  }

  get current() {
    return this.currentId ? this.channels.get(this.currentId) : null;
  }

  async openDirect(userText) {
    const channel = await this.api.openDirect(this.resolveUser(userText));
    await this.loadChannels();
    return channel.channel_id;
  }

  async createGroup(name, memberTexts) {
    const ids = memberTexts.map((t) => this.resolveUser(t));
    const channel = await this.api.createGroup(name, ids);
    await this.loadChannels();
    return channel.channel_id;
  }

  async addMember(userText) {
    await this.api.addMember(this.currentId, this.resolveUser(userText));
    await this.loadChannels();
  }

  async removeMember(userId) {
    const channelId = this.currentId;
    await this.api.removeMember(channelId, userId);
    if (userId === this.session.user_id) {
      this.timelines.forget(channelId);
      this.currentId = null;
    }
    await this.loadChannels();
  }

  // Opens a chat at its newest messages, or around `messageId` (a jump).
  async open(channelId, messageId = null) {
    this.currentId = channelId;
    const timeline = this.timelines.get(channelId);
    this.changed("chat");
    try {
      await this.loadFriends(); // names and who may be watched may have changed
      this.subscribePresence();
      if (messageId && !timeline.has(messageId)) {
        const { messages } = await this.api.history(channelId, { around: messageId, limit: PAGE });
        timeline.window = { messages, reachedEnd: false };
        if (messages.length < PAGE / 2) timeline.window.reachedEnd = await this.loadNewer(timeline);
      } else {
        timeline.window = null;
        if (!timeline.loadedNewest) {
          const { messages } = await this.api.history(channelId, { limit: PAGE });
          timeline.addPage(messages);
          timeline.loadedNewest = true;
          if (messages.length < PAGE) timeline.reachedStart = true;
          this.saveSoon(timeline);
        }
      }
    } catch (error) {
      this.notify(describeError(error.code, error.message));
    }
    this.changed("chat");
    this.markSeen();
  }

  async loadOlder() {
    const timeline = this.currentId && this.timelines.get(this.currentId);
    if (!timeline || timeline.loading) return;
    const list = timeline.window ? timeline.window.messages : timeline.live;
    if (timeline.window ? timeline.window.reachedStart : timeline.reachedStart) return;
    timeline.loading = true;
    try {
      const before = list.length ? list[0].message_id : undefined;
      const { messages } = await this.api.history(timeline.channelId, { before, limit: PAGE });
      if (timeline.window) {
        timeline.window.messages = [...messages, ...timeline.window.messages];
        if (messages.length < PAGE) timeline.window.reachedStart = true;
      } else {
        timeline.addPage(messages);
        if (messages.length < PAGE) timeline.reachedStart = true;
      }
    } catch (error) {
      this.notify(describeError(error.code, error.message));
    } finally {
      timeline.loading = false;
    }
    this.changed("older");
  }

  // After a jump: the next page towards the present. Returns true once the window reaches
  // the live end, where it joins the live messages.
  async loadNewer(timeline = this.currentId && this.timelines.get(this.currentId)) {
    if (!timeline || !timeline.window || timeline.loading) return false;
    const messages = timeline.window.messages;
    if (!messages.length) return this.backToLatest();
    timeline.loading = true;
    try {
      const after = messages[messages.length - 1].message_id;
      const page = (await this.api.history(timeline.channelId, { after, limit: PAGE })).messages;
      timeline.window.messages = [...messages, ...page];
      if (page.length < PAGE) {
        // Nothing newer is missing: the window and the live end meet without a hole.
        timeline.addPage(timeline.window.messages);
        timeline.loadedNewest = true;
        timeline.window = null;
      }
    } finally {
      timeline.loading = false;
    }
    this.changed("newer");
    return timeline.window === null;
  }

  backToLatest() {
    if (!this.currentId) return true;
    return this.open(this.currentId).then(() => true);
  }

  subscribePresence() {
    const channel = this.current;
    const ids = channel
      ? channel.members.filter((m) => m !== this.session.user_id && this.isFriend(m))
      : [];
    if (!ids.length && !this.presenceSubscribed) return;
    this.presenceSubscribed = ids.length > 0;
    // Capped at 500 per socket: a group has at most 100 members.
    this.connection.send({ type: "presence.subscribe", user_ids: ids });
  }

  // The open chat is on screen: ack (and mark read) up to its newest message.
  markSeen() {
    const channel = this.current;
    if (!channel || document.visibilityState !== "visible") return;
    const timeline = this.timelines.get(channel.channel_id);
    const newest = timeline.window ? null : timeline.cursor;
    if (!newest) return;
    if (this.readState && channel.unread_count) {
      channel.unread_count = 0;
      this.changed("channels");
    }
    const done = this.acked.get(channel.channel_id);
    if (done && compareIds(done, newest) >= 0) return;
    this.later(`ack:${channel.channel_id}`, ACK_DELAY_MS, () => {
      const frame = { channel_id: channel.channel_id, message_id: newest };
      if (!this.connection.send({ type: "ack", ...frame })) return;
      if (this.readState) this.connection.send({ type: "read", ...frame });
      this.acked.set(channel.channel_id, newest);
    });
  }

  // --- sending -----------------------------------------------------------------------

  send(text) {
    if (!this.currentId || !text.trim()) return;
    const item = {
      client_msg_id: newClientMsgId(),
      channel_id: this.currentId,
      text,
      accepted: false,
      error: null,
    };
    this.outbox.add(item);
    this.transmit(item);
    this.changed("chat");
  }

  transmit(item) {
    this.connection.send({
      type: "send",
      client_msg_id: item.client_msg_id,
      channel_id: item.channel_id,
      text: item.text,
    });
  }

  retry(clientMsgId) {
    const item = this.outbox.update(clientMsgId, { error: null, retryable: false });
    if (item) this.transmit(item);
    this.changed("chat");
  }

  discard(clientMsgId) {
    this.outbox.remove(clientMsgId);
    this.changed("chat");
  }

  // --- frames ------------------------------------------------------------------------

  onFrame(frame) {
    switch (frame.type) {
      case "message":
        return this.onMessage(frame);
      case "synced":
        return this.onSynced();
      case "accepted":
        this.outbox.update(frame.client_msg_id, { accepted: true });
        return this.changed("chat");
      case "error":
        return this.onError(frame);
      case "presence":
        this.presence.set(frame.user_id, frame);
        return this.changed("presence");
      case "read":
        return this.onRead(frame);
      default:
        return undefined;
    }
  }

  onMessage(frame) {
    const { type, ...message } = frame;
    const timeline = this.timelines.get(message.channel_id);
    const isNew = timeline.addLive(message);
    if (
      message.sender_device_id === this.session.device_id &&
      this.outbox.get(message.client_msg_id)
    ) {
      this.outbox.remove(message.client_msg_id); // the echo confirms the send
    }
    if (!isNew) return;
    this.saveSoon(timeline);
    if (!this.friends.has(message.sender_id) && message.sender_id !== this.session.user_id) {
      this.later("friends", 1000, () => this.loadFriends().catch(() => {}));
    }
    const channel = this.channels.get(message.channel_id);
    if (!channel) {
      this.refreshChannelsSoon(); // a chat someone just started with us
      return;
    }
    channel.last_message_id = maxId(channel.last_message_id, message.message_id);
    const shown = message.channel_id === this.currentId && document.visibilityState === "visible";
    if (this.readState && !shown && message.sender_id !== this.session.user_id) {
      channel.unread_count = (channel.unread_count || 0) + 1;
    }
    this.changed(message.channel_id === this.currentId ? "chat" : "channels");
    if (message.channel_id === this.currentId) this.changed("channels");
    this.markSeen();
  }

  onSynced() {
    // Everything not confirmed goes again, with its own client_msg_id: one message results.
    for (const item of this.outbox.unsent()) this.transmit(item);
    this.presenceSubscribed = false;
    this.subscribePresence();
    this.acked.clear();
    this.markSeen();
    this.refreshChannelsSoon();
  }

  onError(frame) {
    const text = describeError(frame.code, frame.message);
    const item = frame.ref ? this.outbox.get(frame.ref) : null;
    if (item && frame.code !== "internal") {
      // Refused for good; a rate-limited send may be tried again by the user.
      this.outbox.update(frame.ref, { error: text, retryable: frame.code === "rate_limited" });
      this.changed("chat");
    }
    this.notify(text);
  }

  onRead(frame) {
    if (frame.user_id && frame.user_id !== this.session.user_id) return; // only ever ours
    const channel = this.channels.get(frame.channel_id);
    if (!channel) return;
    channel.read_message_id = maxId(channel.read_message_id, frame.message_id);
    if (channel.last_message_id && compareIds(frame.message_id, channel.last_message_id) >= 0) {
      channel.unread_count = 0;
      this.changed("channels");
    } else {
      this.refreshChannelsSoon(); // read part of the way: the server counts what is left
    }
  }

  saveSoon(timeline) {
    this.later(`cache:${timeline.channelId}`, CACHE_DELAY_MS, () => this.timelines.save(timeline));
  }
}
