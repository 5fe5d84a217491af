// The app shell's service worker: the shell is precached, so the app opens with no signal.
// API calls (/v1/...) are never touched here: the page sends them itself, and its data
// lives in IndexedDB. The server fills in VERSION and SHELL (inspector_app/routes.py).
const VERSION = "__VERSION__";
const SHELL = ["__SHELL__"];
const CACHE = "shell-" + VERSION;

self.addEventListener("install", (event) => {
  event.waitUntil(
    caches.open(CACHE).then((c) => c.addAll(SHELL.map((u) => new Request(u, { cache: "reload" }))))
      .then(() => self.skipWaiting()),
  );
});

self.addEventListener("activate", (event) => {
  event.waitUntil(
    caches.keys()
      .then((keys) => Promise.all(keys.filter((k) => k.startsWith("shell-") && k !== CACHE).map((k) => caches.delete(k))))
      .then(() => self.clients.claim()),
  );
});

self.addEventListener("fetch", (event) => {
  const url = new URL(event.request.url);
  if (event.request.method !== "GET" || url.origin !== location.origin || !url.pathname.startsWith("/app")) return;
  if (event.request.mode === "navigate") {
    // Every client route is the same page: the cached shell, whatever the signal.
    event.respondWith(caches.match("/app/", { cacheName: CACHE }).then((hit) => hit || fetch(event.request)));
    return;
  }
  event.respondWith(caches.match(url.pathname, { cacheName: CACHE }).then((hit) => hit || fetch(event.request)));
});
