// The app's routes, as the URL's hash carries them. Only the shapes below are routes, with ids
// in the server's format; any other hash (a crafted link, a typo) is no route: the chat list.
//
//   #channel=<channel id>                       a chat, at its newest messages
//   #channel=<channel id>&message=<message id>  a chat, around one message

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
