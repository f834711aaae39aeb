// Sending a video file over tus (resumable, retrying, pausable), its attachments, and the words
// for a video's processing status. Used by screens/record.jsx and screens/feed.jsx (My videos).
import { ApiError, api, url } from "../api.js";

/** The CSRF header every cookie-authenticated change needs (tus requests bypass api()). */
export function csrfHeader() {
  const entry = document.cookie.split("; ").find((c) => c.startsWith("fieldcast_csrf="));
  return entry ? { "X-CSRF-Token": decodeURIComponent(entry.slice("fieldcast_csrf=".length)) } : {};
}

/** GET /upload-policy, once per page load (it only changes with the server's configuration). */
let policyPromise = null;
export function uploadPolicy() {
  if (!policyPromise) {
    policyPromise = api("/upload-policy").catch((error) => {
      policyPromise = null;
      throw error;
    });
  }
  return policyPromise;
}

/** The tus endpoint on this page's origin: the CSP allows only 'self', and the policy's
 * absolute URL names PUBLIC_BASE_URL, which may be another spelling of the same host. */
export function tusEndpoint(policy) {
  const given = new URL((policy && policy.tus && policy.tus.endpoint) || "/api/v1/uploads", location.origin);
  return location.origin + given.pathname;
}

/** "1.4 GB" from bytes. */
export function bytes(size) {
  if (!Number.isFinite(size)) return "";
  const units = ["bytes", "KB", "MB", "GB"];
  let value = size;
  let unit = 0;
  // Binary units, as phones and file managers count (2147483648 bytes is "2 GB").
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  const shown = unit === 0 || Number.isInteger(value) ? String(value) : value.toFixed(value < 10 ? 1 : 0);
  return `${shown} ${units[unit]}`;
}

/** Whether the policy's containers take this file (by MIME type, else by extension). */
export function acceptsFile(policy, file) {
  if (!policy || !policy.containers) return true;
  const type = (file.type || "").split(";")[0].toLowerCase();
  const extension = (file.name.split(".").pop() || "").toLowerCase();
  return policy.containers.some(
    (container) => (type && container.mime_types.includes(type)) || container.extensions.includes(extension),
  );
}

// The upload URL is a capability (anyone holding it may add bytes for 24 h), so it is kept in
// sessionStorage rather than tus-js-client's default localStorage: it survives a reload and a
// dropped network in this tab, and goes when the tab closes.
const PREFIX = "fieldcast-tus::";
class SessionUrlStorage {
  _entries(prefix) {
    const found = [];
    for (let i = 0; i < sessionStorage.length; i += 1) {
      const key = sessionStorage.key(i);
      if (!key || !key.startsWith(prefix)) continue;
      try {
        found.push({ ...JSON.parse(sessionStorage.getItem(key)), urlStorageKey: key });
      } catch {
        sessionStorage.removeItem(key);
      }
    }
    return found;
  }
  findAllUploads() {
    return Promise.resolve(this._entries(PREFIX));
  }
  findUploadsByFingerprint(fingerprint) {
    return Promise.resolve(this._entries(`${PREFIX}${fingerprint}::`));
  }
  removeUpload(key) {
    sessionStorage.removeItem(key);
    return Promise.resolve();
  }
  addUpload(fingerprint, upload) {
    const key = `${PREFIX}${fingerprint}::${crypto.randomUUID()}`;
    sessionStorage.setItem(key, JSON.stringify(upload));
    return Promise.resolve(key);
  }
}

/** What identifies a picked file across a reload (the same file picked again matches). */
export function fileKey(file) {
  return [file.name, file.type, file.size, file.lastModified].join("|");
}

// Drafts whose file has not finished sending, by file: picking the same file again after a reload
// re-uses the draft (and tus resumes its upload) instead of making a second video.
const DRAFTS = "fieldcast-drafts";
function drafts() {
  try {
    return JSON.parse(sessionStorage.getItem(DRAFTS)) || {};
  } catch {
    return {};
  }
}
export function rememberDraft(file, videoId, title) {
  const all = drafts();
  all[fileKey(file)] = { videoId, title, name: file.name, at: Date.now() };
  sessionStorage.setItem(DRAFTS, JSON.stringify(all));
}
export function forgetDraft(file) {
  const all = drafts();
  delete all[fileKey(file)];
  sessionStorage.setItem(DRAFTS, JSON.stringify(all));
}
export function findDraft(file) {
  return drafts()[fileKey(file)] || null;
}
/** Unfinished uploads of this tab, newest first: [{videoId, title, name}]. */
export function pendingDrafts() {
  return Object.values(drafts()).sort((a, b) => b.at - a.at);
}

/** { status, code, message } from a tus-js-client error (its response is problem+json). */
export function tusProblem(error) {
  const response = error && error.originalResponse;
  const status = response ? response.getStatus() : 0;
  let body = {};
  try {
    body = JSON.parse(response.getBody() || "{}") || {};
  } catch {
    body = {};
  }
  return { status, code: body.code || (status ? `http_${status}` : "network_error"), detail: body.detail || "" };
}

