// /videos/:id — the player: the video (signed HLS, storyboard scrubbing, captions), the
// moments heat strip and comment markers, timeline comments, attachments, the transcript and,
// for curators, clips. Deep links: ?t=<ms>&end=<ms> (a clip: play keeps to it),
// ?comment=<id> (highlighted and scrolled to), ?share=<id> (who shared it and their note).
import { useCallback, useEffect, useMemo, useRef, useState } from "preact/hooks";
import { api } from "../api.js";
import { navigate } from "../router.jsx";
import { isCurator } from "../session.jsx";
import { ErrorNote, Page, Spinner, ago, clock } from "../ui.jsx";
import { ShareSheet } from "./share.jsx";
import { canPlayHevc, createController, parseStoryboard } from "./player-media.js";
import { Surface } from "./player-surface.jsx";
import { Timeline } from "./player-timeline.jsx";
import { CommentList, Composer, Reactions, useComments } from "./player-comments.jsx";
import { Attachments, ClipMaker, Transcript } from "./player-extras.jsx";
import "./player.css";

const WAITING = ["awaiting_upload", "uploading", "processing"];
const URL_KEYS = ["hls_url", "mp4_url", "poster_url", "storyboard_url", "captions_url"];
const STATUS_TEXT = {
  awaiting_upload: "Waiting for the upload to start",
  uploading: "Uploading",
  processing: "Processing",
  failed: "Could not be processed",
};

const intParam = (query, name) => {
  const value = query && query.get(name);
  return value !== null && value !== undefined && /^\d+$/.test(value) ? Number(value) : null;
};

const pathOf = (value) => {
  try {
    return new URL(value, location.origin).pathname;
  } catch {
    return value;
  }
};

/**
 * A read of the video gives new signatures each time. While we poll (processing), keep the URLs
 * whose file did not change, so the poster, captions and storyboard are not fetched again;
 * a refresh for an expired grant (`fresh`) takes them all.
 */
function mergeVideo(previous, next, fresh) {
  if (fresh || !previous || !previous.playback || !next.playback) return next;
  const playback = { ...next.playback };
  let kept = false;
  for (const key of URL_KEYS) {
    if (previous.playback[key] && playback[key] && pathOf(previous.playback[key]) === pathOf(playback[key])) {
      playback[key] = previous.playback[key];
      kept = true;
    }
  }
  if (kept) playback.expires_at = Math.min(previous.playback.expires_at || Infinity, next.playback.expires_at || Infinity);
  return { ...next, playback };
}

function playableNow(video) {
  if (!video || !video.playback || !video.playback.hls_url && !video.playback.mp4_url) return false;
  if (video.status === "playable" || video.status === "ready") return true;
  // An HEVC source plays early for browsers that decode HEVC.
  return video.status === "processing" && (video.playback.playable_for || []).includes("hevc") && canPlayHevc();
}

function Processing({ video }) {
  const failed = video.status === "failed";
  return (
    <div class="card pl-waiting">
      {video.playback && video.playback.poster_url && <img class="thumb" src={video.playback.poster_url} alt="" />}
      <p role="status" aria-live="polite">
        <span class={failed ? "pill pill-danger" : "pill pill-warn"}>{STATUS_TEXT[video.status] || video.status}</span>{" "}
        {!failed && video.status === "processing" && `${video.progress || 0}%`}
      </p>
      {!failed && <progress max="100" value={video.progress || 0} aria-label="Processing progress" />}
      {failed ? (
        <p>{(video.failure && video.failure.detail) || "This video could not be made playable."}</p>
      ) : (
        <p class="muted">It plays here as soon as it is ready; this page keeps looking.</p>
      )}
    </div>
  );
}

/**
 * Arriving from a link (?share=, ?comment=) is opening what the notification was about: mark
 * its inbox item opened, so the sender sees "opened" (the app's equivalent of a tapped push).
 */
async function markOpened(shareId, commentId) {
  if (!shareId && !commentId) return;
  try {
    const inbox = await api("/notifications", { query: { limit: 100 } });
    const matches = inbox.items.filter(
      (item) => !item.opened_at && item.data && ((shareId && item.data.share_id === shareId) || (commentId && item.data.comment_id === commentId)),
    );
    await Promise.all(matches.map((item) => api(`/notifications/${item.id}/opened`, { method: "POST", idempotent: true })));
  } catch {
    /* a receipt is a courtesy: never in the way of watching */
  }
}

function ShareNote({ shareId }) {
  const [received, setReceived] = useState(null);
  useEffect(() => {
    if (!shareId) return;
    api(`/shares/${shareId}`).then(
      (share) => setReceived(share.received),
      () => setReceived(null), // recalled or not for us: the video itself still decides
    );
  }, [shareId]);
  if (!received) return null;
  const sender = received.sender.display_name || received.sender.handle;
  return (
    <div class="card pl-share-note">
      <p class="small muted">
        Shared by <span class="strong">{sender}</span> {ago(received.shared_at)}
      </p>
      {received.message && <p class="pl-body">{received.message}</p>}
    </div>
  );
}

