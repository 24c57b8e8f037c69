// The login of this browser (one device, shared by its tabs), kept in localStorage.

const KEY = "parley.session";

export function loadSession() {
  try {
    const session = JSON.parse(localStorage.getItem(KEY));
    return session && session.token && session.user_id ? session : null;
  } catch {
    return null;
  }
}

export function saveSession(session) {
  localStorage.setItem(KEY, JSON.stringify(session));
}

export function clearSession() {
  localStorage.removeItem(KEY);
}
