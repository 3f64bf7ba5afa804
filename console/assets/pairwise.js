// Blind pairwise: left/right/tie by key; model names come back only after
// the answer is recorded (shown on the next page).
"use strict";
(function () {
  document.addEventListener("keydown", function (e) {
    if (e.key === "?") { routelab.toggleHelp(); e.preventDefault(); }
  });
  var pair = document.getElementById("pair");
  if (!pair) return;
  var id = pair.getAttribute("data-id");
  var busy = false;
  function answer(choice) {
    if (busy) return;
    busy = true;
    routelab.status("Saving…");
    routelab.post("/pairwise/submit", { id: id, choice: choice })
      .then(function () { window.location.assign("/pairwise"); })
      .catch(function (err) { busy = false; routelab.status(err.message, true); });
  }
  var keys = { ArrowLeft: "left", "1": "left", ArrowRight: "right", "2": "right", ArrowDown: "tie", "3": "tie", t: "tie", s: "skip" };
  document.addEventListener("keydown", function (e) {
    if (e.ctrlKey || e.metaKey || e.altKey) return;
    var c = keys[e.key];
    if (c) { e.preventDefault(); answer(c); }
  });
})();
