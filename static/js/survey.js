// Progressive enhancement for the attendee pages. Every page works without this
// file: htmx only swaps the next round in place of a full page load.
(function () {
  "use strict";

  function showStatus(message) {
    var status = document.getElementById("status");
    if (!status) return;
    status.textContent = message;
    status.hidden = false;
  }

  function hideStatus() {
    var status = document.getElementById("status");
    if (status) status.hidden = true;
  }

  document.addEventListener("htmx:afterSwap", function (event) {
    hideStatus();
    var heading = event.detail.target && document.getElementById("round-heading");
    if (heading) {
      heading.focus({ preventScroll: true });
      window.scrollTo(0, 0);
    }
  });

  document.addEventListener("htmx:responseError", function () {
    showStatus(document.documentElement.dataset.errorMessage || "Your answer could not be sent. Please try again.");
  });

  document.addEventListener("htmx:sendError", function () {
    showStatus(document.documentElement.dataset.offlineMessage || "No connection. Your choices are kept; please try again.");
  });
})();
