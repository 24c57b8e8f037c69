// Types of Parley's JavaScript client (docs/protocol.md). Hand-written: the library is plain
// ES modules with no build step.

/** A decimal string of a 63-bit integer: compare with compareIds, never as strings. */
/** The caller's settings (`GET`/`PUT /v1/settings`). */
export interface Settings {
  read_receipts: boolean;
  /** Who may add the user to groups. */
  group_adds: "everyone" | "friends" | "nobody";
}

export type Id = string;

/** A message, as `message` frames, sync and history carry it. */
export interface Message {
  channel_id: Id;
  message_id: Id;
  sender_id: Id;
  sender_device_id: Id;
  client_msg_id: string;
  text: string;
  sent_at: string;
  edited_at?: string | null;
  deleted?: boolean;
  reactions?: Record<string, Id[]>;
  /** A reply: the message of the channel it answers. */
  reply_to?: Id;
  /** A reply: its message's sender and first 200 characters as it is now, or a tombstone;
   * absent when you may not see that message. Apply edits and deletes of it here too. */
  quote?: Quote;
  /** How many replies answer this message (deleted ones included). */
  reply_count?: number;
  /** The newest reply `reply_count` counts: count a reply frame only if its id is above. */
  last_reply_id?: Id;
  /** Pinned: by whom, and when (absent when not pinned). */
  pinned_by?: Id;
  pinned_at?: string;
  /** The members its `@username`s name (resolved when it was stored). */
  mentions?: Id[];
}

/** A member's notification settings for a channel (docs/protocol.md, Mentions and notifications). */
export interface Notifications {
  /** all: every message notifies; mentions: only those that mention you; none: no push at all. */
  level: "all" | "mentions" | "none";
  /** Until then only mentions notify (an ISO 8601 time), or null: not muted. */
  muted_until: string | null;
  /** Counts the changes: of two views of the settings, the higher version is the newer. */
  version: number;
}

/** What a reply shows of the message it answers. */
export interface Quote {
  sender_id: Id;
  text: string;
  deleted?: boolean;
}

/** An edit, delete, reaction, pin or unpin: a row of the channel with its own message_id. */
export interface ChangeFrame {
  type: "edit" | "delete" | "reaction" | "pin" | "unpin";
  channel_id: Id;
  message_id: Id;
  target_id: Id;
  sender_id: Id;
  sender_device_id: Id;
  client_msg_id: string;
  text: string;
  sent_at: string;
  emoji?: string;
  removed?: boolean;
  /** A reaction or pin beyond the caps: stored, changing nothing. */
  refused?: "message_limit" | "user_limit" | "pin_limit";
}

export type ErrorCode =
  | "unauthorized"
  | "invalid"
  | "too_large"
  | "not_found"
  | "forbidden"
  | "not_member"
  | "rate_limited"
  | "internal"
  | (string & {});

export type ServerFrame =
  | { type: "welcome"; user_id: Id; device_id: Id; heartbeat_interval_s: number }
  | ({ type: "message" } & Message)
  | { type: "synced" }
  | { type: "accepted"; client_msg_id: string; channel_id: Id }
  | { type: "error"; code: ErrorCode; message: string; ref?: string }
  | { type: "presence"; user_id: Id; status: "online" | "offline"; last_active_at: string | null }
  | ChangeFrame
  | { type: "read"; channel_id: Id; message_id: Id; user_id?: Id }
  | { type: "receipts"; channel_id: Id; reads: { user_id: Id; message_id: Id }[] }
  | { type: "typing"; channel_id: Id; user_id: Id; expires_in_ms: number }
  | ({ type: "notifications"; channel_id: Id } & Notifications);

export type ClientFrame = { type: string; [field: string]: unknown };

/** Anything with getItem/setItem/removeItem, as localStorage and sessionStorage have them. */
export interface StorageLike {
  getItem(key: string): string | null;
  setItem(key: string, value: string): void;
  removeItem(key: string): void;
}

export type ConnectionState = "connecting" | "online" | "reconnecting" | "offline";

export type FetchLike = (input: string, init?: RequestInit) => Promise<Response>;

/** A constructor of WebSockets, as the browser's and Node's global WebSocket are. */
export type WebSocketLike = new (url: string) => WebSocket;

