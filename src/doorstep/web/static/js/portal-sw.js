// The buyer portal's service worker (served as /portal/sw.js, scope /portal).
//
// The shell (styles, scripts, icons) is cached at install and served cache-first. Portal pages
// are network-first: each one fetched is kept, so with no network the portal opens on the last
// state it showed (the page itself then says "offline — last updated ..."). Nothing else is
// cached: API calls and the live socket simply fail offline.
"use strict";

var VERSION = "v1";
var SHELL_CACHE = "doorstep-portal-shell-" + VERSION;
var PAGE_CACHE = "doorstep-portal-pages-" + VERSION;
var LAST_PAGE = "/portal/__last__";
var SHELL = [
  "/static/vendor/tabler/tabler.min.css",
  "/static/vendor/tabler/tabler.min.js",
  "/static/vendor/tabler-icons/tabler-icons.min.css",
  "/static/vendor/tabler-icons/fonts/tabler-icons.woff2",
  "/static/vendor/htmx/htmx.min.js",
  "/static/vendor/canvas-confetti/confetti.browser.js",
  "/static/css/doorstep.css",
  "/static/css/transactions.css",
  "/static/js/doorstep.js",
  "/static/js/live.js",
  "/static/js/notifications.js",
  "/static/js/transactions.js",
  "/static/js/portal.js",
  "/static/portal/manifest.webmanifest",
  "/static/portal/icon-192.png",
  "/static/portal/icon-512.png"
];

self.addEventListener("install", function (event) {
  event.waitUntil(
    caches.open(SHELL_CACHE).then(function (cache) { return cache.addAll(SHELL); }).then(function () {
      return self.skipWaiting();
    })
  );
});

self.addEventListener("activate", function (event) {
  event.waitUntil(
    caches.keys().then(function (keys) {
      return Promise.all(keys.filter(function (key) {
        return key.indexOf("doorstep-portal") === 0 && key !== SHELL_CACHE && key !== PAGE_CACHE;
      }).map(function (key) { return caches.delete(key); }));
    }).then(function () { return self.clients.claim(); })
  );
});

function isPortalPage(url) {
  return url.origin === self.location.origin && /^\/portal(\/\d+)?\/?$/.test(url.pathname);
}

// A page worth keeping: the portal itself, not a redirect to the sign-in page or an error.
function keepable(response) {
  return response && response.ok && !response.redirected && response.type === "basic";
}

function keep(path, response) {
  return caches.open(PAGE_CACHE).then(function (cache) {
    return Promise.all([cache.put(path, response.clone()), cache.put(LAST_PAGE, response.clone())]);
  });
}

function fromCache(path) {
  return caches.open(PAGE_CACHE).then(function (cache) {
    return cache.match(path).then(function (hit) { return hit || cache.match(LAST_PAGE); });
  });
}

function offlinePage() {
  var html = "<!doctype html><meta charset=utf-8><meta name=viewport content='width=device-width,initial-scale=1'>" +
    "<title>Offline</title><body style='background:#0c0c11;color:#e6e8ee;font:16px system-ui;padding:2rem'>" +
    "<h1>You are offline</h1><p>Open the portal once while online and it stays readable here.</p></body>";
  return new Response(html, { status: 503, headers: { "Content-Type": "text/html; charset=utf-8" } });
}

self.addEventListener("fetch", function (event) {
  var request = event.request;
  if (request.method !== "GET") return;
  var url = new URL(request.url);
  if (url.origin !== self.location.origin) return;

  if (request.mode === "navigate" && isPortalPage(url)) {
    event.respondWith(
      fetch(request).then(function (response) {
        if (keepable(response)) {
          var path = new URL(response.url).pathname;
          event.waitUntil(keep(path, response.clone()));
        }
        return response;
      }).catch(function () {
        return fromCache(url.pathname).then(function (hit) { return hit || offlinePage(); });
      })
    );
    return;
  }

  if (url.pathname.indexOf("/static/") === 0) {
    event.respondWith(
      caches.match(request, { ignoreSearch: true }).then(function (hit) {
        var network = fetch(request).then(function (response) {
          if (response.ok) {
            var copy = response.clone();
            caches.open(SHELL_CACHE).then(function (cache) { cache.put(url.pathname, copy); });
          }
          return response;
        });
        if (hit) {
          event.waitUntil(network.catch(function () { /* offline: the cached copy serves */ }));
          return hit;
        }
        return network;
      })
    );
  }
});

// The page asks to keep its current state (after live updates changed what it shows).
self.addEventListener("message", function (event) {
  var data = event.data || {};
  var port = event.ports && event.ports[0];
  if (data.type !== "cache-page" || typeof data.url !== "string") return;
  var url = new URL(data.url, self.location.origin);
  if (!isPortalPage(url)) return;
  event.waitUntil(
    fetch(url.pathname, { credentials: "same-origin", redirect: "follow" }).then(function (response) {
      if (!keepable(response)) throw new Error("not a portal page");
      return keep(url.pathname, response);
    }).then(function () {
      if (port) port.postMessage({ cached: true });
    }).catch(function (err) {
      if (port) port.postMessage({ cached: false, error: String(err) });
    })
  );
});
