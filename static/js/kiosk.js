// Idle reset for the shared booth kiosk. After data-idle-seconds without a tap,
// key press, scroll or typing, the page posts the reset form, which gives the
// browser a fresh session on the server. During the last seconds a dialog
// counts down and offers to keep going. Without JavaScript, a meta refresh in
// <noscript> resets the page instead.
(function () {
  "use strict";

  var dialog = document.getElementById("kiosk-idle");
  if (!dialog || typeof dialog.showModal !== "function") return;

  var idleMs = Number(dialog.dataset.idleSeconds) * 1000;
  if (!(idleMs > 0)) return;
  // The warning covers the last 20 s, or the second half of a shorter timeout.
  var warningMs = Math.min(20000, Math.ceil(idleMs / 2000) * 1000);
  var resetForm = dialog.querySelector("[data-reset-form]");
  var countdown = dialog.querySelector("[data-countdown]");
  var keepGoing = dialog.querySelector("[data-keep-going]");
  var lastActivity = Date.now();
  var resetting = false;

  function noteActivity() {
    // While the dialog is open only its own buttons count, so that a tap on
    // "Start over now" is not taken as a sign that someone is still there.
    if (resetting || dialog.open) return;
    lastActivity = Date.now();
  }

  ["pointerdown", "keydown", "input", "wheel", "touchstart", "scroll"].forEach(function (type) {
    document.addEventListener(type, noteActivity, { capture: true, passive: true });
  });

  keepGoing.addEventListener("click", function () {
    dialog.close();
  });
  // Escape closes the dialog too, and either way the person is still there.
  dialog.addEventListener("close", function () {
    lastActivity = Date.now();
  });
  resetForm.addEventListener("submit", function () {
    resetting = true;
  });

  function reset() {
    resetting = true;
    resetForm.submit();
  }

  function tick() {
    if (resetting) return;
    var remaining = idleMs - (Date.now() - lastActivity);
    if (remaining <= 0) {
      reset();
      return;
    }
    if (remaining <= warningMs) {
      countdown.textContent = String(Math.ceil(remaining / 1000));
      if (!dialog.open) {
        dialog.showModal();
        keepGoing.focus();
      }
    }
  }

  // Comparing clock times rather than counting ticks keeps the timeout right
  // even when the browser delays timers.
  window.setInterval(tick, 250);
})();