export class ParleyError extends Error {
  constructor(code: string, message: string, options?: { status?: number; ref?: string | null });
  /** An error code of docs/protocol.md (`unauthorized`, `bad_credentials`, `not_member`, …). */
  code: ErrorCode;
  /** The HTTP status of an API error; 0 otherwise. */
  status: number;
  /** The client_msg_id an error frame refused. */
  ref: string | null;
}

/** An error answer of the HTTP API; status 0 and code "network" when there was no answer. */
export class ApiError extends ParleyError {
  constructor(status: number, code: string, message: string);
}

export interface Login {
  token: string;
  user_id: Id;
  device_id: Id;
  expires_at: string;
  signed_out?: Id[];
}

export interface Channel {
  channel_id: Id;
  type: "direct" | "group";
  members: Id[];
  name?: string;
  roles?: Record<Id, "owner" | "admin">;
  last_message_id: Id | null;
  read_message_id?: Id | null;
  unread_count?: number;
  /** Of the unread messages, those that mention the caller. */
  mention_count?: number;
  /** The caller's notification settings here (`GET /v1/channels`). */
  notifications?: Notifications;
}

/** An invite link to a group, as its owners and admins see it (`code` only when made). */
export interface Invite {
  invite_id: Id;
  code?: string;
  code_prefix: string;
  channel_id: Id;
  created_by: Id;
  created_at: string;
  expires_at: string | null;
  max_uses: number | null;
  uses: number;
  usable: boolean;
}

/** What an invite link leads to, for whoever holds it. */
export interface InvitePreview {
  channel_id: Id;
  name: string;
  member_count: number;
  member: boolean;
  expires_at: string | null;
}

export interface ApiOptions {
  /** The gateway's address, e.g. "http://127.0.0.1:8080"; "" (the default) is the page's origin. */
  url?: string;
  token?: string | null;
  fetch?: FetchLike;
  /** Called when an authenticated call gets 401. */
  onUnauthorized?: () => void;
}

export type ReportReason = "spam" | "harassment" | "hate" | "violence" | "illegal" | "other";

/** A report of a message. */
export interface Report {
  report_id: Id;
  channel_id: Id;
  message_id: Id;
  sender_id: Id;
  reason: ReportReason;
  note: string | null;
  created_at: string;
  /** To the reporter and the operator only, never to the group's owners and admins. */
  reporter_id?: Id;
  /** The message's text when it was reported: to the reporter and the operator only. */
  text?: string;
}

/** One percent-encoded path segment; refuses "", "." and "..". */
export function segment(value: string | number | bigint): string;
/** A path with each interpolated value as one encoded segment: apiPath`/v1/channels/${id}`. */
export function apiPath(strings: TemplateStringsArray, ...values: (string | number | bigint)[]): string;

