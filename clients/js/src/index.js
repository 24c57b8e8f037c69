// Parley's JavaScript client: the protocol of docs/protocol.md, for browsers and Node 20+.

export { Api, apiPath, segment } from "./api.js";
export { Client } from "./client.js";
export { Connection, backoffDelay } from "./connection.js";
export { ApiError, ParleyError } from "./errors.js";
export { compareIds, idTime, maxId, newClientMsgId, textLength } from "./ids.js";
export { Outbox } from "./outbox.js";
export { Sender } from "./sending.js";
export { defaultStorage, memoryStorage } from "./storage.js";
