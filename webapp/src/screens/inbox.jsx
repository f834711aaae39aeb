// The inbox (/inbox) and the unread badge of the bottom bar. The list is kept current by delta
// sync (`updated_since` with the listing's sync_token): a refresh costs only what changed.
import { useCallback, useEffect, useRef, useState } from "preact/hooks";
import { api } from "../api.js";
import { Link, appPath, navigate } from "../router.jsx";
import { Empty, ErrorNote, Page, Spinner, ago, toast, when } from "../ui.jsx";
import "./inbox.css";

export { ShareTracking } from "./share-tracking.jsx";

const CHANGED = "fieldcast:notifications-changed";
const POLL_MS = 30000;
const PAGE = 30;

/** Tell the badge (and any other listener) that the inbox changed; with a count, no refetch. */
function announce(unreadCount, source) {
  window.dispatchEvent(new CustomEvent(CHANGED, { detail: { unread_count: unreadCount, source } }));
}

/** The unread count for the bottom bar's badge: GET /notifications?unread_only&limit=1 (the count
 * comes with any page) every 30 s while visible, on becoming visible, and when told. */
export function useUnread(me) {
  const [count, setCount] = useState(0);
  const userId = me && me.id;
  useEffect(() => {
    if (!userId) return undefined;
    let controller = null;
    const show = (n) => {
      setCount(n);
      // The installed app's icon badge too, where the platform has one.
      if (navigator.setAppBadge) (n ? navigator.setAppBadge(n) : navigator.clearAppBadge()).catch(() => {});
    };
    const check = () => {
      if (document.visibilityState !== "visible") return;
      if (controller) controller.abort();
      controller = new AbortController();
      api("/notifications", { query: { unread_only: true, limit: 1 }, signal: controller.signal }).then(
        (page) => show(page.unread_count),
        () => {}, // A missed poll is retried in 30 s; the badge keeps its last count.
      );
    };
    const onChanged = (event) => {
      const n = event.detail && event.detail.unread_count;
      if (typeof n === "number") show(n);
      else check();
    };
    check();
    const timer = setInterval(check, POLL_MS);
    window.addEventListener(CHANGED, onChanged);
    document.addEventListener("visibilitychange", check);
    return () => {
      clearInterval(timer);
      if (controller) controller.abort();
      window.removeEventListener(CHANGED, onChanged);
      document.removeEventListener("visibilitychange", check);
    };
  }, [userId]);
  return count;
}

/** Where an item leads in the app, or null (an item about nothing openable). */
function targetOf(item) {
  const data = item.data || {};
  if (item.video_state === "removed") return null;
  if (data.link) return appPath(data.link);
  if (data.video_id) {
    const query = new URLSearchParams();
    if (data.share_id) query.set("share", data.share_id);
    if (data.comment_id) query.set("comment", data.comment_id);
    if (data.at_ms !== undefined && data.at_ms !== "") query.set("t", data.at_ms);
    const search = query.toString();
    return `/videos/${data.video_id}${search ? `?${search}` : ""}`;
  }
  if (data.saved_search_id) return `/search?saved=${encodeURIComponent(data.saved_search_id)}`;
  if (item.type.startsWith("assignment.")) return "/learning";
  return null;
}

const ICONS = {
  "share.received": "↗",
  "video.playable": "▶",
  "video.failed": "!",
  "comment.mention": "@",
  "comment.reply": "↩",
  "comment.new": "✎",
  "question.answer": "?",
  "answer.accepted": "✓",
  "content.hidden": "⊘",
  "search.matches": "⌕",
};

function upsert(items, changed, deleted) {
  const gone = new Set(deleted);
  const byId = new Map(changed.map((item) => [item.id, item]));
  const kept = items.filter((item) => !gone.has(item.id)).map((item) => byId.get(item.id) || item);
  const known = new Set(items.map((item) => item.id));
  const added = changed.filter((item) => !known.has(item.id) && !gone.has(item.id));
  return [...added, ...kept].sort((a, b) => (a.created_at < b.created_at ? 1 : a.created_at > b.created_at ? -1 : 0));
}

