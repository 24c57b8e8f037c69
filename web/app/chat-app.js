// The signed-in app: its state (channels, people, messages, sends) and what each server frame
// does to it. The views draw from this state; this module owns the connection.

import { Connection } from "/client/index.js";
import { describeError } from "./errors.js";
import { compareIds, maxId } from "./ids.js";
import { People } from "./people.js";
import { Sender } from "./sending.js";
import { Receipts, Typing, TypingTeller } from "./signals.js";
import { Timelines } from "./timeline.js";

const PAGE = 50;
const ACK_DELAY_MS = 300;
const CACHE_DELAY_MS = 500;
const MANAGERS = new Set(["owner", "admin"]);
const PROFILES_PER_CALL = 100;

export class ChatApp extends EventTarget {
  constructor(api, session) {
    super();
    this.api = api;
    this.session = session;
    this.channels = new Map(); // channel_id -> channel from GET /v1/channels
    this.friends = new Map(); // user_id -> friend entry
    this.presence = new Map(); // user_id -> {status, last_active_at}
    this.people = new People(session.user_id);
    this.typing = new Typing((channelId) => {
      if (channelId === this.currentId) this.changed("typing");
    });
    this.typingTeller = new TypingTeller(
      (channelId) => this.connection.send({ type: "typing", channel_id: channelId }),
      () => this.currentId,
    );
    this.receipts = new Receipts();
    this.settings = null; // {read_receipts, group_adds}
    this.timelines = new Timelines(session.user_id);
    this.currentId = null;
    this.readState = false; // the server keeps read markers and unread counts
    this.acked = new Map(); // channel_id -> last id acked (and read) by this tab
    this.timers = new Map();
    this.nameless = new Set(); // user ids whose profiles are to be asked for
    this.asked = new Set(); // user ids asked for already (a profile not visible stays unknown)
    this.connection = new Connection(api, session.token, () =>
      this.timelines.cursors([...this.channels.keys()]),
    );
    this.sender = new Sender(this.connection, session, () => this.changed("chat"));
    this.outbox = this.sender.outbox;
    this.connection.addEventListener("frame", (e) => this.onFrame(e.detail));
    this.connection.addEventListener("state", () => this.changed("connection"));
    this.connection.addEventListener("unauthorized", (e) =>
      this.dispatchEvent(new CustomEvent("unauthorized", { detail: e.detail })),
    );
  }

  async start() {
    await Promise.all([this.loadChannels(), this.loadFriends(), this.loadSettings()]);
    this.connection.start();
  }

  stop() {
    this.connection.stop();
    for (const timer of this.timers.values()) clearTimeout(timer);
    this.typing.clear();
    this.typingTeller.cancel();
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
    const known = this.friends.get(userId) || this.people.get(userId);
    if (known) return `${known.display_name || known.username}${known.suspended ? " (suspended)" : ""}`;
    if (userId === this.session.user_id) return this.session.username || "You";
    this.learnNames([userId]);
    return `user …${userId.slice(-6)}`;
  }

  // Asks the server for the names of these users (all of them when `fresh`: a name may have
  // changed), in batches, soon: the views draw again once they are known.
  learnNames(userIds, fresh = false) {
    for (const id of userIds) {
      if (fresh || (!this.people.get(id) && !this.friends.has(id) && !this.asked.has(id))) {
        this.nameless.add(id);
      }
    }
    if (this.nameless.size) this.later("names", 50, () => this.loadNames());
  }

  async loadNames() {
    const ids = [...this.nameless];
    this.nameless.clear();
    let learned = false;
    for (let i = 0; i < ids.length; i += PROFILES_PER_CALL) {
      const batch = ids.slice(i, i + PROFILES_PER_CALL);
      for (const id of batch) this.asked.add(id);
      try {
        const { users } = await this.api.users(batch);
        for (const user of users) learned = this.people.learn(user) || learned;
      } catch {
        for (const id of batch) this.asked.delete(id); // asked again when next needed
      }
    }
    if (!learned) return;
    this.people.save();
    this.changed("people");
  }

