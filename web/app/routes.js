// The app's routes, as the URL's hash carries them. Only the shapes below are routes, with ids
// in the server's format; any other hash (a crafted link, a typo) is no route: the chat list.
//
//   #channel=<channel id>                       a chat, at its newest messages
//   #channel=<channel id>&message=<message id>  a chat, around one message
//   #join=<invite code>                         an invite link to a group: see it, join it

const ID = /^[1-9][0-9]{0,18}$/;
const MAX_ID = (1n << 63n) - 1n;

// An id as the server writes one: a positive 63-bit integer in decimal, ASCII digits only.
export function isId(value) {
  return typeof value === "string" && ID.test(value) && BigInt(value) <= MAX_ID;
}

// {channel, message} (message may be null) for a valid route; null for anything else.
export function parseRoute(hash) {
  const text = hash.startsWith("#") ? hash.slice(1) : hash;
  const match = /^channel=([^&]*)(?:&message=([^&]*))?$/.exec(text);
  if (!match) return null;
  const [, channel, message = null] = match;
  if (!isId(channel) || (message !== null && !isId(message))) return null;
  return { channel, message };
}

// The hash of a chat (around a message): "" when the ids are not ids.
export function routeHash(channelId, messageId = null) {
  if (!isId(channelId) || (messageId != null && !isId(messageId))) return "";
  return `#channel=${channelId}` + (messageId ? `&message=${messageId}` : "");
}

// An invite link's route: #join=<code>, the code as the server makes one (24 URL-safe
// characters); null for anything else.
const CODE = /^[A-Za-z0-9_-]{24}$/;

export function parseJoin(hash) {
  const text = hash.startsWith("#") ? hash.slice(1) : hash;
  const match = /^join=([^&]*)$/.exec(text);
  return match && CODE.test(match[1]) ? match[1] : null;
}

// The link others open to join: this app's page with the code in its hash.
export function joinLink(code) {
  return `${location.origin}${location.pathname}#join=${code}`;
}
