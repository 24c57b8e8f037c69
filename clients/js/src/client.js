// One device's client, for scripts, bots and apps that want the protocol and no more: log in,
// connect (discovery, hello with cursors, reconnects), send and change messages with promises,
// and get every row of the user's channels once, in order, across reconnects.
//
// Events: "message" and "change" (detail: a message, or an edit/delete/reaction/pin/unpin frame, each
// new to this client: rows at or below the channel's cursor are not told twice), "frame"
// (every server frame), "state" (as Connection's), "unauthorized" (detail: a ParleyError).

import { Api } from "./api.js";
import { Connection } from "./connection.js";
import { ParleyError } from "./errors.js";
import { compareIds } from "./ids.js";
import { memoryStorage } from "./storage.js";
import { Sender } from "./sending.js";

const ROWS = new Set(["message", "edit", "delete", "reaction", "pin", "unpin"]);

export class Client extends EventTarget {
  // Logs in (a new device) and returns a client for it, not yet connected.
  static async logIn(url, username, password, options = {}) {
    const api = new Api({ url, fetch: options.fetch });
    const login = await api.logIn(username, password, options.deviceName || "parley-js");
    return new Client({ ...options, url, token: login.token, deviceId: login.device_id, userId: login.user_id });
  }

  // Options: `url` (the gateway's, e.g. "http://127.0.0.1:8080"; "" for a page's own origin),
  // `token`, `cursors` ({channel_id: message_id} to resume from), `WebSocket`, `fetch`,
  // `storage` (for the outbox and the gateways last named; in memory by default).
  constructor({
    url = "",
    token,
    cursors = {},
    userId = null,
    deviceId = null,
    WebSocket = undefined,
    fetch = undefined,
    storage = undefined,
  } = {}) {
    super();
    if (!token) throw new ParleyError("invalid", "A token is needed: log in first.");
    const store = storage || memoryStorage();
    this.api = new Api({ url, token, fetch });
    this.userId = userId;
    this.deviceId = deviceId;
    this.cursors = new Map(Object.entries(cursors)); // channel_id -> the newest row's id
    this.connection = new Connection(this.api, token, () => Object.fromEntries(this.cursors), {
      WebSocket,
      storage: store,
    });
    this.sender = new Sender(this.connection, { deviceId, storage: store });
    this.waiting = new Map(); // client_msg_id -> {resolve, reject}
    this.connecting = []; // {resolve, reject} of each connect() until `synced`
    this.connection.addEventListener("frame", (e) => this.onFrame(e.detail));
    this.connection.addEventListener("state", (e) => {
      this.dispatchEvent(new CustomEvent("state", { detail: e.detail }));
    });
    this.connection.addEventListener("unauthorized", (e) => this.onUnauthorized(e.detail));
  }

  get state() {
    return this.connection.state;
  }

  // Connects; resolves once the first sync is done (`synced`), rejects with a ParleyError
  // (code "unauthorized") if the token is refused. Reconnects on its own until close().
  connect() {
    if (this.connection.state === "online") return Promise.resolve();
    const done = new Promise((resolve, reject) => this.connecting.push({ resolve, reject }));
    try {
      this.connection.start();
    } catch (error) {
      for (const waiter of this.connecting.splice(0)) waiter.reject(error); // no WebSocket
    }
    return done;
  }

  // Closes the socket. What was not confirmed stays in the outbox and goes again at the next
  // connect(); its promises settle then.
  close() {
    this.connection.stop();
  }

  // Resolves with the message as delivered (its message_id, sent_at, …); rejects with a
  // ParleyError carrying the server's code (not_member, too_large, rate_limited, …).
  // `replyTo`: the id of the message of the channel this one answers (a reply).
  send(channelId, text, { replyTo = null } = {}) {
    return this.waitFor(this.sender.send(channelId, text, replyTo));
  }

  // Resolves with the change frame (its own message_id; target_id names the message).
  edit(message, text) {
    return this.waitFor(this.sender.edit(message, text));
  }

  delete(message) {
    return this.waitFor(this.sender.delete(message));
  }

  // Pins the message (with `unpin`, unpins it); resolves with the pin (unpin) frame.
  pin(message, { unpin = false } = {}) {
    return this.waitFor(this.sender.pin(message, unpin));
  }

  react(message, emoji, { removed = false } = {}) {
    return this.waitFor(this.sender.react(message, emoji, removed));
  }

  // Moves this device's sync cursor (what the next connection starts after, without cursors).
  ack(channelId, messageId) {
    return this.connection.send({ type: "ack", channel_id: channelId, message_id: messageId });
  }

  // Moves the user's read marker.
  read(channelId, messageId) {
    return this.connection.send({ type: "read", channel_id: channelId, message_id: messageId });
  }

  typing(channelId) {
    return this.connection.send({ type: "typing", channel_id: channelId });
  }

  waitFor(item) {
    return new Promise((resolve, reject) => this.waiting.set(item.client_msg_id, { resolve, reject }));
  }

  onFrame(frame) {
    if (frame.type === "welcome") {
      this.userId = frame.user_id;
      this.deviceId = frame.device_id;
      this.sender.deviceId = frame.device_id;
    } else if (ROWS.has(frame.type)) {
      this.onRow(frame);
    } else if (frame.type === "synced") {
      this.sender.resend();
      for (const waiter of this.connecting.splice(0)) waiter.resolve();
    } else if (frame.type === "accepted") {
      this.sender.accepted(frame);
    } else if (frame.type === "error" && frame.ref) {
      const item = this.sender.refused(frame);
      if (item) {
        this.sender.discard(item.client_msg_id); // told to the caller: nothing to keep
        this.settle(item.client_msg_id, new ParleyError(frame.code, frame.message, { ref: frame.ref }));
      }
    }
    this.dispatchEvent(new CustomEvent("frame", { detail: frame }));
  }

  onRow(frame) {
    const { type, ...row } = frame;
    const item = this.sender.echoed(row);
    if (item) this.settle(item.client_msg_id, null, type === "message" ? row : frame);
    const cursor = this.cursors.get(row.channel_id);
    if (cursor && compareIds(row.message_id, cursor) <= 0) return; // had it already
    this.cursors.set(row.channel_id, row.message_id);
    if (type === "message") this.dispatchEvent(new CustomEvent("message", { detail: row }));
    else this.dispatchEvent(new CustomEvent("change", { detail: frame }));
  }

  onUnauthorized(error) {
    for (const waiter of this.connecting.splice(0)) waiter.reject(error);
    this.settleAll(error);
    this.dispatchEvent(new CustomEvent("unauthorized", { detail: error }));
  }

  settle(clientMsgId, error, value) {
    const waiter = this.waiting.get(clientMsgId);
    if (!waiter) return;
    this.waiting.delete(clientMsgId);
    if (error) waiter.reject(error);
    else waiter.resolve(value);
  }

  settleAll(error) {
    for (const id of [...this.waiting.keys()]) this.settle(id, error);
  }
}
