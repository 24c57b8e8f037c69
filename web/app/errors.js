// What the user reads for each error code of the protocol.

const MESSAGES = {
  too_large: "Not sent: the message is too long (at most 100,000 characters).",
  rate_limited: "Not sent: you are sending too fast. Wait a moment and retry.",
  not_member: "Not sent: you are not a member of this chat any more.",
  unauthorized: "This device was logged out. Log in again.",
  suspended: "This account is suspended by the operator.",
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

// Refusals of an edit, a delete or a reaction (a frame's `ref` names which).
const CHANGE_MESSAGES = {
  too_large: "Edit not saved: the text is too long (at most 100,000 characters).",
  rate_limited: "Not done: you are going too fast. Wait a moment and retry.",
  not_member: "Not done: you are not a member of this chat any more.",
  not_found: "Not done: that message was deleted, or is not in this chat.",
  forbidden: {
    edit: "Not allowed: you can only edit your own messages.",
    delete: "Not allowed: only a group's owners and admins delete other people's messages.",
    react: "Not allowed to react to this message.",
    pin: "Not allowed: only a group's owners and admins pin messages.",
    unpin: "Not allowed: only a group's owners and admins unpin messages.",
  },
};

// Refusals of a group's creation or of an add. A `not_allowed` is the server's own words: they
// name the user who does not allow it, and why (their choice of who may add them to groups).
const GROUP_MESSAGES = {
  rate_limited: "Not added: you are adding people to groups too fast. Wait a while and retry.",
  not_allowed: null,
};

export function describeError(code, serverMessage, kind = null) {
  if (kind === "group") {
    if (!(code in GROUP_MESSAGES)) return describeError(code, serverMessage);
    return GROUP_MESSAGES[code] || serverMessage || `Error: ${code}`;
  }
  if (kind === "send" && code === "not_found") {
    return "Not sent: the message you reply to was deleted, or is not in this chat.";
  }
  if (kind && kind !== "send" && CHANGE_MESSAGES[code]) {
    const text = CHANGE_MESSAGES[code];
    return typeof text === "string" ? text : text[kind] || serverMessage;
  }
  const text = MESSAGES[code];
  if (!text) return serverMessage || `Error: ${code}`;
  // The server's own wording adds the detail (which field, which limit).
  if ((code === "invalid" || code === "forbidden") && serverMessage) return `${text} (${serverMessage})`;
  return text;
}
