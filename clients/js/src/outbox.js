// Sends and changes not yet confirmed by their echo, kept in `storage` (a page's
// sessionStorage keeps them across a reload) and sent again with the same client_msg_id after
// every reconnect: the server makes one row of each whatever happened to the first try.

import { defaultStorage } from "./storage.js";

export class Outbox {
  constructor({ storage = undefined, key = "parley.outbox" } = {}) {
    this.storage = storage || defaultStorage("sessionStorage");
    this.key = key;
    try {
      this.items = JSON.parse(this.storage.getItem(key)) || [];
    } catch {
      this.items = [];
    }
  }

  add(item) {
    this.items.push(item);
    this.save();
  }

  get(clientMsgId) {
    return this.items.find((i) => i.client_msg_id === clientMsgId);
  }

  update(clientMsgId, changes) {
    const item = this.get(clientMsgId);
    if (item) Object.assign(item, changes);
    this.save();
    return item;
  }

  remove(clientMsgId) {
    this.items = this.items.filter((i) => i.client_msg_id !== clientMsgId);
    this.save();
  }

  inChannel(channelId) {
    return this.items.filter((i) => i.channel_id === channelId);
  }

  // What to (re)send now: everything not refused by the server.
  unsent() {
    return this.items.filter((i) => !i.error);
  }

  save() {
    try {
      this.storage.setItem(this.key, JSON.stringify(this.items));
    } catch {
      // a pending long text over the quota stays in memory only
    }
  }

  clear() {
    this.items = [];
    this.storage.removeItem(this.key);
  }
}
