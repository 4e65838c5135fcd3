// Progressive enhancement for the attendee pages. Every page works without this
// file: htmx only swaps the next round in place of a full page load, and this
// file adds the failure messages and moves focus after a swap.
(function () {
  "use strict";

  // The translated messages live on #status as data-message-* attributes.
  function message(kind) {
    var status = document.getElementById("status");
    return (status && status.dataset["message" + kind]) || "";
  }

  // A ballot form has its own message line next to its submit button. Other
  // requests fall back to the page-wide #status.
  function statusFor(element) {
    var form = element && element.closest ? element.closest("form") : null;
    return (form && form.querySelector(".submit-status")) || document.getElementById("status");
  }

  function showStatus(element, text) {
    var status = statusFor(element);
    if (!status) return;
    status.textContent = text;
    status.hidden = false;
  }

  function hideStatus(element) {
    var status = statusFor(element);
    if (status) status.hidden = true;
  }

  function failureKind(httpStatus) {
    if (httpStatus === 429) return "Busy";
    if (httpStatus >= 500) return "Server";
    return "Rejected";
  }

  document.addEventListener("htmx:beforeRequest", function (event) {
    hideStatus(event.detail.elt);
  });

  // On any failure htmx leaves the form as it was, so the choices stay
  // selected and pressing the button again retries. The server records a
  // repeated ballot only once.
  document.addEventListener("htmx:responseError", function (event) {
    showStatus(event.detail.elt, message(failureKind(event.detail.xhr.status)));
  });

  document.addEventListener("htmx:sendError", function (event) {
    showStatus(event.detail.elt, message("Offline"));
  });

  document.addEventListener("htmx:timeout", function (event) {
    showStatus(event.detail.elt, message("Timeout"));
  });

  // After a new round (or the same round with errors) is swapped in, move focus
  // to the first invalid field, or else to the round heading, so keyboard and
  // screen reader users start at the new content.
  document.addEventListener("htmx:afterSettle", function (event) {
    var round = document.getElementById("round");
    if (!round || !round.contains(event.target)) return;
    var invalid = round.querySelector("[aria-invalid=true]");
    if (invalid) {
      invalid.focus();
      return;
    }
    var heading = document.getElementById("round-heading");
    if (heading) {
      heading.focus({ preventScroll: true });
      window.scrollTo(0, 0);
    }
  });
})();
