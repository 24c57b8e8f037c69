// Errors of the protocol: `code` is one of docs/protocol.md's error codes (`unauthorized`,
// `not_member`, `bad_credentials`, …), `message` the server's own words.

export class ParleyError extends Error {
  constructor(code, message, { status = 0, ref = null } = {}) {
    super(message);
    this.name = "ParleyError";
    this.code = code;
    this.status = status; // the HTTP status of an API error; 0 otherwise
    this.ref = ref; // the client_msg_id an error frame refused
  }
}

// An error answer of the HTTP API (or no answer: status 0, code "network").
export class ApiError extends ParleyError {
  constructor(status, code, message) {
    super(code, message, { status });
    this.name = "ApiError";
  }
}
