// Shared by the console's page scripts: JSON POST with the CSRF token and the
// ? help overlay. Loaded as a file: the Content-Security-Policy forbids inline script.
"use strict";
window.routelab = {
  csrf: function () {
    var m = document.querySelector('meta[name="csrf"]');
    return m ? m.getAttribute("content") : "";
  },
  post: function (url, body) {
    return fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "Accept": "application/json", "X-Csrf-Token": this.csrf() },
      body: JSON.stringify(body),
    }).then(function (r) {
      return r.json().then(function (j) {
        if (!r.ok) {
          var e = (j && j.error) || {};
          throw new Error(e.message || ("HTTP " + r.status));
        }
        return j;
      });
    });
  },
  toggleHelp: function () {
    var h = document.getElementById("help");
    if (h) h.hidden = !h.hidden;
  },
  status: function (msg, bad) {
    var s = document.getElementById("status");
    if (!s) return;
    s.textContent = msg;
    s.className = "status" + (bad ? " bad" : "");
  },
};