/** Keyed by the video: another video is a fresh screen (its state, its player, its view). */
export function Player(props) {
  return <PlayerScreen key={props.id} {...props} />;
}

function PlayerScreen({ id, query, me }) {
  const [video, setVideo] = useState(null);
  const [error, setError] = useState(null);
  const [mediaVersion, setMediaVersion] = useState(0);
  const [storyboard, setStoryboard] = useState(null);
  const [moments, setMoments] = useState(null);
  const [sharing, setSharing] = useState(false);
  const [draftRange, setDraftRange] = useState(null);
  const [clipDraft, setClipDraft] = useState(null);
  const [clipPreset, setClipPreset] = useState(null);
  const startMs = intParam(query, "t");
  const endMs = intParam(query, "end");
  const highlightId = query && query.get("comment");
  const shareId = query && query.get("share");
  const [clip, setClip] = useState(endMs !== null ? { start: startMs || 0, end: endMs } : null);
  const controller = useMemo(() => {
    const made = createController();
    if (startMs) made.pendingSeekMs = startMs;
    return made;
  }, [id]); // eslint-disable-line react-hooks/exhaustive-deps
  const store = useComments(id);

  // A new link to the same video (a notification tapped while here): go to its moment and range.
  const linked = useRef(`${startMs}-${endMs}`);
  useEffect(() => {
    const key = `${startMs}-${endMs}`;
    if (linked.current === key) return;
    linked.current = key;
    setClip(endMs !== null ? { start: startMs || 0, end: endMs } : null);
    if (startMs !== null) controller.seek(startMs);
  }, [startMs, endMs]); // eslint-disable-line react-hooks/exhaustive-deps
  const videoRef = useRef(null);
  videoRef.current = video;

  const load = useCallback(
    async ({ fresh = false } = {}) => {
      try {
        const next = await api(`/videos/${id}`);
        setVideo((previous) => mergeVideo(previous, next, fresh));
        setError(null);
        if (fresh) setMediaVersion((v) => v + 1);
        return next;
      } catch (problem) {
        setError(problem);
        return null;
      }
    },
    [id],
  );

  useEffect(() => {
    markOpened(shareId, highlightId);
  }, [id, shareId, highlightId]);

  useEffect(() => {
    setVideo(null);
    setError(null);
    setStoryboard(null);
    setMoments(null);
    load();
  }, [id, load]);

  // Follow processing: quickly until it plays, then until the ladder and storyboard are made.
  const status = video && video.status;
  useEffect(() => {
    if (!status || status === "ready" || status === "failed") return undefined;
    const timer = setTimeout(() => !document.hidden && load(), WAITING.includes(status) ? 3000 : 10000);
    return () => clearTimeout(timer);
  }, [status, video, load]);

  // Signed URLs expire (expires_at): read the video again a minute before.
  const expiresAt = video && video.playback && video.playback.expires_at;
  useEffect(() => {
    if (!expiresAt) return undefined;
    const wait = Math.min(2 ** 31 - 1, Math.max(5000, expiresAt * 1000 - Date.now() - 60000));
    const timer = setTimeout(() => load({ fresh: true }), wait);
    return () => clearTimeout(timer);
  }, [expiresAt, load]);

  // The storyboard: a WebVTT of sprite frames; the sprites' own size scales the preview.
  const storyboardUrl = video && video.playback && video.playback.storyboard_url;
  useEffect(() => {
    if (!storyboardUrl) return undefined;
    let stopped = false;
    fetch(storyboardUrl, { credentials: "omit" })
      .then((response) => (response.ok ? response.text() : Promise.reject(new Error(String(response.status)))))
      .then((text) => {
        const cues = parseStoryboard(text, storyboardUrl);
        const sources = [...new Set(cues.map((cue) => cue.src))];
        sources.forEach((src) => {
          const image = new Image();
          image.onload = () => {
            if (stopped) return;
            const sheet = { w: image.naturalWidth, h: image.naturalHeight };
            setStoryboard((list) => (list || cues).map((cue) => (cue.src === src ? { ...cue, sheet } : cue)));
          };
          image.src = src;
        });
        if (!stopped) setStoryboard(cues);
      })
      .catch(() => !stopped && setStoryboard(null)); // scrubbing still works, without pictures
    return () => {
      stopped = true;
    };
  }, [storyboardUrl && pathOf(storyboardUrl), mediaVersion]); // eslint-disable-line react-hooks/exhaustive-deps

  // The heat strip follows the conversation.
  const threadCount = store.threads ? store.threads.reduce((n, t) => n + 1 + (t.reply_count || 0), 0) : 0;
  const loadMoments = useCallback(() => {
    api(`/videos/${id}/moments`, { query: { buckets: 100 } }).then(setMoments, () => setMoments(null));
  }, [id]);
  const hasDuration = Boolean(video && video.duration_ms);
  useEffect(() => {
    if (hasDuration) loadMoments();
  }, [hasDuration, threadCount, loadMoments]);

  // ?comment=: scroll to it and mark it, once the comments are here (a later reply is fetched).
  const highlighted = useRef(null);
  useEffect(() => {
    if (!highlightId || !store.threads || highlighted.current === highlightId) return;
    highlighted.current = highlightId;
    const reveal = (comment) => {
      if (startMs === null && comment && comment.at_ms !== null && comment.at_ms !== undefined) controller.seek(comment.at_ms);
      requestAnimationFrame(() => {
        const el = document.getElementById(`comment-${highlightId}`);
        if (el) {
          el.scrollIntoView({ block: "center", behavior: "smooth" });
          el.focus({ preventScroll: true });
        }
      });
    };
    const known = store.threads.flatMap((t) => [t, ...(t.replies || [])]).find((c) => c.id === highlightId);
    if (known) {
      reveal(known);
      return;
    }
    (async () => {
      try {
        const comment = await api(`/comments/${highlightId}`);
        if (comment.parent_id) {
          const replies = [];
          let cursor = null;
          do {
            const page = await api(`/comments/${comment.parent_id}/replies`, { query: { cursor, limit: 200 } });
            replies.push(...page.items);
            cursor = page.next_cursor;
          } while (cursor);
          store.replaceReplies(comment.parent_id, replies);
        } else store.upsert(comment);
        reveal(comment);
      } catch {
        /* gone or hidden: the video still opens */
      }
    })();
  }, [highlightId, store.threads]); // eslint-disable-line react-hooks/exhaustive-deps

  const markers = useMemo(
    () =>
      (store.threads || [])
        .filter((t) => t.at_ms !== null && t.at_ms !== undefined && t.state === "visible")
        .map((t) => ({ id: t.id, at: t.at_ms, resolved: Boolean(t.resolved_at) })),
    [store.threads],
  );

  if (error && !video) {
    return (
      <Page title="Video">
        <ErrorNote error={error.status === 404 ? new Error("This video is not here: it was removed, or it is not shared with you.") : error} onRetry={error.status === 404 ? undefined : () => load()} />
        {error.status === 404 && (
          <button type="button" class="button-secondary" onClick={() => navigate("/")}>
            Back to the feed
          </button>
        )}
      </Page>
    );
  }
  if (!video) {
    return (
      <Page title="Video">
        <Spinner label="Opening the video" />
      </Page>
    );
  }

  const canPlay = playableNow(video);
  return (
    <Page
      title={video.title}
      wide
      actions={
        video.status !== "failed" && (
          <button type="button" class="button-secondary" onClick={() => setSharing(true)}>
            Share
          </button>
        )
      }
    >
      <div class="pl-layout">
        <div class="pl-main">
          <ShareNote shareId={shareId} />
          {canPlay ? (
            <Surface video={video} controller={controller} startMs={startMs || 0} clip={clip} mediaVersion={mediaVersion} onExpired={() => load({ fresh: true })} />
          ) : (
            <Processing video={video} />
          )}
          {canPlay && (
            <Timeline
              controller={controller}
              durationMs={video.duration_ms}
              storyboard={storyboard}
              moments={moments}
              markers={markers}
              clip={clip}
              draft={draftRange || clipDraft}
            />
          )}
          {clip && (
            <p class="row small pl-clip-note">
              <span>
                Playing the clip {clock(clip.start)}–{clock(clip.end)}.
              </span>
              <button type="button" class="button-quiet" onClick={() => setClip(null)}>
                Watch the whole video
              </button>
            </p>
          )}
          {canPlay && <Reactions video={video} controller={controller} onReacted={loadMoments} />}
          {error && <ErrorNote error={error} />}
          {video.description && <p class="pl-body pl-description">{video.description}</p>}
          {video.deal && (
            <p class="small">
              <span class="pill">{video.deal.name}</span> <span class="muted">{video.deal.account}</span>
            </p>
          )}
        </div>
        <div class="pl-side">
          {video.status !== "failed" && <Composer video={video} controller={controller} onPosted={store.upsert} onDraft={setDraftRange} />}
          <CommentList
            store={store}
            video={video}
            me={me}
            controller={controller}
            highlight={highlightId}
            onClip={isCurator(me) && canPlay ? (comment) => setClipPreset({ ...comment }) : undefined}
          />
        </div>
        <div class="pl-more">
          <Attachments videoId={video.id} attachments={video.attachments} />
          <Transcript video={video} controller={controller} onCaptionsReady={() => load()} />
          {isCurator(me) && canPlay && <ClipMaker video={video} controller={controller} onDraft={setClipDraft} preset={clipPreset} />}
        </div>
      </div>
      {sharing && <ShareSheet video={video} onClose={() => setSharing(false)} />}
    </Page>
  );
}
