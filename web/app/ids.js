// Ids, client_msg_ids and text lengths: the client library's.

export { compareIds, idTime, maxId, newClientMsgId, textLength } from "/client/index.js";
