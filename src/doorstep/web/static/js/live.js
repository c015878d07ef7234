// Doorstep live updates: one WebSocket per page, reconnecting with backoff and resuming from the
// last event id it saw, so no event is missed or repeated across reconnects.
//
// Every message is dispatched on `document` as a `doorstep:event` CustomEvent (detail = the
// message {id, type, ts, data}) and as `doorstep:<type>`; elements with
// `data-live-refresh="type1 type2"` are re-fetched by htmx (`hx-trigger="live"`) when one arrives.
(function () {
  "use strict";
  var indicator = null;
  var socket = null;
  var attempt = 0;
  var pingTimer = null;
  var key = "doorstep.lastEventId";
  var lastId = null;
  try { lastId = sessionStorage.getItem(key); } catch (e) { /* storage may be off */ }

  function setState(state, title) {
    indicator = indicator || document.querySelector("[data-live-indicator]");
    if (!indicator) return;
    indicator.setAttribute("data-state", state);
    indicator.setAttribute("title", title);
    var label = indicator.querySelector(".visually-hidden");
    if (label) label.textContent = title;
  }

  function remember(id) {
    if (typeof id !== "number" || id <= 0) return;
    lastId = String(id);
    try { sessionStorage.setItem(key, lastId); } catch (e) { /* ignore */ }
  }

  function url() {
    var proto = location.protocol === "https:" ? "wss://" : "ws://";
    var query = [];
    var channels = document.body.getAttribute("data-live-channels");
    if (channels) query.push("channels=" + encodeURIComponent(channels));
    if (lastId) query.push("last_event_id=" + encodeURIComponent(lastId));
    return proto + location.host + "/ws" + (query.length ? "?" + query.join("&") : "");
  }

  function deliver(msg) {
    document.dispatchEvent(new CustomEvent("doorstep:event", { detail: msg }));
    document.dispatchEvent(new CustomEvent("doorstep:" + msg.type, { detail: msg }));
    document.querySelectorAll("[data-live-refresh]").forEach(function (el) {
      var types = el.getAttribute("data-live-refresh").split(/\s+/);
      if (types.indexOf(msg.type) !== -1 && window.htmx) window.htmx.trigger(el, "live", msg);
    });
  }

  function connect() {
    setState("connecting", "Connecting to live updates");
    socket = new WebSocket(url());
    socket.onopen = function () {
      attempt = 0;
      setState("live", "Live updates on");
      clearInterval(pingTimer);
      pingTimer = setInterval(function () {
        if (socket && socket.readyState === 1) socket.send(JSON.stringify({ type: "ping" }));
      }, 30000);
    };
    socket.onmessage = function (e) {
      var msg;
      try { msg = JSON.parse(e.data); } catch (err) { return; }
      if (msg.type === "reload") { try { sessionStorage.removeItem(key); } catch (err) { /* */ } location.reload(); return; }
      if (msg.type === "hello" || msg.type === "heartbeat" || msg.type === "pong") return;
      if (msg.type === "error") { console.warn("live updates:", msg.data.detail); return; }
      remember(msg.id);
      deliver(msg);
    };
    socket.onclose = function (e) {
      clearInterval(pingTimer);
      if (e.code === 4401) { setState("off", "Signed out: live updates off"); return; }
      if (e.code === 4403) { setState("off", "Live updates refused for this page"); return; }
      attempt += 1;
      var delay = Math.min(30000, 500 * Math.pow(2, attempt - 1)) * (0.5 + Math.random() / 2);
      setState("offline", "Reconnecting to live updates");
      setTimeout(connect, delay);
    };
  }

  window.doorstepLive = { lastEventId: function () { return lastId; } };
  document.addEventListener("DOMContentLoaded", function () {
    if (document.body.hasAttribute("data-live")) connect();
  });
})();
