// foreshape dashboard: live updates. The pages are complete without this
// script; with it, the page's main content is fetched again whenever the
// agent announces a change over server-sent events, keeping open details
// and the focused element.
(function () {
  "use strict";
  var main = document.getElementById("main");
  var live = document.getElementById("live");
  if (!main || !main.hasAttribute("data-live") || !window.EventSource || !window.fetch) {
    return;
  }
  var busy = false, again = false;
  function say(text) { if (live) { live.textContent = text; } }
  function fragmentURL() {
    var u = new URL(window.location.href);
    u.searchParams.set("fragment", "1");
    return u.toString();
  }
  function refresh() {
    if (busy) { again = true; return; }
    busy = true;
    fetch(fragmentURL(), { credentials: "same-origin", headers: { "Accept": "text/html" } })
      .then(function (r) {
        if (r.status === 403) { window.location.reload(); throw new Error("signed out"); }
        if (!r.ok) { throw new Error("HTTP " + r.status); }
        return r.text();
      })
      .then(function (html) {
        var open = Array.prototype.map.call(main.querySelectorAll("details[id]"), function (d) { return [d.id, d.open]; });
        var focused = document.activeElement && main.contains(document.activeElement) ? document.activeElement.id : "";
        main.innerHTML = html;
        open.forEach(function (o) { var d = document.getElementById(o[0]); if (d) { d.open = o[1]; } });
        if (focused) { var f = document.getElementById(focused); if (f) { f.focus(); } }
        say("Live: updated " + new Date().toLocaleTimeString());
      })
      .catch(function (e) { say("Live update failed (" + e.message + "); retrying on the next change."); })
      .then(function () { busy = false; if (again) { again = false; refresh(); } });
  }
  var es = new EventSource("/ui/events");
  es.addEventListener("hello", function () { say("Live: connected"); });
  es.addEventListener("update", refresh);
  es.onerror = function () { say("Live updates interrupted; reconnecting…"); };
})();
