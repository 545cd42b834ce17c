// fieldapp's service worker (DESIGN §8). Served by the app at /sw.js, which fills in the line
// below with this release's version, the shell's (fingerprinted) addresses and the offline page.
self.FIELDAPP_WORKER = null;

const CONFIG = self.FIELDAPP_WORKER;
const SHELL_PREFIX = "fieldapp-shell-";
const SHELL_CACHE = SHELL_PREFIX + CONFIG.version;

importScripts(CONFIG.store);
const store = self.FieldappStore;

// The shell is the same for every user, so it is fetched without the session's cookie: no
// user's name or token can end up in the shared cache.
self.addEventListener("install", (event) => {
  event.waitUntil((async () => {
    const cache = await caches.open(SHELL_CACHE);
    await Promise.all(CONFIG.shell.map(async (url) => {
      const response = await fetch(url, { credentials: "omit", cache: "no-cache" });
      if (!response.ok) throw new Error("shell file missing: " + url);
      await cache.put(url, response);
    }));
    // Take over at once: pages keep working with the old assets they loaded, and the outbox
    // lives in IndexedDB, which no worker version owns.
    await self.skipWaiting();
  })());
});

self.addEventListener("activate", (event) => {
  event.waitUntil((async () => {
    const names = await caches.keys();
    await Promise.all(names.filter((name) => name.startsWith(SHELL_PREFIX) && name !== SHELL_CACHE)
      .map((name) => caches.delete(name)));
    await self.clients.claim();
  })());
});

function isPageRequest(request) {
  if (request.mode === "navigate") return true;
  // htmx asks for whole pages when boosted or restoring history; other htmx GETs want a
  // fragment, which a cached page must never stand in for.
  return request.headers.get("HX-Request") === "true"
    && (request.headers.get("HX-Boosted") === "true"
        || request.headers.get("HX-History-Restore-Request") === "true");
}

// Static files have the hash of their content in their names (fieldapp/assets.py). A page this
// phone kept from an earlier release names that release's files; today's copy of the same file
// stands in for it, so that the kept page still has its styles and scripts offline.
const FINGERPRINT = new RegExp("\\.[0-9a-f]{" + CONFIG.fingerprint + "}(\\.[A-Za-z0-9]+)?$");
const withoutFingerprint = (path) => path.replace(FINGERPRINT, "$1");
const SHELL_BY_NAME = new Map(CONFIG.shell.filter((url) => url.startsWith(CONFIG.static))
  .map((url) => [withoutFingerprint(url), url]));

function shellAddress(path) {
  if (CONFIG.shell.includes(path)) return path;
  return path.startsWith(CONFIG.static) ? SHELL_BY_NAME.get(withoutFingerprint(path)) : undefined;
}

async function fromShell(address, request) {
  const cached = await caches.match(address, { cacheName: SHELL_CACHE });
  return cached || fetch(request);
}

async function offlineAnswer() {
  const page = await caches.match(CONFIG.offline, { cacheName: SHELL_CACHE });
  return page || new Response("You are offline.", { status: 503,
    headers: { "Content-Type": "text/plain; charset=utf-8" } });
}

// Network first. A fresh copy of a page the user keeps offline refreshes that copy; without a
// network the user's copy answers (unless it has expired), and otherwise the offline page.
async function page(request) {
  const url = new URL(request.url);
  const key = url.pathname + url.search;
  const userId = await store.getMeta("user");
  const cacheName = userId ? store.pageCacheName(userId) : null;
  let response;
  try {
    response = await fetch(request);
  } catch (networkError) {
    if (cacheName && await store.pagesStillValid(userId)) {
      const cache = await caches.open(cacheName);
      const kept = await cache.match(key, { ignoreVary: true });
      if (kept) return kept;
    }
    return offlineAnswer();
  }
  if (cacheName && response.ok && !response.redirected && await caches.has(cacheName)) {
    const cache = await caches.open(cacheName);
    if (await cache.match(key, { ignoreVary: true })) await cache.put(key, response.clone());
  }
  return response;
}

self.addEventListener("fetch", (event) => {
  const request = event.request;
  if (request.method !== "GET") return;
  const url = new URL(request.url);
  if (url.origin !== self.location.origin || url.pathname.startsWith("/api/")) return;
  const address = url.search ? undefined : shellAddress(url.pathname);
  if (address) {
    event.respondWith(fromShell(address, request));
  } else if (isPageRequest(request)) {
    event.respondWith(page(request));
  }
});

