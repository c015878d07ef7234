// The navbar bell: its unread badge follows `notification.created` / `notification.read` events
// (dispatched by live.js as `doorstep:event`) and the `doorstep:unread` htmx trigger that mark-read
// responses carry; a new notification also shows a toast.
(function () {
  "use strict";

  function setUnread(count) {
    if (typeof count !== "number" || count < 0) return;
    document.querySelectorAll("[data-testid='unread-count']").forEach(function (badge) {
      badge.textContent = count > 99 ? "99+" : String(count);
      badge.hidden = count === 0;
    });
    document.querySelectorAll("[data-testid='bell']").forEach(function (bell) {
      bell.setAttribute("aria-label", "Notifications, " + count + " unread");
    });
  }

  document.addEventListener("doorstep:event", function (e) {
    var msg = e.detail || {};
    if (msg.type !== "notification.created" && msg.type !== "notification.read") return;
    setUnread((msg.data || {}).unread);
    if (msg.type === "notification.created" && window.doorstepToast && msg.data.title) {
      window.doorstepToast(msg.data.title);
    }
  });

  document.addEventListener("doorstep:unread", function (e) {
    setUnread((e.detail || {}).unread);
  });

  window.doorstepNotifications = { setUnread: setUnread };
})();
