// Transactions pages (portal and agent): CSRF-carrying fetch, "Got it" on feed entries, rule
// refusals swapped in place, and the agent page's panels refreshed when a live event arrives.
(function () {
  "use strict";

  function csrf() {
    var meta = document.querySelector("meta[name='csrf-token']");
    return meta ? meta.getAttribute("content") : "";
  }

  // Same-origin JSON call with the session's CSRF token, as htmx sends it (hx-headers on <body>).
  function send(method, url, body, options) {
    var init = {
      method: method,
      credentials: "same-origin",
      headers: { "X-CSRF-Token": csrf(), Accept: "application/json" },
      keepalive: !!(options && options.keepalive)
    };
    if (body !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    return fetch(url, init).then(function (response) {
      if (response.ok) return response.status === 204 ? null : response.json();
      return response.json().catch(function () { return {}; }).then(function (err) {
        throw new Error(err.detail || "Request failed (" + response.status + ")");
      });
    });
  }

  function toast(message, level) {
    if (window.doorstepToast) window.doorstepToast(message, level);
  }

  // Toasts the pages' htmx answers ask for (HX-Trigger "transactions:toast").
  document.addEventListener("transactions:toast", function (e) {
    if (e.detail && e.detail.message) toast(e.detail.message, e.detail.level);
  });

  // Acknowledge a feed entry: the button becomes a quiet "Seen" mark.
  document.addEventListener("click", function (e) {
    var button = e.target.closest && e.target.closest("[data-ack]");
    if (!button) return;
    e.preventDefault();
    button.disabled = true;
    send("POST", button.getAttribute("data-ack")).then(function () {
      var done = document.createElement("span");
      done.className = "feed-acked";
      done.setAttribute("data-testid", "acknowledged");
      done.innerHTML = '<i class="ti ti-checks"></i><span class="d-none d-sm-inline ms-1">Seen</span>';
      button.replaceWith(done);
    }).catch(function (err) {
      button.disabled = false;
      toast(err.message, "danger");
    });
  });

  // A refused milestone change (409 / 422) comes back as the form with the reason in it:
  // swap it in like a success instead of treating it as a broken request.
  document.addEventListener("htmx:beforeSwap", function (e) {
    var status = e.detail.xhr.status;
    var source = (e.detail.requestConfig && e.detail.requestConfig.elt) || e.detail.elt;
    if ((status === 409 || status === 422) && source && source.closest("[data-swap-errors]")) {
      e.detail.shouldSwap = true;
      e.detail.isError = false;
    }
  });

  // Feed entries that were not on the page before a swap get the entrance animation.
  var knownEvents = null;
  document.addEventListener("htmx:beforeRequest", function () {
    knownEvents = {};
    document.querySelectorAll("[data-event]").forEach(function (el) {
      knownEvents[el.getAttribute("data-event")] = true;
    });
  });
  document.addEventListener("htmx:afterSettle", function () {
    if (!knownEvents) return;
    document.querySelectorAll("[data-event]").forEach(function (el) {
      if (!knownEvents[el.getAttribute("data-event")]) el.classList.add("is-new");
    });
  });

  // Entrance animations play once, on the first render.
  setTimeout(function () { document.documentElement.classList.add("tx-settled"); }, 1600);

  function debounce(fn, ms) {
    var timer = null;
    return function () {
      clearTimeout(timer);
      timer = setTimeout(fn, ms);
    };
  }

  function forTransaction(msg, id) {
    return msg && msg.data && String(msg.data.transaction_id) === String(id);
  }

  window.doorstepTx = { send: send, toast: toast, debounce: debounce, forTransaction: forTransaction };

  // The agent page: whoever changed the deal (a colleague, a job, the buyer acknowledging),
  // its panels follow. The milestone forms are left alone while someone is typing in them.
  document.addEventListener("DOMContentLoaded", function () {
    var page = document.querySelector("[data-tx-page]");
    if (!page) return;
    var id = page.getAttribute("data-transaction-id");
    var editing = false;
    document.addEventListener("input", function (e) {
      if (e.target.closest && e.target.closest("[data-milestone-form]")) editing = true;
    });
    document.addEventListener("htmx:afterSwap", function (e) {
      if (e.detail.target && e.detail.target.id === "tx-milestones") editing = false;
    });
    var refresh = debounce(function () {
      var parts = ["summary", "prediction", "health", "celebrations", "activity"];
      var active = document.activeElement;
      if (!editing && !(active && active.closest && active.closest("[data-milestone-form]"))) {
        parts.push("milestones");
      }
      var query = parts.map(function (p) { return "parts=" + p; }).join("&");
      if (window.htmx) {
        window.htmx.ajax("GET", "/transactions/" + id + "/panels?" + query, { source: page, swap: "none" });
      }
    }, 200);
    document.addEventListener("doorstep:event", function (e) {
      if (forTransaction(e.detail, id)) refresh();
    });
  });
})();
