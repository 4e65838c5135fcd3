// Live updates for the results page and the booth screen. Both pages render
// complete data without this file. It triggers an htmx request for the #live
// fragment every data-poll-seconds, and pauses while the tab is hidden so that
// a forgotten tab does not keep the server busy.
(function () {
  "use strict";

  var timer = null;

  function live() {
    return document.getElementById("live");
  }

  function showStatus(kind) {
    var status = document.getElementById("live-status");
    if (!status) return;
    var text = status.dataset[kind + "Text"];
    if (text) status.textContent = text;
    status.dataset.state = kind;
  }

  function refresh() {
    var target = live();
    if (!target || document.hidden || !window.htmx) return;
    window.htmx.trigger(target, "results-refresh");
  }

  function start() {
    var target = live();
    if (!target || timer !== null) return;
    var seconds = parseInt(target.dataset.pollSeconds, 10);
    if (!(seconds > 0)) return;
    timer = window.setInterval(refresh, seconds * 1000);
    showStatus("live");
  }

  function stop() {
    if (timer === null) return;
    window.clearInterval(timer);
    timer = null;
    showStatus("paused");
  }

  document.addEventListener("visibilitychange", function () {
    if (document.hidden) {
      stop();
    } else {
      refresh();
      start();
    }
  });

  document.addEventListener("htmx:afterSwap", function () {
    showStatus("live");
  });
  document.addEventListener("htmx:responseError", function () {
    showStatus("error");
  });
  document.addEventListener("htmx:sendError", function () {
    showStatus("error");
  });

  // The survey picker shows the chosen survey at once; its submit button stays
  // for keyboard users and for pages without this script.
  document.querySelectorAll("form[data-autosubmit]").forEach(function (form) {
    form.addEventListener("change", function () {
      form.submit();
    });
  });

  if (!document.hidden) start();
})();
