// The HTTP API (docs/protocol.md): on the page's own origin in a browser (`url` ""), or at
// `url` (e.g. "http://127.0.0.1:8080") anywhere.

import { ApiError } from "./errors.js";

export { ApiError };

// One path segment of an API path: always percent-encoded, so that no value (a channel id
// from a link, a user id typed in) can add segments, a query or a fragment to the path. "." and
// ".." (and their encoded forms) would still be walked by the URL parser, so none is sent.
export function segment(value) {
  const text = typeof value === "number" || typeof value === "bigint" ? String(value) : value;
  if (typeof text !== "string" || text === "" || /^(?:\.|%2e){1,2}$/i.test(text)) {
    throw new ApiError(0, "invalid", "That is not a valid id.");
  }
  return encodeURIComponent(text);
}

// A path with each interpolated value as one encoded segment: apiPath`/v1/channels/${id}`.
export function apiPath(strings, ...values) {
  return strings.reduce((path, part, i) => path + segment(values[i - 1]) + part);
}

export class Api {
  constructor({ url = "", token = null, fetch = undefined, onUnauthorized = () => {} } = {}) {
    this.url = url.replace(/\/+$/, "");
    this.token = token;
    this.fetch = fetch; // a fetch of one's own; the global one by default
    this.onUnauthorized = onUnauthorized;
  }

  // The gateway's WebSocket on the API's own origin: the last one a connection tries.
  originWsUrl() {
    const base = new URL(this.url || globalThis.location.origin);
    const scheme = base.protocol === "https:" ? "wss:" : "ws:";
    return `${scheme}//${base.host}/v1/ws`;
  }

  async request(method, path, body) {
    const response = await this.fetchPath(method, path, body);
    if (response.status === 204) return null;
    let data = null;
    try {
      data = await response.json();
    } catch {
      // not JSON: reported below from the status
    }
    if (!response.ok) throw this.refusal(response, data);
    return data;
  }

