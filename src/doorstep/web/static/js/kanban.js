// The leads Kanban: SortableJS drag and drop between stage columns. A move across columns asks
// POST /api/leads/{id}/transition (the same SalesProcessRules as every other way of moving a
// lead); a refusal (409) lists every reason on the card and the card goes back where it was.
// A move within a column saves the card's position (PUT /api/leads/{id}/position).
//
// forceFallback: SortableJS's own pointer-driven drag instead of native HTML5 drag and drop:
// it behaves the same with a mouse, a touch screen and synthetic (test) pointer events.
(function () {
  "use strict";

  function csrf() {
    var meta = document.querySelector("meta[name='csrf-token']");
    return meta ? meta.getAttribute("content") : "";
  }

  function send(method, url, body) {
    return fetch(url, {
      method: method,
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", Accept: "application/json", "X-CSRF-Token": csrf() },
      body: JSON.stringify(body),
    }).then(function (response) {
      return response.json().catch(function () { return {}; }).then(function (data) {
        return { ok: response.ok, status: response.status, data: data };
      });
    });
  }

  function showErrors(card, errors) {
    var list = card.querySelector("[data-testid=card-errors]");
    if (!list) return;
    list.textContent = "";
    errors.forEach(function (message) {
      var item = document.createElement("li");
      item.textContent = message;
      list.appendChild(item);
    });
    list.hidden = errors.length === 0;
    card.classList.toggle("crm-card-refused", errors.length > 0);
  }

  function putBack(card, from, oldIndex) {
    var anchor = from.children[oldIndex] || null;
    if (anchor === card) return;
    from.insertBefore(card, anchor);
  }

  function bump(column, delta) {
    var badge = column.closest("[data-testid=kanban-column]").querySelector("[data-testid=column-count]");
    badge.textContent = String(Math.max(0, parseInt(badge.textContent, 10) + delta));
  }

  function problem(result) {
    var data = result.data || {};
    if (Array.isArray(data.errors) && data.errors.length) {
      return data.errors.map(function (e) { return typeof e === "string" ? e : e.msg || JSON.stringify(e); });
    }
    return [data.detail || "The move was not saved (" + result.status + ")."];
  }

  function onEnd(event) {
    var card = event.item, from = event.from, to = event.to;
    var leadId = card.getAttribute("data-lead");
    if (from === to && event.oldIndex === event.newIndex) return;
    card.classList.add("crm-card-saving");
    var request = from === to
      ? send("PUT", "/api/leads/" + leadId + "/position", { position: event.newIndex })
      : send("POST", "/api/leads/" + leadId + "/transition", { to_stage: to.getAttribute("data-stage"), position: event.newIndex });
    request.then(function (result) {
      card.classList.remove("crm-card-saving");
      if (!result.ok) {
        putBack(card, from, event.oldIndex);
        showErrors(card, problem(result));
        card.setAttribute("data-state", "refused");
        return;
      }
      showErrors(card, []);
      if (from !== to) {
        bump(from, -1);
        bump(to, 1);
        card.setAttribute("data-stage", result.data.stage);
        var days = card.querySelector("[data-testid=card-days]");
        if (days) days.lastChild.textContent = " 0 d";
      }
      card.setAttribute("data-state", "saved");
    }, function () {
      card.classList.remove("crm-card-saving");
      putBack(card, from, event.oldIndex);
      showErrors(card, ["The server could not be reached; the card was not moved."]);
      card.setAttribute("data-state", "refused");
    });
  }

  function start() {
    if (typeof Sortable === "undefined") return;
    document.querySelectorAll("[data-testid=kanban-cards]").forEach(function (list) {
      Sortable.create(list, {
        group: "leads",
        animation: 150,
        forceFallback: true,
        fallbackOnBody: true,
        fallbackTolerance: 3,
        filter: "[data-testid=card-errors]",
        preventOnFilter: false,
        ghostClass: "crm-card-ghost",
        chosenClass: "crm-card-chosen",
        onStart: function (event) { showErrors(event.item, []); event.item.removeAttribute("data-state"); },
        onEnd: onEnd,
      });
    });
    var board = document.querySelector("[data-testid=kanban]");
    if (board) board.setAttribute("data-ready", "true");
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
