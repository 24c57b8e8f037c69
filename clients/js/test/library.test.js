// The library on its own: what it exports, ids, paths, backoff. No server needed.

import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";

import * as parley from "../src/index.js";

test("every class and function the declarations name is exported, and nothing else", () => {
  const declarations = readFileSync(new URL("../src/index.d.ts", import.meta.url), "utf8");
  const declared = [...declarations.matchAll(/^export (?:class|function) (\w+)/gm)].map((m) => m[1]);
  assert.deepEqual(Object.keys(parley).sort(), [...new Set(declared)].sort());
});

test("ids compare as integers, not as strings", () => {
  assert.equal(parley.compareIds("9", "10"), -1);
  assert.equal(parley.compareIds("121601517072154624", "121601517072154624"), 0);
  assert.equal(parley.maxId(null, "5"), "5");
  assert.equal(parley.maxId("100", "99"), "100");
  assert.equal(parley.idTime(String(1n << 22n)).toISOString(), "2025-01-01T00:00:00.001Z");
  assert.equal(parley.textLength("a😀b"), 3);
  const ids = new Set(Array.from({ length: 100 }, () => parley.newClientMsgId()));
  assert.equal(ids.size, 100);
  for (const id of ids) assert.match(id, /^w[0-9a-f]{32}$/);
});

test("a value in an API path is one encoded segment; dots and empty ones are refused", () => {
  assert.equal(parley.apiPath`/v1/channels/${"a/b?c#d"}/messages`, "/v1/channels/a%2Fb%3Fc%23d/messages");
  for (const bad of ["", ".", "..", "%2e%2E", null, undefined, {}]) {
    assert.throws(() => parley.segment(bad), (e) => e instanceof parley.ApiError && e.code === "invalid");
  }
});

test("an API call refuses a path outside /v1/ before any request", async () => {
  let called = false;
  const api = new parley.Api({ url: "http://127.0.0.1:1", fetch: async () => (called = true) });
  await assert.rejects(api.request("GET", "/metrics"), { code: "invalid" });
  assert.equal(called, false);
});

test("an unreachable server is a network error, status 0", async () => {
  const api = new parley.Api({ url: "http://127.0.0.1:1" });
  await assert.rejects(api.channels(), (e) => e instanceof parley.ApiError && e.code === "network" && e.status === 0);
});

test("the WebSocket URL of an API follows its scheme and host", () => {
  assert.equal(new parley.Api({ url: "http://127.0.0.1:8080/" }).originWsUrl(), "ws://127.0.0.1:8080/v1/ws");
  assert.equal(new parley.Api({ url: "https://chat.example.org" }).originWsUrl(), "wss://chat.example.org/v1/ws");
});

test("backoff grows exponentially with jitter, capped at 10 s", () => {
  for (let attempt = 0; attempt < 20; attempt += 1) {
    const bound = Math.min(10000, 250 * 2 ** attempt);
    for (let i = 0; i < 50; i += 1) {
      const delay = parley.backoffDelay(attempt);
      assert.ok(delay >= bound / 2 && delay <= bound, `${attempt}: ${delay}`);
    }
  }
});

test("the outbox keeps its items in the storage given", () => {
  const storage = parley.memoryStorage();
  const sent = [];
  const sender = new parley.Sender({ send: (frame) => sent.push(frame) && false }, { storage });
  const item = sender.send("7", "hi");
  assert.deepEqual(sent, [{ type: "send", client_msg_id: item.client_msg_id, channel_id: "7", text: "hi" }]);
  const again = new parley.Outbox({ storage });
  assert.deepEqual(again.unsent().map((i) => i.client_msg_id), [item.client_msg_id]);
});

test("a client without a token, or without a WebSocket, says so", async () => {
  assert.throws(() => new parley.Client({ url: "http://127.0.0.1:1" }), { code: "invalid" });
  const client = new parley.Client({ url: "http://127.0.0.1:1", token: "t", WebSocket: null });
  const saved = globalThis.WebSocket;
  globalThis.WebSocket = undefined;
  try {
    await assert.rejects(client.connect(), { code: "no_websocket" });
  } finally {
    globalThis.WebSocket = saved;
  }
});
