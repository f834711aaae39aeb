// Web push: this browser as a device of the signed-in person. Pushes travel through FCM like
// the phones' (the server sends a `webpush` part): Firebase's SDK subscribes this browser with
// the deployment's VAPID key and the app's own service worker, and hands back an FCM token,
// registered with POST /devices as platform "web". The SDK is loaded only when turned on.
import { api } from "./api.js";

const DEVICE_KEY = "fieldcast:push-device";
const SUBSCRIBE_TIMEOUT_MS = 12000;

/** "unsupported" (no Push API here), "unavailable" (the deployment sends no web pushes),
 * "denied" (the person blocked notifications), "on" or "off". */
export async function pushState() {
  if (!("serviceWorker" in navigator) || !("PushManager" in window) || !("Notification" in window)) {
    return "unsupported";
  }
  const config = await api("/devices/web-push");
  if (!config.available) return "unavailable";
  if (Notification.permission === "denied") return "denied";
  return keptDevice() && Notification.permission === "granted" ? "on" : "off";
}

export class PushError extends Error {}

/** Ask for permission, get an FCM token for this browser and register it. */
/** The device this browser registered, and for whom: { id, user } or null. */
function kept() {
  try {
    const value = JSON.parse(localStorage.getItem(DEVICE_KEY) || "null");
    return value && value.id ? value : null;
  } catch {
    return null;
  }
}

function keptDevice() {
  const value = kept();
  return value && value.user === currentUser ? value.id : null;
}

let currentUser = null;

/** Called with the signed-in person's id (or null): a browser that pushed to someone else
 * stops doing so — its FCM token is deleted, so the next person registers their own. */
export async function pushBelongsTo(userId) {
  currentUser = userId;
  const value = kept();
  if (!value || value.user === userId) return;
  localStorage.removeItem(DEVICE_KEY);
  try {
    const { getApps } = await import("firebase/app");
    const { deleteToken, getMessaging } = await import("firebase/messaging");
    const app = getApps().find((candidate) => candidate.name === "fieldcast");
    if (app) await deleteToken(getMessaging(app));
  } catch {
    // Nothing subscribed here any more.
  }
  const registration = await navigator.serviceWorker?.getRegistration("/app/");
  const subscription = await registration?.pushManager?.getSubscription();
  await subscription?.unsubscribe().catch(() => {});
}

export async function turnOnPush() {
  const owner = currentUser;
  const config = await api("/devices/web-push");
  if (!config.available) throw new PushError("This Fieldcast does not send notifications to browsers.");
  const permission = await Notification.requestPermission();
  if (permission !== "granted") throw new PushError("Notifications are blocked for this site in the browser's settings.");
  const registration = await navigator.serviceWorker.register("/app/sw.js", { scope: "/app/" });
  await navigator.serviceWorker.ready;
  const [{ initializeApp }, { getMessaging, getToken }] = await Promise.all([
    import("firebase/app"),
    import("firebase/messaging"),
  ]);
  let token;
  try {
    const app = initializeApp(config.firebase, "fieldcast");
    // A push service out of reach can leave the subscription waiting for minutes.
    const timeout = new Promise((_, reject) =>
      setTimeout(() => reject(Object.assign(new Error("timed out"), { code: "timeout" })), SUBSCRIBE_TIMEOUT_MS),
    );
    token = await Promise.race([
      getToken(getMessaging(app), { vapidKey: config.vapid_key, serviceWorkerRegistration: registration }),
      timeout,
    ]);
  } catch (error) {
    throw new PushError(`The browser's push service could not be reached (${error.code || error.name}). Try again later.`);
  }
  const device = await api("/devices", {
    method: "POST",
    body: { token, platform: "web", locale: navigator.language, app_version: "web" },
  });
  localStorage.setItem(DEVICE_KEY, JSON.stringify({ id: device.id, user: owner }));
  return device;
}

export async function turnOffPush() {
  const id = keptDevice();
  localStorage.removeItem(DEVICE_KEY);
  if (id) await api(`/devices/${id}`, { method: "DELETE" }).catch(() => {});
}

/** The device to unregister at sign-out (DELETE /auth/session?device_id=). */
export function pushDeviceId() {
  return keptDevice();
}

export function forgetPushDevice() {
  localStorage.removeItem(DEVICE_KEY);
}