  // Sets the name others see (null: none).
  async setDisplayName(name) {
    const profile = await this.api.setDisplayName(name);
    if (this.people.learn(profile)) this.people.save();
    this.changed("people");
    return profile;
  }

  // A username where one is known (display names are not unique).
  usernameOf(userId) {
    const known = this.friends.get(userId) || this.people.get(userId);
    return known ? known.username : null;
  }

  isFriend(userId) {
    const friend = this.friends.get(userId);
    return Boolean(friend && friend.status === "friend");
  }

  // A user id from what was typed: a username (looked up, and remembered), or a user id.
  resolveUser(text) {
    return this.people.resolve(text, this.api, this.friends);
  }

  async befriend(text) {
    return this.api.befriend(await this.resolveUser(text));
  }

  async loadFriends() {
    const { friends } = await this.api.friends();
    this.friends = new Map(friends.map((f) => [f.user_id, f]));
    for (const f of friends) if (f.presence) this.presence.set(f.user_id, f.presence);
    let learned = false;
    for (const f of friends) learned = this.people.learn(f) || learned;
    if (learned) this.people.save();
    this.changed("friends");
  }

  // --- settings ----------------------------------------------------------------------

  async loadSettings() {
    try {
      this.settings = await this.api.settings();
    } catch {
      this.settings = null; // a server without settings: the toggle is not offered
    }
  }

  async shareReadReceipts(on) {
    this.settings = await this.api.putSettings({ read_receipts: on });
    this.changed("settings");
    return this.settings;
  }

  async allowGroupAdds(who) {
    this.settings = await this.api.putSettings({ group_adds: who });
    this.changed("settings");
    return this.settings;
  }

  // --- channels ----------------------------------------------------------------------

  async loadChannels() {
    const { channels } = await this.api.channels();
    this.channels = new Map(channels.map((c) => [c.channel_id, c]));
    this.readState = channels.some((c) => "unread_count" in c);
    this.learnNames(channels.flatMap((c) => c.members));
    this.changed("channels");
  }

  // Whether only mentions of the user notify in the channel: its level, or a mute not over.
  quiet(channel) {
    const settings = channel.notifications;
    if (!settings) return false;
    const muted = settings.muted_until && Date.parse(settings.muted_until) > Date.now();
    return settings.level !== "all" || Boolean(muted);
  }

  // The user's notification settings for a channel: level "all" | "mentions" | "none", and a
  // mute until a time (an ISO string) or null. The other devices hear of it by a frame.
  async setNotifications(channelId, level, mutedUntil = null) {
    const { channel_id: _, ...settings } = await this.api.setNotifications(channelId, level, mutedUntil);
    this.onNotifications({ channel_id: channelId, ...settings });
  }

