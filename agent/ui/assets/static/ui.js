// foreshape dashboard: live updates. The pages are complete without this
// script; with it, the page's main content is fetched again whenever the
// agent announces a change over server-sent events, keeping open details,
// the focused element and what an operator has typed and not sent.
(function () {
  "use strict";
  var main = document.getElementById("main");
  var live = document.getElementById("live");
  if (!main || !main.hasAttribute("data-live") || !window.EventSource || !window.fetch) {
    return;
  }
  // The live line is for the eye; screen readers hear only what the
  // announce region says: a change an operator acts on (an element marked
  // data-announce that was not on the page before an update, such as the
  // queue's state or a new hotspot), and live updates stopping and
  // resuming; not each update.
  var announce = document.getElementById("announce");
  function tell(text) { if (announce) { announce.textContent = text; } }
  function marked() {
    var keys = {};
    Array.prototype.forEach.call(main.querySelectorAll("[data-announce]"), function (e) { keys[e.getAttribute("data-announce")] = true; });
    return keys;
  }
  var busy = false, again = false;
  // stopped is what the live line says while the stream is refused.
  var stopped = "";
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
        // A field being edited (a request's priority) would get the
        // page's value back: keep what the operator typed.
        var typed = Array.prototype.filter.call(main.querySelectorAll("input[id]"), function (e) { return e.value !== e.defaultValue; })
          .map(function (e) { return [e.id, e.value]; });
        var before = marked();
        main.innerHTML = html;
        var news = Array.prototype.filter.call(main.querySelectorAll("[data-announce]"), function (e) { return !before[e.getAttribute("data-announce")]; });
        if (news.length) { tell(news.map(function (e) { return e.textContent.trim(); }).join(" ")); }
        open.forEach(function (o) { var d = document.getElementById(o[0]); if (d) { d.open = o[1]; } });
        typed.forEach(function (v) { var e = document.getElementById(v[0]); if (e) { e.value = v[1]; } });
        if (focused) { var f = document.getElementById(focused); if (f) { f.focus(); } }
        // In UTC, as every time on the pages is; by this browser's clock.
        say(stopped || "Live: updated " + new Date().toISOString().slice(11, 19) + "Z");
      })
      .catch(function (e) { say("Live update failed (" + e.message + "); retrying on the next change."); })
      .then(function () { busy = false; if (again) { again = false; refresh(); } });
  }
  // The stream says "hello" each time it connects. After the first, it
  // is a reconnection (the agent restarted, or a proxy dropped the
  // stream), and what changed meanwhile was never announced: refresh.
  // A stream the agent refused (403 once the token is no longer valid, a
  // proxy's 502 while the agent restarts) is closed for good by the
  // browser: refresh (a 403 then reloads to the sign-in form) and open a
  // new one a little later.
  var connected = false;
  function connect() {
    var es = new EventSource("/ui/events");
    es.addEventListener("hello", function () {
      if (stopped) { tell("Live updates resumed."); }
      stopped = "";
      say("Live: connected");
      if (connected) { refresh(); }
      connected = true;
    });
    es.addEventListener("update", refresh);
    // The agent no longer accepts the stream's token: as a refusal.
    es.addEventListener("denied", function () { es.close(); refused(); });
    es.onerror = function () {
      if (es.readyState === EventSource.CLOSED) {
        refused();
        return;
      }
      say("Live updates interrupted; reconnecting…");
    };
  }
  function refused() {
    if (!stopped) { tell("Live updates stopped."); }
    stopped = "Live updates stopped: the stream was refused; trying again in 5 s…";
    say(stopped);
    refresh();
    window.setTimeout(connect, 5000);
  }
  connect();
})();
