// Under the video: the moments heat strip, comment markers, the clip's range and a seek bar that
// shows the storyboard frame of the time under the finger (dragging) or the mouse (hovering).
import { useEffect, useMemo, useRef, useState } from "preact/hooks";
import { clock } from "../ui.jsx";
import { cueAt } from "./player-media.js";

/** The player's time, re-rendering only the component that asks. */
export function useMediaTime(controller) {
  const [state, setState] = useState(() => ({ time: controller.timeMs(), duration: controller.durationMs(), paused: controller.paused() }));
  useEffect(
    () =>
      controller.on(() =>
        setState((previous) => {
          const next = { time: controller.timeMs(), duration: controller.durationMs(), paused: controller.paused() };
          return previous.time === next.time && previous.duration === next.duration && previous.paused === next.paused ? previous : next;
        }),
      ),
    [controller],
  );
  return state;
}

const pct = (ms, duration) => `${Math.min(100, Math.max(0, (ms / duration) * 100))}%`;

function Preview({ cue, ms, duration, width }) {
  if (!cue && !Number.isFinite(ms)) return null;
  const scale = cue ? Math.min(1, 120 / cue.h, 160 / cue.w) : 1;
  const boxWidth = cue ? cue.w * scale : 56;
  // Keep the preview inside the track.
  const left = Math.min(Math.max(0, (ms / duration) * width - boxWidth / 2), Math.max(0, width - boxWidth));
  return (
    <div class="pl-preview" style={{ left: `${left}px` }} aria-hidden="true">
      {cue && (
        <div
          class="pl-preview-frame"
          style={{
            width: `${cue.w * scale}px`,
            height: `${cue.h * scale}px`,
            backgroundImage: `url("${cue.src}")`,
            backgroundPosition: `-${cue.x * scale}px -${cue.y * scale}px`,
            backgroundSize: cue.sheet ? `${cue.sheet.w * scale}px ${cue.sheet.h * scale}px` : undefined,
          }}
        />
      )}
      <span class="pl-preview-time">{clock(ms)}</span>
    </div>
  );
}

export function Timeline({ controller, durationMs, storyboard, moments, markers, clip, draft }) {
  const { time, duration: mediaDuration } = useMediaTime(controller);
  const duration = durationMs || mediaDuration || 0;
  const [scrub, setScrub] = useState(null); // ms while dragging
  const [hover, setHover] = useState(null); // ms under the mouse
  const trackRef = useRef(null);
  const [width, setWidth] = useState(300);

  useEffect(() => {
    const track = trackRef.current;
    if (!track || typeof ResizeObserver === "undefined") return undefined;
    const observer = new ResizeObserver(() => setWidth(track.clientWidth));
    observer.observe(track);
    setWidth(track.clientWidth);
    return () => observer.disconnect();
  }, []);

  const msAt = (clientX) => {
    const rect = trackRef.current.getBoundingClientRect();
    return Math.round(Math.min(1, Math.max(0, (clientX - rect.left) / rect.width)) * duration);
  };

  const heat = useMemo(() => {
    const buckets = (moments && moments.buckets) || [];
    const max = Math.max(1, ...buckets.map((b) => b.comments + b.replies + b.reactions));
    return buckets.map((b) => ({ ...b, level: (b.comments + b.replies + b.reactions) / max }));
  }, [moments]);

  if (!duration) return null;
  const shown = scrub ?? time;
  const previewMs = scrub ?? hover;
  const top = (moments && moments.top) || [];

  return (
    <div class="pl-timeline">
      {heat.length > 0 && heat.some((b) => b.level > 0) && (
        // Pointer users tap the strip; the same places are offered as buttons under it.
        <div
          class="pl-heat"
          role="img"
          aria-label={`Where peers commented and reacted${top.length ? `: busiest at ${top.slice(0, 3).map((m) => clock(m.start_ms)).join(", ")}` : ""}`}
          onClick={(event) => controller.seek(msAt(event.clientX))}
        >
          {heat.map((b) => (
            <span key={b.start_ms} class="pl-heat-cell" style={{ opacity: b.level ? 0.15 + 0.85 * b.level : 0 }} />
          ))}
        </div>
      )}
      <div
        class="pl-track"
        ref={trackRef}
        onPointerMove={(event) => event.pointerType === "mouse" && setHover(msAt(event.clientX))}
        onPointerLeave={() => setHover(null)}
      >
        <div class="pl-rail" aria-hidden="true">
          <span class="pl-played" style={{ width: pct(shown, duration) }} />
          {clip && <span class="pl-range pl-range-clip" style={{ left: pct(clip.start, duration), width: pct(clip.end - clip.start, duration) }} />}
          {draft && draft.end > draft.start && (
            <span class="pl-range pl-range-draft" style={{ left: pct(draft.start, duration), width: pct(draft.end - draft.start, duration) }} />
          )}
          <span class="pl-knob" style={{ left: pct(shown, duration) }} />
          {markers.map((m) => (
            <span key={m.id} class={m.resolved ? "pl-marker resolved" : "pl-marker"} style={{ left: pct(m.at, duration) }} />
          ))}
        </div>
        <input
          type="range"
          class="pl-seek"
          aria-label="Seek"
          min="0"
          max={duration}
          step="100"
          value={shown}
          aria-valuetext={`${clock(shown)} of ${clock(duration)}`}
          onInput={(event) => setScrub(Number(event.currentTarget.value))}
          onChange={(event) => {
            controller.seek(Number(event.currentTarget.value));
            setScrub(null);
          }}
          onBlur={() => setScrub(null)}
        />
        {previewMs !== null && <Preview cue={cueAt(storyboard, previewMs)} ms={previewMs} duration={duration} width={width} />}
      </div>
      <div class="row pl-clock small">
        <span>
          {clock(shown)} / {clock(duration)}
        </span>
        {clip && (
          <span class="pill">
            Clip {clock(clip.start)}–{clock(clip.end)}
          </span>
        )}
      </div>
      {top.length > 0 && (
        <div class="pl-top" role="group" aria-label="What peers talked about">
          {top.slice(0, 3).map((m) => {
            const count = m.comments + m.replies;
            return (
              <button type="button" class="button-secondary pl-top-button" key={m.start_ms} onClick={() => controller.seek(m.start_ms)}>
                Busy at {clock(m.start_ms)}
                <span class="muted small">
                  {count ? `${count} comment${count === 1 ? "" : "s"}` : `${m.reactions} reaction${m.reactions === 1 ? "" : "s"}`}
                </span>
              </button>
            );
          })}
        </div>
      )}
    </div>
  );
}
