// Home: the feed of what was shared with you; My videos: what you recorded, with its processing
// status and what you may do with it (replace a failed file, archive, delete, restore).
import { useCallback, useEffect, useRef, useState } from "preact/hooks";
import { api } from "../api.js";
import { Link } from "../router.jsx";
import { ErrorNote, Page, Spinner, ago, clock, toast, when } from "../ui.jsx";
import { StatusPill } from "./upload.jsx";
import "./feed.css";

const PAGE = 20;

/**
 * A cursor-paged list kept fresh with delta sync: the first page, "more" pages, and `refresh()`
 * that asks only for what changed since the list's sync_token (the whole list again when the
 * token is too old, 410).
 */
function useSyncedList(path, query, idOf, sortKey) {
  const [state, setState] = useState({ items: null, cursor: null, error: null, more: false });
  const sync = useRef(null);
  const busy = useRef(false);
  const queryKey = JSON.stringify(query);
  const latest = useRef(state);
  latest.current = state;

  const reload = useCallback(async () => {
    try {
      const page = await api(path, { query: { ...query, limit: PAGE } });
      sync.current = page.sync_token;
      setState({ items: page.items, cursor: page.next_cursor, error: null, more: false });
    } catch (error) {
      setState((s) => ({ ...s, error, items: s.items || null }));
    }
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [path, queryKey]);

  useEffect(() => {
    setState({ items: null, cursor: null, error: null, more: false });
    reload();
  }, [reload]);

  const more = useCallback(async () => {
    if (busy.current) return;
    const { cursor } = latest.current;
    if (!cursor) return;
    busy.current = true;
    setState((s) => ({ ...s, more: true }));
    try {
      const page = await api(path, { query: { ...query, limit: PAGE, cursor } });
      setState((s) => {
        const known = new Set(s.items.map(idOf));
        return { ...s, items: [...s.items, ...page.items.filter((item) => !known.has(idOf(item)))], cursor: page.next_cursor, more: false, error: null };
      });
    } catch (error) {
      setState((s) => ({ ...s, more: false, error }));
    } finally {
      busy.current = false;
    }
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [path, queryKey]);

  const refresh = useCallback(async () => {
    if (!sync.current || busy.current) return;
    busy.current = true;
    try {
      const changed = [];
      let deleted = [];
      let cursor = null;
      let token = sync.current;
      let pages = 0;
      do {
        const page = await api(path, { query: { ...query, limit: 100, updated_since: sync.current, cursor } });
        changed.push(...page.items);
        deleted = deleted.concat(page.deleted || []);
        cursor = page.next_cursor;
        token = page.sync_token;
        pages += 1;
      } while (cursor && pages < 5);
      sync.current = token;
      if (!changed.length && !deleted.length) return;
      setState((s) => {
        if (!s.items) return s;
        const gone = new Set(deleted);
        const fresh = new Map(changed.map((item) => [idOf(item), item]));
        let items = s.items.filter((item) => !gone.has(idOf(item))).map((item) => fresh.get(idOf(item)) || item);
        const known = new Set(items.map(idOf));
        // New items go in at their place; ones older than the loaded pages arrive with "more".
        const oldest = s.cursor && items.length ? sortKey(items[items.length - 1]) : "";
        const added = changed.filter((item) => !known.has(idOf(item)) && !gone.has(idOf(item)) && sortKey(item) >= oldest);
        items = [...added, ...items].sort((a, b) => (sortKey(a) < sortKey(b) ? 1 : sortKey(a) > sortKey(b) ? -1 : 0));
        return { ...s, items };
      });
    } catch (error) {
      if (error.status === 410 || error.code === "invalid_cursor") reload();
      // Other failures (offline): the list on screen stays; the next focus tries again.
    } finally {
      busy.current = false;
    }
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [path, queryKey, reload]);

  const setItems = useCallback((update) => setState((s) => ({ ...s, items: update(s.items || []) })), []);
  return { ...state, reload, more, refresh, setItems };
}

/** Call `refresh` when the app comes back to the front (tab switch, phone unlocked, back online). */
function useRefreshOnFocus(refresh) {
  useEffect(() => {
    let last = Date.now();
    const maybe = () => {
      if (document.visibilityState !== "visible" || Date.now() - last < 5000) return;
      last = Date.now();
      refresh();
    };
    document.addEventListener("visibilitychange", maybe);
    window.addEventListener("focus", maybe);
    window.addEventListener("online", maybe);
    return () => {
      document.removeEventListener("visibilitychange", maybe);
      window.removeEventListener("focus", maybe);
      window.removeEventListener("online", maybe);
    };
  }, [refresh]);
}

/** Loads the next page when the end of the list scrolls into view; the button stays for keyboards. */
function MoreButton({ cursor, loading, onMore, label = "More" }) {
  const sentinel = useRef(null);
  useEffect(() => {
    if (!cursor || !sentinel.current || typeof IntersectionObserver === "undefined") return undefined;
    const observer = new IntersectionObserver((entries) => entries.some((e) => e.isIntersecting) && onMore(), { rootMargin: "400px" });
    observer.observe(sentinel.current);
    return () => observer.disconnect();
  }, [cursor, onMore]);
  if (!cursor) return null;
  return (
    <div class="more" ref={sentinel}>
      <button type="button" class="button-secondary" onClick={onMore} disabled={loading}>
        {loading ? "Loading…" : label}
      </button>
    </div>
  );
}

/** A poster with its size reserved (no layout shift); the first ones load at once, the rest lazily. */
function Poster({ src, index, width = 320, height = 180, class: className = "" }) {
  const [broken, setBroken] = useState(false);
  useEffect(() => setBroken(false), [src]);
  if (!src || broken) {
    return (
      <span class={`poster poster-empty ${className}`} aria-hidden="true">
        ▶
      </span>
    );
  }
  const early = index < 2;
  return (
    <img
      class={`poster ${className}`}
      src={src}
      alt=""
      width={width}
      height={height}
      loading={early ? "eager" : "lazy"}
      fetchpriority={index === 0 ? "high" : undefined}
      decoding="async"
      onError={() => setBroken(true)}
    />
  );
}

// ---------------------------------------------------------------------------------------------

function FeedCard({ entry, index }) {
  const video = entry.video || {};
  const sender = entry.sender || {};
  const unseen = entry.my_state === "unseen";
  const notYet = video.status && !["playable", "ready"].includes(video.status);
  return (
    <li class={unseen ? "feed-card unseen" : "feed-card"}>
      <Link href={`/videos/${video.id}?share=${entry.share_id}`} class="feed-link">
        <span class="feed-body">
          <span class="feed-title">{video.title}</span>
          <span class="feed-tags">
            {unseen && <span class="pill new-pill">New</span>}
            {entry.my_state === "watched" && <span class="pill pill-ok">Watched</span>}
            {video.kind === "question" && (
              <span class="pill pill-warn">{video.question_state === "answered" ? "Answered question" : "Question"}</span>
            )}
            {notYet && <span class="pill">{video.status === "failed" ? "Could not be processed" : "Processing"}</span>}
          </span>
          <span class="feed-meta">
            {sender.display_name || sender.handle} · <time datetime={entry.shared_at} title={when(entry.shared_at)}>{ago(entry.shared_at)}</time>
          </span>
          {entry.message && <span class="feed-message">“{entry.message}”</span>}
        </span>
        <span class="feed-media">
          <Poster src={video.poster_url} index={index} />
          {video.duration_ms ? (
            <span class="duration">
              <span class="visually-hidden">Length </span>
              {clock(video.duration_ms)}
            </span>
          ) : null}
        </span>
      </Link>
    </li>
  );
}

export function Feed() {
  const list = useSyncedList("/feed", {}, (entry) => entry.share_id, (entry) => entry.shared_at || "");
  useRefreshOnFocus(list.refresh);
  const unseen = list.items ? list.items.filter((entry) => entry.my_state === "unseen").length : 0;

  return (
    <Page
      title="Home"
      actions={
        <Link href="/mine" class="button button-secondary">
          My videos
        </Link>
      }
    >
      {list.items && list.items.length > 0 && (
        <p class="muted feed-summary">{unseen ? `${unseen} new for you` : "You're all caught up"}</p>
      )}
      <ErrorNote error={list.error} onRetry={list.items ? list.refresh : list.reload} />
      {!list.items && !list.error && <Spinner label="Loading your feed" />}
      {list.items && list.items.length === 0 && (
        <div class="card feed-empty">
          <p class="strong">Nothing shared with you yet</p>
          <p class="muted">When a teammate shares a video with you, it shows up here. Have a tip from today's calls? Share it.</p>
          <Link href="/record" class="button">
            Record a video
          </Link>
        </div>
      )}
      {list.items && list.items.length > 0 && (
        <ul class="feed-list" aria-label="Shared with you">
          {list.items.map((entry, index) => (
            <FeedCard key={entry.share_id} entry={entry} index={index} />
          ))}
        </ul>
      )}
      <MoreButton cursor={list.cursor} loading={list.more} onMore={list.more} label="More videos" />
    </Page>
  );
}

// ---------------------------------------------------------------------------------------------

/** A yes/no question in a modal <dialog>; the safe answer has the focus. */
function Confirm({ title, body, confirm, onConfirm, onCancel }) {
  const dialog = useRef(null);
  const cancel = useRef(null);
  useEffect(() => {
    const element = dialog.current;
    if (element && !element.open) element.showModal();
    if (cancel.current) cancel.current.focus();
    return () => element && element.open && element.close();
  }, []);
  return (
    <dialog ref={dialog} class="confirm" aria-labelledby="confirm-title" onCancel={(event) => (event.preventDefault(), onCancel())}>
      <h2 id="confirm-title">{title}</h2>
      <p>{body}</p>
      <div class="row confirm-actions">
        <button type="button" class="button-secondary" ref={cancel} onClick={onCancel}>
          Keep it
        </button>
        <button type="button" class="button-danger" onClick={onConfirm}>
          {confirm}
        </button>
      </div>
    </dialog>
  );
}

function MyVideo({ video, index, onArchive, onDelete }) {
  const status = video.status;
  const playable = ["playable", "ready"].includes(status);
  const poster = video.playback && video.playback.poster_url;
  return (
    <li class="mine-item">
      <div class="mine-main">
        <span class="mine-media">
          <Poster src={poster} index={index} width={160} height={90} class="mine-poster" />
          {video.duration_ms ? <span class="duration">{clock(video.duration_ms)}</span> : null}
        </span>
        <div class="mine-text">
          <Link href={`/videos/${video.id}`} class="mine-title">
            {video.title}
          </Link>
          <p class="small muted">
            <StatusPill status={status} progress={video.progress} />{" "}
            <time datetime={video.created_at} title={when(video.created_at)}>
              {ago(video.created_at)}
            </time>
            {video.kind === "question" && " · Question"}
          </p>
          {status === "processing" && (
            <progress max={100} value={video.progress || undefined} aria-label={`Processing ${video.title}`} />
          )}
          {status === "failed" && (
            <p class="small field-error">{(video.failure && video.failure.detail) || "Fieldcast could not process this file."}</p>
          )}
          {status === "awaiting_upload" && <p class="small muted">No file has arrived for this draft.</p>}
          {status === "uploading" && <p class="small muted">The file is still arriving.</p>}
          {status === "playable" && <p class="small muted">Plays now; higher qualities are on their way.</p>}
        </div>
      </div>
      <div class="row mine-actions">
        {playable && (
          <Link href={`/videos/${video.id}`} class="button button-secondary">
            Watch<span class="visually-hidden"> {video.title}</span>
          </Link>
        )}
        {(status === "failed" || status === "awaiting_upload") && (
          <Link href={`/record?video=${video.id}`} class="button">
            {status === "failed" ? "Replace the file" : "Add the file"}
            <span class="visually-hidden"> for {video.title}</span>
          </Link>
        )}
        <button type="button" class="button-quiet" onClick={() => onArchive(video)}>
          Archive<span class="visually-hidden"> {video.title}</span>
        </button>
        <button type="button" class="button-quiet danger-text" onClick={() => onDelete(video)}>
          Delete<span class="visually-hidden"> {video.title}</span>
        </button>
      </div>
    </li>
  );
}

function RecentlyDeleted({ reloadKey, onRestored }) {
  const [open, setOpen] = useState(false);
  const [items, setItems] = useState(null);
  const [error, setError] = useState(null);
  useEffect(() => {
    if (!open) return;
    setError(null);
    api("/videos/deleted", { query: { limit: 50 } }).then((page) => setItems(page.items), setError);
  }, [open, reloadKey]);
  const restore = async (video) => {
    try {
      const back = await api(`/videos/${video.id}/restore`, { method: "POST", idempotent: true });
      setItems((list) => list.filter((other) => other.id !== video.id));
      onRestored(back);
      toast(`“${video.title}” is back`);
    } catch (problem) {
      setError(problem);
    }
  };
  return (
    <details class="card deleted" onToggle={(event) => setOpen(event.currentTarget.open)}>
      <summary>Recently deleted</summary>
      <ErrorNote error={error} />
      {open && !items && !error && <Spinner label="Loading deleted videos" />}
      {items && items.length === 0 && <p class="muted">Nothing deleted in the last days.</p>}
      {items && items.length > 0 && (
        <ul class="list">
          {items.map((video) => (
            <li key={video.id} class="row">
              <div class="grow">
                <p class="strong">{video.title}</p>
                {video.purge_after && <p class="small muted">Gone for good {ago(video.purge_after)}</p>}
              </div>
              <button type="button" class="button-secondary" onClick={() => restore(video)}>
                Restore<span class="visually-hidden"> {video.title}</span>
              </button>
            </li>
          ))}
        </ul>
      )}
    </details>
  );
}

export function MyVideos() {
  const list = useSyncedList("/videos", { scope: "mine" }, (video) => video.id, (video) => video.created_at || "");
  useRefreshOnFocus(list.refresh);
  const [confirming, setConfirming] = useState(null);
  const [undo, setUndo] = useState(null); // { video, kind: "archived" | "deleted" }
  const [error, setError] = useState(null);
  const [deletedKey, setDeletedKey] = useState(0);

  // Follow processing while something is on its way (a delta read is cheap: a 304 or a few rows).
  const working = list.items && list.items.some((video) => ["uploading", "processing"].includes(video.status));
  useEffect(() => {
    if (!working) return undefined;
    const timer = setInterval(list.refresh, 4000);
    return () => clearInterval(timer);
  }, [working, list.refresh]);

  const putBack = (video) =>
    list.setItems((items) => [video, ...items.filter((other) => other.id !== video.id)].sort((a, b) => (a.created_at < b.created_at ? 1 : -1)));

  const archive = async (video) => {
    setError(null);
    try {
      await api(`/videos/${video.id}/archive`, { method: "POST", idempotent: true });
      list.setItems((items) => items.filter((other) => other.id !== video.id));
      setUndo({ video, kind: "archived" });
    } catch (problem) {
      setError(problem);
    }
  };

  const remove = async (video) => {
    setConfirming(null);
    setError(null);
    try {
      await api(`/videos/${video.id}`, { method: "DELETE" });
      list.setItems((items) => items.filter((other) => other.id !== video.id));
      setUndo({ video, kind: "deleted" });
      setDeletedKey((key) => key + 1);
    } catch (problem) {
      setError(problem);
    }
  };

  const undoLast = async () => {
    const { video, kind } = undo;
    setUndo(null);
    try {
      const back = await api(`/videos/${video.id}/${kind === "archived" ? "unarchive" : "restore"}`, { method: "POST", idempotent: true });
      putBack(back);
      setDeletedKey((key) => key + 1);
    } catch (problem) {
      setError(problem);
    }
  };

  return (
    <Page
      title="My videos"
      actions={
        <Link href="/record" class="button">
          Record
        </Link>
      }
    >
      {undo && (
        <div class="undo" role="status">
          <span class="grow">
            “{undo.video.title}” {undo.kind === "archived" ? "archived: it left the lists and feeds, its link still works." : "deleted. You can restore it for 7 days."}
          </span>
          <button type="button" class="button-secondary" onClick={undoLast}>
            Undo
          </button>
        </div>
      )}
      <ErrorNote error={error || list.error} onRetry={list.error ? list.reload : undefined} />
      {!list.items && !list.error && <Spinner label="Loading your videos" />}
      {list.items && list.items.length === 0 && (
        <div class="card feed-empty">
          <p class="strong">You haven't recorded anything yet</p>
          <p class="muted">A minute on what worked in today's call helps the whole team.</p>
          <Link href="/record" class="button">
            Record a video
          </Link>
        </div>
      )}
      {list.items && list.items.length > 0 && (
        <ul class="list mine-list" aria-label="Your videos">
          {list.items.map((video, index) => (
            <MyVideo key={video.id} video={video} index={index} onArchive={archive} onDelete={setConfirming} />
          ))}
        </ul>
      )}
      <MoreButton cursor={list.cursor} loading={list.more} onMore={list.more} label="More videos" />
      <RecentlyDeleted reloadKey={deletedKey} onRestored={putBack} />
      {confirming && (
        <Confirm
          title={`Delete “${confirming.title}”?`}
          body="It disappears for everyone it was shared with. You can restore it for 7 days; then it is gone for good."
          confirm="Delete"
          onConfirm={() => remove(confirming)}
          onCancel={() => setConfirming(null)}
        />
      )}
    </Page>
  );
}