  onNotifications({ channel_id: channelId, level, muted_until: mutedUntil, version }) {
    const channel = this.channels.get(channelId);
    if (!channel) return;
    // Two changes made at once may arrive in either order: the higher version is the newer.
    if (channel.notifications && channel.notifications.version > version) return;
    channel.notifications = { level, muted_until: mutedUntil, version };
    this.changed("channels");
    if (channelId === this.currentId) this.changed("chat");
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

  // The user's role in a group: "owner", "admin" or "member"; null in a direct chat.
  roleIn(channel, userId = this.session.user_id) {
    if (!channel || channel.type !== "group") return null;
    return (channel.roles && channel.roles[userId]) || "member";
  }

  canEdit(message) {
    return message.sender_id === this.session.user_id && !message.deleted;
  }

  // Your own messages; anyone's as a group's owner or admin.
  canDelete(message) {
    if (message.deleted) return false;
    if (message.sender_id === this.session.user_id) return true;
    return MANAGERS.has(this.roleIn(this.channels.get(message.channel_id)));
  }

  // Someone else's living message: reported to the group's owners and admins and to the
  // operator.
  canReport(message) {
    return message.sender_id !== this.session.user_id && !message.deleted;
  }

  async report(message, reason, note) {
    try {
      return await this.api.report(message.channel_id, message.message_id, reason, note);
    } catch (error) {
      throw new Error(describeError(error.code, error.message));
    }
  }

  // A group's owners and admins; either member of a direct chat.
  canPin(message) {
    if (message.deleted) return false;
    const channel = this.channels.get(message.channel_id);
    if (!channel) return false;
    return channel.type === "direct" || MANAGERS.has(this.roleIn(channel));
  }

  async openDirect(userText) {
    const channel = await this.api.openDirect(await this.resolveUser(userText));
    await this.loadChannels();
    return channel.channel_id;
  }

  async createGroup(name, memberTexts) {
    const ids = await Promise.all(memberTexts.map((t) => this.resolveUser(t)));
    const channel = await this.api.createGroup(name, ids);
    await this.loadChannels();
    return channel.channel_id;
  }

  // In the open chat, or in `channelId` (the chat a dialog was opened for).
  async addMember(userText, channelId = this.currentId) {
    if (!this.channels.has(channelId)) throw new Error("That chat is not open.");
    await this.api.addMember(channelId, await this.resolveUser(userText));
    await this.loadChannels();
  }

  async removeMember(userId, channelId = this.currentId) {
    if (!this.channels.has(channelId)) throw new Error("That chat is not open.");
    await this.api.removeMember(channelId, userId);
    if (userId === this.session.user_id) {
      this.timelines.forget(channelId);
      if (channelId === this.currentId) this.currentId = null;
    }
    await this.loadChannels();
  }

  // No chat open: the chat list.
  close() {
    this.currentId = null;
    this.changed("all");
  }

  // Opens a chat at its newest messages, or around `messageId` (a jump).
  async open(channelId, messageId = null) {
    this.currentId = channelId;
    const timeline = this.timelines.get(channelId);
    this.changed("chat");
    try {
      await this.loadFriends(); // names and who may be watched may have changed
      const channel = this.channels.get(channelId);
      if (channel) this.learnNames(channel.members, true);
      this.subscribePresence();
      this.loadReceipts(channelId);
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

  async loadReceipts(channelId) {
    try {
      const { receipts } = await this.api.receipts(channelId);
      this.receipts.replace(channelId, receipts);
      if (channelId === this.currentId) this.changed("receipts");
    } catch {
      // receipts are a nicety: the chat works without them
    }
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
    if (this.readState && (channel.unread_count || channel.mention_count)) {
      channel.unread_count = 0;
      channel.mention_count = 0;
      this.changed("channels");
    }
    const done = this.acked.get(channel.channel_id);
    if (done && compareIds(done, newest) >= 0) return;
    this.later(`ack:${channel.channel_id}`, ACK_DELAY_MS, () => this.ackSeen(channel.channel_id));
  }

  // The wait is over: ack (and mark read) up to the newest message now on screen, so that
  // messages that arrived during the wait are read too.
  ackSeen(channelId) {
    if (channelId !== this.currentId || document.visibilityState !== "visible") return;
    const timeline = this.timelines.get(channelId);
    const newest = timeline.window ? null : timeline.cursor;
    const done = this.acked.get(channelId);
    if (!newest || (done && compareIds(done, newest) >= 0)) return;
    const frame = { channel_id: channelId, message_id: newest };
    if (!this.connection.send({ type: "ack", ...frame })) return;
    if (this.readState) this.connection.send({ type: "read", ...frame });
    this.acked.set(channelId, newest);
  }

  // --- sending -----------------------------------------------------------------------

  // `replyTo`: the id of the message of the open chat this one answers, if any.
  send(text, replyTo = null) {
    if (!this.currentId || !text.trim()) return;
    this.sender.send(this.currentId, text, replyTo);
    this.typingTeller.cancel(); // that typing was this message
  }

  // The user is typing in the open chat.
  typed() {
    this.typingTeller.typed();
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
      case "notifications":
        return this.onNotifications(frame);
      case "edit":
      case "delete":
      case "reaction":
      case "pin":
      case "unpin":
        return this.onChange(frame);
      case "receipts":
        this.receipts.moved(frame.channel_id, frame.reads);
        return frame.channel_id === this.currentId ? this.changed("receipts") : undefined;
      case "typing":
        if (frame.user_id === this.session.user_id) return undefined; // another device of ours
        return this.typing.started(frame.channel_id, frame.user_id, frame.expires_in_ms);
      default:
        return undefined;
    }
  }

  onMessage(frame) {
    const { type, ...message } = frame;
    const timeline = this.timelines.get(message.channel_id);
    const isNew = timeline.addLive(message);
    this.sender.echoed(message);
    if (!isNew) return;
    this.typing.messageArrived(message.channel_id, message.sender_id);
    this.saveSoon(timeline);
    if (!this.friends.has(message.sender_id) && message.sender_id !== this.session.user_id) {
      this.later("friends", 1000, () => this.loadFriends().catch(() => {}));
    }
    const channel = this.channels.get(message.channel_id);
    if (!channel) {
      this.refreshChannelsSoon(); // a chat someone just started with us
      return;
    }
    // A message the list already had (the sync after a reload replays what was missed) is
    // in the server's counts already: counted again, a badge would show one too many.
    const counted = channel.last_message_id && compareIds(message.message_id, channel.last_message_id) <= 0;
    channel.last_message_id = maxId(channel.last_message_id, message.message_id);
    const shown = message.channel_id === this.currentId && document.visibilityState === "visible";
    if (this.readState && !shown && !counted && message.sender_id !== this.session.user_id) {
      channel.unread_count = (channel.unread_count || 0) + 1;
      if ((message.mentions || []).includes(this.session.user_id)) {
        channel.mention_count = (channel.mention_count || 0) + 1;
      }
    }
    this.changed(message.channel_id === this.currentId ? "chat" : "channels");
    if (message.channel_id === this.currentId) this.changed("channels");
    this.markSeen();
  }

  onChange(frame) {
    const timeline = this.timelines.get(frame.channel_id);
    if (this.sender.echoed(frame)) this.changed("edit");
    // Older than what the tab has: already applied, or in the state a history page brought.
    if (timeline.cursor !== null && compareIds(frame.message_id, timeline.cursor) <= 0) return;
    const shownChanged = timeline.applyChange(frame);
    this.saveSoon(timeline);
    const channel = this.channels.get(frame.channel_id);
    // A change is a row of the channel (it moves the cursor) but never counts as unread.
    if (channel) channel.last_message_id = maxId(channel.last_message_id, frame.message_id);
    if (frame.channel_id === this.currentId) {
      if (shownChanged) this.changed("edit");
      this.markSeen();
    }
  }

  onSynced() {
    this.sender.resend();
    this.presenceSubscribed = false;
    this.subscribePresence();
    this.acked.clear();
    this.markSeen();
    this.refreshChannelsSoon();
  }

  onError(frame) {
    this.notify(this.sender.refused(frame));
    if (frame.code === "forbidden") {
      // The user's role in the group changed since it was read: read it again, so the
      // actions offered on messages follow.
      this.loadChannels().then(() => this.changed("chat"), () => {});
    }
  }

  onRead(frame) {
    if (frame.user_id && frame.user_id !== this.session.user_id) return; // only ever ours
    const channel = this.channels.get(frame.channel_id);
    if (!channel) return;
    channel.read_message_id = maxId(channel.read_message_id, frame.message_id);
    if (channel.last_message_id && compareIds(frame.message_id, channel.last_message_id) >= 0) {
      channel.unread_count = 0;
      channel.mention_count = 0;
      this.changed("channels");
    } else {
      this.refreshChannelsSoon(); // read part of the way: the server counts what is left
    }
  }

  saveSoon(timeline) {
    this.later(`cache:${timeline.channelId}`, CACHE_DELAY_MS, () => this.timelines.save(timeline));
  }
}
