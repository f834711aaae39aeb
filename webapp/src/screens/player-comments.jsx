// Timeline comments: threads in timeline order with their replies, a composer at the current
// moment (or over a range, or about the whole video) with @mentions, likes, resolve / reopen,
// and reactions at the current moment. The list follows changes with the sync token
// (`updated_since`), so other people's comments arrive without a reload.
import { useCallback, useEffect, useRef, useState } from "preact/hooks";
import { api } from "../api.js";
import { isAdmin } from "../session.jsx";
import { Avatar, ErrorNote, Spinner, Empty, ago, clock, toast, when } from "../ui.jsx";
import { MentionTextarea } from "./player-mentions.jsx";
import { useMediaTime } from "./player-timeline.jsx";

const POLL_MS = 15000;

/** The video's threads, kept current. */
export function useComments(videoId) {
  const [state, setState] = useState({ threads: null, error: null });
  const syncToken = useRef(null);

  const loadAll = useCallback(async () => {
    const threads = [];
    let cursor = null;
    let token = null;
    do {
      const page = await api(`/videos/${videoId}/comments`, { query: { order: "timeline", replies: 3, limit: 200, cursor } });
      threads.push(...page.items);
      cursor = page.next_cursor;
      token = page.sync_token;
    } while (cursor);
    syncToken.current = token;
    setState({ threads, error: null });
  }, [videoId]);

  const reload = useCallback(() => loadAll().catch((error) => setState((s) => ({ ...s, error }))), [loadAll]);

  /** A comment (thread or reply) as the API answered it: put it in its place. */
  const upsert = useCallback((comment) => {
    setState((s) => ({ ...s, threads: place(s.threads || [], comment) }));
  }, []);
  const remove = useCallback((id) => {
    setState((s) => ({ ...s, threads: drop(s.threads || [], id) }));
  }, []);
  const replaceReplies = useCallback((threadId, replies) => {
    setState((s) => ({ ...s, threads: (s.threads || []).map((t) => (t.id === threadId ? { ...t, replies } : t)) }));
  }, []);

  useEffect(() => {
    setState({ threads: null, error: null });
    reload();
    const poll = async () => {
      if (document.hidden || !syncToken.current) return;
      try {
        let cursor = null;
        const changed = [];
        const deleted = [];
        let token = syncToken.current;
        do {
          const page = await api(`/videos/${videoId}/comments`, { query: { updated_since: syncToken.current, limit: 200, cursor } });
          changed.push(...page.items);
          deleted.push(...page.deleted);
          cursor = page.next_cursor;
          token = page.sync_token;
        } while (cursor);
        syncToken.current = token;
        if (changed.length || deleted.length) {
          setState((s) => {
            let threads = s.threads || [];
            for (const id of deleted) threads = drop(threads, id);
            for (const comment of changed) threads = place(threads, comment);
            return { ...s, threads };
          });
        }
      } catch (error) {
        if (error.code === "sync_token_expired") reload();
      }
    };
    const timer = setInterval(poll, POLL_MS);
    return () => clearInterval(timer);
  }, [videoId, reload]);

  return { ...state, reload, upsert, remove, replaceReplies };
}

function byTimeline(a, b) {
  const at = a.at_ms ?? -1;
  const bt = b.at_ms ?? -1;
  return at - bt || a.created_at.localeCompare(b.created_at);
}

function place(threads, comment) {
  if (!comment.parent_id) {
    const existing = threads.find((t) => t.id === comment.id);
    // A delta carries no replies: keep the ones we hold.
    const merged = existing ? { ...existing, ...comment, replies: comment.replies && comment.replies.length ? comment.replies : existing.replies } : { replies: [], ...comment };
    return [...threads.filter((t) => t.id !== comment.id), merged].sort(byTimeline);
  }
  return threads.map((t) => {
    if (t.id !== comment.parent_id) return t;
    const replies = t.replies || [];
    const known = replies.some((r) => r.id === comment.id);
    const next = known ? replies.map((r) => (r.id === comment.id ? comment : r)) : [...replies, comment];
    return { ...t, replies: next, reply_count: known ? t.reply_count : Math.max(t.reply_count || 0, next.length) };
  });
}

