// The service worker: the app's shell opens offline; pushes become notifications that open
// their link in the app. API answers are never cached (they are per person).
//
// Each build has a cache of its own (BUILD is the build's digest, set by build.mjs): a new
// build is a new worker, which takes the new shell and its assets and drops the old cache.
/* global BUILD */
const SHELL_CACHE = `fieldcast-${BUILD}`;

/** The shell and every asset it names (entry files with their ?v= digests, preloaded chunks). */
async function keepShell(cache) {
  const response = await fetch("/app/", { cache: "no-cache" });
  if (!response.ok || !(response.headers.get("Content-Type") || "").startsWith("text/html")) return;
  const html = await response.clone().text();
  const assets = [...html.matchAll(/(?:src|href)="(\/app\/[^"]+)"/g)].map((found) => found[1].replace(/&amp;/g, "&"));
  await cache.put("/app/", response);
  await cache.addAll(assets);
}

self.addEventListener("install", (event) => {
  event.waitUntil(caches.open(SHELL_CACHE).then(keepShell).then(() => self.skipWaiting()));
});

self.addEventListener("activate", (event) => {
  event.waitUntil(
    caches.keys()
      .then((names) => Promise.all(names.filter((name) => name !== SHELL_CACHE).map((name) => caches.delete(name))))
      .then(() => self.clients.claim()),
  );
});

self.addEventListener("fetch", (event) => {
  const request = event.request;
  const url = new URL(request.url);
  if (request.method !== "GET" || url.origin !== location.origin || !url.pathname.startsWith("/app")) return;
  if (request.mode === "navigate") {
    // The network first (the shell names the current assets), the kept shell when offline.
    event.respondWith(
      fetch(request)
        .then((response) => {
          const isShell = response.ok && (response.headers.get("Content-Type") || "").startsWith("text/html");
          if (isShell) {
            const copy = response.clone();
            caches.open(SHELL_CACHE).then((cache) => cache.put("/app/", copy));
          }
          return response;
        })
        .catch(() => caches.match("/app/")),
    );
    return;
  }
  if (url.pathname.startsWith("/app/assets/")) {
    // Named by content (chunks) or asked for with their digest (entries): a kept copy is right.
    event.respondWith(
      caches.match(request).then(
        (kept) =>
          kept ||
          fetch(request).then((response) => {
            if (response.ok && (url.pathname.includes("/chunks/") || url.searchParams.has("v"))) {
              const copy = response.clone();
              caches.open(SHELL_CACHE).then((cache) => cache.put(request, copy));
            }
            return response;
          }),
      ),
    );
  }
});

/** The push's own receipt (docs/mobile.md "Receipts"): no session needed, this origin only. */
function receipt(data, state) {
  if (!data.receipt_url || !data.receipt_token || !data.receipt_url.startsWith(`${location.origin}/`)) {
    return Promise.resolve();
  }
  return fetch(data.receipt_url, {
    method: "POST",
    credentials: "omit",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ token: data.receipt_token, receipt: state }),
  }).catch(() => {});
}

// A push as FCM delivers it to a browser: {notification: {title, body, image, tag}, data}.
self.addEventListener("push", (event) => {
  let message = {};
  try {
    message = event.data ? event.data.json() : {};
  } catch {
    message = { notification: { title: "Fieldcast", body: event.data ? event.data.text() : "" } };
  }
  const notification = message.notification || {};
  const data = message.data || {};
  event.waitUntil(
    Promise.all([
      self.registration.showNotification(notification.title || "Fieldcast", {
        body: notification.body || "",
        icon: "/app/icon.svg",
        image: notification.image,
        tag: notification.tag || data.notification_id || undefined,
        data,
      }),
      receipt(data, "delivered"),
    ]),
  );
});

self.addEventListener("notificationclick", (event) => {
  event.notification.close();
  const data = event.notification.data || {};
  // A person's link (APP_LINK_BASE/videos/...): opened in the app, on this origin.
  const link = new URL(data.link || "/app/", location.origin);
  const path = link.pathname.startsWith("/app") ? link.pathname : `/app${link.pathname}`;
  const target = `${location.origin}${path}${link.search}`;
  event.waitUntil(
    Promise.all([
      receipt(data, "opened"),
      self.clients.matchAll({ type: "window" }).then((windows) => {
        const open = windows.find((client) => client.url.startsWith(`${location.origin}/app`));
        if (!open) return self.clients.openWindow(target);
        // The open app routes there itself: a reload would lose a recording or an upload.
        open.postMessage({ type: "open", path: `${path}${link.search}` });
        return open.focus();
      }),
    ]),
  );
});
