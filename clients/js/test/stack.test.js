// The client against a running Parley (tests/test_js_client.py starts one and sets PARLEY_URL):
// log in, send, receive on a second client, resume after reconnects without loss or
// duplicates, refusals with their codes. Every wait is for an exact event; none sleeps.

import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { after, before, describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";

import { Api, ApiError, Client, ParleyError } from "../src/index.js";

const GATEWAY = process.env.PARLEY_URL;
// A gateway of the same stack with the operator's token, for the admin API.
const ADMIN = process.env.PARLEY_ADMIN_URL
  ? { url: process.env.PARLEY_ADMIN_URL, token: process.env.PARLEY_ADMIN_TOKEN }
  : null;
const PASSWORD = "correct horse battery";
const clients = [];

// The next `type` event of `target` whose detail passes `accept`.
function next(target, type, accept = () => true) {
  return new Promise((resolve) => {
    const listener = (event) => {
      if (!accept(event.detail)) return;
      target.removeEventListener(type, listener);
      resolve(event.detail);
    };
    target.addEventListener(type, listener);
  });
}

// Every frame of `type` in `channelId` the client gets from now on.
function record(client, channelId, type = "message") {
  const frames = [];
  client.addEventListener("frame", ({ detail }) => {
    if (detail.type === type && detail.channel_id === channelId) frames.push(detail);
  });
  return frames;
}

async function newUser() {
  const username = `js${randomBytes(6).toString("hex")}`;
  await new Api({ url: GATEWAY }).signUp(username, PASSWORD);
  const client = await Client.logIn(GATEWAY, username, PASSWORD, { deviceName: "node test" });
  clients.push(client);
  return { username, client };
}

after(() => {
  for (const client of clients) client.close();
});

describe("against a running Parley", { skip: !GATEWAY && "PARLEY_URL is not set", timeout: 120_000 }, () => {
  let alice;
  let bob;
  let channelId;

  before(async () => {
    alice = (await newUser()).client;
    bob = (await newUser()).client;
    channelId = (await alice.api.openDirect(bob.userId)).channel_id;
    await Promise.all([alice.connect(), bob.connect()]);
  });

  test("logs in, sends, and a second client receives the message once", async () => {
    assert.equal(alice.state, "online");
    const arrived = next(bob, "message", (m) => m.text === "hello bob");
    const sent = await alice.send(channelId, "hello bob");
    assert.equal(sent.channel_id, channelId);
    assert.equal(sent.sender_id, alice.userId);
    assert.equal(sent.sender_device_id, alice.deviceId);
    assert.equal(sent.text, "hello bob");
    assert.match(sent.message_id, /^[1-9][0-9]*$/);
    assert.deepEqual(await arrived, sent);
    assert.equal(alice.sender.outbox.items.length, 0);
    assert.equal(bob.cursors.get(channelId), sent.message_id);
  });

  test("resumes after a reconnect from its cursors, without loss or duplicates", async () => {
    const one = next(bob, "message", (m) => m.text === "one");
    await alice.send(channelId, "one");
    await one;
    const seenByBob = record(bob, channelId);
    const seenByAlice = record(alice, channelId);

    // Closed: what is sent meanwhile comes in the sync, and nothing Bob had comes again.
    bob.close();
    assert.equal(bob.state, "offline");
    const two = await alice.send(channelId, "two");
    const three = await alice.send(channelId, "three");
    await bob.connect();
    assert.deepEqual(seenByBob.map((m) => m.message_id), [two.message_id, three.message_id]);

    // The socket drops under it: a send made while it is down waits in the outbox and goes
    // once the client is back; the client reconnects on its own.
    let whileAway;
    let queued;
    bob.addEventListener("state", function away({ detail }) {
      if (detail !== "reconnecting") return;
      bob.removeEventListener("state", away);
      whileAway = bob.send(channelId, "while away");
      queued = bob.sender.outbox.items.map((i) => i.text);
    });
    const back = next(bob, "state", (state) => state === "online");
    bob.connection.socket.close();
    await back;
    assert.deepEqual(queued, ["while away"]);
    const away = await whileAway;
    const fourArrived = next(bob, "message", (m) => m.text === "four");
    const four = await alice.send(channelId, "four");
    await fourArrived;

    const expected = ["two", "three", "while away", "four"];
    assert.deepEqual(seenByBob.map((m) => m.text), expected);
    assert.deepEqual(seenByAlice.map((m) => m.text), expected);
    assert.equal(seenByAlice[2].message_id, away.message_id);
    assert.equal(bob.cursors.get(channelId), four.message_id);
  });

  test("a send cut off by a dropped socket is made once, with its first id", async () => {
    const seenByAlice = record(alice, channelId);
    const back = next(bob, "state", (state) => state === "online");
    const cutOff = bob.send(channelId, "cut off"); // on the socket, then the socket drops
    const [item] = bob.sender.outbox.items;
    bob.connection.socket.close();
    await back;
    const sent = await cutOff;
    assert.equal(sent.client_msg_id, item.client_msg_id);
    // Sends of one device to one channel are sequenced in order: any second copy would come
    // before this one.
    const markerArrived = next(alice, "message", (m) => m.text === "after");
    const marker = await bob.send(channelId, "after");
    await markerArrived;
    assert.deepEqual(
      seenByAlice.map((m) => [m.text, m.message_id]),
      [
        ["cut off", sent.message_id],
        ["after", marker.message_id],
      ],
    );
  });

  test("edits, reactions and deletes reach the other client as changes", async () => {
    const message = await alice.send(channelId, "typo");
    const changes = record(bob, channelId, "edit");
    const editArrived = next(bob, "change", (c) => c.type === "edit");
    const edit = await alice.edit(message, "fixed");
    assert.equal(edit.type, "edit");
    assert.equal(edit.target_id, message.message_id);
    const seen = await editArrived;
    assert.deepEqual([seen.message_id, seen.text], [edit.message_id, "fixed"]);
    const reaction = await bob.react(message, "👍");
    assert.deepEqual([reaction.type, reaction.emoji, reaction.removed], ["reaction", "👍", false]);
    const deleteArrived = next(bob, "change", (c) => c.type === "delete");
    const deleted = await alice.delete(message);
    assert.equal(deleted.type, "delete");
    assert.equal((await deleteArrived).message_id, deleted.message_id);
    assert.deepEqual(changes.map((c) => c.message_id), [edit.message_id]);
  });

  test("a reply carries its quote, counts on its message and is in the message's thread", async () => {
    const original = await alice.send(channelId, "the question");
    const arrived = next(alice, "message", (m) => m.reply_to === original.message_id);
    const reply = await bob.send(channelId, "the answer", { replyTo: original.message_id });
    assert.equal(reply.reply_to, original.message_id);
    assert.deepEqual(reply.quote, { sender_id: alice.userId, text: "the question" });
    assert.deepEqual((await arrived).quote, reply.quote);
    const { messages: thread } = await alice.api.history(channelId, { thread: original.message_id });
    assert.deepEqual(thread.map((m) => m.message_id), [reply.message_id]);
    const { messages: [row] } = await alice.api.history(channelId, { around: original.message_id, limit: 1 });
    assert.deepEqual([row.reply_count, row.last_reply_id], [1, reply.message_id]);
    await assert.rejects(bob.send(channelId, "to nothing", { replyTo: "1" }), { code: "not_found" });
  });

  test("either member of a direct channel pins and unpins, and the pins list follows", async () => {
    const message = await alice.send(channelId, "pin me");
    const arrived = next(alice, "change", (c) => c.type === "pin" && c.target_id === message.message_id);
    const pin = await bob.pin(message);
    assert.deepEqual([pin.type, pin.target_id, pin.sender_id], ["pin", message.message_id, bob.userId]);
    assert.equal((await arrived).message_id, pin.message_id);
    const { messages: pinned } = await alice.api.pins(channelId);
    assert.deepEqual(pinned.map((m) => [m.message_id, m.pinned_by]), [[message.message_id, bob.userId]]);
    const unpin = await alice.pin(message, { unpin: true });
    assert.equal(unpin.type, "unpin");
    assert.deepEqual((await alice.api.pins(channelId)).messages, []);
  });

  test("a mention arrives resolved; a notification level set on one device reaches the other", async () => {
    const carol = await newUser();
    const laptop = await Client.logIn(GATEWAY, carol.username, PASSWORD, { deviceName: "laptop" });
    clients.push(laptop);
    await Promise.all([carol.client.connect(), laptop.connect()]);
    await carol.client.api.putSettings({ group_adds: "everyone" });
    const group = (await alice.api.createGroup("js mentions", [carol.client.userId])).channel_id;
    const arrived = next(laptop, "message", (m) => m.channel_id === group);
    await alice.send(group, `hi @${carol.username.toUpperCase()}`);
    assert.deepEqual((await arrived).mentions, [carol.client.userId]);
    const listed = (await carol.client.api.channels()).channels.find((c) => c.channel_id === group);
    assert.deepEqual([listed.unread_count, listed.mention_count], [1, 1]);
    assert.deepEqual(listed.notifications, { level: "all", muted_until: null, version: 0 });
    const synced = next(laptop, "frame", (f) => f.type === "notifications" && f.channel_id === group);
    const set = await carol.client.api.setNotifications(group, "mentions", "2099-01-01T00:00:00Z");
    const expected = { channel_id: group, level: "mentions", muted_until: "2099-01-01T00:00:00.000Z", version: 1 };
    assert.deepEqual(set, expected);
    assert.deepEqual(await synced, { type: "notifications", ...expected });
  });

  test("a refused send rejects with the server's code and leaves nothing behind", async () => {
    await assert.rejects(bob.send("1", "nobody here"), (error) => {
      assert.ok(error instanceof ParleyError);
      assert.equal(error.code, "not_member");
      assert.ok(error.ref);
      return true;
    });
    await assert.rejects(alice.edit({ channel_id: channelId, message_id: "1" }, "x"), { code: "not_found" });
    await assert.rejects(bob.send(channelId, "x".repeat(100_001)), { code: "too_large" });
    assert.equal(bob.sender.outbox.items.length, 0);
    assert.equal(bob.state, "online");
  });

  test("a bad token is a clear error, and the client stops", async () => {
    const client = new Client({ url: GATEWAY, token: "not-a-token" });
    clients.push(client);
    await assert.rejects(client.connect(), (error) => {
      assert.ok(error instanceof ParleyError);
      assert.equal(error.code, "unauthorized");
      assert.equal(error.status, 401);
      assert.ok(error.message.length > 0);
      return true;
    });
    assert.equal(client.state, "offline");
  });

  test("a wrong password is bad_credentials", async () => {
    const { username } = await newUser();
    await assert.rejects(Client.logIn(GATEWAY, username, "wrong password"), (error) => {
      assert.ok(error instanceof ApiError);
      assert.deepEqual([error.status, error.code], [401, "bad_credentials"]);
      return true;
    });
  });

  test("a member reports a message once", async () => {
    const message = await alice.send(channelId, "buy now, limited offer");
    const report = await bob.api.report(channelId, message.message_id, "spam", "again");
    assert.deepEqual(
      [report.reason, report.note, report.sender_id, report.reporter_id, report.text],
      ["spam", "again", alice.userId, bob.userId, "buy now, limited offer"],
    );
    const again = await bob.api.report(channelId, message.message_id, "other");
    assert.equal(again.report_id, report.report_id);
    await assert.rejects(alice.api.report(channelId, message.message_id, "spam"), { status: 422, code: "invalid" });
    await assert.rejects(bob.api.report(channelId, message.message_id, "boring"), { status: 422, code: "invalid" });
    // A direct channel has no owners or admins to read its reports.
    await assert.rejects(bob.api.channelReports(channelId), { status: 403, code: "forbidden" });
  });

  test("a suspended user's client is told so, and stops", { skip: !ADMIN && "PARLEY_ADMIN_URL is not set" }, async () => {
    const { client } = await newUser();
    await client.connect();
    const stopped = next(client, "unauthorized");
    const response = await fetch(`${ADMIN.url}/v1/admin/users/${client.userId}/suspension`, {
      method: "PUT",
      headers: { authorization: `Bearer ${ADMIN.token}` },
    });
    assert.equal(response.status, 204);
    const error = await stopped;
    assert.ok(error instanceof ParleyError);
    assert.deepEqual([error.code, error.message], ["suspended", "account suspended"]);
    assert.equal(client.state, "offline");
    await assert.rejects(client.api.channels(), { status: 403, code: "suspended" });
  });

  test("a device logged out while connected is told so, and stops", async () => {
    const { client } = await newUser();
    await client.connect();
    const unauthorized = next(client, "unauthorized");
    await client.api.logOut();
    const error = await unauthorized;
    assert.ok(error instanceof ParleyError);
    assert.deepEqual([error.code, error.message], ["unauthorized", "session revoked"]);
    assert.equal(client.state, "offline");
  });

  test("an invite link made by an owner lets another user join; revoked, it stops", async () => {
    const owner = (await newUser()).client;
    const member = (await newUser()).client;
    const joiner = (await newUser()).client;
    await member.api.putSettings({ group_adds: "everyone" });
    const group = await owner.api.createGroup("js invites", [member.userId]);
    const invite = await owner.api.createInvite(group.channel_id, { maxUses: 5, expiresInS: 3600 });
    assert.match(invite.code, /^[A-Za-z0-9_-]{24}$/);
    assert.deepEqual(await joiner.api.previewInvite(invite.code), {
      channel_id: group.channel_id,
      name: "js invites",
      member_count: 2,
      member: false,
      expires_at: invite.expires_at,
    });
    const joined = await joiner.api.joinByInvite(invite.code);
    assert.ok(joined.members.includes(joiner.userId));
    const { invites } = await owner.api.invites(group.channel_id);
    assert.deepEqual(
      invites.map((i) => [i.invite_id, i.uses, "code" in i]),
      [[invite.invite_id, 1, false]],
    );
    await assert.rejects(member.api.createInvite(group.channel_id), (error) => {
      assert.deepEqual([error.status, error.code], [403, "forbidden"]);
      return true;
    });
    const exported = await joiner.api.exportData();
    assert.equal(exported.headers.get("content-type"), "application/x-ndjson");
    const lines = (await exported.text()).trim().split("\n").map((line) => JSON.parse(line));
    assert.deepEqual(lines.at(-1), { type: "end", messages: 0 });
    assert.deepEqual(
      lines.filter((l) => l.type === "channel").map((l) => l.channel_id),
      [group.channel_id],
    );
    await owner.api.revokeInvite(group.channel_id, invite.invite_id);
    await assert.rejects(member.api.previewInvite(invite.code), (error) => {
      assert.deepEqual([error.status, error.code], [404, "not_found"]);
      return true;
    });
  });
});

describe("the README's example", { skip: !GATEWAY && "PARLEY_URL is not set", timeout: 120_000 }, () => {
  const example = new URL("../examples/send.js", import.meta.url);

  test("is the script in examples/", () => {
    const readme = readFileSync(new URL("../README.md", import.meta.url), "utf8");
    assert.ok(readme.includes("```js\n" + readFileSync(example, "utf8") + "```\n"));
  });

  test("logs in and sends a message, which the other user receives", async () => {
    const alice = await newUser();
    const bob = await newUser();
    await bob.client.connect();
    const arrived = next(bob.client, "message", (m) => m.text === "hello from the README");
    const args = [fileURLToPath(example), alice.username, bob.username, "hello from the README"];
    const env = { ...process.env, PARLEY_URL: GATEWAY, PARLEY_PASSWORD: PASSWORD, NODE_NO_WARNINGS: "1" };
    const { stdout } = await promisify(execFile)(process.execPath, ["--experimental-websocket", ...args], {
      env,
      timeout: 60_000,
    });
    const message = await arrived;
    assert.equal(stdout, `sent ${message.message_id} at ${message.sent_at}\n`);
    assert.equal(message.sender_id, alice.client.userId);
  });
});
