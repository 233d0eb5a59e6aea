// "Enable push": registers the service worker (sw.js), asks for permission,
// subscribes with the server's VAPID public key and registers the subscription
// with RegisterPushToken (deviceType BROWSER, the PushSubscription's JSON as
// the token). Re-registering the same subscription is harmless: the server
// keeps one device per subscription.
//
// The VAPID public key comes from the page's `vapid` query parameter (what
// `notifyd vapid-keys --public` prints for NOTIFY_WEBPUSH_VAPID_PRIVATE_KEY):
// without it the button stays hidden.

import { DeviceType, type NotificationClient } from "@notify/web";

export type PushState = "unsupported" | "off" | "denied" | "on" | "error";

/** base64url (unpadded, as `notifyd vapid-keys` prints it) to bytes. */
export function urlBase64ToBytes(text: string): Uint8Array<ArrayBuffer> {
  const base64 = (text + "=".repeat((4 - (text.length % 4)) % 4))
    .replace(/-/g, "+")
    .replace(/_/g, "/");
  const raw = atob(base64);
  const bytes = new Uint8Array(new ArrayBuffer(raw.length));
  for (let i = 0; i < raw.length; i++) bytes[i] = raw.charCodeAt(i);
  return bytes;
}

export function pushSupported(): boolean {
  return "serviceWorker" in navigator && "PushManager" in window && "Notification" in window;
}

/** Subscribes (or reuses the subscription) and registers it; answers the new state. */
export async function enablePush(
  client: NotificationClient,
  vapidKey: string,
): Promise<PushState> {
  if (!pushSupported()) return "unsupported";
  const permission = await Notification.requestPermission();
  if (permission !== "granted") return permission === "denied" ? "denied" : "off";
  const registration = await navigator.serviceWorker.register("sw.js");
  await navigator.serviceWorker.ready;
  const subscription =
    (await registration.pushManager.getSubscription()) ??
    (await registration.pushManager.subscribe({
      userVisibleOnly: true,
      applicationServerKey: urlBase64ToBytes(vapidKey),
    }));
  await client.registerPushToken(
    { deviceType: DeviceType.BROWSER, token: JSON.stringify(subscription.toJSON()) },
    { timeoutMs: 10_000 },
  );
  return "on";
}

/** Wires the button: shown only with a VAPID key; its label says the state. */
export function setupPushButton(
  client: NotificationClient,
  vapidKey: string | null,
  button: HTMLButtonElement,
): void {
  if (!vapidKey || !pushSupported()) return;
  button.hidden = false;
  const show = (state: PushState, detail = "") => {
    button.dataset.state = state;
    button.textContent =
      state === "on" ? "Push on" : state === "denied" ? "Push blocked" : "Enable push";
    button.title = detail;
  };
  show(Notification.permission === "denied" ? "denied" : "off");
  button.addEventListener("click", async () => {
    button.disabled = true;
    try {
      show(await enablePush(client, vapidKey));
    } catch (err) {
      show("error", err instanceof Error ? err.message : String(err));
      console.warn("enable push failed:", err);
    } finally {
      button.disabled = false;
    }
  });
}