function drop(threads, id) {
  return threads
    .filter((t) => t.id !== id)
    .map((t) => (t.replies && t.replies.some((r) => r.id === id) ? { ...t, replies: t.replies.filter((r) => r.id !== id), reply_count: Math.max(0, t.reply_count - 1) } : t));
}

/** The body with its mentions in bold: text only, never HTML. */
function Body({ comment, onTap }) {
  if (comment.state !== "visible" && !comment.body) {
    return <p class="muted pl-body">{comment.state === "hidden" ? "Hidden by a moderator." : "Deleted."}</p>;
  }
  const parts = [];
  let at = 0;
  const mentions = [...(comment.mentions || [])].sort((a, b) => a.start - b.start);
  for (const mention of mentions) {
    if (mention.start < at) continue;
    if (mention.start > at) parts.push(comment.body.slice(at, mention.start));
    parts.push(
      <strong class="pl-mention-text" title={mention.display_name}>
        {comment.body.slice(mention.start, mention.end)}
      </strong>,
    );
    at = mention.end;
  }
  parts.push(comment.body.slice(at));
  // Tapping the text goes to its moment too (the time button is the keyboard's way there);
  // not when the person was selecting text.
  const tap = onTap && (() => !String(window.getSelection && window.getSelection()) && onTap());
  return (
    <p class={onTap ? "pl-body pl-seekable" : "pl-body"} onClick={tap}>
      {parts}
    </p>
  );
}

function TimeButton({ comment, controller }) {
  if (comment.at_ms === null || comment.at_ms === undefined) return <span class="pill">Whole video</span>;
  const range = comment.end_ms !== null && comment.end_ms !== undefined;
  return (
    <button
      type="button"
      class="button-quiet pl-time"
      aria-label={`Jump to ${clock(comment.at_ms)}${range ? `–${clock(comment.end_ms)}` : ""}`}
      onClick={() => controller.seek(comment.at_ms, { play: false })}
    >
      {clock(comment.at_ms)}
      {range && `–${clock(comment.end_ms)}`}
    </button>
  );
}

// ---- Writing ----

let composerCount = 0;

/**
 * Post a comment (a thread) or a reply. A thread is at the moment the player is at (the player
 * pauses while you write, so the moment holds), over a range, or about the whole video.
 */
