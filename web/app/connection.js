// The WebSocket to a gateway: discovery, hello with cursors, heartbeats, and reconnecting
// with exponential backoff and jitter. Each tab has its own socket.
//
// Events: "state" (detail: "connecting" | "online" | "reconnecting" | "offline"),
// "frame" (detail: a server frame), "unauthorized" (the device was logged out).

const KNOWN_GATEWAYS = "parley.gateways";
const OPEN_TIMEOUT_MS = 5000;
const BACKOFF_BASE_MS = 250;
const BACKOFF_CAP_MS = 10000;
const CLOSE_UNAUTHORIZED = 4001;
const CLOSE_DRAINING = 1012;

export function backoffDelay(attempt) {
  // "Full jitter": anywhere up to the exponential bound, so a crowd of clients spreads out.
  const bound = Math.min(BACKOFF_CAP_MS, BACKOFF_BASE_MS * 2 ** attempt);
  return Math.round(bound / 2 + (Math.random() * bound) / 2);
}

function originWsUrl() {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  return `${scheme}//${location.host}/v1/ws`;
}

export class Connection extends EventTarget {
  constructor(api, token, cursors) {
    super();
    this.api = api;
    this.token = token;
    this.cursors = cursors; // () => {channel_id: message_id}
    this.state = "offline";
    this.socket = null;
    this.url = null;
    this.attempt = 0;
    this.everOnline = false;
    this.stopped = false;
    this.heartbeat = null;
    this.retry = null;
  }

  start() {
    // The browser is back on a network: no need to wait out the backoff.
    window.addEventListener("online", () => {
      if (!this.stopped && !this.socket) {
        clearTimeout(this.retry);
        this.connect();
      }
    });
    this.stopped = false;
    this.setState("connecting");
    this.connect();
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.retry);
    clearInterval(this.heartbeat);
    if (this.socket) this.socket.close(1000, "bye");
    this.socket = null;
    this.setState("offline");
  }

  send(frame) {
    if (this.state !== "online" || !this.socket) return false;
    this.socket.send(JSON.stringify(frame));
    return true;
  }

  // The gateways to try, best first: discovery from this origin; if it cannot answer (the
  // gateway that served the page is down), the list it gave last time; the origin last of all.
  // The page's Content-Security-Policy lets it reach its own host only: a gateway discovery
  // names elsewhere fails at once, and the origin (which serves the socket too) remains.
  async gateways() {
    try {
      const { gateways } = await this.api.discovery();
      const urls = gateways.map((g) => g.url);
      localStorage.setItem(KNOWN_GATEWAYS, JSON.stringify(urls));
      if (urls.length) return [...new Set([...urls, originWsUrl()])];
    } catch (error) {
      if (error.status === 401) throw error;
    }
    let known = [];
    try {
      known = JSON.parse(localStorage.getItem(KNOWN_GATEWAYS)) || [];
    } catch {
      known = [];
    }
    return [...new Set([...known, originWsUrl()])];
  }

  async connect() {
    let urls;
    try {
      urls = await this.gateways();
    } catch {
      this.dispatchEvent(new CustomEvent("unauthorized"));
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
        socket = new WebSocket(url);
      } catch {
        resolve(false);
        return;
      }
      let opened = false;
      const timer = setTimeout(() => {
        socket.close();
        resolve(false);
      }, OPEN_TIMEOUT_MS);
      // A socket the page's CSP refuses (a gateway on another host or port) gets an error
      // and no close event: it is given up at its error.
      socket.onerror = () => {
        if (opened) return;
        clearTimeout(timer);
        resolve(false);
      };
      socket.onopen = () => {
        opened = true;
        clearTimeout(timer);
        this.socket = socket;
        this.url = url;
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
    } else if (frame.type === "error" && frame.code === "unauthorized") {
      this.stopped = true;
    }
    this.dispatchEvent(new CustomEvent("frame", { detail: frame }));
  }

  onClose(socket, event) {
    if (socket !== this.socket) return;
    this.socket = null;
    clearInterval(this.heartbeat);
    if (event.code === CLOSE_UNAUTHORIZED) {
      this.stopped = true;
      this.setState("offline");
      this.dispatchEvent(new CustomEvent("unauthorized"));
      return;
    }
    if (this.stopped) return;
    this.setState(this.everOnline ? "reconnecting" : "connecting");
    if (event.code === CLOSE_DRAINING) this.connect(); // discovery no longer lists it
    else this.scheduleRetry();
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
