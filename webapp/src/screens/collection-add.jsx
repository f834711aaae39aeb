// Adding to a collection: find a video (the newest ones, or a search), add it whole or as a
// clip of a range.
import { useEffect, useRef, useState } from "preact/hooks";
import { api } from "../api.js";
import { ErrorNote, Spinner, clock, toast, FormEnd } from "../ui.jsx";
import { Poster, parseClock } from "./learning-common.jsx";

export function AddItems({ collectionId, onAdded }) {
  const [open, setOpen] = useState(false);
  const toggle = useRef(null);
  const close = () => {
    setOpen(false);
    setTimeout(() => toggle.current && toggle.current.focus(), 0);
  };
  return (
    <div class="learn-add">
      <button type="button" ref={toggle} aria-expanded={open ? "true" : "false"} aria-controls="add-panel" onClick={() => (open ? close() : setOpen(true))}>
        Add video
      </button>
      {open && <AddPanel collectionId={collectionId} onAdded={onAdded} onClose={close} />}
    </div>
  );
}

function AddPanel({ collectionId, onAdded, onClose }) {
  const [q, setQ] = useState("");
  const [results, setResults] = useState(null);
  const [searching, setSearching] = useState(false);
  const [error, setError] = useState(null);
  const [clipOf, setClipOf] = useState(null); // the video a clip is being cut from
  const [added, setAdded] = useState({}); // video id -> times added here
  const input = useRef(null);

  useEffect(() => input.current && input.current.focus(), []);

  // The newest videos with an empty box, search results otherwise (after a short pause in typing).
  useEffect(() => {
    const controller = new AbortController();
    const timer = setTimeout(async () => {
      setSearching(true);
      setError(null);
      try {
        const text = q.trim();
        if (!text) {
          setResults((await api("/videos", { query: { limit: 20 }, signal: controller.signal })).items);
          return;
        }
        // Search ranks; the newest videos, matched by title here, cover ones the index has not
        // taken in yet (a video finished a minute ago).
        const [found, newest] = await Promise.all([
          api("/search", { query: { q: text, limit: 20 }, signal: controller.signal }).then((page) => page.items.map((hit) => hit.video)),
          api("/videos", { query: { limit: 50 }, signal: controller.signal }).then((page) => page.items, () => []),
        ]);
        const want = text.toLowerCase();
        const seen = new Set(found.map((video) => video.id));
        setResults([...found, ...newest.filter((video) => !seen.has(video.id) && video.title.toLowerCase().includes(want))]);
      } catch (err) {
        if (err.name !== "AbortError") setError(err);
      } finally {
        if (!controller.signal.aborted) setSearching(false);
      }
    }, q ? 250 : 0);
    return () => {
      clearTimeout(timer);
      controller.abort();
    };
  }, [q]);

  const add = async (video, extra = {}) => {
    setError(null);
    try {
      const answer = await api(`/collections/${collectionId}/items`, {
        method: "POST",
        body: { items: [{ video_id: video.id, ...extra }] },
        idempotent: true,
      });
      setAdded((map) => ({ ...map, [video.id]: (map[video.id] || 0) + 1 }));
      onAdded(answer.items || []);
      toast(`Added “${video.title}”`);
      return true;
    } catch (err) {
      setError(err);
      return false;
    }
  };

  return (
    <section id="add-panel" class="card learn-add-panel" aria-label="Add to the collection">
      <div class="field">
        <label for="find-video">Find a video</label>
        <input id="find-video" ref={input} type="search" autoComplete="off" value={q} onInput={(e) => setQ(e.currentTarget.value)} aria-describedby="find-video-hint" />
        <small id="find-video-hint">{q.trim() ? "Results for your search" : "The newest videos you can see; type to search"}</small>
      </div>
      <ErrorNote error={error} />
      {searching && !results && <Spinner label="Finding videos" />}
      <p class="visually-hidden" role="status" aria-live="polite">
        {results && !searching ? `${results.length} ${results.length === 1 ? "video" : "videos"} found` : ""}
      </p>
      {results && results.length === 0 && <p class="muted small">No videos match.</p>}
      {results && results.length > 0 && (
        <ul class="list learn-results" aria-label="Videos to add">
          {results.map((video) => (
            <li key={video.id}>
              <div class="learn-item-main">
                <Poster video={video} />
                <div class="grow">
                  <p class="strong learn-item-title">{video.title}</p>
                  <p class="small muted">
                    {video.duration_ms ? clock(video.duration_ms) : video.status === "ready" || video.status === "playable" ? "" : "Still processing"}
                    {video.author ? ` · ${video.author.display_name || video.author.handle}` : ""}
                    {added[video.id] ? ` · added${added[video.id] > 1 ? ` ×${added[video.id]}` : ""}` : ""}
                  </p>
                </div>
              </div>
              {clipOf === video.id ? (
                <ClipForm video={video} onAdd={(range) => add(video, range)} onCancel={() => setClipOf(null)} />
              ) : (
                <div class="row learn-actions">
                  <button type="button" aria-label={`Add ${video.title}`} onClick={() => add(video)}>
                    Add
                  </button>
                  <button type="button" class="button-secondary" aria-label={`Add a clip of ${video.title}`} onClick={() => setClipOf(video.id)}>
                    Add a clip
                  </button>
                </div>
              )}
            </li>
          ))}
        </ul>
      )}
      <div class="row">
        <button type="button" class="button-secondary" onClick={onClose}>
          Done adding
        </button>
      </div>
    </section>
  );
}