export function Composer({ video, controller, parent, onPosted, onCancel, onDraft, autoFocus = false }) {
  const [body, setBody] = useState("");
  const [mode, setMode] = useState("moment"); // moment | range | whole
  const [range, setRange] = useState(null);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState(null);
  const [noAccess, setNoAccess] = useState(null);
  // People picked from the suggestions, by handle: those who cannot see the video are asked
  // about before posting (the API would refuse the comment with mention_without_access).
  const picked = useRef(new Map());
  const { time } = useMediaTime(controller);
  const textareaRef = useRef(null);
  const idBase = useRef(`composer-${++composerCount}`).current;
  const hasTimeline = Boolean(video.duration_ms);
  const isReply = Boolean(parent);

  useEffect(() => {
    if (autoFocus && textareaRef.current) textareaRef.current.focus();
  }, [autoFocus]);
  useEffect(() => {
    if (onDraft) onDraft(mode === "range" ? range : null);
  }, [mode, range]); // eslint-disable-line react-hooks/exhaustive-deps
  useEffect(() => () => onDraft && onDraft(null), []); // eslint-disable-line react-hooks/exhaustive-deps

  const setRangeMode = (on) => {
    if (on) {
      const start = controller.timeMs();
      setRange({ start, end: Math.min(video.duration_ms, start + 5000) });
      setMode("range");
    } else setMode("moment");
  };

  const send = async (shareWithMentioned = false) => {
    setBusy(true);
    setError(null);
    const payload = { body };
    if (isReply) payload.parent_id = parent.id;
    else if (hasTimeline && mode === "moment") payload.at_ms = Math.min(controller.timeMs(), video.duration_ms);
    else if (hasTimeline && mode === "range") Object.assign(payload, { at_ms: range.start, end_ms: range.end });
    if (shareWithMentioned) payload.share_with_mentioned = true;
    try {
      const comment = await api(`/videos/${video.id}/comments`, { method: "POST", body: payload, idempotent: true });
      setBody("");
      setNoAccess(null);
      picked.current.clear();
      setMode("moment");
      onPosted(comment);
      toast(isReply ? "Reply posted" : `Comment posted${comment.at_ms !== null ? ` at ${clock(comment.at_ms)}` : ""}`);
    } catch (problem) {
      if (problem.code === "mention_without_access") {
        setNoAccess((problem.problem.errors && problem.problem.errors.mentions_without_access) || []);
      } else setError(problem);
    } finally {
      setBusy(false);
    }
  };

  const onSubmit = (event) => {
    event.preventDefault();
    if (!body.trim()) return;
    if (mode === "range" && !(range && range.end > range.start)) {
      setError(new Error("The range ends before it starts: set its end later than its start."));
      return;
    }
    const blind = [...picked.current.values()].filter(
      (item) => !item.can_see_video && new RegExp(`(^|[^\\w@])@${item.handle.replace(/[.-]/g, "\\$&")}(?![\\w-])`).test(body),
    );
    if (blind.length) setNoAccess(blind);
    else send(false);
  };

  const hintId = `${idBase}-when`;
  return (
    <form class={isReply ? "pl-composer pl-composer-reply" : "pl-composer card"} onSubmit={onSubmit}>
      <MentionTextarea
        videoId={video.id}
        id={`${idBase}-body`}
        label={isReply ? `Reply to ${parent.author.display_name || parent.author.handle}` : "Comment"}
        value={body}
        onInput={setBody}
        onPick={(item) => picked.current.set(item.handle, item)}
        textareaRef={textareaRef}
        describedBy={isReply ? undefined : hintId}
        // Writing about a moment: hold the picture there.
        onFocus={() => !isReply && controller.pause()}
        rows={isReply ? 2 : 3}
      />
      {!isReply && (
        <div class="pl-when">
          <p id={hintId} class="small muted" aria-live="polite">
            {!hasTimeline
              ? "About the whole video (its timeline is not ready yet)."
              : mode === "whole"
                ? "About the whole video."
                : mode === "range" && range
                  ? `Over ${clock(range.start)}–${clock(range.end)}.`
                  : `At ${clock(time)}: pause the video where you mean.`}
          </p>
          {hasTimeline && (
            <div class="row">
              <label class="check">
                <input type="checkbox" checked={mode === "range"} onChange={(event) => setRangeMode(event.currentTarget.checked)} />
                Over a range
              </label>
              <label class="check">
                <input type="checkbox" checked={mode === "whole"} onChange={(event) => setMode(event.currentTarget.checked ? "whole" : "moment")} />
                Whole video
              </label>
            </div>
          )}
          {mode === "range" && range && (
            <div class="row pl-range-set">
              <button type="button" class="button-secondary" onClick={() => setRange((r) => ({ ...r, start: controller.timeMs() }))}>
                Set start ({clock(range.start)})
              </button>
              <button type="button" class="button-secondary" onClick={() => setRange((r) => ({ ...r, end: controller.timeMs() }))}>
                Set end ({clock(range.end)})
              </button>
            </div>
          )}
        </div>
      )}
      {noAccess && (
        <div class="pl-no-access" role="alert">
          <p>
            {noAccess.map((m) => `@${m.handle}`).join(", ") || "Someone you mentioned"} cannot see this video. Share it with{" "}
            {noAccess.length === 1 ? "them" : "them all"} and post, or edit the comment to leave them out.
          </p>
          <div class="row">
            <button type="button" disabled={busy} onClick={() => send(true)}>
              Share and post
            </button>
            <button type="button" class="button-secondary" onClick={() => setNoAccess(null)}>
              Edit comment
            </button>
          </div>
        </div>
      )}
      <ErrorNote error={error} />
      <div class="row">
        <button type="submit" disabled={busy || !body.trim()}>
          {isReply ? "Post reply" : "Post comment"}
        </button>
        {onCancel && (
          <button type="button" class="button-secondary" onClick={onCancel}>
            Cancel
          </button>
        )}
      </div>
    </form>
  );
}

