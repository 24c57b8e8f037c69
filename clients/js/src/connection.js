// The WebSocket to a gateway: discovery, hello with cursors, heartbeats, and reconnecting
// with exponential backoff and jitter.
//
// Events: "state" (detail: "connecting" | "online" | "reconnecting" | "offline"),
// "frame" (detail: a server frame), "gateway" (detail: the URL of the socket just opened),
// "unauthorized" (detail: a ParleyError: the token was refused or the device logged out, code
// "unauthorized"; or an operator suspended the account, code "suspended"; the connection
// stops).

import { ParleyError } from "./errors.js";
import { defaultStorage } from "./storage.js";

const KNOWN_GATEWAYS = "parley.gateways";
const OPEN_TIMEOUT_MS = 5000;
const BACKOFF_BASE_MS = 250;
const BACKOFF_CAP_MS = 10000;
const CLOSE_UNAUTHORIZED = 4001;
const CLOSE_SUSPENDED = 4003;
const CLOSE_DRAINING = 1012;

export function backoffDelay(attempt) {
  // "Full jitter": anywhere up to the exponential bound, so a crowd of clients spreads out.
  const bound = Math.min(BACKOFF_CAP_MS, BACKOFF_BASE_MS * 2 ** attempt);
  return Math.round(bound / 2 + (Math.random() * bound) / 2);
}

export class Connection extends EventTarget {
  // `cursors`: () => {channel_id: message_id}, the newest row the client has of each channel,
  // sent in every hello. Options: `WebSocket` (a constructor; the global one by default),
  // `storage` (where the gateways discovery named last are kept; localStorage by default).
  constructor(api, token, cursors, { WebSocket = undefined, storage = undefined } = {}) {
    super();
    this.api = api;
    this.token = token;
    this.cursors = cursors;
    this.WebSocket = WebSocket;
    this.storage = storage || defaultStorage("localStorage");
    this.state = "offline";
    this.socket = null;
    this.url = null;
    this.attempt = 0;
    this.everOnline = false;
    this.stopped = true;
    this.heartbeat = null;
    this.retry = null;
    this.refusal = null; // the `unauthorized` error frame the server sent before closing
    // The browser is back on a network: no need to wait out the backoff.
    this.onOnline = () => {
      if (!this.stopped && !this.socket) {
        clearTimeout(this.retry);
        this.connect();
      }
    };
  }

  start() {
    const WebSocketClass = this.WebSocket || globalThis.WebSocket;
    if (typeof WebSocketClass !== "function") {
      throw new ParleyError(
        "no_websocket",
        "No WebSocket here: pass the WebSocket option, or run Node 20 with --experimental-websocket.",
      );
    }
    if (!this.stopped) return;
    if (typeof globalThis.addEventListener === "function") {
      globalThis.addEventListener("online", this.onOnline);
    }
    this.stopped = false;
    this.setState("connecting");
    this.connect();
  }

  stop() {
    this.stopped = true;
    if (typeof globalThis.removeEventListener === "function") {
      globalThis.removeEventListener("online", this.onOnline);
    }
    clearTimeout(this.retry);
    clearInterval(this.heartbeat);
    if (this.socket) this.socket.close(1000, "bye");
    this.socket = null;
    this.setState("offline");
  }

  // Sends a frame if the socket is synced; false if not (nothing is queued here).
  send(frame) {
    if (this.state !== "online" || !this.socket) return false;
    this.socket.send(JSON.stringify(frame));
    return true;
  }

  // The gateways to try, best first: discovery; if it cannot answer (the gateway asked is
  // down), the list it gave last time; the API's origin last of all. A page's
  // Content-Security-Policy may let it reach its own host only: a gateway discovery names
  // elsewhere then fails at once, and the origin (which serves the socket too) remains.
  async gateways() {
    const origin = this.api.originWsUrl();
    try {
      const { gateways } = await this.api.discovery();
      const urls = gateways.map((g) => g.url);
      this.storage.setItem(KNOWN_GATEWAYS, JSON.stringify(urls));
      if (urls.length) return [...new Set([...urls, origin])];
    } catch (error) {
      if (error.status === 401) throw error;
    }
    let known = [];
    try {
      known = JSON.parse(this.storage.getItem(KNOWN_GATEWAYS)) || [];
    } catch {
      known = [];
    }
    return [...new Set([...known, origin])];
  }