/** A range of a video: start and end as m:ss (or seconds), and a note for the people watching. */
function ClipForm({ video, onAdd, onCancel }) {
  const duration = video.duration_ms || null;
  const [start, setStart] = useState("0:00");
  const [end, setEnd] = useState(duration ? clock(Math.min(duration, 30000)) : "0:30");
  const [note, setNote] = useState("");
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);
  const first = useRef(null);
  useEffect(() => first.current && first.current.focus(), []);
  const base = `clip-${video.id}`;
  const submit = async (event) => {
    event.preventDefault();
    const startMs = parseClock(start);
    const endMs = parseClock(end);
    if (startMs == null || endMs == null) return setError("Write the times as m:ss, like 1:05.");
    if (endMs <= startMs) return setError("The end must come after the start.");
    if (duration && startMs >= duration) return setError(`The video is ${clock(duration)} long.`);
    setError(null);
    setBusy(true);
    const ok = await onAdd({ start_ms: startMs, end_ms: duration ? Math.min(endMs, duration) : endMs, note: note.trim() });
    setBusy(false);
    if (ok) onCancel();
  };
  return (
    <form class="learn-clip" onSubmit={submit} aria-label={`A clip of ${video.title}`}>
      <RangeFields base={base} first={first} start={start} end={end} setStart={setStart} setEnd={setEnd} />
      <small id={`${base}-hint`} class="muted">
        Minutes:seconds{duration ? `; the video is ${clock(duration)} long` : ""}.
      </small>
      <div class="field">
        <label for={`${base}-note`}>Note (optional)</label>
        <input id={`${base}-note`} maxLength={1000} value={note} onInput={(e) => setNote(e.currentTarget.value)} />
      </div>
      {error && (
        <p class="field-error small" role="alert">
          {error}
        </p>
      )}
      <div class="row">
        <button type="submit" disabled={busy}>
          Add clip
        </button>
        <button type="button" class="button-secondary" onClick={onCancel}>
          Cancel
        </button>
      </div>
    </form>
  );
}

/** Change an item's range (both times empty: the whole video) or its note. */
export function EditItem({ collectionId, item, onSaved, onCancel }) {
  const duration = (item.video && item.video.duration_ms) || null;
  const [start, setStart] = useState(item.start_ms != null ? clock(item.start_ms) : "");
  const [end, setEnd] = useState(item.end_ms != null ? clock(item.end_ms) : "");
  const [note, setNote] = useState(item.note || "");
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);
  const first = useRef(null);
  useEffect(() => first.current && first.current.focus(), []);
  const base = `edit-${item.id}`;
  const submit = async (event) => {
    event.preventDefault();
    const whole = !start.trim() && !end.trim();
    const startMs = whole ? null : parseClock(start || "0:00");
    const endMs = whole ? null : parseClock(end);
    if (!whole && (startMs == null || endMs == null)) return setError(new Error("Write both times as m:ss, or leave both empty for the whole video."));
    if (!whole && endMs <= startMs) return setError(new Error("The end must come after the start."));
    setBusy(true);
    setError(null);
    try {
      const saved = await api(`/collections/${collectionId}/items/${item.id}`, {
        method: "PATCH",
        body: { start_ms: startMs, end_ms: whole || !duration ? endMs : Math.min(endMs, duration), note: note.trim() },
      });
      onSaved(saved);
    } catch (err) {
      setError(err);
      setBusy(false);
    }
  };
  return (
    <form class="learn-clip" onSubmit={submit} aria-label={`Edit ${(item.video && item.video.title) || "the item"}`}>
      <RangeFields base={base} first={first} start={start} end={end} setStart={setStart} setEnd={setEnd} />
      <small id={`${base}-hint`} class="muted">
        Minutes:seconds; both empty for the whole video{duration ? ` (${clock(duration)})` : ""}.
      </small>
      <div class="field">
        <label for={`${base}-note`}>Note</label>
        <input id={`${base}-note`} maxLength={1000} value={note} onInput={(e) => setNote(e.currentTarget.value)} />
      </div>
      <FormEnd busy={busy} error={error} label="Save" onCancel={onCancel} />
    </form>
  );
}

/** A clip's start and end as minutes:seconds, described by the hint `${base}-hint`. */
function RangeFields({ base, first, start, end, setStart, setEnd }) {
  return (
    <div class="row">
      <div class="field grow">
        <label for={`${base}-start`}>Start</label>
        <input id={`${base}-start`} ref={first} inputMode="decimal" value={start} onInput={(e) => setStart(e.currentTarget.value)} aria-describedby={`${base}-hint`} />
      </div>
      <div class="field grow">
        <label for={`${base}-end`}>End</label>
        <input id={`${base}-end`} inputMode="decimal" value={end} onInput={(e) => setEnd(e.currentTarget.value)} aria-describedby={`${base}-hint`} />
      </div>
    </div>
  );
}
