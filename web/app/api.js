// The HTTP API (docs/protocol.md), on the origin that served the app: the client library's.

export { Api, ApiError, apiPath, segment } from "/client/index.js";