  async connect() {
    let urls;
    try {
      urls = await this.gateways();
    } catch (error) {
      this.refused(new ParleyError("unauthorized", error.message, { status: error.status }));
      return;
    }
    for (const url of urls) {
      if (this.stopped) return;
      if (await this.tryGateway(url)) return;
    }
    this.scheduleRetry();
  }

  // Resolves true once the socket is open and said hello; false if it could not open.
  tryGateway(url) {
    return new Promise((resolve) => {
      let socket;
      try {
        socket = new (this.WebSocket || globalThis.WebSocket)(url);
      } catch {
        resolve(false);
        return;
      }
      let opened = false;
      const timer = setTimeout(() => {
        socket.close();
        resolve(false);
      }, OPEN_TIMEOUT_MS);
      // A socket a page's CSP refuses (a gateway on another host or port) gets an error
      // and no close event: it is given up at its error.
      socket.onerror = () => {
        if (opened) return;
        clearTimeout(timer);
        resolve(false);
      };
      socket.onopen = () => {
        opened = true;
        clearTimeout(timer);
        if (this.stopped) {
          socket.close(1000, "bye");
          resolve(true);
          return;
        }
        this.socket = socket;
        this.url = url;
        this.refusal = null;
        this.dispatchEvent(new CustomEvent("gateway", { detail: url }));
        socket.send(JSON.stringify({ type: "hello", token: this.token, cursors: this.cursors() }));
        resolve(true);
      };
      socket.onmessage = (event) => this.onMessage(socket, event);
      socket.onclose = (event) => {
        clearTimeout(timer);
        if (!opened) resolve(false);
        else this.onClose(socket, event);
      };
    });
  }

  onMessage(socket, event) {
    if (socket !== this.socket) return;
    let frame;
    try {
      frame = JSON.parse(event.data);
    } catch {
      return;
    }
    if (frame.type === "welcome") {
      clearInterval(this.heartbeat);
      const everyMs = (frame.heartbeat_interval_s || 15) * 1000;
      this.heartbeat = setInterval(() => this.send({ type: "heartbeat" }), everyMs);
    } else if (frame.type === "synced") {
      this.attempt = 0;
      this.everOnline = true;
      this.setState("online");
    } else if (frame.type === "error" && (frame.code === "unauthorized" || frame.code === "suspended")) {
      this.refusal = frame; // the close (4001 or 4003) follows
    }
    this.dispatchEvent(new CustomEvent("frame", { detail: frame }));
  }

  onClose(socket, event) {
    if (socket !== this.socket) return;
    this.socket = null;
    clearInterval(this.heartbeat);
    if (event.code === CLOSE_SUSPENDED || (this.refusal && this.refusal.code === "suspended")) {
      this.refused(new ParleyError("suspended", event.reason || "account suspended"));
      return;
    }
    if (event.code === CLOSE_UNAUTHORIZED || this.refusal) {
      const message = this.refusal ? this.refusal.message : event.reason || "logged out";
      this.refused(new ParleyError("unauthorized", message));
      return;
    }
    if (this.stopped) return;
    this.setState(this.everOnline ? "reconnecting" : "connecting");
    if (event.code === CLOSE_DRAINING) this.connect(); // discovery no longer lists it
    else this.scheduleRetry();
  }

  // The token is refused: trying again cannot help.
  refused(error) {
    this.stop();
    this.dispatchEvent(new CustomEvent("unauthorized", { detail: error }));
  }

  scheduleRetry() {
    if (this.stopped) return;
    this.setState(this.everOnline ? "reconnecting" : "connecting");
    const delay = backoffDelay(this.attempt);
    this.attempt = Math.min(this.attempt + 1, 16);
    clearTimeout(this.retry);
    this.retry = setTimeout(() => this.connect(), delay);
  }

  setState(state) {
    if (state === this.state) return;
    this.state = state;
    this.dispatchEvent(new CustomEvent("state", { detail: state }));
  }
}