// ---- Reading ----

function canResolve(comment, video, me) {
  // The API decides (403 otherwise); offer it to those it names: the video's author, the
  // thread's author, managers (above the author) and admins.
  return video.owner_id === me.id || comment.author.id === me.id || me.role === "manager" || isAdmin(me);
}

function CommentItem({ comment, thread, video, me, controller, store, highlight, onClip }) {
  const [replying, setReplying] = useState(false);
  const [busy, setBusy] = useState(false);
  const [loadingReplies, setLoadingReplies] = useState(false);
  const isThread = !comment.parent_id;
  const live = comment.state === "visible";

  const act = async (work, done) => {
    setBusy(true);
    try {
      const answer = await work();
      if (answer) store.upsert(answer);
      if (done) toast(done);
    } catch (error) {
      toast(error.message);
    } finally {
      setBusy(false);
    }
  };

  const like = () =>
    act(() => api(`/comments/${comment.id}/like`, { method: comment.liked_by_me ? "DELETE" : "PUT" }).then((answer) => answer || api(`/comments/${comment.id}`)));
  const resolve = () =>
    act(() => api(`/comments/${comment.id}/${comment.resolved_at ? "reopen" : "resolve"}`, { method: "POST", idempotent: true }), comment.resolved_at ? "Thread reopened" : "Thread resolved");
  const remove = async () => {
    if (!window.confirm("Delete this comment?")) return;
    setBusy(true);
    try {
      await api(`/comments/${comment.id}`, { method: "DELETE" });
      // A thread with replies stays as a tombstone: read it back to know which.
      if (isThread && comment.reply_count > 0) store.upsert(await api(`/comments/${comment.id}`));
      else store.remove(comment.id);
      toast("Comment deleted");
    } catch (error) {
      toast(error.message);
    } finally {
      setBusy(false);
    }
  };
  const moreReplies = async () => {
    setLoadingReplies(true);
    try {
      const replies = [];
      let cursor = null;
      do {
        const page = await api(`/comments/${comment.id}/replies`, { query: { cursor, limit: 200 } });
        replies.push(...page.items);
        cursor = page.next_cursor;
      } while (cursor);
      store.replaceReplies(comment.id, replies);
    } catch (error) {
      toast(error.message);
    } finally {
      setLoadingReplies(false);
    }
  };

  const replies = (isThread && comment.replies) || [];
  const name = comment.author.display_name || comment.author.handle;
  return (
    <li
      id={`comment-${comment.id}`}
      tabIndex={-1}
      class={[
        "pl-comment",
        highlight === comment.id ? "pl-highlight" : "",
        comment.resolved_at ? "pl-resolved" : "",
      ].join(" ")}
    >
      <div class="pl-comment-head">
        <Avatar user={comment.author} size={32} />
        <span class="strong">{name}</span>
        {isThread && <TimeButton comment={comment} controller={controller} />}
        <time class="muted small" dateTime={comment.created_at} title={when(comment.created_at)}>
          {ago(comment.created_at)}
        </time>
        {comment.edited_at && <span class="muted small">(edited)</span>}
        {comment.resolved_at && <span class="pill pill-ok">Resolved</span>}
      </div>
      <Body comment={comment} onTap={isThread && comment.at_ms !== null && comment.at_ms !== undefined ? () => controller.seek(comment.at_ms) : undefined} />
      {live && (
        <div class="row pl-actions">
          <button type="button" class="button-quiet" aria-pressed={comment.liked_by_me ? "true" : "false"} disabled={busy} onClick={like}>
            Like
            {comment.like_count > 0 && (<>
                <span class="pl-count" aria-hidden="true">{comment.like_count}</span>
                <span class="visually-hidden">({comment.like_count} like{comment.like_count === 1 ? "" : "s"})</span>
              </>)}
          </button>
          <button type="button" class="button-quiet" aria-expanded={replying ? "true" : "false"} onClick={() => setReplying(!replying)}>
            Reply
          </button>
          {isThread && canResolve(comment, video, me) && (
            <button type="button" class="button-quiet" disabled={busy} onClick={resolve}>
              {comment.resolved_at ? "Reopen" : "Resolve"}
            </button>
          )}
          {onClip && isThread && comment.at_ms !== null && comment.at_ms !== undefined && (
            <button type="button" class="button-quiet" aria-label={`Make a clip of the comment at ${clock(comment.at_ms)}`} onClick={() => onClip(comment)}>
              Clip
            </button>
          )}
          {(comment.author.id === me.id || video.owner_id === me.id || isAdmin(me)) && (
            <button type="button" class="button-quiet pl-delete" disabled={busy} onClick={remove}>
              Delete
            </button>
          )}
        </div>
      )}
      {replies.length > 0 && (
        <ul class="pl-replies" aria-label={`Replies to ${name}`}>
          {replies.map((reply) => (
            <CommentItem key={reply.id} comment={reply} thread={comment} video={video} me={me} controller={controller} store={store} highlight={highlight} />
          ))}
        </ul>
      )}
      {isThread && comment.reply_count > replies.length && (
        <button type="button" class="button-quiet" disabled={loadingReplies} onClick={moreReplies}>
          Show {comment.reply_count - replies.length} more {comment.reply_count - replies.length === 1 ? "reply" : "replies"}
        </button>
      )}
      {replying && (
        <Composer
          video={video}
          controller={controller}
          parent={comment}
          autoFocus
          onCancel={() => setReplying(false)}
          onPosted={(reply) => {
            store.upsert(reply);
            setReplying(false);
          }}
        />
      )}
    </li>
  );
}