/** The HTTP API. Every method rejects with an ApiError. */
export class Api {
  constructor(options?: ApiOptions);
  url: string;
  token: string | null;
  originWsUrl(): string;
  request<T = unknown>(method: string, path: string, body?: unknown): Promise<T>;
  /** The answer to one call, whatever its status; rejects only when the server is unreachable. */
  fetchPath(method: string, path: string, body?: unknown): Promise<Response>;
  /** The ApiError of a refused answer, from its decoded body. */
  refusal(response: Response, data: unknown): ApiError;
  /** The account's data as NDJSON (one JSON object a line), streamed: `body` or `blob()`. */
  exportData(): Promise<Response>;
  signUp(username: string, password: string): Promise<{ user_id: Id; username: string }>;
  logIn(username: string, password: string, deviceName?: string): Promise<Login>;
  logOut(): Promise<null>;
  devices(): Promise<{ devices: { device_id: Id; name: string | null; created_at: string; expires_at: string; current: boolean }[] }>;
  revokeDevice(deviceId: Id): Promise<null>;
  revokeAllDevices(): Promise<null>;
  discovery(): Promise<{ gateways: { url: string }[] }>;
  channels(): Promise<{ channels: Channel[] }>;
  openDirect(userId: Id): Promise<Channel>;
  createGroup(name: string, memberIds: Id[]): Promise<Channel>;
  addMember(channelId: Id, userId: Id): Promise<null>;
  removeMember(channelId: Id, userId: Id): Promise<null>;
  /** A new invite link to a group (owners and admins); its `code` is shown this once. */
  createInvite(channelId: Id, options?: { expiresInS?: number; maxUses?: number }): Promise<Invite & { code: string }>;
  invites(channelId: Id): Promise<{ invites: Invite[] }>;
  revokeInvite(channelId: Id, inviteId: Id): Promise<null>;
  previewInvite(code: string): Promise<InvitePreview>;
  /** Joins the link's group; answers the group as `channels()` lists it. */
  joinByInvite(code: string): Promise<Channel>;
  history(
    channelId: Id,
    page?: { before?: Id; after?: Id; around?: Id; limit?: number; thread?: Id },
  ): Promise<{ messages: Message[] }>;
  /** The channel's pinned messages, the most recently pinned first. */
  pins(channelId: Id): Promise<{ messages: Message[] }>;
  search(
    q: string,
    options?: { channelId?: Id; before?: Id; limit?: number },
  ): Promise<{ results: { message: Message; channel: Channel; snippet: string }[]; next_before: Id | null }>;
  /** Profiles of up to 100 user ids: those the caller may see, in the order asked. */
  users(
    userIds: Id[],
  ): Promise<{ users: { user_id: Id; username: string; display_name: string | null; suspended?: true }[] }>;
  setDisplayName(
    displayName: string | null,
  ): Promise<{ user_id: Id; username: string; display_name: string | null }>;
  findUser(username: string): Promise<{ user_id: Id; username: string; display_name: string | null }>;
  /** Reports someone else's message (once: a repeat answers the first report). */
  report(channelId: Id, messageId: Id, reason: ReportReason, note?: string): Promise<Report>;
  /** A group's reports, newest first, without the reporter or the text: owners and admins only. */
  channelReports(channelId: Id, page?: { before?: Id; limit?: number }): Promise<{ reports: Report[] }>;
  receipts(channelId: Id): Promise<{ receipts: { user_id: Id; message_id: Id }[] }>;
  /** Set the caller's notification level and mute for a channel; every device of theirs gets a `notifications` frame. */
  setNotifications(
    channelId: Id,
    level: Notifications["level"],
    mutedUntil?: string | null,
  ): Promise<{ channel_id: Id } & Notifications>;
  settings(): Promise<Settings>;
  /** Any subset of the settings; answered with all of them after the change. */
  putSettings(settings: Partial<Settings>): Promise<Settings>;
  friends(): Promise<{ friends: { user_id: Id; username: string; display_name: string | null; status: "requested" | "pending" | "friend" }[] }>;
  befriend(userId: Id): Promise<{ user_id: Id; status: "requested" | "friend" }>;
  unfriend(userId: Id): Promise<null>;
}

/** Milliseconds to wait before reconnect attempt `attempt` (0, 1, …): exponential, with jitter. */
export function backoffDelay(attempt: number): number;

export interface ConnectionOptions {
  WebSocket?: WebSocketLike;
  /** Where the gateways discovery named last are kept (localStorage, else memory). */
  storage?: StorageLike;
}

/**
 * The socket to a gateway: discovery, hello with cursors, heartbeats, reconnects with backoff.
 * Events: "state" (detail: ConnectionState), "frame" (detail: ServerFrame), "gateway" (detail:
 * the URL), "unauthorized" (detail: ParleyError, code "unauthorized", or "suspended" when an
 * operator suspended the account; the connection has stopped).
 */
export class Connection extends EventTarget {
  constructor(api: Api, token: string, cursors: () => Record<Id, Id>, options?: ConnectionOptions);
  state: ConnectionState;
  /** The URL of the gateway of the current socket. */
  url: string | null;
  start(): void;
  stop(): void;
  /** Sends a frame if the socket is synced ("online"); false otherwise (nothing is queued). */
  send(frame: ClientFrame): boolean;
}

export interface OutboxItem {
  client_msg_id: string;
  kind: "send" | "edit" | "delete" | "react" | "pin" | "unpin";
  channel_id: Id;
  message_id?: Id;
  text?: string;
  /** A send that answers this message of the channel. */
  reply_to?: Id;
  emoji?: string;
  removed?: boolean;
  /** `accepted` came: the server has it durably. */
  accepted: boolean;
  /** Refused for good: what `describe` made of the refusal. */
  error: string | null;
  code: ErrorCode | null;
  retryable?: boolean;
}

export class Outbox {
  constructor(options?: { storage?: StorageLike; key?: string });
  items: OutboxItem[];
  get(clientMsgId: string): OutboxItem | undefined;
  unsent(): OutboxItem[];
  clear(): void;
}

