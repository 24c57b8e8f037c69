// The messages of each channel this tab knows, deduplicated by message_id and kept in id order.
//
// `live` is contiguous up to the newest message the tab has seen (sync, live frames and
// history pages only ever extend it without a hole), so its last id is the channel's cursor
// for `hello`. A jump to an old message opens a separate `window` until it reaches the live
// end. The newest messages of each channel are cached in localStorage (bounded), so a
// reload shows them at once and resumes the sync from there.

import { compareIds } from "./ids.js";

const CACHE_MESSAGES = 100; // per channel
const CACHE_CHARS = 200_000; // per channel: a few long texts must not fill the quota

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
  }

  get cursor() {
    return this.live.length ? this.live[this.live.length - 1].message_id : null;
  }

  has(messageId) {
    return this.live.some((m) => m.message_id === messageId);
  }

  // Returns true if the message is new to this tab.
  addLive(message) {
    return insertSorted(this.live, message);
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
      if (Array.isArray(cached) && cached.length) {
        timeline.addPage(cached);
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
      localStorage.setItem(key, JSON.stringify(keep));
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
