// On narrow screens, turn the three stacked posts of a round into tabs, so each
// post gets the whole screen and none is favoured by coming first. A swipe or
// the arrow keys move between posts, and a line counts the posts opened. Wide
// screens keep the three posts side by side, and without JavaScript they stay
// stacked. Labels come translated from data-* attributes on the container.
(function () {
  "use strict";

  var WIDE = window.matchMedia("(min-width: 1000px)");
  // A swipe must travel this many CSS pixels sideways, and clearly more
  // sideways than up or down, so vertical scrolling never switches posts.
  var SWIPE_MIN_PX = 48;

  function format(template, values) {
    return template.replace(/\{(\w+)\}/g, function (match, key) {
      return Object.prototype.hasOwnProperty.call(values, key) ? values[key] : match;
    });
  }

  // Posts opened per served round, so a round that comes back with an error
  // message keeps its tabs marked as read.
  var memory = {};

  function roundKey(container) {
    var round = container.closest("#round");
    var response = round && round.querySelector("input[name=response]");
    return response ? response.value : "";
  }

  function PostTabs(container) {
    var key = roundKey(container);
    var remembered = memory[key] || (memory[key] = { opened: {}, current: 0 });
    this.container = container;
    this.panels = Array.prototype.slice.call(container.querySelectorAll(":scope > .post"));
    this.opened = remembered.opened;
    this.state = remembered;
    this.current = remembered.current;
    this.added = [];
  }

  PostTabs.prototype.enhance = function () {
    var self = this;
    var labels = this.container.dataset;

    this.tablist = document.createElement("div");
    this.tablist.className = "post-tabs";
    this.tablist.setAttribute("role", "tablist");
    this.tablist.setAttribute("aria-label", labels.tablistLabel);

    this.tabs = this.panels.map(function (panel, index) {
      var letter = panel.dataset.letter;
      var heading = panel.querySelector(".post-label");
      var tab = document.createElement("button");
      tab.type = "button";
      tab.id = "tab-" + letter;
      tab.className = "post-tab";
      tab.setAttribute("role", "tab");
      tab.setAttribute("aria-controls", panel.id);

      var name = document.createElement("span");
      name.textContent = heading ? heading.textContent : letter;
      var mark = document.createElement("span");
      mark.className = "post-tab-mark";
      mark.setAttribute("aria-hidden", "true");
      var markText = document.createElement("span");
      markText.className = "visually-hidden";
      markText.textContent = " (" + labels.readMark + ")";
      markText.hidden = true;
      tab.append(name, mark, markText);

      tab.addEventListener("click", function () {
        self.select(index);
      });
      self.tablist.appendChild(tab);

      panel.setAttribute("role", "tabpanel");
      panel.setAttribute("aria-labelledby", tab.id);
      panel.tabIndex = 0;
      panel.appendChild(self.panelNav(index));
      return tab;
    });

    this.tablist.addEventListener("keydown", function (event) {
      var moves = { ArrowRight: self.current + 1, ArrowLeft: self.current - 1, Home: 0, End: self.tabs.length - 1 };
      if (!(event.key in moves)) return;
      event.preventDefault();
      var target = (moves[event.key] + self.tabs.length) % self.tabs.length;
      self.select(target);
      self.tabs[target].focus();
    });

    this.progress = document.createElement("p");
    this.progress.className = "read-progress";
    this.progress.setAttribute("aria-live", "polite");

    this.container.classList.add("is-tabbed");
    this.container.before(this.tablist, this.progress);
    this.added.push(this.tablist, this.progress);

    this.onTouchStart = function (event) {
      var touch = event.changedTouches[0];
      self.touchStart = { x: touch.clientX, y: touch.clientY };
    };
    this.onTouchEnd = function (event) {
      if (!self.touchStart) return;
      var touch = event.changedTouches[0];
      var dx = touch.clientX - self.touchStart.x;
      var dy = touch.clientY - self.touchStart.y;
      self.touchStart = null;
      if (Math.abs(dx) < SWIPE_MIN_PX || Math.abs(dx) < 2 * Math.abs(dy)) return;
      var target = self.current + (dx < 0 ? 1 : -1);
      if (target < 0 || target >= self.tabs.length) return;
      self.select(target);
      self.revealTabs();
    };
    this.container.addEventListener("touchstart", this.onTouchStart, { passive: true });
    this.container.addEventListener("touchend", this.onTouchEnd, { passive: true });

    this.select(this.current);
  };

  // The buttons at the end of a post: the next post, or after the last one the
  // questions.
  PostTabs.prototype.panelNav = function (index) {
    var self = this;
    var labels = this.container.dataset;
    var nav = document.createElement("p");
    nav.className = "post-nav";
    var button = document.createElement("button");
    button.type = "button";
    button.className = "button";
    if (index + 1 < this.panels.length) {
      button.textContent = format(labels.nextLabel, { letter: this.panels[index + 1].dataset.letter });
      button.addEventListener("click", function () {
        self.select(index + 1);
        self.revealTabs();
        self.tabs[index + 1].focus({ preventScroll: true });
      });
    } else {
      button.textContent = labels.questionsLabel;
      button.addEventListener("click", function () {
        var form = document.getElementById("ballot");
        var first = form && form.querySelector("input:not([type=hidden])");
        if (!first) return;
        form.scrollIntoView({ block: "start" });
        first.focus({ preventScroll: true });
      });
    }
    nav.appendChild(button);
    this.added.push(nav);
    return nav;
  };

  PostTabs.prototype.select = function (index) {
    this.current = index;
    this.state.current = index;
    this.opened[index] = true;
    for (var i = 0; i < this.tabs.length; i++) {
      var selected = i === index;
      this.tabs[i].setAttribute("aria-selected", String(selected));
      this.tabs[i].tabIndex = selected ? 0 : -1;
      this.panels[i].hidden = !selected;
      var read = Boolean(this.opened[i]);
      this.tabs[i].classList.toggle("is-read", read);
      this.tabs[i].querySelector(".visually-hidden").hidden = !read;
    }
    this.updateProgress();
  };

  PostTabs.prototype.updateProgress = function () {
    var count = Object.keys(this.opened).length;
    var labels = this.container.dataset;
    var done = count >= this.panels.length;
    var text = done ? labels.progressDone : format(labels.progress, { count: count });
    if (this.progress.textContent !== text) this.progress.textContent = text;
    this.progress.classList.toggle("is-done", done);
    this.container.classList.toggle("all-read", done);
  };

  // Brings the tab row back into view after moving to another post from the
  // bottom of a long one.
  PostTabs.prototype.revealTabs = function () {
    if (this.tablist.getBoundingClientRect().top < 0) {
      this.tablist.scrollIntoView({ block: "start" });
    }
  };

  PostTabs.prototype.restore = function () {
    this.added.forEach(function (element) {
      element.remove();
    });
    this.added = [];
    this.panels.forEach(function (panel) {
      panel.hidden = false;
      panel.removeAttribute("role");
      panel.removeAttribute("tabindex");
      panel.setAttribute("aria-labelledby", panel.id + "-heading");
    });
    this.container.removeEventListener("touchstart", this.onTouchStart);
    this.container.removeEventListener("touchend", this.onTouchEnd);
    this.container.classList.remove("is-tabbed", "all-read");
  };

  function update(container) {
    var tabs = container.postTabs;
    if (!tabs) {
      tabs = container.postTabs = new PostTabs(container);
      if (tabs.panels.length < 2) return;
    }
    var tabbed = container.classList.contains("is-tabbed");
    if (WIDE.matches && tabbed) tabs.restore();
    if (!WIDE.matches && !tabbed) tabs.enhance();
  }

  function setUp(root) {
    var containers = root.querySelectorAll ? root.querySelectorAll("[data-post-tabs]") : [];
    Array.prototype.forEach.call(containers, update);
  }

  WIDE.addEventListener("change", function () {
    setUp(document);
  });
  // htmx:load fires for the first page and for every swapped-in round.
  document.addEventListener("htmx:load", function (event) {
    setUp(event.target);
  });
  setUp(document);
})();
