// Doorstep page glue: toasts (server flash, htmx HX-Trigger "toast", request errors) and theme.
(function () {
  "use strict";

  function toast(message, level) {
    var box = document.getElementById("toasts");
    if (!box) return;
    var el = document.createElement("div");
    el.className = "toast show align-items-center" + (level === "danger" ? " text-bg-danger" : "");
    el.setAttribute("role", level === "danger" ? "alert" : "status");
    var row = document.createElement("div");
    row.className = "d-flex";
    var body = document.createElement("div");
    body.className = "toast-body";
    body.textContent = message;
    var close = document.createElement("button");
    close.type = "button";
    close.className = "btn-close me-2 m-auto";
    close.setAttribute("aria-label", "Close");
    close.addEventListener("click", function () { el.remove(); });
    row.appendChild(body);
    row.appendChild(close);
    el.appendChild(row);
    box.appendChild(el);
    setTimeout(function () { el.remove(); }, 6000);
  }
  window.doorstepToast = toast;

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("#toasts [data-autohide]").forEach(function (el) {
      setTimeout(function () { el.remove(); }, 6000);
    });
    document.querySelectorAll(".toast .btn-close").forEach(function (b) {
      b.addEventListener("click", function () { b.closest(".toast").remove(); });
    });
  });

  // HX-Trigger events bubble from the element up to the document: listen once, at the top.
  document.addEventListener("toast", function (e) { toast(e.detail.message, e.detail.level); });

  document.addEventListener("htmx:responseError", function (e) {
    var message = "Something went wrong (" + e.detail.xhr.status + ")";
    try { message = JSON.parse(e.detail.xhr.responseText).detail || message; } catch (err) { /* HTML body */ }
    toast(message, "danger");
  });

  // The theme form posts with htmx; flip the page at once rather than waiting for a reload.
  document.addEventListener("htmx:afterRequest", function (e) {
    if (e.detail.elt && e.detail.elt.hasAttribute("data-theme-toggle") && e.detail.successful) {
      var html = document.documentElement;
      html.setAttribute("data-bs-theme", html.getAttribute("data-bs-theme") === "dark" ? "light" : "dark");
    }
  });
})();
