// Offline work on the phone (DESIGN §8): the service worker, the outbox of structured operations,
// the sync loop, the header badge and the logout guard. Plain script, no bundler; the store it
// uses is static/js/outbox-store.js. The /outbox page's list is in outbox-page.js.
(function () {
  "use strict";

  const store = window.FieldappStore;
  const meta = document.querySelector("meta[name=fieldapp-user]");
  if (!store || !meta || !("indexedDB" in window)) return;

  const urls = {
    worker: meta.dataset.sw, session: meta.dataset.session, sync: meta.dataset.sync,
    offline: meta.dataset.offline, outbox: meta.dataset.outbox,
  };
  // The user this page was rendered for; none on the login and offline pages.
  const pageUser = meta.content ? Number(meta.content) : null;

  const MAX_BATCH = 500;            // the server's limit per request
  const RETRY_FIRST_MS = 15 * 1000; // backoff after a failed send: 15 s, 30 s, 1 min, ...
  const RETRY_CAP_MS = 5 * 60 * 1000;
  const REFRESH_PAGES_MS = 60 * 1000;

  const state = { needLogin: false, failures: 0, timer: null, syncing: null, leaving: false };

  function nowIso() { return new Date().toISOString(); }

  function plural(n, one, many) { return n + " " + (n === 1 ? one : many); }

  function timeLabel(ms) {
    if (!ms) return "never";
    return new Date(ms).toLocaleString([], { weekday: "short", hour: "2-digit", minute: "2-digit" });
  }

  async function currentUser() {
    return pageUser || store.getMeta("user", null);
  }

  // ---- the outbox: a submit made offline becomes a structured operation ---------------------

  function stepFields(form, data) {
    const evidence = {};
    const names = new Set(Array.from(form.elements, (el) => el.name)
      .filter((name) => name && name.startsWith("ev_")));
    names.forEach((name) => {
      // A checkbox group is a list even when nothing is ticked; any other field is one value.
      const group = form.querySelector('input[type=checkbox][name="' + CSS.escape(name) + '"]');
      evidence[name.slice(3)] = group ? data.getAll(name) : (data.get(name) || "");
    });
    const supersedes = data.get("supersedes");
    return { outcome: data.get("outcome") || "", done_at: data.get("done_at") || "", evidence,
             reason: data.get("reason") || "", supersedes: supersedes ? Number(supersedes) : null };
  }

  function contactFields(data) {
    const fields = {};
    ["purpose", "person", "relationship", "method", "contacted_at", "reached", "learned"]
      .forEach((name) => { fields[name] = data.get(name) || ""; });
    return fields;
  }

  // The op keeps the client_uuid and device clock that app.js stamped on this submit, so a send
  // that failed mid-flight and is then queued is still stored once by the server.
  function opFromForm(form, userId) {
    const data = new FormData(form);
    const kind = form.dataset.opKind;
    const op = {
      uuid: data.get("client_uuid") || crypto.randomUUID(),
      user_id: userId, kind, episode_id: Number(form.dataset.episodeId),
      policy_version: form.dataset.policyVersion || null,
      recorded_at: data.get("recorded_at") || nowIso(), as_addendum: false,
      fields: kind === "step_entry" ? stepFields(form, data) : contactFields(data),
      state: "queued", queued_at: Date.now(), title: form.dataset.opTitle || "",
      episode_url: form.dataset.episodeUrl || "",
    };
    if (kind === "step_entry") op.step_key = form.dataset.stepKey;
    return op;
  }

  // The message slot next to a form that the offline script looks after.
  function statusSlot(form) {
    return form.parentElement ? form.parentElement.querySelector("[data-offline-status]") : null;
  }

  function showSaved(form, text) {
    const slot = statusSlot(form);
    form.hidden = true;
    if (!slot) return;
    slot.textContent = "";
    const message = document.createElement("p");
    message.className = "flash flash-info";
    message.textContent = text
      || "Saved on this phone, not yet sent. It is sent when the connection returns.";
    const back = document.createElement("a");
    back.href = form.dataset.episodeUrl;
    back.className = "button";
    back.textContent = "Back to the episode";
    slot.append(message, back);
    back.focus();
  }

  function showNotSaved(form) {
    const slot = statusSlot(form);
    if (!slot) return;
    slot.textContent = "";
    const message = document.createElement("p");
    message.className = "flash flash-error";
    message.textContent = "Not sent: there is no connection, and this form cannot be kept on the "
      + "phone. Nothing was saved. Try again when you are back online.";
    slot.append(message);
  }

  async function queue(form, text) {
    const userId = await currentUser();
    if (!userId) { showNotSaved(form); return; }
    await store.putOp(opFromForm(form, userId));
    showSaved(form, text);
  }

  function isQueueable(elt) {
    return elt instanceof HTMLFormElement && elt.dataset.opKind;
  }

  // Offline, the submit never leaves: htmx is stopped before it sends.
  document.addEventListener("htmx:beforeRequest", (event) => {
    const elt = event.detail.elt;
    if (navigator.onLine || !(elt instanceof HTMLFormElement)) return;
    if ((event.detail.requestConfig.verb || "").toLowerCase() !== "post") return;
    if (!isQueueable(elt) && !statusSlot(elt)) return;  // not ours: htmx reports the failure
    event.preventDefault();
    if (isQueueable(elt)) queue(elt); else showNotSaved(elt);
  });

  // The phone believed it was online, but the send failed on the way: keep it all the same.
  document.addEventListener("htmx:sendError", (event) => {
    const elt = event.detail.elt;
    if (isQueueable(elt)) queue(elt);
    else if (elt instanceof HTMLFormElement) showNotSaved(elt);
  });

  // The session ended while the form was open (timed out, or logged out elsewhere): the server
  // answers 401 with HX-Redirect to the login form (fieldapp/session_policy.py), which would lose
  // what was typed. A step or a contact is kept in the outbox instead and sent after the next
  // login; any other form goes on to the login form.
  document.addEventListener("htmx:beforeOnLoad", (event) => {
    const elt = event.detail.elt;
    if (event.detail.xhr.status !== 401 || !isQueueable(elt)) return;
    event.preventDefault();
    state.needLogin = true;
    queue(elt, "Saved on this phone, not yet sent: your session has ended. Log in again to send it.");
  });

  // ---- sync ----------------------------------------------------------------------------------

  function wireOp(op) {
    const wire = { uuid: op.uuid, kind: op.kind, episode_id: op.episode_id,
                   policy_version: op.policy_version, recorded_at: op.recorded_at,
                   as_addendum: !!op.as_addendum, fields: op.fields };
    if (op.kind === "step_entry") wire.step_key = op.step_key;
    return wire;
  }

  async function getJson(url) {
    const response = await fetch(url, { credentials: "same-origin", cache: "no-store",
                                        headers: { Accept: "application/json" } });
    return { status: response.status, body: response.ok ? await response.json() : null };
  }

  // Send one batch. Answers applied/duplicate leave the outbox; conflict/rejected stay, in
  // quarantine, with the server's reason, so one bad op never holds back the others.
  async function sendBatch(session, userId, deviceId) {
    const all = await store.opsFor(userId);
    const queued = all.filter((op) => op.state === "queued")
      .sort((a, b) => a.queued_at - b.queued_at).slice(0, MAX_BATCH);
    const discards = (await store.discardsFor(userId)).slice(0, MAX_BATCH);
    const lastHeld = await store.getMeta("held:" + userId, null);
    if (!queued.length && !discards.length && lastHeld === all.length) return "idle";
    const response = await fetch(urls.sync, {
      method: "POST", credentials: "same-origin", cache: "no-store",
      headers: { "Content-Type": "application/json", Accept: "application/json",
                 "X-CSRFToken": session.csrf_token },
      body: JSON.stringify({
        device_id: deviceId, device_time: nowIso(), held: all.length, ops: queued.map(wireOp),
        discarded: discards.map((d) => ({ uuid: d.uuid, kind: d.kind, episode_id: d.episode_id,
                                          discarded_at: d.discarded_at })),
      }),
    });
    if (response.status === 401) return "login";
    if (!response.ok) return "error";
    const answer = await response.json();
    await store.deleteDiscards(discards.map((d) => d.uuid));
    let settled = 0;
    // The answers come in the order of the ops (an op too broken to name its UUID is answered too).
    for (const [index, result] of answer.results.entries()) {
      const op = queued[index];
      if (!op || (result.uuid && result.uuid.toLowerCase() !== op.uuid.toLowerCase())) continue;
      if (result.status === "applied" || result.status === "duplicate") {
        await store.deleteOp(op.uuid);
        settled += 1;
      } else {
        await store.putOp(Object.assign({}, op, {
          state: "quarantined", status: result.status, reason: result.reason || result.status,
          errors: result.errors || {}, can_add_as_addendum: !!result.can_add_as_addendum,
        }));
      }
    }
    await store.setMeta("held:" + userId, all.length - settled);
    await store.setMeta("lastSync:" + userId, Date.now());
    await store.checkIn(userId);
    return queued.length === MAX_BATCH ? "more" : "ok";
  }

  async function syncOnce() {
    let session;
    try {
      session = await getJson(urls.session);
    } catch (networkError) {
      return "offline";
    }
    if (session.status === 401) { state.needLogin = true; return "login"; }
    if (!session.body) return "error";
    state.needLogin = false;
    // Only the logged-in user's work is sent, whoever the page was rendered for.
    const userId = session.body.user.id;
    await store.checkIn(userId);
    await store.setMeta("user", userId);
    const deviceId = await store.deviceId();
    let outcome;
    try {
      do { outcome = await sendBatch(session.body, userId, deviceId); } while (outcome === "more");
    } catch (networkError) {
      return "offline";
    }
    if (outcome === "login") state.needLogin = true;
    if (outcome === "ok" || outcome === "idle") refreshPages(userId);
    return outcome === "idle" ? "ok" : outcome;
  }

  // One sync at a time; callers share the one in flight.
  function syncNow() {
    if (!state.syncing) {
      state.syncing = syncOnce()
        .catch(() => "error")
        .then(async (outcome) => {
          state.syncing = null;
          state.failures = outcome === "ok" ? 0 : state.failures + 1;
          await render();
          window.dispatchEvent(new CustomEvent("fieldapp:synced", { detail: outcome }));
          schedule();
          return outcome;
        });
    }
    return state.syncing;
  }

  // Periodic sync: soon while work waits (with exponential backoff after failures), rarely when
  // there is nothing to send.
  async function schedule() {
    clearTimeout(state.timer);
    const userId = await currentUser();
    const waiting = userId ? (await store.opsFor(userId)).some((op) => op.state === "queued") : false;
    const delay = waiting ? Math.min(RETRY_CAP_MS, RETRY_FIRST_MS * 2 ** state.failures) : RETRY_CAP_MS;
    state.timer = setTimeout(syncNow, delay);
  }

  // ---- the user's offline pages --------------------------------------------------------------

  // Keep exactly the pages the server lists for this user (and the outbox page), in the user's
  // own cache; pages of closed episodes drop out.
  async function refreshPages(userId) {
    if (state.leaving || Date.now() - await store.getMeta("pagesAt:" + userId, 0) < REFRESH_PAGES_MS) return;
    const listed = await getJson(urls.offline).catch(() => ({ body: null }));
    if (!listed.body || listed.body.user_id !== userId) return;
    await store.setMeta("offlineHours", listed.body.offline_hours);
    const wanted = new Set(listed.body.pages.concat([urls.outbox])
      .map((path) => new URL(path, location.origin).href));
    const cache = await caches.open(store.pageCacheName(userId));
    for (const request of await cache.keys()) {
      if (!wanted.has(request.url)) await cache.delete(request);
    }
    for (const url of wanted) {
      const response = await fetch(url, { credentials: "same-origin", cache: "no-store" }).catch(() => null);
      if (state.leaving) return;
      if (response && response.ok && !response.redirected) await cache.put(url, response);
    }
    await store.setMeta("pagesAt:" + userId, Date.now());
    // How many pages this phone now keeps: shown nowhere, but a test can wait for it.
    document.documentElement.dataset.offlinePages = String(wanted.size);
  }

  // Pages of anyone else who used this phone go as soon as another user logs in.
  async function dropOtherUsersPages(userId) {
    const mine = store.pageCacheName(userId);
    const names = await caches.keys();
    await Promise.all(names.filter((name) => name.startsWith(store.PAGE_CACHE_PREFIX) && name !== mine)
      .map((name) => caches.delete(name)));
  }

  // ---- what the page shows -------------------------------------------------------------------

  async function renderBadge(userId, ops) {
    const badge = document.querySelector("[data-outbox-badge]");
    if (!badge) return;
    if (!userId) { badge.hidden = true; return; }
    const quarantined = ops.filter((op) => op.state === "quarantined").length;
    const last = await store.getMeta("lastSync:" + userId, 0);
    badge.textContent = "";
    const count = document.createElement("span");
    count.className = "outbox-count";
    count.dataset.outboxCount = String(ops.length);
    count.textContent = String(ops.length);
    const words = document.createElement("span");
    if (state.needLogin && ops.length) {
      words.textContent = " Log in again to send " + plural(ops.length, "saved item", "saved items");
    } else {
      words.textContent = " unsent" + (quarantined ? ", " + quarantined + " need attention" : "")
        + " · last sync " + timeLabel(last);
    }
    badge.append(count, words);
    badge.classList.toggle("has-unsent", ops.length > 0);
    badge.classList.toggle("needs-login", state.needLogin && ops.length > 0);
    badge.hidden = false;
  }

  // On an episode's overview, each step with work waiting on this phone says so.
  function markSteps(ops) {
    document.querySelectorAll("[data-offline-note]").forEach((note) => note.remove());
    document.querySelectorAll("li[data-step-key]").forEach((row) => {
      const holder = row.closest("[data-episode-id]");
      const mine = ops.filter((op) => op.kind === "step_entry" && op.step_key === row.dataset.stepKey
        && holder && op.episode_id === Number(holder.dataset.episodeId));
      if (!mine.length) return;
      const note = document.createElement("div");
      note.dataset.offlineNote = "";
      const quarantined = mine.some((op) => op.state === "quarantined");
      note.className = "badge " + (quarantined ? "warn" : "queued");
      note.textContent = quarantined ? "Not accepted: see Saved on this phone"
        : "Saved on this phone, not yet sent";
      row.append(note);
    });
  }

  async function render() {
    const userId = await currentUser();
    const ops = userId ? await store.opsFor(userId) : [];
    await renderBadge(userId, ops);
    markSteps(ops);
  }

  window.addEventListener("fieldapp:outbox-changed", render);
  document.addEventListener("htmx:load", (event) => { if (event.detail.elt === document.body) render(); });
  document.addEventListener("htmx:afterSettle", render);

  // ---- logging out ---------------------------------------------------------------------------

  // Wipe what this user left on the phone, then log out with a real (not htmx) post, so the
  // next page starts from nothing. Discards stay until reported: they hold no content.
  async function leave(form, userId) {
    state.leaving = true;
    await caches.delete(store.pageCacheName(userId));
    await store.deleteOpsOf(userId);
    await store.deleteMeta("user");
    await store.deleteMeta("pagesAt:" + userId);
    HTMLFormElement.prototype.submit.call(form);
  }

  function button(text, className) {
    const b = document.createElement("button");
    b.type = "button";
    b.className = className || "";
    b.textContent = text;
    return b;
  }

  // An in-page dialog, not window.confirm: it can offer two real choices and be read aloud.
  function logoutPanel(form, userId, count) {
    const dialog = document.createElement("dialog");
    dialog.className = "card logout-panel";
    dialog.setAttribute("aria-labelledby", "logout-panel-title");
    dialog.setAttribute("aria-describedby", "logout-panel-text");
    const title = document.createElement("h2");
    title.id = "logout-panel-title";
    title.textContent = "Unsent work on this phone";
    const text = document.createElement("p");
    text.id = "logout-panel-text";
    text.setAttribute("role", "status");
    const send = button("Send now", "primary");
    const discard = button("");
    const stay = button("Stay logged in", "link");
    const actions = document.createElement("p");
    actions.className = "actions";
    actions.append(send, discard, stay);
    dialog.append(title, text, actions);
    document.body.append(dialog);

    function describe(n, extra) {
      text.textContent = (extra ? extra + " " : "") + plural(n, "saved item has", "saved items have")
        + " not been sent. Send before logging out, or discard " + (n === 1 ? "it" : "them") + ".";
      discard.textContent = "Discard " + n + " unsent";
    }
    describe(count);

    send.addEventListener("click", async () => {
      send.disabled = true;
      await syncNow();
      const left = (await store.opsFor(userId)).length;
      send.disabled = false;
      if (left === 0) { dialog.close(); await leave(form, userId); return; }
      describe(left, navigator.onLine ? "Some items were not accepted: see Saved on this phone."
        : "No connection.");
    });
    discard.addEventListener("click", async () => {
      const when = nowIso();
      for (const op of await store.opsFor(userId)) await store.discardOp(op, when);
      // Online, the discards are reported now; otherwise at this user's next sync.
      if (navigator.onLine) await syncNow();
      dialog.close();
      await leave(form, userId);
    });
    stay.addEventListener("click", () => dialog.close());
    dialog.addEventListener("close", () => { if (!state.leaving) dialog.remove(); });
    dialog.showModal();
    send.focus();
  }

  // Capture phase, and the event stops here: htmx must not post the logout before the check.
  document.addEventListener("submit", async (event) => {
    const form = event.target;
    if (!(form instanceof HTMLFormElement) || !form.hasAttribute("data-logout")) return;
    event.preventDefault();
    event.stopPropagation();
    const userId = pageUser || await store.getMeta("user", null);
    if (!userId) { HTMLFormElement.prototype.submit.call(form); return; }
    const count = (await store.opsFor(userId)).length;
    if (count === 0) await leave(form, userId);
    else logoutPanel(form, userId, count);
  }, true);

  // ---- start ---------------------------------------------------------------------------------

  async function askToPersist() {
    if (!navigator.storage || !navigator.storage.persist) return;
    const persisted = await navigator.storage.persisted() || await navigator.storage.persist();
    await store.setMeta("persisted", persisted);
    window.dispatchEvent(new CustomEvent("fieldapp:synced", { detail: "persist" }));
  }

  async function start() {
    render();
    if (!pageUser) return;  // login or offline page: nothing to send for anyone yet
    await store.setMeta("user", pageUser);
    await dropOtherUsersPages(pageUser);
    if ("serviceWorker" in navigator && urls.worker) {
      // Offline this fails, and the installed worker carries on.
      await navigator.serviceWorker.register(urls.worker, { scope: "/" }).catch(() => null);
    }
    await askToPersist().catch(() => null);
    if (!navigator.onLine) {
      await store.pagesStillValid(pageUser);
      schedule();
      return;
    }
    await syncNow();
  }

  window.addEventListener("online", () => { state.failures = 0; syncNow(); });
  window.FieldappOffline = { syncNow, render };
  start();
})();
