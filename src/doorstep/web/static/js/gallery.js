// Property photo gallery (crm/_gallery.html): drop or pick photos to upload them with progress,
// drag thumbnails to reorder (SortableJS), "Make cover", delete. Without JavaScript the
// thumbnails still show; every change is checked again by the server, which answers with the
// whole gallery in order, so the list is always redrawn from what was saved.
(function () {
  "use strict";

  function csrf() {
    var meta = document.querySelector("meta[name='csrf-token']");
    return meta ? meta.getAttribute("content") : "";
  }

  function errorMessage(status, text) {
    try {
      var body = JSON.parse(text);
      if (body && body.detail) return body.detail;
    } catch (ignored) { /* not JSON */ }
    if (status === 413) return "That upload is too large.";
    return "The request failed (" + status + "). Please try again.";
  }

  function init(root) {
    if (root.getAttribute("data-gallery-ready")) return;
    root.setAttribute("data-gallery-ready", "true");

    var base = "/api/properties/" + root.getAttribute("data-property-id");
    var canEdit = root.getAttribute("data-can-edit") === "true";
    var maxFiles = Number(root.getAttribute("data-max-files")) || 20;
    var maxFileBytes = Number(root.getAttribute("data-max-file-bytes")) || 20 * 1024 * 1024;
    var maxRequestBytes = Number(root.getAttribute("data-max-request-bytes")) || 100 * 1024 * 1024;
    var list = root.querySelector("[data-gallery-list]");
    var template = root.querySelector("template[data-gallery-template]");
    var zone = root.querySelector("[data-gallery-dropzone]");
    var input = root.querySelector("[data-gallery-input]");
    var errorBox = root.querySelector("[data-gallery-error]");
    var errorText = root.querySelector("[data-gallery-error-text]") || errorBox;
    var progress = root.querySelector("[data-gallery-progress]");
    var bar = root.querySelector("[data-gallery-bar]");
    var statusLine = root.querySelector("[data-gallery-status]");
    var percent = root.querySelector("[data-gallery-percent]");
    var count = root.querySelector("[data-gallery-count]");
    var empty = root.querySelector("[data-gallery-empty]");
    var busy = false;

    function showError(message) {
      if (!errorBox) return;
      errorText.textContent = message;
      errorBox.hidden = false;
    }

    function clearError() {
      if (errorBox) errorBox.hidden = true;
    }

    function currentIds() {
      return Array.prototype.map.call(list.querySelectorAll("[data-image-id]"), function (el) {
        return Number(el.getAttribute("data-image-id"));
      });
    }

    function thumb(image) {
      var node = template.content.firstElementChild.cloneNode(true);
      node.setAttribute("data-image-id", String(image.id));
      node.toggleAttribute("data-cover", !!image.is_cover);
      var img = node.querySelector("[data-gallery-img]");
      img.src = image.thumbnail_url;
      img.alt = image.original_name || "Property photo";
      if (image.width && image.height) {
        img.title = image.original_name + " · " + image.width + " × " + image.height;
      }
      node.querySelector("[data-gallery-link]").href = image.url;
      node.querySelector(".dg-card").classList.toggle("dg-cover", !!image.is_cover);
      var badge = node.querySelector("[data-gallery-cover-badge]");
      if (badge) badge.hidden = !image.is_cover;
      var coverButton = node.querySelector("[data-gallery-cover]");
      if (coverButton) coverButton.hidden = !!image.is_cover;
      return node;
    }

    function render(images) {
      var fragment = document.createDocumentFragment();
      images.forEach(function (image) { fragment.appendChild(thumb(image)); });
      list.replaceChildren(fragment);
      if (count) count.textContent = String(images.length);
      if (empty) empty.hidden = images.length > 0;
      root.dispatchEvent(new CustomEvent("gallery:changed", { bubbles: true, detail: images }));
    }

    // A JSON call carrying the session's CSRF token; resolves with the gallery it returns.
    function send(method, url, body) {
      var init = {
        method: method,
        credentials: "same-origin",
        headers: { "X-CSRF-Token": csrf(), Accept: "application/json" }
      };
      if (body !== undefined) {
        init.headers["Content-Type"] = "application/json";
        init.body = JSON.stringify(body);
      }
      return fetch(url, init).then(function (response) {
        return response.text().then(function (text) {
          if (!response.ok) throw new Error(errorMessage(response.status, text));
          return text ? JSON.parse(text) : [];
        });
      });
    }

    function reload() {
      return send("GET", base + "/images").then(render).catch(function (err) {
        showError(err.message);
      });
    }

    // --- upload -------------------------------------------------------------------------------

    function setProgress(sent, total, label) {
      if (!progress) return;
      progress.hidden = false;
      var pct = total ? Math.min(100, Math.round((sent / total) * 100)) : 0;
      bar.style.width = pct + "%";
      bar.setAttribute("aria-valuenow", String(pct));
      if (percent) percent.textContent = pct + "%";
      if (statusLine) statusLine.textContent = label;
    }

    function endProgress() {
      if (progress) progress.hidden = true;
      if (zone) zone.classList.remove("dg-busy");
      busy = false;
    }

    // Requests of at most maxFiles files and maxRequestBytes bytes each, in the chosen order.
    function batches(files) {
      var out = [];
      var current = [];
      var size = 0;
      files.forEach(function (file) {
        if (current.length && (current.length >= maxFiles || size + file.size > maxRequestBytes - 65536)) {
          out.push(current);
          current = [];
          size = 0;
        }
        current.push(file);
        size += file.size;
      });
      if (current.length) out.push(current);
      return out;
    }

    function postBatch(files, onProgress) {
      return new Promise(function (resolve, reject) {
        var form = new FormData();
        files.forEach(function (file) { form.append("files", file, file.name); });
        var xhr = new XMLHttpRequest();
        xhr.open("POST", base + "/images");
        xhr.setRequestHeader("X-CSRF-Token", csrf());
        xhr.setRequestHeader("Accept", "application/json");
        xhr.upload.addEventListener("progress", function (e) {
          if (e.lengthComputable) onProgress(e.loaded, e.total);
        });
        xhr.addEventListener("load", function () {
          if (xhr.status >= 200 && xhr.status < 300) {
            try { resolve(JSON.parse(xhr.responseText)); } catch (err) { reject(err); }
          } else {
            reject(new Error(errorMessage(xhr.status, xhr.responseText)));
          }
        });
        xhr.addEventListener("error", function () {
          reject(new Error("The upload was interrupted; check your connection and try again."));
        });
        xhr.send(form);
      });
    }

    function upload(fileList) {
      var files = Array.prototype.slice.call(fileList || []);
      if (!files.length || busy) return;
      clearError();
      var tooBig = files.filter(function (f) { return f.size > maxFileBytes; });
      if (tooBig.length) {
        showError(tooBig.map(function (f) { return f.name; }).join(", ") +
          (tooBig.length === 1 ? " is" : " are") + " larger than " +
          Math.round(maxFileBytes / (1024 * 1024)) + " MB. Nothing was uploaded.");
        return;
      }
      var room = (Number(root.getAttribute("data-max-images")) || 50) - currentIds().length;
      if (files.length > room) {
        showError("A property keeps at most " + root.getAttribute("data-max-images") +
          " photos: " + Math.max(room, 0) + " more can be added (you chose " + files.length + ").");
        return;
      }
      busy = true;
      if (zone) zone.classList.add("dg-busy");
      var total = files.reduce(function (sum, f) { return sum + f.size; }, 0) || 1;
      var done = 0;
      var uploaded = 0;
      var chain = Promise.resolve();
      batches(files).forEach(function (batch) {
        chain = chain.then(function () {
          var batchBytes = batch.reduce(function (sum, f) { return sum + f.size; }, 0);
          return postBatch(batch, function (loaded, requestTotal) {
            var share = requestTotal ? (loaded / requestTotal) * batchBytes : 0;
            var label = loaded >= requestTotal ? "Optimising " : "Uploading ";
            setProgress(done + share, total, label + (uploaded + 1) + "–" +
              (uploaded + batch.length) + " of " + files.length + "…");
          }).then(function (images) {
            done += batchBytes;
            uploaded += batch.length;
            setProgress(done, total, uploaded + " of " + files.length + " uploaded");
            render(images);
          });
        });
      });
      chain.catch(function (err) {
        showError(err.message);
      }).then(endProgress);
    }

    if (canEdit && input) {
      input.addEventListener("change", function () {
        upload(input.files);
        input.value = "";
      });
    }

    if (canEdit && zone) {
      ["dragenter", "dragover"].forEach(function (type) {
        zone.addEventListener(type, function (e) {
          if (!e.dataTransfer || Array.prototype.indexOf.call(e.dataTransfer.types, "Files") < 0) return;
          e.preventDefault();
          e.dataTransfer.dropEffect = "copy";
          zone.classList.add("dg-over");
        });
      });
      zone.addEventListener("dragleave", function (e) {
        if (!zone.contains(e.relatedTarget)) zone.classList.remove("dg-over");
      });
      zone.addEventListener("drop", function (e) {
        e.preventDefault();
        zone.classList.remove("dg-over");
        upload(e.dataTransfer && e.dataTransfer.files);
      });
    }

    // --- cover, delete, order -------------------------------------------------------------------

    list.addEventListener("click", function (e) {
      var target = e.target.closest && e.target.closest("[data-gallery-cover], [data-gallery-delete]");
      if (!target || !canEdit) return;
      e.preventDefault();
      var item = target.closest("[data-image-id]");
      var imageId = Number(item.getAttribute("data-image-id"));
      clearError();
      target.disabled = true;
      var call = target.hasAttribute("data-gallery-cover")
        ? send("PUT", base + "/cover", { image_id: imageId })
        : (window.confirm("Delete this photo? This cannot be undone.")
          ? send("DELETE", base + "/images/" + imageId)
          : null);
      if (!call) {
        target.disabled = false;
        return;
      }
      call.then(render).catch(function (err) {
        target.disabled = false;
        showError(err.message);
      });
    });

    if (canEdit && window.Sortable) {
      window.Sortable.create(list, {
        animation: 150,
        draggable: "[data-image-id]",
        filter: "button",
        preventOnFilter: false,
        ghostClass: "dg-ghost",
        chosenClass: "dg-chosen",
        onEnd: function (e) {
          if (e.oldIndex === e.newIndex) return;
          clearError();
          send("PUT", base + "/images/order", { image_ids: currentIds() })
            .then(render)
            .catch(function (err) {
              showError(err.message);
              reload(); // put the thumbnails back in the saved order
            });
        }
      });
    }
  }

  function initAll(scope) {
    scope = scope || document;
    if (scope.matches && scope.matches("[data-gallery]")) init(scope);
    if (scope.querySelectorAll) scope.querySelectorAll("[data-gallery]").forEach(init);
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", function () { initAll(); });
  } else {
    initAll();
  }
  // Galleries that arrive in htmx swaps.
  document.addEventListener("htmx:load", function (e) { initAll(e.target); });
})();
