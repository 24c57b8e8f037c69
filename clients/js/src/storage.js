// Where the library keeps what should outlive a socket (the outbox, the gateways discovery
// named last): any object with getItem/setItem/removeItem, as the Web Storage API has them.

export function memoryStorage() {
  const items = new Map();
  return {
    getItem: (key) => (items.has(key) ? items.get(key) : null),
    setItem: (key, value) => items.set(key, String(value)),
    removeItem: (key) => items.delete(key),
  };
}

// `globalThis[name]` (localStorage, sessionStorage) where there is one and it may be used,
// else a store in memory (Node, or a browser that refuses storage).
export function defaultStorage(name) {
  try {
    const storage = globalThis[name];
    if (storage && typeof storage.getItem === "function") return storage;
  } catch {
    // a browser with storage disabled throws on access
  }
  return memoryStorage();
}
