// The A vs B console's only script. Every page works without it; it adds keyboard shortcuts,
// copy buttons, typed confirmations, live validation of the editor, dragging of ranges, form
// parts shown for one choice and the reload of a page whose results are being computed.
// It never builds HTML from data: the server renders fragments (escaped) and this swaps them in.
(function () {
  "use strict";

  function csrf() {
    var meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.getAttribute("content") : "";
  }

  function typing(target) {
    var tag = target && target.tagName;
    return tag === "INPUT" || tag === "TEXTAREA" || tag === "SELECT" || (target && target.isContentEditable);
  }

  // Keyboard: / search, j/k rows, Enter open, e edit, Ctrl+Enter review, Esc back.
  var rows = [];
  var selected = -1;
  function select(i) {
    if (!rows.length) return;
    if (selected >= 0 && rows[selected]) rows[selected].classList.remove("selected");
    selected = Math.max(0, Math.min(rows.length - 1, i));
    var row = rows[selected];
    row.classList.add("selected");
    row.scrollIntoView({ block: "nearest" });
    var link = row.querySelector("a");
    if (link) link.focus({ preventScroll: true });
  }
  document.addEventListener("keydown", function (event) {
    if (event.defaultPrevented) return;
    if ((event.ctrlKey || event.metaKey) && event.key === "Enter") {
      var review = document.querySelector("[data-review]");
      if (review) { event.preventDefault(); review.click(); }
      return;
    }
    if (event.key === "Escape") {
      var back = document.querySelector("[data-back]");
      if (back && !typing(event.target)) { event.preventDefault(); back.click(); }
      if (typing(event.target)) event.target.blur();
      return;
    }
    if (typing(event.target) || event.altKey || event.ctrlKey || event.metaKey) return;
    if (event.key === "/") {
      var search = document.querySelector("[data-search]");
      if (search) { event.preventDefault(); search.focus(); search.select(); }
    } else if (event.key === "j" || event.key === "k") {
      rows = Array.prototype.slice.call(document.querySelectorAll("[data-rows] tbody tr"));
      if (rows.length) { event.preventDefault(); select(selected + (event.key === "j" ? 1 : -1)); }
    } else if (event.key === "e") {
      var edit = document.querySelector("[data-edit]");
      if (edit) { event.preventDefault(); edit.click(); }
    }
  });

  // Copy buttons: data-copy names the input whose value is copied.
  document.addEventListener("click", function (event) {
    var button = event.target.closest && event.target.closest("[data-copy]");
    if (!button) return;
    var input = document.getElementById(button.getAttribute("data-copy"));
    if (!input) return;
    event.preventDefault();
    input.select();
    var done = function () {
      var status = document.getElementById(button.getAttribute("data-copy") + "-status");
      if (status) status.textContent = "Copied";
    };
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(input.value).then(done, function () { document.execCommand("copy"); done(); });
    } else {
      document.execCommand("copy");
      done();
    }
  });

  // Typed confirmations: the submit button waits for the exact name.
  function confirmations() {
    document.querySelectorAll("[data-confirm-name]").forEach(function (input) {
      var button = document.getElementById(input.getAttribute("data-confirm-button"));
      if (!button) return;
      var check = function () { button.disabled = input.value.trim() !== input.getAttribute("data-confirm-name"); };
      input.addEventListener("input", check);
      check();
    });
  }

  // Live validation: the form posts itself (debounced) to data-live and the answer, a fragment
  // the server rendered, replaces the element data-live-target names.
  function live() {
    document.querySelectorAll("form[data-live]").forEach(function (form) {
      var target = document.getElementById(form.getAttribute("data-live-target"));
      if (!target) return;
      var timer = null;
      var seq = 0;
      var send = function () {
        var mine = ++seq;
        var body = new URLSearchParams(new FormData(form));
        fetch(form.getAttribute("data-live"), {
          method: "POST",
          headers: { "X-CSRF-Token": csrf(), "Content-Type": "application/x-www-form-urlencoded" },
          body: body,
          credentials: "same-origin"
        }).then(function (response) {
          return response.ok ? response.text() : null;
        }).then(function (html) {
          if (html !== null && mine === seq) {
            var parsed = new DOMParser().parseFromString(html, "text/html");
            target.replaceChildren.apply(target, Array.prototype.slice.call(parsed.body.childNodes));
            bars(target);
          }
        }).catch(function () {});
      };
      form.addEventListener("input", function () {
        clearTimeout(timer);
        timer = setTimeout(send, 250);
      });
    });
  }

  // Dragging a boundary between two ranges moves share from one neighbour to the other; the
  // number inputs (data-range=<prefix><index>) are the truth and the live check follows.
  function bars(root) {
    (root || document).querySelectorAll("svg[data-drag]").forEach(function (svg) {
      if (svg.dataset.bound) return;
      svg.dataset.bound = "1";
      var prefix = svg.getAttribute("data-drag");
      svg.querySelectorAll("[data-boundary]").forEach(function (handle) {
        handle.addEventListener("pointerdown", function (down) {
          down.preventDefault();
          var i = parseInt(handle.getAttribute("data-boundary"), 10);
          var left = document.querySelector('[data-range="' + prefix + i + '"]');
          var right = document.querySelector('[data-range="' + prefix + (i + 1) + '"]');
          if (!left || !right) return;
          var rect = svg.getBoundingClientRect();
          var start = parseFloat(left.value) || 0;
          var total = start + (parseFloat(right.value) || 0);
          var startX = down.clientX;
          handle.setPointerCapture(down.pointerId);
          var move = function (event) {
            var delta = (event.clientX - startX) / rect.width * 100;
            var next = Math.round(Math.max(0, Math.min(total, start + delta)) * 10) / 10;
            left.value = next.toFixed(1);
            right.value = (Math.round((total - next) * 10) / 10).toFixed(1);
            left.dispatchEvent(new Event("input", { bubbles: true }));
          };
          var up = function () {
            handle.removeEventListener("pointermove", move);
            handle.removeEventListener("pointerup", up);
          };
          handle.addEventListener("pointermove", move);
          handle.addEventListener("pointerup", up);
        });
      });
    });
  }

  // Form parts that only matter for one choice (a ratio's denominator) are hidden for the
  // others: data-show-if="<field name>=<value>". Without the script they stay visible.
  function conditional() {
    document.querySelectorAll("[data-show-if]").forEach(function (part) {
      var rule = part.getAttribute("data-show-if").split("=");
      var form = part.closest("form");
      if (!form) return;
      var update = function () {
        // A select's value, or a radio group's (RadioNodeList.value is the checked one's).
        var field = form.elements[rule[0]];
        var value = field ? field.value : "";
        part.hidden = value !== rule[1] && !part.classList.contains("has-error");
      };
      form.addEventListener("change", update);
      update();
    });
  }

  // A page that says its content is being computed reloads itself after data-reload seconds.
  function reload() {
    var notice = document.querySelector("[data-reload]");
    if (notice) setTimeout(function () { window.location.reload(); }, 1000 * (parseFloat(notice.getAttribute("data-reload")) || 3));
  }

  document.addEventListener("DOMContentLoaded", function () {
    conditional();
    reload();
    confirmations();
    live();
    bars(document);
    var focus = document.querySelector("[data-autofocus]");
    if (focus) focus.focus();
  });
})();
