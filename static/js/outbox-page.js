// The /outbox page: what this phone holds for the logged-in user, read from IndexedDB. Loaded by
// that page alone (links to it are not boosted, so it always arrives as a full page). The
// server sends only the empty sections; nothing listed here ever leaves the phone except
// through the sync API (no download, no print view).
(function () {
  "use strict";

  const store = window.FieldappStore;
  const meta = document.querySelector("meta[name=fieldapp-user]");
  if (!store || !meta || !meta.content) return;
  const userId = Number(meta.content);

  const KIND_LABELS = { step_entry: "Step", search_contact: "Contact" };
  // Where a field error from the server names a field, the editor finds it under either name.
  const ERROR_PREFIX = "ev_";

  function el(tag, text, className) {
    const node = document.createElement(tag);
    if (text) node.textContent = text;
    if (className) node.className = className;
    return node;
  }

  function words(name) {
    const spaced = name.replace(/_/g, " ");
    return spaced.charAt(0).toUpperCase() + spaced.slice(1);
  }

  function when(iso) {
    const date = new Date(iso);
    return isNaN(date) ? iso : date.toLocaleString();
  }

  function describe(op) {
    const label = KIND_LABELS[op.kind] || op.kind;
    return label + (op.title ? ": " + op.title : "") + " (episode " + op.episode_id + ")";
  }

  function fieldError(op, name) {
    const errors = op.errors || {};
    return errors[name] || errors[ERROR_PREFIX + name] || "";
  }

  // The op's fields as editable inputs: evidence fields sit beside the others, a list is
  // edited as comma-separated values.
  function editableFields(op) {
    const rows = [];
    Object.keys(op.fields).forEach((name) => {
      if (name === "evidence") {
        Object.keys(op.fields.evidence || {}).forEach((key) => rows.push({ name: key, evidence: true,
          value: op.fields.evidence[key] }));
      } else if (name !== "supersedes") {
        rows.push({ name, evidence: false, value: op.fields[name] });
      }
    });
    return rows;
  }

  function editor(op, item) {
    const form = el("form", "", "outbox-fix");
    const rows = editableFields(op);
    rows.forEach((row, index) => {
      const id = "fix-" + op.uuid + "-" + index;
      const field = el("div", "", "field");
      const label = el("label", words(row.name) + (Array.isArray(row.value) ? " (separate with commas)" : ""));
      label.htmlFor = id;
      const input = el("input");
      input.id = id;
      input.value = Array.isArray(row.value) ? row.value.join(", ") : (row.value || "");
      const message = fieldError(op, row.name);
      field.append(label);
      if (message) {
        const error = el("p", message, "error");
        error.id = id + "-error";
        input.setAttribute("aria-describedby", error.id);
        input.setAttribute("aria-invalid", "true");
        field.append(error);
      }
      field.append(input);
      form.append(field);
    });
    const save = el("button", "Send the corrected version", "primary");
    save.type = "submit";
    const cancel = el("button", "Cancel", "link");
    cancel.type = "button";
    const actions = el("p", "", "actions");
    actions.append(save, cancel);
    form.append(actions);
    cancel.addEventListener("click", () => form.remove());
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const fields = JSON.parse(JSON.stringify(op.fields));
      rows.forEach((row, index) => {
        const raw = form.querySelector("#fix-" + CSS.escape(op.uuid) + "-" + index).value;
        const value = Array.isArray(row.value) ? raw.split(",").map((s) => s.trim()).filter(Boolean) : raw;
        if (row.evidence) fields.evidence[row.name] = value; else fields[row.name] = value;
      });
      // A fix is a new submit: a fresh id and the device clock now. The refused op's id is not
      // reused, so the server can never take the two for one.
      const fixed = Object.assign({}, op, { uuid: crypto.randomUUID(), recorded_at: new Date().toISOString(),
        fields, state: "queued", queued_at: Date.now(), reason: "", errors: {}, status: "" });
      await store.putOp(fixed);
      await store.deleteOp(op.uuid);
      window.FieldappOffline.syncNow();
    });
    item.append(form);
    form.querySelector("input, button").focus();
  }

  function confirmDiscard(op, item, trigger) {
    trigger.hidden = true;
    const box = el("p", "", "actions discard-confirm");
    const text = el("span", "Discarding cannot be undone: the server is told only that an item was discarded.");
    const yes = el("button", "Discard for good");
    yes.type = "button";
    const no = el("button", "Keep it", "link");
    no.type = "button";
    box.append(text, yes, no);
    item.append(box);
    yes.addEventListener("click", async () => {
      await store.discardOp(op, new Date().toISOString());
      window.FieldappOffline.syncNow();
    });
    no.addEventListener("click", () => { box.remove(); trigger.hidden = false; trigger.focus(); });
    yes.focus();
  }

  function renderOp(op) {
    const item = el("li", "", "card outbox-item");
    item.dataset.uuid = op.uuid;
    item.append(el("h3", describe(op)));
    item.append(el("p", "Recorded " + when(op.recorded_at) + " on this phone", "meta"));
    if (op.state === "quarantined") {
      item.append(el("p", (op.status === "conflict" ? "Conflict: " : "Refused: ") + op.reason,
        "flash flash-error"));
      const errors = op.errors || {};
      if (Object.keys(errors).length) {
        const list = el("dl", "", "pairs");
        Object.keys(errors).forEach((name) => {
          list.append(el("dt", words(name.replace(/^ev_/, ""))), el("dd", errors[name]));
        });
        item.append(list);
      }
      const actions = el("p", "", "actions");
      const fix = el("button", "Fix", "primary");
      const retry = el("button", op.can_add_as_addendum ? "Send as an addendum" : "Retry");
      const discard = el("button", "Discard");
      [fix, retry, discard].forEach((b) => { b.type = "button"; actions.append(b); });
      item.append(actions);
      fix.addEventListener("click", () => { if (!item.querySelector("form")) editor(op, item); });
      retry.addEventListener("click", async () => {
        await store.putOp(Object.assign({}, op, { state: "queued",
          as_addendum: op.as_addendum || !!op.can_add_as_addendum }));
        window.FieldappOffline.syncNow();
      });
      discard.addEventListener("click", () => confirmDiscard(op, item, discard));
    }
    return item;
  }

  async function renderPage() {
    const lists = document.querySelectorAll("[data-outbox-list]");
    if (!lists.length) return;
    const ops = (await store.opsFor(userId)).sort((a, b) => a.queued_at - b.queued_at);
    lists.forEach((list) => {
      const wanted = ops.filter((op) => op.state === list.dataset.outboxList);
      list.textContent = "";
      wanted.forEach((op) => list.append(renderOp(op)));
      if (!wanted.length) list.append(el("li", "Nothing here.", "meta"));
    });
    const queued = ops.filter((op) => op.state === "queued").length;
    const summary = document.querySelector("[data-outbox-summary]");
    summary.textContent = ops.length
      ? ops.length + " saved " + (ops.length === 1 ? "item" : "items") + " on this phone: " + queued
        + " waiting to be sent, " + (ops.length - queued) + " needing your attention."
      : "Nothing is waiting on this phone: everything you recorded has been sent.";
    const last = await store.getMeta("lastSync:" + userId, 0);
    document.querySelector("[data-outbox-last-sync]").textContent =
      "Last sync: " + (last ? new Date(last).toLocaleString() : "never");
    const persisted = await store.getMeta("persisted", false);
    document.querySelector("[data-outbox-persist]").textContent = persisted
      ? "This phone keeps your saved work even when storage is low."
      : "The browser may clear saved work when storage runs low. Send it as soon as you can.";
  }

  document.addEventListener("click", (event) => {
    if (event.target.closest("[data-outbox-send]")) window.FieldappOffline.syncNow();
  });
  window.addEventListener("fieldapp:outbox-changed", renderPage);
  window.addEventListener("fieldapp:synced", renderPage);
  document.addEventListener("htmx:afterSettle", renderPage);
  renderPage();
})();
