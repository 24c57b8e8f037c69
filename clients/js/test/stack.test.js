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
