// fieldapp's own script. Everything works without it; it adds the device clock and a fresh
// submission id to each write, and keeps deadline countdowns live. No inline script anywhere:
// the Content-Security-Policy forbids it.
(function () {
  "use strict";

  function newId() {
    if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
    // Older browsers: RFC 4122 version 4 from getRandomValues.
    var b = crypto.getRandomValues(new Uint8Array(16));
    b[6] = (b[6] & 0x0f) | 0x40; b[8] = (b[8] & 0x3f) | 0x80;
    var h = Array.prototype.map.call(b, function (x) { return (x + 256).toString(16).slice(1); }).join("");
    return h.slice(0, 8) + "-" + h.slice(8, 12) + "-" + h.slice(12, 16) + "-" + h.slice(16, 20) + "-" + h.slice(20);
  }

  // A fresh id and the device clock at every submit: a retried send of the same submit keeps its
  // id (so the server stores it once), but a new tap is a new record.
  function stamp(form) {
    var id = form.querySelector("input[name=client_uuid]");
    if (id) id.value = newId();
    var clock = form.querySelector("input[name=recorded_at]");
    if (clock) clock.value = new Date().toISOString();
  }
  // Capture phase, so this runs before htmx's own submit handler reads the form's values.
  document.addEventListener("submit", function (e) { stamp(e.target); }, true);

  function span(ms) {
    var minutes = Math.floor(Math.abs(ms) / 60000);
    var days = Math.floor(minutes / 1440), hours = Math.floor((minutes % 1440) / 60), mins = minutes % 60;
    var parts = [];
    if (days) parts.push(days + " d");
    if (hours) parts.push(hours + " h");
    if (!days && (mins || !hours)) parts.push(mins + " min");  // as the server words it
    return parts.join(" ");
  }

  // Countdowns carry their deadline in data-due; the server's wording is the no-script fallback.
  function tick() {
    var now = Date.now();
    document.querySelectorAll("[data-due]").forEach(function (el) {
      var left = Date.parse(el.getAttribute("data-due")) - now;
      var target = el.hasAttribute("data-target");
      if (left >= 0) el.textContent = (target ? "target in " : "due in ") + span(left);
      else el.textContent = (target ? "after the target by " : "overdue by ") + span(left);
      el.classList.toggle("overdue", left < 0 && !target);
    });
  }
  tick();
  setInterval(tick, 30000);
  document.addEventListener("htmx:afterSettle", tick);
})();
