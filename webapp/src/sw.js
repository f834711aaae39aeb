// The service worker: the app's shell opens offline; pushes become notifications that open
// their link in the app. API answers are never cached (they are per person).
const SHELL_CACHE = "fieldcast-shell-v1";

self.addEventListener("install", (event) => {
  event.waitUntil(caches.open(SHELL_CACHE).then((cache) => cache.add("/app/")).then(() => self.skipWaiting()));
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
          const copy = response.clone();
          if (response.ok) caches.open(SHELL_CACHE).then((cache) => cache.put("/app/", copy));
          return response;
        })
        .catch(() => caches.match("/app/")),
    );
    return;
  }
  if (url.pathname.startsWith("/app/assets/")) {
    // Versioned by their query or name: a kept copy is the right copy.
    event.respondWith(
      caches.match(request).then(
        (kept) =>
          kept ||
          fetch(request).then((response) => {
            const copy = response.clone();
            if (response.ok) caches.open(SHELL_CACHE).then((cache) => cache.put(request, copy));
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
        return open ? open.navigate(target).then((client) => client && client.focus()) : self.clients.openWindow(target);
      }),
    ]),
  );
});
