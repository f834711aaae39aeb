// Below the player: the video's attachments, its transcript (tap a line to go there) and, for
// curators, "Mark a clip" into a collection.
import { useEffect, useMemo, useRef, useState } from "preact/hooks";
import { api } from "../api.js";
import { Link } from "../router.jsx";
import { ErrorNote, Spinner, clock, toast } from "../ui.jsx";
import { useMediaTime } from "./player-timeline.jsx";

function size(bytes) {
  if (!bytes && bytes !== 0) return "";
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1048576) return `${Math.round(bytes / 1024)} KB`;
  return `${(bytes / 1048576).toFixed(1)} MB`;
}

/** Links may only be http(s): anything else is shown as text, never made clickable. */
function safeHref(value) {
  try {
    const parsed = new URL(value);
    return parsed.protocol === "https:" || parsed.protocol === "http:" ? parsed.toString() : null;
  } catch {
    return null;
  }
}

export function Attachments({ videoId, attachments }) {
  if (!attachments || !attachments.length) return null;
  // Download URLs live minutes, not the hours a page stays open: ask for a fresh one on use.
  const download = async (event, item) => {
    event.preventDefault();
    try {
      const fresh = await api(`/videos/${videoId}/attachments`);
      const match = (fresh.items || []).find((candidate) => candidate.id === item.id);
      if (!match || !match.download_url) throw new Error("This attachment is no longer there.");
      location.assign(match.download_url);
    } catch (problem) {
      toast(problem.message);
    }
  };
  return (
    <section aria-labelledby="attachments-heading">
      <h2 id="attachments-heading">Attachments</h2>
      <ul class="list">
        {attachments.map((item) => {
          if (item.kind === "file") {
            return (
              <li key={item.id} class="pl-attachment">
                <span class="pill">{(item.filename || "").split(".").pop().toUpperCase() || "File"}</span>
                <span class="grow">
                  <span class="strong">{item.title || item.filename}</span>{" "}
                  <span class="muted small">{size(item.size_bytes)}</span>
                </span>
                {item.download_url && (
                  <a class="button button-secondary" href={item.download_url} download={item.filename || true} onClick={(event) => download(event, item)} aria-label={`Download ${item.title || item.filename}`}>
                    Download
                  </a>
                )}
              </li>
            );
          }
          if (item.kind === "link") {
            const href = safeHref(item.url);
            return (
              <li key={item.id} class="pl-attachment">
                <span class="pill">Link</span>
                <span class="grow pl-break">
                  {href ? (
                    <a href={href} target="_blank" rel="noopener noreferrer">
                      {item.title || item.url}
                    </a>
                  ) : (
                    item.url
                  )}
                </span>
              </li>
            );
          }
          return (
            <li key={item.id} class="pl-attachment pl-note">
              <span class="pill">Note</span>
              <p class="grow pl-body">{item.body}</p>
            </li>
          );
        })}
      </ul>
    </section>
  );
}

/** The transcript, once made: each line a button that seeks there; the current line marked. */
function Lines({ segments, current, controller }) {
  // Rebuilt only when the current line changes, not at every timeupdate.
  return useMemo(
    () => (
      <ol class="pl-lines">
        {segments.map((segment, index) => (
          <li key={segment.start_ms}>
            <button
              type="button"
              class={index === current ? "pl-line current" : "pl-line"}
              aria-current={index === current ? "true" : undefined}
              onClick={() => controller.seek(segment.start_ms)}
            >
              <span class="muted small">{clock(segment.start_ms)}</span> {segment.text}
            </button>
          </li>
        ))}
      </ol>
    ),
    [segments, current, controller],
  );
}

function CurrentLines({ segments, controller }) {
  const { time } = useMediaTime(controller);
  const current = segments.findIndex((segment) => time >= segment.start_ms && time < segment.end_ms);
  return <Lines segments={segments} current={current} controller={controller} />;
}

export function Transcript({ video, controller, onCaptionsReady }) {
  const [transcript, setTranscript] = useState(null);
  const [error, setError] = useState(null);
  const [open, setOpen] = useState(false);
  const ready = video.status === "ready";

  useEffect(() => {
    if (!ready) return undefined;
    let timer;
    let stopped = false;
    let tries = 0;
    const load = async () => {
      try {
        const answer = await api(`/videos/${video.id}/transcript`);
        if (stopped) return;
        setTranscript(answer);
        // Transcription runs after `ready`: look again for a while, then pick up the captions.
        if (answer.status === "pending" && tries < 40) {
          tries += 1;
          timer = setTimeout(load, 15000);
        } else if (answer.status === "done" && tries > 0 && onCaptionsReady) onCaptionsReady();
      } catch (problem) {
        if (!stopped) setError(problem);
      }
    };
    load();
    return () => {
      stopped = true;
      clearTimeout(timer);
    };
  }, [video.id, ready]); // eslint-disable-line react-hooks/exhaustive-deps

  if (!ready) return null;
  if (error) return <ErrorNote error={error} />;
  if (!transcript || transcript.status === "skipped" || transcript.status === "no_speech") return null;
  return (
    <details class="card pl-transcript" onToggle={(event) => setOpen(event.currentTarget.open)}>
      <summary>Transcript</summary>
      {transcript.status === "pending" && <p class="muted">The transcript is being made.</p>}
      {transcript.status === "failed" && <p class="muted">No transcript: {transcript.failure_detail}</p>}
      {transcript.status === "done" && open && <CurrentLines segments={transcript.segments} controller={controller} />}
    </details>
  );
}

