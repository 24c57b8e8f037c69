// The users this tab knows by name: friends, people looked up by username, and whoever
// else the app learned about. Kept in localStorage per account, so a reload still shows
// names (the API has no lookup by user id: a name is known once learned).

const CACHE_USERS = 2000;

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
  learn({ user_id: userId, username, display_name: displayName = null }) {
    if (!userId || !username) return false;
    const known = this.byId.get(userId);
    if (known && known.username === username && known.display_name === displayName) return false;
    this.byId.delete(userId); // re-inserted last: the newest learned are kept
    this.byId.set(userId, { user_id: userId, username, display_name: displayName });
    return true;
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
