// Keyboard-first scoring: digits score the selected question, j/k or arrows
// move, u undoes, s skips, ctrl+enter submits and loads the next item, ? help.
"use strict";
(function () {
  var item = document.getElementById("item");
  document.addEventListener("keydown", function (e) {
    if (e.key === "?" ) { routelab.toggleHelp(); e.preventDefault(); }
  });
  if (!item) return;
  var id = item.getAttribute("data-id");
  var qs = Array.prototype.slice.call(document.querySelectorAll("fieldset.q"));
  var comment = document.getElementById("comment");
  var values = {};
  var history = []; // [name, previous value or undefined]
  var focus = 0;
  var busy = false;

  function paint() {
    qs.forEach(function (q, i) {
      q.classList.toggle("focus", i === focus);
      var name = q.getAttribute("data-name");
      q.querySelectorAll(".opt").forEach(function (b) {
        b.classList.toggle("chosen", values[name] !== undefined && String(values[name]) === b.getAttribute("data-value"));
      });
      q.classList.toggle("answered", values[name] !== undefined);
    });
  }
  function set(i, v) {
    var name = qs[i].getAttribute("data-name");
    history.push([name, values[name]]);
    values[name] = v;
    if (i < qs.length - 1) focus = i + 1;
    paint();
  }
  // digit -> value for question i, or null when the digit is not an answer.
  function valueFor(i, d) {
    var q = qs[i], kind = q.getAttribute("data-kind");
    if (kind === "numeric") {
      var lo = +q.getAttribute("data-min"), hi = +q.getAttribute("data-max");
      return d >= lo && d <= hi ? d : null;
    }
    var n = kind === "boolean" ? 2 : +q.getAttribute("data-n");
    return d >= 1 && d <= n ? d - 1 : null;
  }
  function submit() {
    if (busy) return;
    var missing = qs.filter(function (q) { return values[q.getAttribute("data-name")] === undefined; });
    if (missing.length) {
      focus = qs.indexOf(missing[0]);
      paint();
      routelab.status("Answer every question first (" + missing[0].querySelector("legend").textContent + ").", true);
      return;
    }
    busy = true;
    routelab.status("Saving…");
    routelab.post("/review/submit", { id: id, scores: values, comment: comment.value })
      .then(function () { window.location.assign("/review"); })
      .catch(function (err) { busy = false; routelab.status(err.message, true); });
  }
  function skip() {
    if (busy) return;
    busy = true;
    routelab.post("/review/skip", { id: id })
      .then(function () { window.location.assign("/review"); })
      .catch(function (err) { busy = false; routelab.status(err.message, true); });
  }
  qs.forEach(function (q, i) {
    q.querySelectorAll(".opt").forEach(function (b) {
      b.addEventListener("click", function () { focus = i; set(i, +b.getAttribute("data-value")); });
    });
  });
  document.addEventListener("keydown", function (e) {
    if (e.ctrlKey && e.key === "Enter") { e.preventDefault(); submit(); return; }
    if (e.target === comment) {
      if (e.key === "Escape") comment.blur();
      return;
    }
    if (e.ctrlKey || e.metaKey || e.altKey) return;
    var k = e.key;
    if (/^[0-9]$/.test(k)) {
      var v = valueFor(focus, +k);
      if (v === null) { routelab.status("No answer " + k + " for this question.", true); return; }
      routelab.status("");
      set(focus, v);
    } else if (k === "j" || k === "ArrowDown" || k === "ArrowRight") {
      focus = Math.min(focus + 1, qs.length - 1); paint();
    } else if (k === "k" || k === "ArrowUp" || k === "ArrowLeft") {
      focus = Math.max(focus - 1, 0); paint();
    } else if (k === "u") {
      var last = history.pop();
      if (last) {
        if (last[1] === undefined) delete values[last[0]]; else values[last[0]] = last[1];
        focus = qs.findIndex(function (q) { return q.getAttribute("data-name") === last[0]; });
        paint();
      }
    } else if (k === "s") {
      skip();
    } else if (k === "c") {
      comment.focus(); e.preventDefault();
    } else {
      return;
    }
    e.preventDefault();
  });
  paint();
})();
