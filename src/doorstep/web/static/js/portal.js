// The buyer's portal: live progress from the page's one WebSocket (live.js), celebrations with
// canvas-confetti, engagement reporting, and the service worker that keeps the portal readable
// offline with the last state it saw.
(function () {
  "use strict";

  var root = null;
  var txId = null;
  var STATUS_LABELS = { pending: "Upcoming", in_progress: "In progress", completed: "Completed", delayed: "Delayed", skipped: "Skipped" };
  var STATUS_ICONS = { completed: "circle-check-filled", in_progress: "loader-2", delayed: "alert-triangle", pending: "circle-dashed", skipped: "player-skip-forward" };
  var MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

  function tx() { return window.doorstepTx; }

  function tone(score) { return score >= 80 ? "green" : (score >= 60 ? "amber" : "red"); }

  function shortDate(iso) {
    var parts = String(iso || "").split("-");
    if (parts.length !== 3) return "";
    return MONTHS[parseInt(parts[1], 10) - 1] + " " + parts[2];
  }

  // --- live patches, applied straight from the event so the hero moves at once ---------------

  function setProgress(value) {
    if (typeof value !== "number" || isNaN(value)) return;
    var shown = Math.round(value);
    document.querySelectorAll("[data-progress-value]").forEach(function (el) {
      if (el.textContent === shown + "%") return;
      el.textContent = shown + "%";
      el.classList.remove("bump");
      void el.offsetWidth; // restart the bump animation
      el.classList.add("bump");
    });
    document.querySelectorAll("[data-progress-bar]").forEach(function (bar) {
      bar.setAttribute("aria-valuenow", String(shown));
      var fill = bar.querySelector(".hero-bar-fill");
      if (fill) fill.style.setProperty("--p", shown + "%");
    });
    document.title = document.title.replace(/^\d+%/, shown + "%");
  }

  function setHealth(score) {
    if (typeof score !== "number" || isNaN(score)) return;
    document.querySelectorAll("[data-health-gauge]").forEach(function (gauge) {
      gauge.setAttribute("data-score", String(score));
      gauge.setAttribute("aria-label", "Health score " + score + " out of 100");
      gauge.classList.remove("gauge-green", "gauge-amber", "gauge-red");
      gauge.classList.add("gauge-" + tone(score));
      var value = gauge.querySelector(".gauge-value");
      if (value) value.style.strokeDashoffset = String(100 - score);
      var label = gauge.querySelector(".gauge-score");
      if (label) label.textContent = String(score);
    });
  }

  var changed = {};

  function setMilestone(m) {
    if (!m || !m.milestone_type) return;
    var item = root.querySelector("[data-milestone='" + m.milestone_type + "']");
    if (!item) return;
    item.setAttribute("data-status", m.status);
    var status = item.querySelector(".ms-status");
    if (status) status.textContent = STATUS_LABELS[m.status] || m.status;
    var icon = item.querySelector(".ms-icon .ti");
    if (icon) icon.className = "ti ti-" + (STATUS_ICONS[m.status] || "circle");
    var when = item.querySelector("[data-ms-when]");
    if (when) {
      if (m.status === "completed" && m.actual_date) when.textContent = "Done " + shortDate(m.actual_date);
      else if (m.status === "skipped") when.textContent = "Not needed";
      else when.textContent = "Target " + shortDate(m.target_date);
    }
    changed[m.milestone_type] = true;
    flash(item);
  }

  function flash(item) {
    item.classList.remove("just-changed");
    void item.offsetWidth;
    item.classList.add("just-changed");
  }

  // --- the server's own rendering follows, for what the event does not carry -----------------

  var wantedParts = {};
  var refreshPanels = null;

  function refresh(parts) {
    parts.forEach(function (p) { wantedParts[p] = true; });
    refreshPanels();
  }

  function fetchPanels() {
    var parts = Object.keys(wantedParts);
    wantedParts = {};
    if (!parts.length || !window.htmx) return;
    var query = parts.map(function (p) { return "parts=" + p; }).join("&");
    window.htmx.ajax("GET", "/portal/" + txId + "/panels?" + query, { source: root, swap: "none" }).then(function () {
      Object.keys(changed).forEach(function (type) {
        var item = root.querySelector("[data-milestone='" + type + "']");
        if (item) flash(item);
      });
      changed = {};
      rememberPage();
    });
  }

  function onEvent(e) {
    var msg = e.detail;
    if (!tx().forTransaction(msg, txId)) return;
    var data = msg.data || {};
    var parts = ["activity"];
    if (msg.type.indexOf("milestone.") === 0 || msg.type === "progress.changed" || msg.type === "health.changed") {
      setProgress(typeof data.progress_shown === "number" ? data.progress_shown : data.progress);
      setHealth(data.health_score);
      setMilestone(data.milestone);
      parts.push("timeline", "health");
    }
    if (msg.type === "celebration.triggered") enqueue(data.celebration);
    if (msg.type === "transaction.closed" || msg.type === "transaction.updated") parts.push("hero", "timeline", "health");
    refresh(parts);
  }

  // --- celebrations --------------------------------------------------------------------------

  var modal = null;
  var queue = [];
  var seen = {};
  var current = null;
  var openedAt = 0;
  var shared = false;
  var shareChannel = null;
  var timer = null;

  function enqueue(celebration) {
    if (!celebration || !celebration.id || seen[celebration.id]) return;
    seen[celebration.id] = true;
    queue.push(celebration);
    if (!current) showNext();
  }

  function showNext() {
    current = queue.shift() || null;
    if (!current) return;
    modal.querySelector("[data-testid='celebration-title']").textContent = current.title;
    modal.querySelector("[data-testid='celebration-message']").textContent = current.message;
    modal.querySelector("[data-celebration-share-text]").textContent = current.share_message ? "“" + current.share_message + "”" : "";
    var shareLabel = modal.querySelector("[data-celebration-share] span");
    shareLabel.textContent = navigator.share ? "Share the news" : "Copy the news to share";
    modal.setAttribute("data-celebration-id", String(current.id));
    modal.setAttribute("data-animation", current.animation || "confetti");
    modal.hidden = false;
    openedAt = performance.now();
    shared = false;
    shareChannel = null;
    animate(current);
    report(false);
    var close = modal.querySelector("[data-testid='celebration-close']");
    if (close) close.focus({ preventScroll: true });
  }

  function secondsViewed() {
    return Math.min(3600, Math.round((performance.now() - openedAt) / 100) / 10);
  }

  function report(keepalive) {
    if (!current) return;
    var body = { shown: true, seconds_viewed: secondsViewed(), shared: shared };
    if (shareChannel) body.share_channel = shareChannel;
    var url = "/api/v1/transactions/" + txId + "/celebrations/" + current.id + "/engagement";
    tx().send("POST", url, body, { keepalive: keepalive }).catch(function (err) {
      console.warn("engagement not recorded:", err.message);
    });
  }

  function closeModal() {
    if (!current) return;
    report(false);
    stopAnimation();
    modal.hidden = true;
    current = null;
    if (queue.length) setTimeout(showNext, 350);
  }

  function random(min, max) { return Math.random() * (max - min) + min; }

  function burst(options) {
    if (!window.confetti) return;
    options.zIndex = 1100;
    options.disableForReducedMotion = true;
    window.confetti(options);
  }

  function animate(c) {
    stopAnimation();
    var until = Date.now() + Math.max(1, Math.min(c.duration || 4, 15)) * 1000;
    var every = function (ms, fn) {
      timer = setInterval(function () {
        if (Date.now() > until) { clearInterval(timer); timer = null; return; }
        fn();
      }, ms);
    };
    if (c.animation === "fireworks") {
      every(300, function () {
        var origin = { x: random(0.1, 0.9), y: random(0.1, 0.45) };
        burst({ particleCount: 60, spread: 360, startVelocity: 30, ticks: 70, gravity: 0.9, origin: origin });
      });
    } else if (c.animation === "sparkles") {
      every(260, function () {
        burst({
          particleCount: 18, spread: 360, startVelocity: 12, gravity: 0.3, decay: 0.93, scalar: 1.15, ticks: 120,
          shapes: ["star"], colors: ["#fff6c2", "#ffe066", "#ffd36e", "#ffc14d", "#ffffff"],
          origin: { x: random(0.15, 0.85), y: random(0.15, 0.6) }
        });
      });
    } else {
      burst({ particleCount: 150, spread: 85, startVelocity: 45, origin: { y: 0.65 } });
      every(140, function () {
        burst({ particleCount: 5, angle: 60, spread: 55, origin: { x: 0, y: 0.7 } });
        burst({ particleCount: 5, angle: 120, spread: 55, origin: { x: 1, y: 0.7 } });
      });
    }
  }

  function stopAnimation() {
    if (timer) clearInterval(timer);
    timer = null;
    if (window.confetti && window.confetti.reset) window.confetti.reset();
  }

  function copyText(text) {
    if (navigator.clipboard && window.isSecureContext) return navigator.clipboard.writeText(text);
    return new Promise(function (resolve, reject) {
      var area = document.createElement("textarea");
      area.value = text;
      area.setAttribute("readonly", "");
      area.style.position = "fixed";
      area.style.opacity = "0";
      document.body.appendChild(area);
      area.select();
      var ok = false;
      try { ok = document.execCommand("copy"); } catch (e) { ok = false; }
      area.remove();
      if (ok) resolve(); else reject(new Error("copy refused"));
    });
  }

  function share() {
    if (!current) return;
    var text = current.share_message || current.title;
    var url = location.origin + "/";
    var label = modal.querySelector("[data-celebration-share] span");
    if (navigator.share) {
      navigator.share({ title: current.title, text: text, url: url }).then(function () {
        shared = true;
        shareChannel = "web_share";
        report(false);
      }).catch(function () { /* the buyer closed the share sheet */ });
      return;
    }
    copyText(text + " " + url).then(function () {
      shared = true;
      shareChannel = "copy_link";
      label.textContent = "Copied: paste it anywhere";
      report(false);
    }).catch(function () {
      label.textContent = "Copy failed: " + text;
    });
  }

  function wireModal() {
    modal = document.querySelector("[data-celebration]");
    if (!modal) return;
    modal.addEventListener("click", function (e) {
      if (e.target.closest("[data-celebration-close]")) closeModal();
      else if (e.target.closest("[data-celebration-share]")) share();
    });
    document.addEventListener("keydown", function (e) {
      if (e.key === "Escape" && current) closeModal();
    });
    // Leaving the page with a celebration open still counts the time it was watched.
    document.addEventListener("visibilitychange", function () {
      if (document.visibilityState === "hidden" && current) report(true);
    });
  }

  // --- offline: the service worker keeps the last page; the banner says how old it is ----------

  var loadedOffline = false;

  function showOfflineState() {
    var banner = root.querySelector("[data-offline-banner]");
    if (!banner) return;
    var stamp = banner.querySelector("[data-last-updated]");
    var when = new Date(root.getAttribute("data-rendered-at"));
    if (stamp && !isNaN(when.getTime())) {
      stamp.textContent = when.toLocaleString(undefined, { month: "short", day: "numeric", hour: "numeric", minute: "2-digit" });
    }
    banner.hidden = navigator.onLine;
  }

  function rememberPage() {
    var worker = navigator.serviceWorker && navigator.serviceWorker.controller;
    if (worker) worker.postMessage({ type: "cache-page", url: location.pathname });
  }

  function registerWorker() {
    if (!("serviceWorker" in navigator)) return;
    navigator.serviceWorker.register("/portal/sw.js", { scope: "/portal" }).then(function () {
      return navigator.serviceWorker.ready;
    }).then(function (registration) {
      var channel = new MessageChannel();
      channel.port1.onmessage = function (e) {
        if (e.data && e.data.cached) root.setAttribute("data-offline-ready", "true");
      };
      registration.active.postMessage({ type: "cache-page", url: location.pathname }, [channel.port2]);
    }).catch(function (err) {
      console.warn("offline portal unavailable:", err && err.message);
    });
  }

  function forgetOnLogout() {
    document.addEventListener("submit", function (e) {
      var form = e.target;
      if (!form.getAttribute("action") || form.getAttribute("action") !== "/logout" || form.hasAttribute("data-forgotten")) return;
      if (!window.caches) return;
      e.preventDefault();
      // What this buyer saw must not stay on a shared device once they sign out.
      caches.keys().then(function (keys) {
        return Promise.all(keys.filter(function (k) { return k.indexOf("doorstep-portal") === 0; }).map(function (k) { return caches.delete(k); }));
      }).finally(function () {
        form.setAttribute("data-forgotten", "");
        form.submit();
      });
    }, true);
  }

  document.addEventListener("DOMContentLoaded", function () {
    root = document.querySelector("[data-portal][data-transaction-id]");
    if (!root) return;
    txId = root.getAttribute("data-transaction-id");
    // The manifest belongs in <head>; the layout has no block for it, so move it there.
    var manifest = document.querySelector("link[rel='manifest']");
    if (manifest && manifest.parentNode !== document.head) document.head.appendChild(manifest);
    refreshPanels = tx().debounce(fetchPanels, 120);
    wireModal();
    document.addEventListener("doorstep:event", onEvent);
    loadedOffline = !navigator.onLine;
    showOfflineState();
    window.addEventListener("offline", showOfflineState);
    window.addEventListener("online", function () {
      if (loadedOffline) location.reload(); // what is on screen is the cached copy: fetch it anew
      else showOfflineState();
    });
    registerWorker();
    forgetOnLogout();
    var missed = [];
    try { missed = JSON.parse(document.getElementById("missed-celebrations").textContent || "[]"); } catch (e) { missed = []; }
    if (missed.length && !loadedOffline) setTimeout(function () { missed.forEach(enqueue); }, 700);
    window.doorstepPortal = { celebrate: enqueue };
  });
})();