/** Curators: set a start and an end from the player, give it a title, add it to a collection. */
export function ClipMaker({ video, controller, onDraft, preset }) {
  const [open, setOpen] = useState(false);
  const [range, setRange] = useState(null);
  const [title, setTitle] = useState("");
  const [collections, setCollections] = useState(null);
  const [target, setTarget] = useState("");
  const [newTitle, setNewTitle] = useState("");
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState(null);
  const [added, setAdded] = useState(null);
  const { time } = useMediaTime(controller);
  const detailsRef = useRef(null);

  useEffect(() => {
    if (!open || collections) return;
    (async () => {
      try {
        const items = [];
        let cursor = null;
        do {
          const page = await api("/collections", { query: { mine: true, cursor, limit: 200 } });
          items.push(...page.items);
          cursor = page.next_cursor;
        } while (cursor);
        setCollections(items);
        setTarget(items.length ? items[0].id : "new");
      } catch (problem) {
        setError(problem);
        setCollections([]);
        setTarget("new");
      }
    })();
  }, [open]); // eslint-disable-line react-hooks/exhaustive-deps

  // "Clip" on a comment: its range (or the moment with some lead-in and after), its words as the title.
  useEffect(() => {
    if (!preset || !detailsRef.current) return;
    const at = preset.at_ms;
    const end = preset.end_ms !== null && preset.end_ms !== undefined ? preset.end_ms : Math.min(video.duration_ms, at + 25000);
    setRange({ start: preset.end_ms !== null && preset.end_ms !== undefined ? at : Math.max(0, at - 5000), end });
    setTitle(preset.body.length > 120 ? `${preset.body.slice(0, 117)}…` : preset.body);
    setAdded(null);
    detailsRef.current.open = true;
    detailsRef.current.scrollIntoView({ block: "start", behavior: "smooth" });
    const summary = detailsRef.current.querySelector("summary");
    if (summary) summary.focus({ preventScroll: true });
  }, [preset]); // eslint-disable-line react-hooks/exhaustive-deps

  useEffect(() => {
    if (!open) onDraft(null);
    else onDraft(range);
  }, [open, range]); // eslint-disable-line react-hooks/exhaustive-deps

  if (!video.duration_ms) return null;
  const start = range ? range.start : null;
  const end = range ? range.end : null;

  const submit = async (event) => {
    event.preventDefault();
    setError(null);
    if (start === null || end === null || end <= start) {
      setError(new Error("Set a start and a later end from the player."));
      return;
    }
    setBusy(true);
    try {
      let collectionId = target;
      if (target === "new") {
        const created = await api("/collections", { method: "POST", body: { title: newTitle.trim() || title.trim() || video.title }, idempotent: true });
        collectionId = created.id;
        setCollections((list) => [created, ...(list || [])]);
        setTarget(created.id);
      }
      await api(`/collections/${collectionId}/items`, {
        method: "POST",
        body: { items: [{ video_id: video.id, start_ms: start, end_ms: end, note: title.trim() }] },
        idempotent: true,
      });
      setAdded(collectionId);
      setTitle("");
      setRange(null);
      toast("Clip added to the collection");
    } catch (problem) {
      setError(problem);
    } finally {
      setBusy(false);
    }
  };

  return (
    <details class="card pl-clip" ref={detailsRef} onToggle={(event) => setOpen(event.currentTarget.open)}>
      <summary>Mark a clip</summary>
      <form onSubmit={submit} class="stack">
        <div class="row">
          <button type="button" class="button-secondary" onClick={() => setRange((r) => ({ start: controller.timeMs(), end: r && r.end > controller.timeMs() ? r.end : Math.min(video.duration_ms, controller.timeMs() + 15000) }))}>
            Set clip start
          </button>
          <button type="button" class="button-secondary" onClick={() => setRange((r) => ({ start: r ? Math.min(r.start, controller.timeMs()) : 0, end: controller.timeMs() }))}>
            Set clip end
          </button>
        </div>
        <p class="small" aria-live="polite">
          {range ? `Clip ${clock(start)}–${clock(end)} (${Math.max(0, Math.round((end - start) / 1000))} s).` : `Play or seek to where the clip starts (now ${clock(time)}), then set its start and end.`}
        </p>
        <div class="field">
          <label for="clip-title">Title</label>
          <input id="clip-title" value={title} maxLength={1000} onInput={(event) => setTitle(event.currentTarget.value)} />
          <small>Shown with the clip in the collection.</small>
        </div>
        {!collections ? (
          <Spinner label="Loading your collections" />
        ) : (
          <div class="field">
            <label for="clip-collection">Collection</label>
            <select id="clip-collection" value={target} onChange={(event) => setTarget(event.currentTarget.value)}>
              {collections.map((c) => (
                <option key={c.id} value={c.id}>
                  {c.title}
                </option>
              ))}
              <option value="new">New collection…</option>
            </select>
          </div>
        )}
        {target === "new" && (
          <div class="field">
            <label for="clip-new-collection">New collection's title</label>
            <input id="clip-new-collection" value={newTitle} maxLength={200} required onInput={(event) => setNewTitle(event.currentTarget.value)} />
          </div>
        )}
        <ErrorNote error={error} />
        <div class="row">
          <button type="submit" disabled={busy || !collections}>
            Add clip
          </button>
          {added && <Link href={`/collections/${added}`}>Open the collection</Link>}
        </div>
      </form>
    </details>
  );
}
