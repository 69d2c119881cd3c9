// The console's only script. Pages work without it; it adds:
// - refreshing a page marked data-refresh in place (no reload, no flicker),
//   held while the operator is typing or ticking in it,
// - "select all" and a selection count on the dead-letter list.
// No inline script anywhere: the Content-Security-Policy allows only this file.
"use strict";
(function () {
  function schedule() {
    var main = document.getElementById("main");
    if (!main || !main.dataset.refresh) return;
    var ms = Math.max(500, parseInt(main.dataset.refresh, 10) || 2000);
    setTimeout(function () {
      fetch(location.href, { credentials: "same-origin", headers: { "Accept": "text/html" } })
        .then(function (r) { return r.ok ? r.text() : null; })
        .then(function (html) {
          if (!html) return;
          var next = new DOMParser().parseFromString(html, "text/html").getElementById("main");
          var cur = document.getElementById("main");
          if (next && cur && !editing(cur)) cur.replaceWith(document.importNode(next, true));
        })
        .catch(function () { /* keep the page; try again */ })
        .finally(schedule);
    }, ms);
  }

  // editing reports whether the operator is working in main: a field has
  // the focus, or holds what they typed, ticked or chose. Replacing main
  // would throw that away, so the refresh waits until they submit or undo it.
  function editing(main) {
    var a = document.activeElement;
    if (a && main.contains(a) && a.matches("input, select, textarea")) return true;
    return Array.prototype.some.call(main.querySelectorAll("input, select, textarea"), function (e) {
      if (e.type === "checkbox" || e.type === "radio") return e.checked !== e.defaultChecked;
      if (e.tagName === "SELECT") return Array.prototype.some.call(e.options, function (o) { return o.selected !== o.defaultSelected; });
      return e.value !== e.defaultValue;
    });
  }

  function selection() {
    var boxes = document.querySelectorAll("input[name=seq][form=selected]");
    var n = 0;
    boxes.forEach(function (b) { if (b.checked) n++; });
    document.querySelectorAll("[data-needs-selection]").forEach(function (b) { b.disabled = n === 0; });
    document.querySelectorAll("[data-selection-count]").forEach(function (s) {
      s.textContent = n === 0 ? "tick dead letters to act on them" : n + " selected";
    });
  }

  document.addEventListener("change", function (e) {
    var t = e.target;
    if (t.matches && t.matches("input[data-select-all]")) {
      document.querySelectorAll("input[name=seq][form=selected]").forEach(function (b) { b.checked = t.checked; });
    }
    if (t.matches && t.matches("input[name=seq], input[data-select-all]")) selection();
  });

  document.addEventListener("DOMContentLoaded", function () {
    selection();
    schedule();
  });
})();
