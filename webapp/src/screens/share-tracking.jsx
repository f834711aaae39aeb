// /shares/:id: how far a share got. The sender (their managers, admins) see every recipient's
// state, refreshed every 15 s while the page is visible; a recipient sees the share as it
// reached them.
import { useEffect, useState } from "preact/hooks";
import { all, api } from "../api.js";
import { Link } from "../router.jsx";
import { isAdmin } from "../session.jsx";
import { Avatar, Empty, ErrorNote, Page, Spinner, ago, useAsync, when } from "../ui.jsx";
import "./share.css";

// The API's recipient states, in the order a share moves through them.
const STATES = ["queued", "sent", "delivered", "opened", "watched", "failed"];
const PILL = {
  queued: "pill pill-muted",
  sent: "pill",
  delivered: "pill",
  opened: "pill pill-warn",
  watched: "pill pill-ok",
  failed: "pill pill-danger",
};
const REFRESH_MS = 15000;
const PAGE = 50;

const people = (n) => `${n} ${n === 1 ? "person" : "people"}`;

/** Calls `reload` every 15 s while the page is visible, and as soon as it becomes visible again. */
function useLiveRefresh(reload, enabled) {
  useEffect(() => {
    if (!enabled) return undefined;
    const timer = setInterval(() => document.visibilityState === "visible" && reload(), REFRESH_MS);
    const onVisible = () => document.visibilityState === "visible" && reload();
    document.addEventListener("visibilitychange", onVisible);
    return () => {
      clearInterval(timer);
      document.removeEventListener("visibilitychange", onVisible);
    };
  }, [reload, enabled]);
}

/** Current counts per state as one stacked bar (role=img), with a table of how far people got. */
function StateBar({ share, insights }) {
  const counts = share.counts || {};
  const total = share.recipient_count || 0;
  const present = STATES.filter((s) => counts[s] > 0);
  const label = total
    ? `Of ${people(total)}: ${present.map((s) => `${counts[s]} ${s}`).join(", ")}`
    : "Nobody received this share";
  const reached = share.reached || {};
  return (
    <section class="card" aria-labelledby="share-progress-title">
      <h2 id="share-progress-title" class="share-card-title">How far it got</h2>
      <div class="share-bar" role="img" aria-label={label}>
        {present.map((s) => (
          <span key={s} class={`share-state-${s}`} style={{ flexGrow: counts[s] }} />
        ))}
      </div>
      <ul class="share-legend" aria-hidden="true">
        {present.map((s) => (
          <li key={s}>
            <span class={`share-swatch share-state-${s}`} /> {counts[s]} {s}
          </li>
        ))}
      </ul>
      <table class="share-table">
        <caption class="visually-hidden">People who got at least this far, of {people(total)}</caption>
        <thead>
          <tr>
            <th scope="col">At least</th>
            <th scope="col">People</th>
          </tr>
        </thead>
        <tbody>
          {["sent", "delivered", "opened", "watched"].map((s) => (
            <tr key={s}>
              <th scope="row">{s}</th>
              <td>
                {reached[s] ?? 0} of {total}
              </td>
            </tr>
          ))}
          {counts.failed > 0 && (
            <tr>
              <th scope="row">failed</th>
              <td>{counts.failed}</td>
            </tr>
          )}
          {insights && (
            <tr>
              <th scope="row">completed</th>
              <td>
                {insights.completed} of {insights.viewers} viewers
              </td>
            </tr>
          )}
        </tbody>
      </table>
      {insights && insights.viewers > 0 && (
        <p class="small muted">
          On average viewers watched {Math.round(insights.average_share * 100)}% of it (counted {ago(insights.computed_at)}).
        </p>
      )}
    </section>
  );
}

