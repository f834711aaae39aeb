// The player's plumbing, apart from the screen: which way to play the signed HLS (native or
// hls.js, the offline MP4 as the last resort), the storyboard's WebVTT, and the view reports
// the API counts "watched" and learning progress from (docs/mobile.md "Viewing progress").
import { api, url } from "../api.js";

/** A little event hub around the <video>: components read the time without re-rendering the whole screen. */
export function createController() {
  const listeners = new Set();
  const controller = {
    el: null,
    pendingSeekMs: null,
    on(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    emit(type) {
      listeners.forEach((listener) => listener(type));
    },
    timeMs() {
      const el = controller.el;
      if (!el) return controller.pendingSeekMs || 0;
      if (controller.pendingSeekMs !== null) return controller.pendingSeekMs;
      return Math.round(el.currentTime * 1000);
    },
    durationMs() {
      const el = controller.el;
      return el && Number.isFinite(el.duration) ? Math.round(el.duration * 1000) : 0;
    },
    /** Seek to `ms`; before the media knows its length the seek waits for loadedmetadata. */
    seek(ms, { play = false } = {}) {
      const el = controller.el;
      const target = Math.max(0, Math.round(ms));
      if (!el || el.readyState < 1) {
        controller.pendingSeekMs = target;
      } else {
        controller.pendingSeekMs = null;
        el.currentTime = target / 1000;
      }
      controller.emit("seekrequest");
      if (play && el) el.play().catch(() => {});
    },
    pause() {
      if (controller.el && !controller.el.paused) controller.el.pause();
    },
    paused() {
      return !controller.el || controller.el.paused;
    },
  };
  return controller;
}

// ---- Choosing how to play ----

/**
 * Attach the video's playback to `el` at `startMs`. Where the browser plays HLS itself (Safari,
 * Chrome on Android, Chromium since it has its own HLS player) it does: nothing more to fetch
 * and run before the first frame on a phone. Where it does not, or where its own HLS turns out
 * unable to play this stream, hls.js does (over Media Source), and tells us *why* a fetch
 * failed (403 link_expired: refresh the grant). Where neither works, the progressive MP4 plays
 * (it exists from `playable` on). Returns { mode, destroy }.
 */
export async function attachPlayback(el, playback, options) {
  delete el.dataset.fallback;
  const native = el.canPlayType("application/vnd.apple.mpegurl");
  const hasMse = typeof window.MediaSource !== "undefined" || typeof window.ManagedMediaSource !== "undefined";
  // Once the browser's own player failed on this element, a re-attach (fresh URLs) skips it.
  if (playback.hls_url && native && !(hasMse && el.dataset.nativeHls === "failed")) {
    const attached = useSrc(el, playback.hls_url, "native-hls", options.startMs);
    return hasMse ? withHlsJsBehind(el, playback, options, attached) : attached;
  }
  return attachWithoutNativeHls(el, playback, options, hasMse);
}

/** hls.js over Media Source where there is one, else the progressive MP4; null when neither. */
async function attachWithoutNativeHls(el, playback, options, hasMse) {
  if (playback.hls_url && hasMse) {
    const attached = await attachHlsJs(el, playback, options);
    if (attached) return attached;
  }
  if (playback.mp4_url) return useSrc(el, playback.mp4_url, "mp4", options.startMs);
  return null;
}

function useSrc(el, src, mode, startMs = 0) {
  const startAt = () => {
    if (startMs > 0) {
      try {
        el.currentTime = startMs / 1000;
      } catch {
        /* not seekable yet: loadedmetadata will place it */
      }
    }
  };
  el.src = src;
  el.addEventListener("loadedmetadata", startAt, { once: true });
  el.load();
  return { mode, destroy: () => el.removeEventListener("loadedmetadata", startAt) };
}

// The browser's own HLS said "maybe": if it cannot decode or parse this stream after all, hls.js
// takes over from the same moment, before the screen hears of the error (the listener captures,
// so it runs before the screen's own, whenever that was added). A network error is the
// screen's: near the grant's end it reads the video again for fresh URLs.
function withHlsJsBehind(el, playback, options, attached) {
  let replacement = null;
  let destroyed = false;
  const unsupported = (event) => {
    const code = el.error && el.error.code;
    if (code !== 3 && code !== 4) return; // MEDIA_ERR_DECODE, MEDIA_ERR_SRC_NOT_SUPPORTED
    event.stopImmediatePropagation();
    el.removeEventListener("error", unsupported, true);
    el.dataset.nativeHls = "failed";
    const at = Math.round((el.currentTime || 0) * 1000) || options.startMs || 0;
    attached.destroy();
    el.removeAttribute("src");
    attachWithoutNativeHls(el, playback, { ...options, startMs: at }, true).then((next) => {
      if (destroyed) next && next.destroy();
      else if (!next) options.onFatal && options.onFatal({ fatal: true, type: "unsupported" });
      else {
        replacement = next;
        options.onMode && options.onMode(next.mode);
      }
    });
  };
  el.addEventListener("error", unsupported, true);
  return {
    mode: "native-hls",
    destroy: () => {
      destroyed = true;
      el.removeEventListener("error", unsupported, true);
      attached.destroy();
      if (replacement) replacement.destroy();
    },
  };
}

async function attachHlsJs(el, playback, { startMs = 0, onExpired, onFatal }) {
  const { default: Hls } = await import("hls.js/dist/hls.light.mjs"); // no subtitles, alternate audio or DRM: not used here
  if (!Hls.isSupported()) return null;
  const hls = new Hls({
    enableWorker: true,
    startPosition: startMs / 1000,
    capLevelToPlayerSize: true,
    // Captions come from `captions_url` as our own <track>: hls.js's copy of the playlist's
    // subtitles rendition would show them twice (and its placeholder data: track breaks the CSP).
    enableWebVTT: false,
    enableIMSC1: false,
    enableCEA708Captions: false,
    subtitleDisplay: false,
  });
  let recoveries = 0;
  hls.on(Hls.Events.ERROR, (_event, data) => {
    const status = data.response && data.response.code;
    if (status === 403) {
      // The grant expired or was revoked: the screen reads the video again for new URLs.
      hls.stopLoad();
      onExpired && onExpired();
      return;
    }
    if (!data.fatal) return;
    if (data.type === Hls.ErrorTypes.MEDIA_ERROR && recoveries < 2) {
      recoveries += 1;
      hls.recoverMediaError();
    } else if (data.type === Hls.ErrorTypes.NETWORK_ERROR && recoveries < 3) {
      recoveries += 1;
      setTimeout(() => hls.startLoad(), 1000 * recoveries);
    } else if (playback.mp4_url && !el.dataset.fallback) {
      // HLS cannot go on here: the progressive MP4 plays the same video from the same moment.
      const at = el.currentTime;
      hls.destroy();
      el.dataset.fallback = "mp4";
      el.src = playback.mp4_url;
      el.addEventListener("loadedmetadata", () => (el.currentTime = at), { once: true });
      el.load();
    } else {
      onFatal && onFatal(data);
    }
  });
  hls.loadSource(playback.hls_url);
  hls.attachMedia(el);
  return {
    mode: "hls.js",
    destroy: () => {
      if (!el.dataset.fallback) hls.destroy();
    },
  };
}

/** Whether this browser decodes HEVC (an HEVC source plays before `playable` where it does). */
export function canPlayHevc() {
  const probe = document.createElement("video");
  const type = 'video/mp4; codecs="hvc1.1.6.L93.B0"';
  return Boolean(probe.canPlayType(type)) || Boolean(window.MediaSource && window.MediaSource.isTypeSupported(type));
}

// ---- Storyboard: a WebVTT whose cues are `sprite.jpg#xywh=x,y,w,h` ----

function vttTime(text) {
  const parts = text.trim().split(":").map(Number);
  while (parts.length < 3) parts.unshift(0);
  return Math.round(((parts[0] * 60 + parts[1]) * 60 + parts[2]) * 1000);
}

export function parseStoryboard(text, baseUrl) {
  const cues = [];
  for (const block of text.replace(/\r/g, "").split(/\n\n+/)) {
    const lines = block.split("\n").filter(Boolean);
    const timing = lines.findIndex((line) => line.includes("-->"));
    if (timing < 0 || !lines[timing + 1]) continue;
    const [from, to] = lines[timing].split("-->").map((part) => part.trim().split(/\s+/)[0]);
    const target = new URL(lines[timing + 1].trim(), baseUrl);
    const match = /xywh=(\d+),(\d+),(\d+),(\d+)/.exec(target.hash);
    target.hash = "";
    if (!match) continue;
    const [x, y, w, h] = match.slice(1).map(Number);
    cues.push({ start: vttTime(from), end: vttTime(to), src: target.toString(), x, y, w, h });
  }
  return cues;
}

export function cueAt(cues, ms) {
  if (!cues || !cues.length) return null;
  let low = 0;
  let high = cues.length - 1;
  while (low < high) {
    const mid = (low + high + 1) >> 1;
    if (cues[mid].start <= ms) low = mid;
    else high = mid - 1;
  }
  return cues[low];
}

// ---- View reports ----

function csrfFromCookie() {
  const entry = document.cookie.split("; ").find((c) => c.startsWith("fieldcast_csrf="));
  return entry ? decodeURIComponent(entry.slice("fieldcast_csrf=".length)) : null;
}

function mergeSegments(segments) {
  const sorted = segments.filter(([a, b]) => b > a).sort((p, q) => p[0] - q[0]);
  const out = [];
  for (const [a, b] of sorted) {
    const last = out[out.length - 1];
    if (last && a <= last[1] + 250) last[1] = Math.max(last[1], b);
    else out.push([a, b]);
  }
  return out;
}

/**
 * One view (one sitting) of the video or of a clip of it. Started on the first real playback,
 * then reported every 10 s of play and at pause, seek and the end: what was played (segments),
 * the position and the events. Watched / completion are decided by the server from these.
 */
export function createViewReporter(videoId, clip) {
  const sessionId = crypto.randomUUID();
  const deviceStartedAt = new Date().toISOString();
  let viewId = null;
  let starting = null;
  let disabled = false;
  let seq = 0;
  let pending = null; // a report that failed: sent again as it was (same seq, same events)
  let segments = [];
  let open = null; // the segment being played: [from, to]
  let events = [];
  let lastPosition = 0;

  const start = () => {
    if (viewId || disabled) return Promise.resolve(viewId);
    if (!starting) {
      const body = { session_id: sessionId, device_started_at: deviceStartedAt };
      if (clip) Object.assign(body, { start_ms: clip.start, end_ms: clip.end });
      starting = api(`/videos/${videoId}/views`, { method: "POST", body, idempotent: true })
        .then((view) => (viewId = view.id))
        .catch((error) => {
          starting = null;
          // Still processing (409) or too many views today (429): nothing to count against.
          if (error.status === 409 || error.status === 429 || error.status === 404) disabled = true;
          return null;
        });
    }
    return starting;
  };

  const closeOpen = () => {
    if (open && open[1] > open[0]) segments.push([open[0], open[1]]);
    open = null;
  };

  const build = (positionMs) => {
    const sent = mergeSegments([...segments, ...(open && open[1] > open[0] ? [[open[0], open[1]]] : [])]).slice(-200);
    if (!sent.length && !events.length) return null;
    seq += 1;
    const body = { seq, segments: sent, position_ms: positionMs, events: events.slice(-200), device_at: new Date().toISOString() };
    segments = [];
    if (open) open = [open[1], open[1]];
    events = [];
    return body;
  };

  const reporter = {
    /** A timeupdate while playing: extend the played segment (a jump starts a new one). */
    played(ms) {
      lastPosition = ms;
      if (open && ms >= open[1] && ms - open[1] < 1500) open[1] = ms;
      else {
        closeOpen();
        open = [ms, ms];
      }
    },
    event(kind, ms) {
      lastPosition = ms;
      // Pausing (or ending) plays up to where it stopped, past the last timeupdate.
      if ((kind === "pause" || kind === "complete") && open && ms >= open[1] && ms - open[1] < 1500) open[1] = ms;
      if (kind === "seek" || kind === "pause" || kind === "complete") closeOpen();
      events.push({ kind, position_ms: Math.max(0, Math.round(ms)), device_at: new Date().toISOString() });
      if (kind === "play") start();
    },
    async flush() {
      if (disabled) return;
      const id = await start();
      if (!id) return;
      const body = pending || build(lastPosition);
      if (!body) return;
      pending = body;
      try {
        const result = await api(`/views/${id}/reports`, { method: "POST", body });
        pending = null;
        return result;
      } catch (error) {
        if (error.status === 404 || error.status === 422) pending = null;
        return null;
      }
    },
    /** The page is going away: send what is left with keepalive (fetch outlives the page). */
    flushOnExit() {
      if (!viewId || disabled) return;
      const body = pending || build(lastPosition);
      if (!body) return;
      const token = csrfFromCookie();
      fetch(url(`/views/${viewId}/reports`), {
        method: "POST",
        keepalive: true,
        credentials: "same-origin",
        headers: { "Content-Type": "application/json", ...(token ? { "X-CSRF-Token": token } : {}) },
        body: JSON.stringify(body),
      }).catch(() => {});
      pending = null;
    },
  };
  return reporter;
}