  // The answer to one call, whatever its status (a network failure is an ApiError).
  async fetchPath(method, path, body) {
    // Only the API's own paths, built by apiPath where a value goes in.
    if (!path.startsWith("/v1/")) throw new ApiError(0, "invalid", "Not an API path.");
    const headers = {};
    if (this.token) headers.Authorization = `Bearer ${this.token}`;
    if (body !== undefined) headers["Content-Type"] = "application/json";
    const fetchOne = this.fetch || globalThis.fetch; // called unbound: window.fetch needs that
    try {
      return await fetchOne(this.url + path, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    } catch {
      throw new ApiError(0, "network", "The server cannot be reached.");
    }
  }

  // The ApiError of a refused call, from its decoded body (null if it had none).
  refusal(response, data) {
    const error = data && data.error ? data.error : {};
    if (response.status === 401 && this.token) this.onUnauthorized();
    return new ApiError(
      response.status,
      error.code || "http_" + response.status,
      error.message || `Request failed (${response.status}).`,
    );
  }

  // The account's data (docs/protocol.md, Export): the answer itself, NDJSON, to stream
  // (response.body) or save (response.blob()).
  async exportData() {
    const response = await this.fetchPath("GET", "/v1/users/me/export");
    if (!response.ok) throw this.refusal(response, await response.json().catch(() => null));
    return response;
  }

  signUp(username, password) {
    return this.request("POST", "/v1/users", { username, password });
  }
  logIn(username, password, deviceName) {
    return this.request("POST", "/v1/sessions", {
      username,
      password,
      device_name: deviceName,
    });
  }
  logOut() {
    return this.request("DELETE", "/v1/sessions/current");
  }
  devices() {
    return this.request("GET", "/v1/devices");
  }
  revokeDevice(deviceId) {
    return this.request("DELETE", apiPath`/v1/devices/${deviceId}`);
  }
  revokeAllDevices() {
    return this.request("DELETE", "/v1/devices");
  }
  discovery() {
    return this.request("GET", "/v1/discovery");
  }
  channels() {
    return this.request("GET", "/v1/channels");
  }
  openDirect(userId) {
    return this.request("POST", "/v1/channels", { type: "direct", user_id: userId });
  }
  createGroup(name, memberIds) {
    return this.request("POST", "/v1/channels", {
      type: "group",
      name,
      member_ids: memberIds,
    });
  }
  addMember(channelId, userId) {
    return this.request("POST", apiPath`/v1/channels/${channelId}/members`, { user_id: userId });
  }
  removeMember(channelId, userId) {
    return this.request("DELETE", apiPath`/v1/channels/${channelId}/members/${userId}`);
  }
  // An invite link to a group (owners and admins): its `code` is in this answer only.
  createInvite(channelId, { expiresInS, maxUses } = {}) {
    const body = {};
    if (expiresInS !== undefined) body.expires_in_s = expiresInS;
    if (maxUses !== undefined) body.max_uses = maxUses;
    return this.request("POST", apiPath`/v1/channels/${channelId}/invites`, body);
  }
  invites(channelId) {
    return this.request("GET", apiPath`/v1/channels/${channelId}/invites`);
  }
  revokeInvite(channelId, inviteId) {
    return this.request("DELETE", apiPath`/v1/channels/${channelId}/invites/${inviteId}`);
  }
  // The group an invite link leads to: its name and member count, never its members.
  previewInvite(code) {
    return this.request("GET", apiPath`/v1/invites/${code}`);
  }
  joinByInvite(code) {
    return this.request("POST", apiPath`/v1/invites/${code}/join`);
  }
  // With `thread`, the replies to that message only (paged with `before` or `after`).
  history(channelId, { before, after, around, limit = 50, thread } = {}) {
    const query = new URLSearchParams({ limit: String(limit) });
    if (before) query.set("before", before);
    if (after) query.set("after", after);
    if (around) query.set("around", around);
    if (thread) query.set("thread", thread);
    return this.request("GET", apiPath`/v1/channels/${channelId}/messages` + `?${query}`);
  }
  // The channel's pinned messages, the most recently pinned first.
  pins(channelId) {
    return this.request("GET", apiPath`/v1/channels/${channelId}/pins`);
  }
  // Messages that hold every word of `q`, newest first; `before` pages on (`next_before`).
  search(q, { channelId, before, limit = 20 } = {}) {
    const query = new URLSearchParams({ q, limit: String(limit) });
    if (channelId) query.set("channel_id", channelId);
    if (before) query.set("before", before);
    return this.request("GET", `/v1/search?${query}`);
  }
  // Profiles of up to 100 user ids: the ones the caller may see (docs/protocol.md, Profiles).
  users(userIds) {
    return this.request("GET", `/v1/users?${new URLSearchParams({ ids: userIds.join(",") })}`);
  }
  setDisplayName(displayName) {
    return this.request("PATCH", "/v1/users/me", { display_name: displayName });
  }
  findUser(username) {
    return this.request("GET", `/v1/users?${new URLSearchParams({ username })}`);
  }
  // Report someone else's message to the group's owners and admins and to the operator:
  // `reason` one of spam, harassment, hate, violence, illegal, other; once per message.
  report(channelId, messageId, reason, note) {
    const body = note ? { reason, note } : { reason };
    return this.request("POST", apiPath`/v1/channels/${channelId}/messages/${messageId}/reports`, body);
  }
  // A group's reports, newest first: its owners and admins only.
  channelReports(channelId, { before, limit = 50 } = {}) {
    const query = new URLSearchParams({ limit: String(limit) });
    if (before) query.set("before", before);
    return this.request("GET", apiPath`/v1/channels/${channelId}/reports` + `?${query}`);
  }
  receipts(channelId) {
    return this.request("GET", apiPath`/v1/channels/${channelId}/receipts`);
  }
  // The caller's notification settings for a channel: level "all" | "mentions" | "none", and
  // mutedUntil (an ISO 8601 time with offset until which only mentions notify, or null).
  setNotifications(channelId, level, mutedUntil = null) {
    return this.request("PUT", apiPath`/v1/channels/${channelId}/notifications`, {
      level,
      muted_until: mutedUntil,
    });
  }
  settings() {
    return this.request("GET", "/v1/settings");
  }
  putSettings(settings) {
    return this.request("PUT", "/v1/settings", settings);
  }
  friends() {
    return this.request("GET", "/v1/friends");
  }
  befriend(userId) {
    return this.request("PUT", apiPath`/v1/friends/${userId}`);
  }
  unfriend(userId) {
    return this.request("DELETE", apiPath`/v1/friends/${userId}`);
  }
}