function RecipientRow({ recipient, progress }) {
  const { user, state } = recipient;
  const at = recipient[`${state}_at`];
  const share = progress ? Math.round((progress.share || 0) * 100) : null;
  return (
    <li class="share-person">
      <Avatar user={user} size={36} />
      <div class="share-person-main">
        <span class="strong">{user.display_name || user.handle}</span>
        <span class="small muted">
          @{user.handle}
          {at && ` · ${state} ${ago(at)}`}
          {state === "failed" && recipient.failure_reason && ` · ${recipient.failure_reason.replace(/_/g, " ")}`}
        </span>
        {progress && progress.played_ms > 0 && (
          <>
            <div class="share-progress" role="img" aria-label={`Watched ${share}%`}>
              <span style={{ width: `${share}%` }} />
            </div>
            <span class="small muted">
              Watched {share}%{progress.completed_at ? " · completed" : ""}
              {progress.views > 1 ? ` · ${progress.views} views` : ""}
            </span>
          </>
        )}
      </div>
      <span class={`${PILL[state] || "pill"} share-state`} title={at ? when(at) : undefined}>
        {state}
      </span>
    </li>
  );
}

/** What a recipient sees: who shared it, their note, the video. */
function Received({ share }) {
  const got = share.received;
  return (
    <Page title="Shared with you">
      <div class="card">
        <p>
          <span class="strong">{got.sender.display_name || got.sender.handle}</span> shared{" "}
          <span class="strong">{got.video.title || "a video"}</span> {ago(got.shared_at)}.
        </p>
        {got.message && <p class="share-quote">“{got.message}”</p>}
        <p>
          <Link class="button" href={`/videos/${got.video.id}?share=${share.id}`}>
            Watch the video
          </Link>
        </p>
      </div>
    </Page>
  );
}