/** A sentence a person can act on for an upload that stopped for good. */
export function uploadMessage(problem, policy) {
  const limit = policy ? bytes(policy.max_bytes) : "the limit";
  switch (problem.code) {
    case "storage_quota_exceeded":
      return "Your organisation's video storage is full. An admin has to free room before anyone can upload; keep this video on your device until then.";
    case "upload_too_large":
      return `This file is larger than the ${limit} Fieldcast accepts. Trim it or record a shorter video.`;
    case "not_a_video":
      return "This file is not a video Fieldcast can read. Choose an MP4, MOV or WebM video.";
    case "audio_only":
      return "This file has sound but no picture. Choose a video.";
    case "empty_file":
      return "This file is empty. Choose another one.";
    case "upload_expired":
      return "This upload waited too long and expired. Choose the file again to start over.";
    case "not_found":
      return "This video was deleted, so the upload stopped.";
    case "network_error":
      return "The connection dropped and the upload could not continue. Press Resume to try again.";
    default:
      if (problem.status === 413) return `This file is larger than the ${limit} Fieldcast accepts.`;
      if (problem.status === 415) return "This kind of file is not supported. Choose an MP4, MOV or WebM video.";
      return problem.detail || `The upload stopped (HTTP ${problem.status}). Press Resume to try again.`;
  }
}

// Backing off for about five minutes in all: a phone between cell towers comes back on its own.
const RETRY_DELAYS = [0, 1000, 3000, 5000, 10000, 15000, 20000, 30000, 30000, 60000, 60000, 60000];

/**
 * Start sending `file` to the draft `videoId`. Resumes an upload this tab started before (same
 * file, same draft). Callbacks: onProgress(sent, total), onSuccess(), onError(problem),
 * onRetry(problem) while it backs off. Returns { pause(), resume(), restart() }.
 */
export async function startUpload({ file, videoId, policy, onProgress, onSuccess, onError, onRetry }) {
  const tus = await import("tus-js-client");
  const options = {
    endpoint: tusEndpoint(policy),
    chunkSize: (policy && policy.recommended_chunk_bytes) || 8 * 1024 * 1024,
    retryDelays: RETRY_DELAYS,
    metadata: { video_id: videoId, filename: file.name, filetype: file.type || "application/octet-stream" },
    // Read the cookie on every request: the session may have slid (new cookies) meanwhile.
    onBeforeRequest: (request) => {
      for (const [name, value] of Object.entries(csrfHeader())) request.setHeader(name, value);
    },
    fingerprint: (f) => Promise.resolve(["fieldcast", videoId, fileKey(f)].join("/")),
    urlStorage: new SessionUrlStorage(),
    storeFingerprintForResuming: true,
    removeFingerprintOnSuccess: true,
    onProgress: (sent, total) => onProgress && onProgress(sent, total),
    onShouldRetry: (error) => {
      const problem = tusProblem(error);
      // Offline, 5xx, a lost connection, and tus's own "try again" codes (409 offset mismatch,
      // 423 locked by a concurrent PATCH) are worth retrying; any other 4xx will not change.
      const retry = problem.status === 0 || problem.status >= 500 || problem.status === 409 || problem.status === 423;
      if (retry && onRetry) onRetry(problem);
      return retry;
    },
    onSuccess: () => onSuccess && onSuccess(),
    onError: (error) => onError && onError(tusProblem(error)),
  };
  const upload = new tus.Upload(file, options);
  const previous = await upload.findPreviousUploads();
  if (previous.length) upload.resumeFromPreviousUpload(previous[0]);
  upload.start();
  return {
    pause: () => upload.abort(false),
    resume: () => upload.start(),
    // Skip the rest of a back-off wait (the network just came back).
    restart: async () => {
      await upload.abort(false);
      upload.start();
    },
  };
}

/** POST a file attachment (multipart: api() speaks JSON only). */
export async function postAttachmentFile(videoId, file, title) {
  const form = new FormData();
  form.append("file", file, file.name);
  if (title) form.append("title", title);
  let response;
  try {
    response = await fetch(url(`/videos/${videoId}/attachments/files`), {
      method: "POST",
      body: form,
      credentials: "same-origin",
      headers: { Accept: "application/json, application/problem+json", "Idempotency-Key": crypto.randomUUID(), ...csrfHeader() },
    });
  } catch {
    throw new ApiError(0, { detail: "The network is unreachable. Check the connection and try again." });
  }
  const data = await response.json().catch(() => null);
  if (!response.ok) {
    if (data && data.code === "storage_quota_exceeded") {
      throw new ApiError(response.status, { ...data, detail: "Your organisation's storage is full: an admin has to free room first." });
    }
    throw new ApiError(response.status, data);
  }
  return data;
}

/** A video's status as words and a pill class. */
export const STATUS = {
  awaiting_upload: { label: "Waiting for the file", pill: "pill-warn" },
  uploading: { label: "Uploading", pill: "" },
  processing: { label: "Processing", pill: "" },
  playable: { label: "Playable", pill: "pill-ok" },
  ready: { label: "Ready", pill: "pill-ok" },
  failed: { label: "Failed", pill: "pill-danger" },
};

export function StatusPill({ status, progress }) {
  const known = STATUS[status] || { label: status, pill: "" };
  const percent = status === "processing" && progress ? ` ${progress}%` : "";
  return <span class={`pill ${known.pill}`}>{known.label + percent}</span>;
}
