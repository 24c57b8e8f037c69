// What the user reads for each error code of the protocol.

const MESSAGES = {
  too_large: "Not sent: the message is too long (at most 100,000 characters).",
  rate_limited: "Not sent: you are sending too fast. Wait a moment and retry.",
  not_member: "Not sent: you are not a member of this chat any more.",
  unauthorized: "This device was logged out. Log in again.",
  invalid: "The server refused this as invalid.",
  internal: "The server had a problem. Retrying…",
  forbidden: "You are not allowed to do that in this group.",
  group_full: "The group is full (100 members at most).",
  last_owner: "Make someone else an owner first.",
  not_found: "No such user.",
  username_taken: "That username is taken.",
  bad_credentials: "Wrong username or password.",
  too_many_devices: "Too many devices are logged in: log one out first.",
  network: "The server cannot be reached.",
};

export function describeError(code, serverMessage) {
  const text = MESSAGES[code];
  if (!text) return serverMessage || `Error: ${code}`;
  // The server's own wording adds the detail (which field, which limit).
  if ((code === "invalid" || code === "forbidden") && serverMessage) return `${text} (${serverMessage})`;
  return text;
}
