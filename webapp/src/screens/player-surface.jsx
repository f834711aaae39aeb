// The <video> itself: attaching the signed HLS (or MP4), captions, keeping to a clip's range,
// and reporting what was played (views and reports) as it plays.
import { useEffect, useRef, useState } from "preact/hooks";
import { attachPlayback, createViewReporter } from "./player-media.js";

const REPORT_EVERY_MS = 10000;

export function Surface({ video, controller, startMs, clip, mediaVersion, onExpired }) {
  const ref = useRef(null);
  const [mode, setMode] = useState(null);
  const [failed, setFailed] = useState(null);
  const [captions, setCaptions] = useState(false);
  const playbackRef = useRef(video.playback);
  playbackRef.current = video.playback;
  const clipRef = useRef(clip);
  clipRef.current = clip;
  const attachedOnce = useRef(false);
  const lastExpiredAt = useRef(0);

  // Attach (and re-attach with fresh URLs after a refresh, from where it was).
  useEffect(() => {
    const el = ref.current;
    if (!el) return undefined;
    controller.el = el;
    let cancelled = false;
    let handle = null;
    const wasPlaying = attachedOnce.current && !el.paused;
    const from = attachedOnce.current ? controller.timeMs() : startMs || 0;
    if (from) controller.pendingSeekMs = from;
    setFailed(null);
    attachPlayback(el, playbackRef.current, {
      startMs: from,
      onExpired: () => {
        if (Date.now() - lastExpiredAt.current < 30000) return;
        lastExpiredAt.current = Date.now();
        onExpired();
      },
      onFatal: () => setFailed("The video could not be played here. Try again, or download it."),
      onMode: (next) => !cancelled && setMode(next),
    }).then(
      (attached) => {
        if (cancelled) {
          attached && attached.destroy();
          return;
        }
        handle = attached;
        attachedOnce.current = true;
        setMode(attached ? attached.mode : null);
        if (!attached) setFailed("This browser cannot play this video.");
        else if (wasPlaying) el.play().catch(() => {});
      },
      () => !cancelled && setFailed("The player could not be loaded. Check the connection and try again."),
    );
    return () => {
      cancelled = true;
      if (handle) handle.destroy();
    };
  }, [mediaVersion]); // eslint-disable-line react-hooks/exhaustive-deps

  // Events: the time for everyone, the clip's end, and the view reports.
  useEffect(() => {
    const el = ref.current;
    if (!el) return undefined;
    const current = clipRef.current;
    const reporter = createViewReporter(video.id, current ? { start: current.start, end: current.end } : null);
    let previous = controller.timeMs();
    let timer = null;
    let early = null;
    let playAt = null; // where play was pressed: the segment starts there, not at the first frame's report
    const ms = () => Math.round(el.currentTime * 1000);

    const on = {
      loadedmetadata: () => {
        if (controller.pendingSeekMs !== null) {
          const target = controller.pendingSeekMs;
          controller.pendingSeekMs = null;
          if (Math.abs(el.currentTime * 1000 - target) > 200) el.currentTime = target / 1000;
        }
        controller.emit("loadedmetadata");
      },
      durationchange: () => controller.emit("durationchange"),
      timeupdate: () => {
        const now = ms();
        const range = clipRef.current;
        // A clip stops at its end when played across it (seeking past it on purpose is allowed).
        const crossedEnd = range && previous < range.end && now >= range.end && !el.seeking;
        if (!el.paused && !el.seeking) reporter.played(crossedEnd ? range.end : now);
        if (crossedEnd) {
          el.pause();
          el.currentTime = range.end / 1000;
        }
        previous = now;
        controller.emit("timeupdate");
      },
      play: () => {
        const range = clipRef.current;
        if (range && (ms() >= range.end - 250 || ms() < range.start - 1000)) el.currentTime = range.start / 1000;
        playAt = ms();
        reporter.event("play", playAt);
        clearInterval(timer);
        clearTimeout(early);
        timer = setInterval(() => reporter.flush(), REPORT_EVERY_MS);
        // The share turns "watched" after 3 s of real play: tell the server soon after that.
        early = setTimeout(() => reporter.flush(), 3500);
        controller.emit("play");
      },
      // Playback really started (after buffering): the played segment starts here.
      playing: () => {
        const now = ms();
        reporter.played(playAt !== null && now >= playAt && now - playAt < 500 ? playAt : now);
        playAt = null;
      },
      pause: () => {
        clearInterval(timer);
        clearTimeout(early);
        if (!el.ended) {
          reporter.event("pause", ms());
          reporter.flush();
        }
        controller.emit("pause");
      },
      seeking: () => {
        reporter.event("seek", ms());
        previous = ms();
        controller.emit("seeking");
      },
      seeked: () => {
        reporter.flush();
        controller.emit("seeked");
      },
      ended: () => {
        clearInterval(timer);
        reporter.event("complete", ms());
        reporter.flush();
        controller.emit("ended");
      },
      error: () => {
        // Native playback says nothing of why: an expired grant is the likely cause near its end.
        const expires = (playbackRef.current && playbackRef.current.expires_at) || 0;
        if (Date.now() / 1000 > expires - 300 && Date.now() - lastExpiredAt.current > 30000) {
          lastExpiredAt.current = Date.now();
          onExpired();
        } else if (el.error) {
          setFailed("The video could not be played here. Try again, or download it.");
        }
      },
    };
    for (const [type, handler] of Object.entries(on)) el.addEventListener(type, handler);
    const leave = () => reporter.flushOnExit();
    const hidden = () => document.visibilityState === "hidden" && reporter.flush();
    window.addEventListener("pagehide", leave);
    document.addEventListener("visibilitychange", hidden);
    return () => {
      for (const [type, handler] of Object.entries(on)) el.removeEventListener(type, handler);
      window.removeEventListener("pagehide", leave);
      document.removeEventListener("visibilitychange", hidden);
      clearInterval(timer);
      clearTimeout(early);
      if (!el.paused) reporter.event("pause", ms());
      reporter.flush();
    };
  }, [video.id, clip && clip.start, clip && clip.end]); // eslint-disable-line react-hooks/exhaustive-deps

  // Captions: the native menu and our button stay in step through the track's mode.
  useEffect(() => {
    const el = ref.current;
    if (!el || !el.textTracks) return undefined;
    const sync = () => setCaptions(Array.from(el.textTracks).some((track) => track.mode === "showing"));
    el.textTracks.addEventListener("change", sync);
    return () => el.textTracks.removeEventListener("change", sync);
  }, []);

  const toggleCaptions = () => {
    const el = ref.current;
    const next = !captions;
    for (const track of Array.from(el.textTracks)) {
      if (track.kind === "captions" || track.kind === "subtitles") track.mode = next ? "showing" : "hidden";
    }
    setCaptions(next);
  };

  const playback = video.playback || {};
  const portrait = video.height && video.width && video.height > video.width;
  return (
    <div class={portrait ? "pl-stage pl-portrait" : "pl-stage"}>
      <video
        ref={ref}
        class="pl-video"
        aria-label="Video player"
        controls
        playsInline
        preload="metadata"
        poster={playback.poster_url || undefined}
        data-mode={mode || undefined}
      >
        {playback.captions_url && <track kind="captions" src={playback.captions_url} srclang="en" label="Captions" />}
      </video>
      {failed && (
        <div class="error-note" role="alert">
          <p>{failed}</p>
          <div class="row">
            <button type="button" class="button-secondary" onClick={onExpired}>
              Try again
            </button>
            {playback.mp4_url && (
              <a class="button button-secondary" href={playback.mp4_url} download>
                Download the video
              </a>
            )}
          </div>
        </div>
      )}
      {playback.captions_url && (
        <button type="button" class="button-secondary pl-captions" aria-pressed={captions ? "true" : "false"} onClick={toggleCaptions}>
          Captions
        </button>
      )}
    </div>
  );
}