export function ShareTracking({ id, me }) {
  const [shown, setShown] = useState(PAGE);
  const [filter, setFilter] = useState("");
  const [confirming, setConfirming] = useState(false);
  const [recalling, setRecalling] = useState(false);
  const [actionError, setActionError] = useState(null);

  const { data, error, loading, reload } = useAsync(
    async (signal) => {
      const share = await api(`/shares/${id}`, { signal });
      if (!share.counts) return { share };
      const query = { state: filter || undefined, limit: Math.min(shown, 100) };
      const [recipients, insights, progress] = await Promise.all([
        all(`/shares/${id}/recipients`, { query, limit: shown }),
        // The watch figures are a bonus: the states above stand without them.
        api(`/shares/${id}/insights`, { signal }).catch(() => null),
        all(`/shares/${id}/insights/recipients`, { query: { limit: 100 }, limit: Math.max(shown, 100) }).catch(() => []),
      ]);
      return { share, recipients, insights, progress: new Map(progress.map((p) => [p.user_id, p])) };
    },
    [id, shown, filter],
  );
  useLiveRefresh(reload, Boolean(data && data.share.counts && !data.share.recalled_at));

  const video = useAsync(
    // Its sender (or an admin) may read the video; a following manager often may not (404).
    (signal) =>
      data && data.share.video_id && (data.share.sender_id === me.id || isAdmin(me))
        ? api(`/videos/${data.share.video_id}`, { signal }).catch(() => null)
        : Promise.resolve(null),
    [data && data.share.video_id],
  );

  // A manager or an admin following someone else's share: say whose it is.
  const senderId = data && data.share.sender_id;
  const sender = useAsync(
    (signal) => (senderId && senderId !== me.id ? api(`/users/${senderId}`, { signal }).catch(() => null) : Promise.resolve(null)),
    [senderId],
  );

  if (!data) {
    if (error) {
      return (
        <Page title="Share">
          <ErrorNote
            error={error.status === 404 ? new Error("This share is not there, or not yours to follow: it may have been recalled, or its video deleted.") : error}
            onRetry={error.status === 404 ? undefined : reload}
          />
        </Page>
      );
    }
    return (
      <Page title="Share">
        <Spinner label="Loading the share" />
      </Page>
    );
  }

  const { share, recipients, insights, progress } = data;
  if (!share.counts && share.received) return <Received share={share} />;

  const mayRecall = !share.recalled_at && (share.sender_id === me.id || isAdmin(me));
  const title = video.data ? video.data.title : null;
  const filteredTotal = filter ? (share.counts || {})[filter] || 0 : share.recipient_count || 0;

  const recall = async () => {
    setRecalling(true);
    setActionError(null);
    try {
      await api(`/shares/${id}/recall`, { method: "POST", idempotent: true });
      setConfirming(false);
      reload();
    } catch (e) {
      if (e.status === 403) e.message = "Only the person who shared it, or an admin, may recall this share.";
      setActionError(e);
    } finally {
      setRecalling(false);
    }
  };

  return (
    <Page
      title="Share"
      actions={
        <button type="button" class="button-secondary" onClick={reload} aria-busy={loading ? "true" : "false"}>
          Refresh
        </button>
      }
    >
      <div class="card">
        <p>
          {title ? (
            <Link href={`/videos/${share.video_id}`} class="strong">
              {title}
            </Link>
          ) : (
            <Link href={`/videos/${share.video_id}`}>Open the video</Link>
          )}
        </p>
        <p class="small muted">
          {sender.data ? `${sender.data.display_name || sender.data.handle} shared it` : "Shared"} {when(share.created_at)} with{" "}
          {people(share.recipient_count || 0)}
          {share.status === "waiting_for_video" && " · waiting for the video to be ready"}
        </p>
        {share.message && <p class="share-quote">“{share.message}”</p>}
        {share.recalled_at && (
          <p class="pill pill-danger" role="status">
            Recalled {ago(share.recalled_at)}
          </p>
        )}
      </div>

      <StateBar share={share} insights={insights} />

      <section aria-labelledby="share-recipients-title">
        <div class="row">
          <h2 id="share-recipients-title" class="grow">
            Who got it
          </h2>
          <label class="share-filter small" for="share-filter">
            Show
            <select
              id="share-filter"
              value={filter}
              onChange={(e) => {
                setFilter(e.currentTarget.value);
                setShown(PAGE);
              }}
            >
              <option value="">everyone</option>
              {STATES.map((s) => (
                <option key={s} value={s}>
                  {s} ({(share.counts || {})[s] || 0})
                </option>
              ))}
            </select>
          </label>
        </div>
        <p class="visually-hidden" aria-live="polite">
          {share.reached ? `${share.reached.opened} opened, ${share.reached.watched} watched.` : ""}
        </p>
        {error && <ErrorNote error={error} onRetry={reload} />}
        {recipients.length ? (
          <ul class="list" aria-label="Recipients">
            {recipients.map((r) => (
              <RecipientRow key={r.user.id} recipient={r} progress={progress.get(r.user.id)} />
            ))}
          </ul>
        ) : (
          <Empty>{filter ? `Nobody is ${filter}.` : "Recipients appear here moments after the share."}</Empty>
        )}
        {recipients.length < filteredTotal && recipients.length >= shown && (
          <p>
            <button type="button" class="button-secondary" onClick={() => setShown(shown + PAGE)}>
              Show more people
            </button>
          </p>
        )}
        <p class="small muted">Refreshes every 15 seconds while this page is open.</p>
      </section>

      {mayRecall && (
        <section class={confirming ? "card share-confirm" : ""} aria-labelledby="share-recall-title">
          <h2 id="share-recall-title" class={confirming ? "" : "visually-hidden"}>
            Recall
          </h2>
          {confirming ? (
            <>
              <p>Recipients lose the video unless another share gives it to them. Pushes not yet sent are dropped.</p>
              <ErrorNote error={actionError} />
              <div class="row">
                <button type="button" class="button-danger" onClick={recall} disabled={recalling}>
                  {recalling ? "Recalling…" : "Yes, recall it"}
                </button>
                <button type="button" class="button-secondary" onClick={() => setConfirming(false)}>
                  Keep it
                </button>
              </div>
            </>
          ) : (
            <button type="button" class="button-danger" onClick={() => setConfirming(true)}>
              Recall share
            </button>
          )}
        </section>
      )}
    </Page>
  );
}