export interface SenderOptions {
  deviceId?: Id | null;
  storage?: StorageLike;
  key?: string;
  describe?: (code: ErrorCode, message: string, kind: OutboxItem["kind"]) => string;
  onChange?: () => void;
}

/** Anything naming a message: a Message, a history row. */
export interface MessageRef {
  channel_id: Id;
  message_id: Id;
}

/** Sends and changes through an outbox, resent with the same client_msg_id after reconnects. */
export class Sender {
  constructor(connection: Connection, options?: SenderOptions);
  deviceId: Id | null;
  outbox: Outbox;
  send(channelId: Id, text: string, replyTo?: Id | null): OutboxItem;
  edit(message: MessageRef, text: string): OutboxItem;
  delete(message: MessageRef): OutboxItem;
  react(message: MessageRef, emoji: string, removed?: boolean): OutboxItem;
  pin(message: MessageRef, unpin?: boolean): OutboxItem;
  pendingSends(channelId: Id): OutboxItem[];
  pendingChanges(messageId: Id): OutboxItem[];
  retry(clientMsgId: string): OutboxItem | undefined;
  discard(clientMsgId: string): void;
  /** After `synced`: everything unconfirmed goes again. */
  resend(): void;
  accepted(frame: { client_msg_id: string }): OutboxItem | null;
  /** The item of this device a row confirms (now out of the outbox), or null. */
  echoed(row: { sender_device_id: Id; client_msg_id: string }): OutboxItem | null;
  /** The item an error frame refuses for good, or null (`internal` ones stay to be resent). */
  refused(frame: { code: ErrorCode; message: string; ref?: string }): OutboxItem | null;
}

export interface ClientOptions {
  /** The gateway's address, e.g. "http://127.0.0.1:8080"; "" is the page's origin. */
  url?: string;
  token: string;
  /** {channel_id: message_id} to resume from: the newest row the caller already has. */
  cursors?: Record<Id, Id>;
  userId?: Id | null;
  deviceId?: Id | null;
  WebSocket?: WebSocketLike;
  fetch?: FetchLike;
  /** For the outbox and the gateways last named; memory by default. */
  storage?: StorageLike;
}

/**
 * One device's client. Events: "message" (detail: Message) and "change" (detail: ChangeFrame)
 * for each row new to this client, "frame" (detail: ServerFrame), "state" (detail:
 * ConnectionState), "unauthorized" (detail: ParleyError).
 */
export class Client extends EventTarget {
  /** Logs in as a new device; the client is not connected yet. Rejects with an ApiError. */
  static logIn(
    url: string,
    username: string,
    password: string,
    options?: Omit<ClientOptions, "url" | "token"> & { deviceName?: string },
  ): Promise<Client>;
  constructor(options: ClientOptions);
  api: Api;
  connection: Connection;
  sender: Sender;
  userId: Id | null;
  deviceId: Id | null;
  /** channel_id -> the newest row this client has: the cursors of every hello. */
  cursors: Map<Id, Id>;
  readonly state: ConnectionState;
  /** Resolves after the first sync; rejects with a ParleyError ("unauthorized"). */
  connect(): Promise<void>;
  /** Closes the socket; unconfirmed sends stay and go again at the next connect(). */
  close(): void;
  /** Resolves with the message as delivered; rejects with a ParleyError of the server's code. */
  send(channelId: Id, text: string, options?: { replyTo?: Id | null }): Promise<Message>;
  edit(message: MessageRef, text: string): Promise<ChangeFrame>;
  delete(message: MessageRef): Promise<ChangeFrame>;
  pin(message: MessageRef, options?: { unpin?: boolean }): Promise<ChangeFrame>;
  react(message: MessageRef, emoji: string, options?: { removed?: boolean }): Promise<ChangeFrame>;
  ack(channelId: Id, messageId: Id): boolean;
  read(channelId: Id, messageId: Id): boolean;
  typing(channelId: Id): boolean;
}

export function compareIds(a: Id | bigint, b: Id | bigint): -1 | 0 | 1;
export function maxId(a: Id | null | undefined, b: Id | null | undefined): Id | null | undefined;
export function newClientMsgId(): string;
export function idTime(id: Id): Date;
export function textLength(text: string): number;

export function memoryStorage(): StorageLike;
export function defaultStorage(name: "localStorage" | "sessionStorage"): StorageLike;
