// Ids are decimal strings of 63-bit integers: compare them as integers, never as strings.

export function compareIds(a, b) {
  const x = BigInt(a);
  const y = BigInt(b);
  return x < y ? -1 : x > y ? 1 : 0;
}

export function maxId(a, b) {
  if (a == null) return b;
  if (b == null) return a;
  return compareIds(a, b) >= 0 ? a : b;
}

// A client_msg_id: random, unique per device. getRandomValues works outside secure contexts
// too (randomUUID does not), so a page served from a LAN address over http works as well.
export function newClientMsgId() {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return "w" + Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

// The time a message id was made: the high bits are milliseconds since 2025-01-01.
export function idTime(id) {
  return new Date(Number(BigInt(id) >> 22n) + 1735689600000);
}

// Code points, as the server counts a text's length.
export function textLength(text) {
  let n = 0;
  for (const _ of text) n += 1;
  return n;
}
