// The users this tab knows by name: friends, people looked up by username, and the profiles
// of the people in the user's chats (GET /v1/users?ids=). Kept in localStorage per account,
// so a reload shows names at once.

const CACHE_USERS = 2000;
const USERNAME = /^[a-z0-9_.-]{3,32}$/;
const USER_ID = /^[1-9][0-9]{0,18}$/;

export class People {
  constructor(userId) {
    this.key = `parley.people.${userId}`;
    this.byId = new Map(); // user_id -> {user_id, username, display_name}
    try {
      for (const u of JSON.parse(localStorage.getItem(this.key)) || []) this.byId.set(u.user_id, u);
    } catch {
      localStorage.removeItem(this.key);
    }
  }

  get(userId) {
    return this.byId.get(userId) || null;
  }

  // Returns true if this taught the tab something new.
  // `suspended`: an operator suspended the account (the name is marked so).
  learn({ user_id: userId, username, display_name: displayName = null, suspended = false }) {
    if (!userId || !username) return false;
    const known = this.byId.get(userId);
    if (
      known &&
      known.username === username &&
      known.display_name === displayName &&
      Boolean(known.suspended) === suspended
    ) {
      return false;
    }
    this.byId.delete(userId); // re-inserted last: the newest learned are kept
    const user = { user_id: userId, username, display_name: displayName };
    this.byId.set(userId, suspended ? { ...user, suspended: true } : user);
    return true;
  }

  // A user id from what was typed: a username (looked up with GET /v1/users, and
  // remembered), or a user id. A username may be all digits too, so digits that are not a
  // known user's id are tried as a username first.
  async resolve(text, api, friends) {
    const value = text.trim().replace(/^@/, "").toLowerCase();
    const isId = USER_ID.test(value);
    if (isId && (friends.has(value) || this.get(value))) return value;
    if (!USERNAME.test(value)) {
      if (isId) return value;
      throw new Error(`"${value}" is not a username (3-32 of a-z, 0-9, _ . -) or a user id.`);
    }
    for (const u of [...friends.values(), ...this.byId.values()]) {
      if (u.username === value) return u.user_id;
    }
    try {
      const user = await api.findUser(value);
      if (this.learn(user)) this.save();
      return user.user_id;
    } catch (error) {
      if (error.code !== "not_found") throw error;
      if (isId) return value;
      throw new Error(`No user is called "${value}".`);
    }
  }

  save() {
    try {
      localStorage.setItem(this.key, JSON.stringify([...this.byId.values()].slice(-CACHE_USERS)));
    } catch {
      // over quota: names are learned again
    }
  }

  clear() {
    this.byId.clear();
    localStorage.removeItem(this.key);
  }
}
