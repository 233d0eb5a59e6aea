// The inbox's service worker: shows each Web Push from notify as a system
// notification, and opens its primary action when clicked.
//
// notify encrypts one JSON object per push (aes128gcm; the browser decrypts it
// before this runs), documented in the README's Channels section:
//   { id, notificationId, title, body, severity, category, url,
//     actions: [{ id, label, url }], image, tags, createdAtMs }
// `url` is the primary action's url ("" for none). Everything is shown as text
// (system notifications render no markup), and a url opens only when it is
// http(s) or a relative path on this origin, whatever arrived.

/** A url safe to open from a click: http(s) or relative, resolved on this origin. */
function safeUrl(raw) {
  if (typeof raw !== "string" || raw === "") return null;
  try {
    const url = new URL(raw, self.location.origin);
    return url.protocol === "https:" || url.protocol === "http:" ? url.href : null;
  } catch {
    return null;
  }
}

self.addEventListener("install", () => self.skipWaiting());
self.addEventListener("activate", (event) => event.waitUntil(self.clients.claim()));

self.addEventListener("push", (event) => {
  let message = {};
  try {
    message = event.data ? event.data.json() : {};
  } catch {
    message = { title: event.data ? event.data.text() : "" };
  }
  const title = String(message.title || "New notification");
  const actions = Array.isArray(message.actions) ? message.actions : [];
  const max = self.Notification?.maxActions ?? 2;
  const options = {
    body: String(message.body || ""),
    tag: String(message.id || ""), // a repeated push replaces, never stacks
    data: {
      url: safeUrl(message.url),
      actions: Object.fromEntries(actions.map((a) => [String(a.id), safeUrl(a.url)])),
    },
    actions: actions.slice(0, max).map((a) => ({ action: String(a.id), title: String(a.label) })),
    requireInteraction: message.severity === "error",
  };
  if (message.image) options.image = safeUrl(message.image) ?? undefined;
  event.waitUntil(self.registration.showNotification(title, options));
});

self.addEventListener("notificationclick", (event) => {
  event.notification.close();
  const data = event.notification.data || {};
  const target = (event.action && data.actions?.[event.action]) || data.url;
  if (!target) return;
  event.waitUntil(self.clients.openWindow(target));
});