export function Inbox() {
  const [state, setState] = useState({ items: null, cursor: null, unread: 0, error: null });
  const [busy, setBusy] = useState(false);
  const token = useRef(null);
  const syncing = useRef(false);

  const loadFirst = useCallback(async () => {
    try {
      const page = await api("/notifications", { query: { limit: PAGE } });
      token.current = page.sync_token;
      setState({ items: page.items, cursor: page.next_cursor, unread: page.unread_count, error: null });
      announce(page.unread_count, "inbox");
    } catch (error) {
      setState((s) => ({ ...s, items: s.items || [], error }));
    }
  }, []);

  // What changed since the last listing: upsert, drop the deleted, follow the delta's pages.
  const sync = useCallback(async () => {
    if (!token.current || syncing.current || document.visibilityState !== "visible") return;
    syncing.current = true;
    try {
      let changed = [];
      let deleted = [];
      let cursor = null;
      let page;
      do {
        page = await api("/notifications", { query: { updated_since: token.current, cursor, limit: 100 } });
        changed = changed.concat(page.items);
        deleted = deleted.concat(page.deleted);
        cursor = page.next_cursor;
      } while (cursor);
      token.current = page.sync_token;
      setState((s) => ({ ...s, items: upsert(s.items || [], changed, deleted), unread: page.unread_count, error: null }));
      announce(page.unread_count, "inbox");
    } catch (error) {
      if (error.status === 410 || error.code === "sync_token_expired" || error.code === "invalid_sync_token") await loadFirst();
    } finally {
      syncing.current = false;
    }
  }, [loadFirst]);

  useEffect(() => {
    loadFirst();
    const timer = setInterval(sync, POLL_MS);
    const onChanged = (event) => !(event.detail && event.detail.source === "inbox") && sync();
    window.addEventListener(CHANGED, onChanged);
    document.addEventListener("visibilitychange", sync);
    return () => {
      clearInterval(timer);
      window.removeEventListener(CHANGED, onChanged);
      document.removeEventListener("visibilitychange", sync);
    };
  }, [loadFirst, sync]);

  const more = async () => {
    setBusy(true);
    try {
      const page = await api("/notifications", { query: { limit: PAGE, cursor: state.cursor } });
      setState((s) => ({ ...s, items: upsert(s.items, page.items, []), cursor: page.next_cursor }));
    } catch (error) {
      setState((s) => ({ ...s, error }));
    } finally {
      setBusy(false);
    }
  };

  // Read the current list from a ref so the badge is told outside of a state update.
  const latest = useRef(state);
  latest.current = state;
  const markLocal = (id, fields) => {
    const s = latest.current;
    const wasUnread = s.items.some((item) => item.id === id && !item.read_at);
    const unread = Math.max(0, s.unread - (wasUnread && fields.read_at ? 1 : 0));
    const items = s.items.map((item) => (item.id === id ? { ...item, ...fields } : item));
    setState({ ...s, items, unread });
    announce(unread, "inbox");
  };

  // Opening an item is the web's "tap on the push": `opened` tells the sender, and reads it.
  const open = (item, event) => {
    const path = targetOf(item);
    // A new-tab click keeps the browser's way; the receipt is sent all the same.
    const newTab = event && (event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey);
    if (event && !newTab) event.preventDefault();
    const now = new Date().toISOString();
    if (!item.opened_at) {
      markLocal(item.id, { read_at: item.read_at || now, opened_at: now });
      api(`/notifications/${item.id}/opened`, { method: "POST", idempotent: true }).then(
        () => announce(undefined, "opened"),
        () => {},
      );
    }
    if (path && !newTab) navigate(path);
  };

  const markRead = async (item) => {
    try {
      markLocal(item.id, { read_at: new Date().toISOString() });
      await api(`/notifications/${item.id}/read`, { method: "POST", idempotent: true });
    } catch (error) {
      setState((s) => ({ ...s, error }));
    }
  };

  const markAll = async () => {
    setBusy(true);
    try {
      const answer = await api("/notifications/read-all", { method: "POST", idempotent: true });
      const now = new Date().toISOString();
      setState((s) => ({ ...s, unread: answer.unread_count, items: s.items.map((item) => (item.read_at ? item : { ...item, read_at: now })) }));
      announce(answer.unread_count, "inbox");
      toast(answer.marked ? `${answer.marked} marked read` : "Nothing was unread");
    } catch (error) {
      setState((s) => ({ ...s, error }));
    } finally {
      setBusy(false);
    }
  };

  const { items, unread, error, cursor } = state;
  return (
    <Page
      title="Inbox"
      actions={
        <button type="button" class="button-secondary" onClick={markAll} disabled={busy}>
          Mark all read
        </button>
      }
    >
      <p class="muted" aria-live="polite">
        {items ? (unread ? `${unread} unread` : "All caught up") : ""}
      </p>
      <ErrorNote error={error} onRetry={loadFirst} />
      {!items ? (
        <Spinner label="Loading your inbox" />
      ) : items.length === 0 ? (
        <Empty>Nothing yet. Shares, replies and answers to your questions show up here.</Empty>
      ) : (
        <ul class="list inbox-list" aria-label="Notifications">
          {items.map((item) => {
            const path = targetOf(item);
            const unreadItem = !item.read_at;
            const content = (
              <>
                <span class="inbox-icon" aria-hidden="true">
                  {ICONS[item.type] || "•"}
                </span>
                <span class="inbox-text">
                  <span class="inbox-title">
                    {unreadItem && <span class="visually-hidden">Unread: </span>}
                    {item.title}
                  </span>
                  {item.body && <span class="inbox-body">{item.body}</span>}
                  <span class="inbox-time small muted" title={when(item.created_at)}>
                    {ago(item.created_at)}
                    {item.video_state === "removed" && " · the video is no longer available"}
                  </span>
                </span>
              </>
            );
            return (
              <li key={item.id} class={unreadItem ? "inbox-item unread" : "inbox-item"}>
                {path ? (
                  <Link href={path} class="inbox-link" onClickCapture={(e) => open(item, e)}>
                    {content}
                  </Link>
                ) : unreadItem ? (
                  <button type="button" class="inbox-link inbox-static" onClick={() => open(item)}>
                    {content}
                  </button>
                ) : (
                  <div class="inbox-link inbox-static">{content}</div>
                )}
                {unreadItem && (
                  <button type="button" class="button-quiet inbox-mark" onClick={() => markRead(item)} aria-label={`Mark read: ${item.title}`}>
                    <span class="inbox-dot" aria-hidden="true" />
                  </button>
                )}
              </li>
            );
          })}
        </ul>
      )}
      {cursor && (
        <p>
          <button type="button" class="button-secondary" onClick={more} disabled={busy}>
            Show older
          </button>
        </p>
      )}
    </Page>
  );
}
