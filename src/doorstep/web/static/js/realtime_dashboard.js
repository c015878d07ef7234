// The live dashboard (seed 002): connects to the Socket.IO edge at /socket.io with the page's
// session cookie, joins the signed-in user's dashboard, and re-renders the server-rendered
// sections from `dashboard_data`, `market_update`, `performance_update` and `activity_update`.
// socket.io-client reconnects by itself; the badge shows each state.
(function () {
  "use strict";
  var root = document.querySelector("[data-testid=realtime-dashboard]");
  if (!root || typeof io !== "function") return;
  var userId = parseInt(root.getAttribute("data-user-id"), 10);
  var statusBadge = document.querySelector("[data-testid=connection-status]");
  var statusText = document.querySelector("[data-rt-status-text]");
  var updated = document.querySelector("[data-rt-updated]");
  var refresh = document.querySelector("[data-rt-refresh]");
  var errorBox = document.querySelector("[data-rt-error]");

  var LABELS = { connecting: "Connecting…", live: "Live", reconnecting: "Reconnecting…", offline: "Offline" };
  function setState(state, detail) {
    statusBadge.setAttribute("data-state", state);
    statusText.textContent = LABELS[state] || state;
    statusBadge.setAttribute("title", detail || LABELS[state] || state);
    if (refresh) refresh.disabled = state !== "live";
  }

  // --- formatting -----------------------------------------------------------------------------
  var moneyFormat = new Intl.NumberFormat("en-US", { style: "currency", currency: "USD", maximumFractionDigits: 0 });
  function money(v) { return v === null || v === undefined ? "—" : moneyFormat.format(v); }
  function pct(v, signed) {
    if (v === null || v === undefined) return "—";
    var s = (v * 100).toFixed(1) + "%";
    return signed && v >= 0 ? "+" + s : s;
  }
  function ms(v) { return v === null || v === undefined ? "—" : v.toFixed(1) + " ms"; }
  function when(iso) { return iso ? iso.slice(0, 16).replace("T", " ") : ""; }
  function clock(iso) { return iso ? iso.slice(11, 19) + " UTC" : ""; }

  // A small element builder: el("td", {class: "text-end"}, "text", child, ...). Text only,
  // never HTML, so server data cannot inject markup.
  function el(tag, attrs) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) { node.setAttribute(k, attrs[k]); });
    for (var i = 2; i < arguments.length; i++) {
      var child = arguments[i];
      if (child === null || child === undefined || child === false) continue;
      node.appendChild(typeof child === "string" || typeof child === "number" ? document.createTextNode(String(child)) : child);
    }
    return node;
  }
  function icon(name, extra) { return el("i", { class: "ti ti-" + name + (extra ? " " + extra : "") }); }
  function empty(title, text, iconName) {
    return el("div", { class: "empty", "data-testid": "empty-state" },
      el("div", { class: "empty-icon" }, icon(iconName, "icon")),
      el("p", { class: "empty-title" }, title),
      el("p", { class: "empty-subtitle text-secondary" }, text));
  }
  function replace(selector, node) {
    var box = document.querySelector(selector);
    if (!box) return;
    box.replaceChildren(node);
  }
  function flash(node) {
    if (!node) return;
    node.classList.remove("rt-flash");
    void node.offsetWidth; // restart the animation
    node.classList.add("rt-flash");
  }
  function signed(v) {
    if (v === null || v === undefined) return el("span", { class: "text-secondary" }, "—");
    return el("span", { class: v >= 0 ? "text-green" : "text-red" }, pct(v, true));
  }

  // --- sections -------------------------------------------------------------------------------
  function renderSummary(s) {
    var values = {
      total_companies: s.total_companies.toLocaleString("en-US"),
      total_valuations: s.total_valuations.toLocaleString("en-US"),
      avg_confidence: pct(s.avg_confidence),
      portfolio_value: money(s.portfolio_value),
    };
    Object.keys(values).forEach(function (key) {
      var node = document.querySelector('[data-rt-summary="' + key + '"]');
      if (node && node.textContent !== values[key]) { node.textContent = values[key]; flash(node); }
    });
  }

  function renderCompanies(companies) {
    if (!companies.length) {
      replace("[data-rt-companies]", el("div", { class: "card-body" }, empty("No companies yet",
        "Companies you may see, with their valuations and monthly figures, appear here as they are added.", "building-off")));
      return;
    }
    var body = el("tbody");
    companies.forEach(function (c) {
      var v = c.valuation;
      body.appendChild(el("tr", { "data-company-id": c.id },
        el("td", {}, el("div", { class: "fw-semibold" }, c.name), el("div", { class: "small text-secondary" }, c.industry)),
        el("td", { class: "text-end" }, v
          ? el("div", {}, el("div", {}, money(v.value)),
              el("div", { class: "small text-secondary rt-detail" }, money(v.low) + "–" + money(v.high) + " · " + v.method_label + " · " + v.date))
          : el("span", { class: "text-secondary" }, "not valued")),
        el("td", { class: "text-end" }, signed(c.valuation_change)),
        el("td", { class: "text-end" }, c.revenue
          ? el("div", {}, money(c.revenue.value), el("div", { class: "small text-secondary" }, c.revenue.period.slice(0, 7)))
          : el("span", { class: "text-secondary" }, "—")),
        el("td", { class: "text-end" }, signed(c.revenue ? c.revenue.growth : null))));
    });
    var head = el("thead", {}, el("tr", {}, el("th", {}, "Company"), el("th", { class: "text-end" }, "Valuation"),
      el("th", { class: "text-end" }, "Change"), el("th", { class: "text-end" }, "Revenue (month)"), el("th", { class: "text-end" }, "Growth")));
    replace("[data-rt-companies]", el("div", { class: "table-responsive" },
      el("table", { class: "table table-vcenter card-table", "data-testid": "companies-table" }, head, body)));
  }

  function renderActivity(items) {
    if (!items.length) {
      replace("[data-rt-activity]", el("div", { class: "card-body" }, empty("No activity yet",
        "Reports generated and changes to valuations show up here as they happen.", "activity")));
      return;
    }
    var list = el("div", { class: "list-group list-group-flush", "data-testid": "activity-list" });
    items.forEach(function (a) {
      var meta = a.action + (a.user ? " · " + a.user : "") + " · ";
      list.appendChild(el("div", { class: "list-group-item" }, el("div", { class: "d-flex gap-2" },
        icon(a.kind === "report" ? "file-text" : "activity", "text-secondary mt-1"),
        el("div", { class: "flex-fill text-truncate" }, el("div", { class: "text-truncate" }, a.subject),
          el("div", { class: "small text-secondary" }, meta, el("time", { datetime: a.at }, when(a.at)))))));
    });
    replace("[data-rt-activity]", list);
  }

  function renderNotifications(alerts, recommendations) {
    var count = document.querySelector("[data-rt-alert-count]");
    if (count) { count.textContent = String(alerts.length); count.classList.toggle("d-none", !alerts.length); }
    if (!alerts.length) {
      replace("[data-rt-alerts]", empty("No alerts", "No valuation fell more than 10% and no figure sits in its industry's worst quarter.", "circle-check"));
    } else {
      var box = el("div");
      alerts.forEach(function (a) {
        box.appendChild(el("div", { class: "alert alert-" + a.level + " mb-2", "data-testid": "alert", "data-kind": a.kind },
          el("div", { class: "d-flex gap-2" }, icon(a.kind === "valuation_drop" ? "trending-down" : "alert-triangle", "alert-icon"), el("div", {}, a.message))));
      });
      replace("[data-rt-alerts]", box);
    }
    if (!recommendations.length) {
      replace("[data-rt-recommendations]", empty("No recommendations", "Recommendations appear when a company's growth, margin or churn falls behind its industry.", "bulb"));
    } else {
      var recs = el("div");
      recommendations.forEach(function (r) {
        recs.appendChild(el("div", { class: "card card-sm mb-2", "data-testid": "recommendation" },
          el("div", { class: "card-body" }, el("div", { class: "fw-semibold" }, r.title), el("div", { class: "text-secondary" }, r.message))));
      });
      replace("[data-rt-recommendations]", recs);
    }
  }

  function renderMarket(market) {
    if (!market.industries.length) {
      replace("[data-rt-market]", empty("No market benchmarks", "Industry benchmarks (growth, margin, churn, multiples) appear here once they are loaded.", "chart-line"));
      return;
    }
    var box = el("div");
    market.industries.forEach(function (ind) {
      var body = el("tbody");
      ind.benchmarks.forEach(function (b) {
        function fig(v) { return b.unit === "multiple" ? v.toFixed(1) + "×" : pct(v); }
        body.appendChild(el("tr", {}, el("td", {}, b.label), el("td", { class: "text-end" }, fig(b.p25)),
          el("td", { class: "text-end fw-semibold" }, fig(b.p50)), el("td", { class: "text-end" }, fig(b.p75)),
          el("td", { class: "text-nowrap" }, b.as_of), el("td", { class: "small text-secondary" }, b.source)));
      });
      var head = el("thead", {}, el("tr", {}, el("th", {}, "Metric"), el("th", { class: "text-end" }, "25th"), el("th", { class: "text-end" }, "Median"),
        el("th", { class: "text-end" }, "75th"), el("th", {}, "As of"), el("th", {}, "Source")));
      box.appendChild(el("div", { class: "card mb-3", "data-testid": "market-industry" },
        el("div", { class: "card-header" }, el("h3", { class: "card-title" }, ind.industry)),
        el("div", { class: "table-responsive" }, el("table", { class: "table table-vcenter card-table" }, head, body))));
    });
    replace("[data-rt-market]", box);
  }

  function setFigure(key, value, note) {
    var v = document.querySelector('[data-rt-system-value="' + key + '"]');
    var n = document.querySelector('[data-rt-system-note="' + key + '"]');
    if (v && v.textContent !== String(value)) { v.textContent = String(value); flash(v); }
    if (n) n.textContent = note;
  }

  function renderSystem(m) {
    var r = m.requests;
    var up = m.uptime_seconds;
    var hours = Math.floor(up / 3600), minutes = Math.floor((up % 3600) / 60);
    setFigure("rps", r.requests_per_second.toFixed(2), "over the last " + r.window_seconds + " s");
    setFigure("p50", ms(r.p50_ms), r.window_requests.toLocaleString("en-US") + " requests in the window");
    setFigure("p95", ms(r.p95_ms), r.requests_total.toLocaleString("en-US") + " requests since start");
    setFigure("websocket", m.connections.websocket, "on this server process");
    setFigure("socketio", m.connections.socketio, "on this server process");
    setFigure("jobs", m.jobs.pending, m.jobs.running + " running · " + m.jobs.scheduled + " scheduled");
    setFigure("events", ms(m.live_events.p50_ms), "outbox to socket, " + m.live_events.samples + " events");
    setFigure("uptime", hours + "h " + String(minutes).padStart(2, "0") + "m", "since " + when(m.started_at) + " UTC");
  }

  function stamp(iso) {
    if (!updated || !iso) return;
    updated.setAttribute("datetime", iso);
    updated.textContent = clock(iso);
  }

  function showError(detail) {
    if (!errorBox) return;
    errorBox.textContent = detail;
    errorBox.classList.toggle("d-none", !detail);
  }

  // --- the socket -----------------------------------------------------------------------------
  // The seed's client: io(url), join_dashboard on connect, dashboard_data renders everything.
  var socket = io(window.location.origin, { reconnectionDelayMax: 10000 });
  setState("connecting");

  socket.on("connect", function () {
    setState("live", "Connected: updates arrive as they happen");
    showError("");
    socket.emit("join_dashboard", { user_id: userId });
  });
  socket.on("disconnect", function (reason) {
    // "io server disconnect" is the server's decision: socket.io-client does not retry it.
    if (reason === "io server disconnect") { setState("offline", "The server closed the connection; reload the page"); return; }
    setState("reconnecting", "Connection lost (" + reason + "); reconnecting");
  });
  socket.on("connect_error", function (err) {
    if (socket.active) { setState("reconnecting", "Cannot reach the server; retrying"); return; }
    // Refused (signed out, or no longer allowed): no retry.
    setState("offline", err && err.message ? err.message : "Connection refused");
    showError(err && err.message ? err.message : "The live connection was refused.");
  });
  socket.io.on("reconnect_attempt", function () { setState("reconnecting", "Reconnecting…"); });

  socket.on("dashboard_data", function (data) {
    renderSummary(data.summary);
    renderCompanies(data.companies);
    renderActivity(data.recent_activity);
    renderNotifications(data.alerts, data.recommendations);
    stamp(data.timestamp);
    root.setAttribute("data-updates", String(parseInt(root.getAttribute("data-updates") || "0", 10) + 1));
  });
  socket.on("market_update", function (data) { renderMarket(data); stamp(data.timestamp); });
  socket.on("performance_update", function (data) { renderSystem(data); stamp(data.timestamp); });
  socket.on("activity_update", function () {
    // The refreshed dashboard_data that follows carries the new state; flag the list meanwhile.
    flash(document.querySelector("[data-rt-activity]"));
  });
  socket.on("error", function (err) { showError(err && err.detail ? err.detail : "Something went wrong"); });

  if (refresh) {
    refresh.addEventListener("click", function () {
      if (!socket.connected) return;
      ["dashboard", "market", "performance"].forEach(function (type) {
        socket.emit("request_update", { type: type, user_id: userId });
      });
    });
  }
})();
