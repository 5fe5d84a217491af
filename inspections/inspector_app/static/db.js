// A few lines over IndexedDB (smaller than a vendored wrapper): every answer, photo,
// finding and outbox item is kept on the phone until it has been sent.
const NAME = "inspector";
const STORES = {
  kv: {},                                   // session, settings
  bundles: {},                              // visit id -> {bundle, etag, saved_at}
  drafts: {},                               // visit id -> {submission_id, etag, answers, ...}
  photos: { keyPath: "id" },                // blob + the phone's location
  findings: { keyPath: "id" },
  outbox: { keyPath: "seq", autoIncrement: true },
};
let opened;

function open() {
  opened ??= new Promise((resolve, reject) => {
    const req = indexedDB.open(NAME, 1);
    req.onupgradeneeded = () => {
      for (const [name, opts] of Object.entries(STORES)) {
        if (!req.result.objectStoreNames.contains(name)) req.result.createObjectStore(name, opts);
      }
    };
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error);
  });
  return opened;
}

function done(req) {
  return new Promise((resolve, reject) => {
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error);
  });
}

async function store(name, mode = "readonly") {
  return (await open()).transaction(name, mode).objectStore(name);
}

export async function get(name, key) { return done((await store(name)).get(key)); }
export async function all(name) { return done((await store(name)).getAll()); }
export async function del(name, key) { return done((await store(name, "readwrite")).delete(key)); }
export async function put(name, value, key) {
  const s = await store(name, "readwrite");
  return done(key === undefined ? s.put(value) : s.put(value, key));
}

// Read and write one record in a single transaction (nothing can slip in between).
export async function update(name, key, change) {
  const tx = (await open()).transaction(name, "readwrite");
  const s = tx.objectStore(name);
  const value = change(await done(s.get(key)));
  if (value !== undefined) {
    if (s.keyPath) s.put(value); else s.put(value, key);
  }
  await new Promise((resolve, reject) => { tx.oncomplete = resolve; tx.onerror = () => reject(tx.error); });
  return value;
}

export async function clear() {
  const db = await open();
  const tx = db.transaction(Object.keys(STORES), "readwrite");
  for (const name of Object.keys(STORES)) tx.objectStore(name).clear();
  await new Promise((resolve, reject) => { tx.oncomplete = resolve; tx.onerror = () => reject(tx.error); });
}