export function CommentList({ store, video, me, controller, highlight, onClip }) {
  if (store.error && !store.threads) return <ErrorNote error={store.error} onRetry={store.reload} />;
  if (!store.threads) return <Spinner label="Loading comments" />;
  const open = store.threads.filter((t) => !t.resolved_at).length;
  return (
    <section aria-labelledby="comments-heading">
      <h2 id="comments-heading">
        Comments <span class="muted small">{store.threads.length ? `${open} open of ${store.threads.length}` : ""}</span>
      </h2>
      {store.threads.length === 0 ? (
        <Empty>{video.duration_ms ? "No comments yet. Pause at a moment and say what you see." : "No comments yet."}</Empty>
      ) : (
        <ul class="list pl-comments" aria-label="Comments">
          {store.threads.map((thread) => (
            <CommentItem key={thread.id} comment={thread} video={video} me={me} controller={controller} store={store} highlight={highlight} onClip={onClip} />
          ))}
        </ul>
      )}
    </section>
  );
}

// ---- Reactions ----

export function Reactions({ video, controller, onReacted }) {
  const [set, setSet] = useState([]);
  useEffect(() => {
    api("/reactions").then((answer) => setSet(answer.items), () => setSet([]));
  }, []);
  if (!set.length || !video.duration_ms) return null;
  const react = async (item) => {
    const at = Math.min(controller.timeMs(), video.duration_ms);
    try {
      await api(`/videos/${video.id}/reactions`, { method: "POST", body: { emoji: item.name, at_ms: at }, idempotent: true });
      toast(`Reacted ${item.emoji} at ${clock(at)}`);
      onReacted && onReacted();
    } catch (error) {
      toast(error.message);
    }
  };
  return (
    <div class="pl-reactions" role="group" aria-label="React at this moment">
      {set.map((item) => (
        <button type="button" key={item.name} class="button-quiet pl-reaction" aria-label={`React ${item.name.replace(/_/g, " ")}`} title={item.name.replace(/_/g, " ")} onClick={() => react(item)}>
          <span aria-hidden="true">{item.emoji}</span>
        </button>
      ))}
    </div>
  );
}
