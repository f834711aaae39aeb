// The one way the app talks to the API: same-origin fetch with the session cookie, the CSRF
// token on every change, problem+json errors as ApiError (switch on `code`).
const BASE = "/api/v1";
let csrfToken = null;
const listeners = new Set();

export class ApiError extends Error {
  constructor(status, problem) {
    const body = problem && typeof problem === "object" ? problem : {};
    super(body.detail || body.title || `HTTP ${status}`);
    this.status = status;
    this.code = body.code || (status === 0 ? "network_error" : `http_${status}`);
    this.problem = body;
  }
}

export function setCsrfToken(token) {
  csrfToken = token;
}

function cookieCsrf() {
  const entry = document.cookie.split("; ").find((c) => c.startsWith("fieldcast_csrf="));
  return entry ? decodeURIComponent(entry.slice("fieldcast_csrf=".length)) : null;
}

/** Called with no arguments when the API says the session has ended (401). */
export function onSignedOut(listener) {
  listeners.add(listener);
  return () => listeners.delete(listener);
}

export function url(path, query) {
  const target = new URL(path.startsWith("http") ? path : BASE + path, location.origin);
  for (const [key, value] of Object.entries(query || {})) {
    if (value === undefined || value === null || value === "") continue;
    for (const item of Array.isArray(value) ? value : [value]) target.searchParams.append(key, item);
  }
  return target.toString();
}

export async function api(path, { method = "GET", body, query, signal, headers = {}, idempotent } = {}) {
  const sent = { Accept: "application/json, application/problem+json", ...headers };
  if (body !== undefined) sent["Content-Type"] = "application/json";
  if (method !== "GET" && method !== "HEAD") {
    const token = csrfToken || cookieCsrf();
    if (token) sent["X-CSRF-Token"] = token;
    if (idempotent) sent["Idempotency-Key"] = crypto.randomUUID();
  }
  let response;
  try {
    response = await fetch(url(path, query), {
      method,
      headers: sent,
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: "same-origin",
      signal,
    });
  } catch (error) {
    if (error.name === "AbortError") throw error;
    throw new ApiError(0, { detail: "The network is unreachable. Check the connection and try again." });
  }
  if (response.status === 204) return null;
  const type = response.headers.get("Content-Type") || "";
  let data;
  try {
    data = type.includes("json") ? await response.json() : await response.text();
  } catch (error) {
    if (error.name === "AbortError") throw error;
    // A body cut off on the way: as unreachable as no answer (a success is never null).
    throw new ApiError(0, { detail: "The answer was cut off. Check the connection and try again." });
  }
  if (!response.ok) {
    if (response.status === 401 && path !== "/auth/session") listeners.forEach((listener) => listener());
    throw new ApiError(response.status, data);
  }
  return data;
}

/** Every page of a cursor-paged list, up to `limit` items. */
export async function all(path, { query = {}, limit = 1000 } = {}) {
  const items = [];
  let cursor = null;
  do {
    const page = await api(path, { query: { ...query, cursor } });
    items.push(...page.items);
    cursor = page.next_cursor;
  } while (cursor && items.length < limit);
  return items.slice(0, limit);
}
