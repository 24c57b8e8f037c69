// The messages of each channel this tab knows, deduplicated by message_id and kept in id order.
//
// A channel's rows are messages and changes to them (edit, delete, reaction, pin, unpin), in one id
// order. Only messages are kept; a change is applied to the message it names (if this tab
// has it: a history page brings each message in its latest state anyway), and the newest
// change seen counts towards the cursor.
//
// `live` is contiguous up to the newest message the tab has seen (sync, live frames and
// history pages only ever extend it without a hole), so its last id is the channel's cursor
// for `hello`. A jump to an old message opens a separate `window` until it reaches the live
// end. The newest messages of each channel are cached in localStorage (bounded), so a
// reload shows them at once and resumes the sync from there.

import { compareIds, maxId } from "./ids.js";

const CACHE_MESSAGES = 100; // per channel
const CACHE_CHARS = 200_000; // per channel: a few long texts must not fill the quota
const QUOTE_CHARS = 200; // what a reply shows of the text it answers (as the server cuts it)

// The start of a text as a quote shows it: the server counts code points, not UTF-16 units.
function quoteOf(text) {
  return Array.from(text).slice(0, QUOTE_CHARS).join("");
}

function insertSorted(list, message) {
  // Messages arrive mostly in order: search from the end.
  let i = list.length;
  while (i > 0) {
    const c = compareIds(list[i - 1].message_id, message.message_id);
    if (c === 0) return false;
    if (c < 0) break;
    i -= 1;
  }
  list.splice(i, 0, message);
  return true;
}

export class ChannelTimeline {
  constructor(channelId) {
    this.channelId = channelId;
    this.live = [];
    this.loadedNewest = false; // the newest page was fetched (or sync started from the cache)
    this.reachedStart = false; // no older message exists
    this.window = null; // {messages, reachedEnd} after a jump
    this.changeCursor = null; // the newest change delivered
  }

  get cursor() {
    const last = this.live.length ? this.live[this.live.length - 1].message_id : null;
    return maxId(last, this.changeCursor);
  }

  find(messageId) {
    const found = [];
    for (const list of [this.live, this.window ? this.window.messages : []]) {
      for (let i = list.length - 1; i >= 0; i -= 1) {
        if (list[i].message_id === messageId) {
          found.push(list[i]);
          break;
        }
      }
    }
    return found;
  }

  // An edit, delete or reaction frame. Returns true if a message shown here changed.
  applyChange(change) {
    this.changeCursor = maxId(this.changeCursor, change.message_id);
    let changed = false;
    for (const message of this.find(change.target_id)) {
      if (message.deleted) continue; // a tombstone stays one
      if (change.type === "edit") {
        message.text = change.text;
        message.edited_at = change.sent_at;
        changed = this.requote(change.target_id, { text: quoteOf(change.text) }) || changed;
      } else if (change.type === "pin" || change.type === "unpin") {
        if (change.refused) continue; // beyond the channel's cap: it pinned nothing
        if (change.type === "pin") {
          message.pinned_by = change.sender_id;
          message.pinned_at = change.sent_at;
        } else {
          delete message.pinned_by;
          delete message.pinned_at;
        }
      } else if (change.type === "delete") {
        changed = this.requote(change.target_id, { text: "", deleted: true }) || changed;
        delete message.pinned_by;
        delete message.pinned_at;
        message.deleted = true;
        message.text = "";
        message.reactions = {};
      } else if (change.type === "reaction") {
        const reactions = { ...(message.reactions || {}) };
        const users = new Set(reactions[change.emoji] || []);
        if (change.removed) users.delete(change.sender_id);
        else users.add(change.sender_id);
        if (users.size) reactions[change.emoji] = [...users].sort();
        else delete reactions[change.emoji];
        message.reactions = reactions;
      } else {
        continue;
      }
      message.rev = (message.rev || 0) + 1; // the view redraws it
      changed = true;
    }
    return changed;
  }

  // The quotes of the replies to `messageId` this tab has, after an edit or delete of it.
  requote(messageId, fields) {
    let changed = false;
    for (const list of [this.live, this.window ? this.window.messages : []]) {
      for (const reply of list) {
        if (reply.reply_to !== messageId || !reply.quote || reply.deleted) continue;
        reply.quote = { ...reply.quote, ...fields };
        reply.rev = (reply.rev || 0) + 1;
        changed = true;
      }
    }
    return changed;
  }

  // A reply new to this tab counts on the message it answers, unless that message's row
  // already counted it (its `last_reply_id` is not below the reply).
  countReply(reply) {
    if (!reply.reply_to) return;
    for (const message of this.find(reply.reply_to)) {
      if (message.last_reply_id && compareIds(reply.message_id, message.last_reply_id) <= 0) continue;
      message.reply_count = (message.reply_count || 0) + 1;
      message.last_reply_id = reply.message_id;
      message.rev = (message.rev || 0) + 1;
    }
  }

  has(messageId) {
    return this.live.some((m) => m.message_id === messageId);
  }

  // Returns true if the message is new to this tab.
  addLive(message) {
    const isNew = insertSorted(this.live, message);
    if (isNew) this.countReply(message);
    return isNew;
  }

  addPage(messages) {
    for (const m of messages) insertSorted(this.live, m);
  }
}

export class Timelines {
  constructor(userId) {
    this.prefix = `parley.cache.${userId}.`;
    this.byChannel = new Map();
  }

  get(channelId) {
    let timeline = this.byChannel.get(channelId);
    if (!timeline) {
      timeline = new ChannelTimeline(channelId);
      this.byChannel.set(channelId, timeline);
      this.restore(timeline);
    }
    return timeline;
  }

  // hello.cursors: the last message seen in each channel with a contiguous cache.
  cursors(channelIds) {
    const cursors = {};
    for (const id of channelIds) {
      const cursor = this.get(id).cursor;
      if (cursor) cursors[id] = cursor;
    }
    return cursors;
  }

  restore(timeline) {
    try {
      const cached = JSON.parse(localStorage.getItem(this.prefix + timeline.channelId));
      const messages = Array.isArray(cached) ? cached : cached && cached.messages;
      if (Array.isArray(messages) && messages.length) {
        timeline.addPage(messages);
        timeline.changeCursor = (cached && cached.changeCursor) || null;
        timeline.loadedNewest = true;
      }
    } catch {
      localStorage.removeItem(this.prefix + timeline.channelId);
    }
  }

  save(timeline) {
    let keep = timeline.live.slice(-CACHE_MESSAGES);
    let chars = keep.reduce((n, m) => n + m.text.length, 0);
    while (keep.length > 1 && chars > CACHE_CHARS) {
      chars -= keep[0].text.length;
      keep = keep.slice(1);
    }
    const key = this.prefix + timeline.channelId;
    try {
      localStorage.setItem(key, JSON.stringify({ messages: keep, changeCursor: timeline.changeCursor }));
    } catch {
      // Over quota: this channel is not cached; it syncs from its acked cursor instead.
      localStorage.removeItem(key);
    }
  }

  forget(channelId) {
    this.byChannel.delete(channelId);
    localStorage.removeItem(this.prefix + channelId);
  }

  clearAll() {
    for (let i = localStorage.length - 1; i >= 0; i -= 1) {
      const key = localStorage.key(i);
      if (key && key.startsWith(this.prefix)) localStorage.removeItem(key);
    }
    this.byChannel.clear();
  }
}
