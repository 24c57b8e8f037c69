// Sends not yet confirmed by their echo. Kept per tab (sessionStorage, so a reload keeps
// them) and sent again with the same client_msg_id after every reconnect: the server makes
// one message of them whatever happened to the first try.

const KEY = "parley.outbox";

export class Outbox {
  constructor() {
    try {
      this.items = JSON.parse(sessionStorage.getItem(KEY)) || [];
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
      sessionStorage.setItem(KEY, JSON.stringify(this.items));
    } catch {
      // a pending long text over the quota stays in memory only
    }
  }

  clear() {
    this.items = [];
    sessionStorage.removeItem(KEY);
  }
}
