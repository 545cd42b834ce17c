// The phone's own store: the outbox of unsent operations, the discards waiting to be reported,
// and a few facts about the phone (its id, who uses it, when each user last checked in).
// Loaded by the pages and, with importScripts, by the service worker, so both read one store.
//
// IndexedDB is separate from the Cache API: a new service worker that clears old caches never
// touches saved work.
(function (scope) {
  "use strict";

  const DB_NAME = "fieldapp";
  const DB_VERSION = 1;
  const PAGE_CACHE_PREFIX = "fieldapp-pages-";
  const DEFAULT_OFFLINE_HOURS = 12;

  let opening = null;

  function openDb() {
    if (!opening) {
      opening = new Promise((resolve, reject) => {
        const request = indexedDB.open(DB_NAME, DB_VERSION);
        request.onupgradeneeded = () => {
          const db = request.result;
          // ops: {uuid, user_id, kind, episode_id, step_key, policy_version, recorded_at,
          //       as_addendum, fields, state: "queued"|"quarantined", reason, errors, title}
          db.createObjectStore("ops", { keyPath: "uuid" }).createIndex("user_id", "user_id");
          // discards: {uuid, kind, episode_id, discarded_at, user_id}: never the content.
          db.createObjectStore("discards", { keyPath: "uuid" }).createIndex("user_id", "user_id");
          db.createObjectStore("meta", { keyPath: "key" });
        };
        request.onsuccess = () => {
          const db = request.result;
          // Another tab or worker upgrading the store must not be blocked by this one.
          db.onversionchange = () => { db.close(); opening = null; };
          resolve(db);
        };
        request.onerror = () => { opening = null; reject(request.error); };
      });
    }
    return opening;
  }

  function done(request) {
    return new Promise((resolve, reject) => {
      request.onsuccess = () => resolve(request.result);
      request.onerror = () => reject(request.error);
    });
  }

  function finished(tx) {
    return new Promise((resolve, reject) => {
      tx.oncomplete = () => resolve();
      tx.onerror = () => reject(tx.error);
      tx.onabort = () => reject(tx.error || new Error("transaction aborted"));
    });
  }

  async function run(storeName, mode, work) {
    const db = await openDb();
    const tx = db.transaction(storeName, mode);
    const result = work(tx.objectStore(storeName));
    await finished(tx);
    return result instanceof IDBRequest ? result.result : result;
  }

  function byUser(storeName, userId) {
    return run(storeName, "readonly", (store) => store.index("user_id").getAll(Number(userId)));
  }

  // Tell this page's listeners (the badge, the outbox list) that the store changed.
  function changed() {
    if (typeof scope.dispatchEvent === "function" && typeof CustomEvent === "function") {
      scope.dispatchEvent(new CustomEvent("fieldapp:outbox-changed"));
    }
  }

  const store = {
    PAGE_CACHE_PREFIX,

    pageCacheName(userId) { return PAGE_CACHE_PREFIX + userId; },

    async putOp(op) { await run("ops", "readwrite", (s) => s.put(op)); changed(); },
    async deleteOp(uuid) { await run("ops", "readwrite", (s) => s.delete(uuid)); changed(); },
    getOp(uuid) { return run("ops", "readonly", (s) => s.get(uuid)); },
    opsFor(userId) { return byUser("ops", userId); },

    async addDiscard(discard) { await run("discards", "readwrite", (s) => s.put(discard)); },
    discardsFor(userId) { return byUser("discards", userId); },
    async deleteDiscards(uuids) {
      await run("discards", "readwrite", (s) => uuids.forEach((uuid) => s.delete(uuid)));
    },

    // Replace an op by its discard record in one transaction, so that a crash between the
    // two can neither keep the content nor lose the audit trail.
    async discardOp(op, when) {
      const db = await openDb();
      const tx = db.transaction(["ops", "discards"], "readwrite");
      tx.objectStore("discards").put({ uuid: op.uuid, kind: op.kind, episode_id: op.episode_id,
                                       discarded_at: when, user_id: op.user_id });
      tx.objectStore("ops").delete(op.uuid);
      await finished(tx);
      changed();
    },

    async deleteOpsOf(userId) {
      const ops = await byUser("ops", userId);
      await run("ops", "readwrite", (s) => ops.forEach((op) => s.delete(op.uuid)));
      changed();
    },

    async getMeta(key, fallback) {
      const row = await run("meta", "readonly", (s) => s.get(key));
      return row === undefined ? fallback : row.value;
    },
    async setMeta(key, value) { await run("meta", "readwrite", (s) => s.put({ key, value })); },
    async deleteMeta(key) { await run("meta", "readwrite", (s) => s.delete(key)); },

    // A check-in is any answer from the server that proves the session: it restarts the time
    // this phone may keep the user's pages.
    async checkIn(userId) { await store.setMeta("checkin:" + userId, Date.now()); },

    // Pages kept longer than the offline window without a check-in are wiped (the outbox
    // stays: work is never lost). Returns true when the user's pages may still be used.
    async pagesStillValid(userId) {
      const last = await store.getMeta("checkin:" + userId, 0);
      const hours = await store.getMeta("offlineHours", DEFAULT_OFFLINE_HOURS);
      if (Date.now() - last <= hours * 3600 * 1000) return true;
      await caches.delete(store.pageCacheName(userId));
      return false;
    },

    async deviceId() {
      let id = await store.getMeta("device_id");
      if (!id) {
        id = scope.crypto.randomUUID();
        await store.setMeta("device_id", id);
      }
      return id;
    },
  };

  scope.FieldappStore = store;
})(self);
