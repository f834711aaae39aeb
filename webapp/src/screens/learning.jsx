// Learning: what I must watch (assignments, with due dates and progress), declining or asking
// for more time, what is featured, my points; for managers, their people's learning. Also the
// top clips board. Collections live in collection.jsx (re-exported here for the route table).
import { useEffect, useRef, useState } from "preact/hooks";
import { all, api } from "../api.js";
import { Link, navigate } from "../router.jsx";
import { isAdmin, isCurator } from "../session.jsx";
import { Empty, ErrorNote, Page, Spinner, ago, toast, useAsync, FormEnd } from "../ui.jsx";
import {
  LearnTabs,
  Poster,
  REASONS,
  REASON_LABEL,
  STATE_LABEL,
  STATE_PILL,
  clipHref,
  dateInput,
  dayText,
  endOfDay,
  rangeText,
  titleOf,
  AssignmentSummary,
  withCounts,
} from "./learning-common.jsx";
import "./learning.css";

export { Collections, CollectionView } from "./collection.jsx";

const FILTERS = [
  ["open", "To do"],
  ["overdue", "Overdue"],
  ["completed", "Done"],
  ["excused", "Excused"],
  ["all", "All"],
];

export function Learning({ me, query }) {
  return (
    <Page title="Learning">
      <LearnTabs current="/learning" />
      <MyLearning me={me} initial={query.get("state")} />
      {isCurator(me) && <RequestsToAnswer me={me} />}
      {isCurator(me) && <TeamLearning />}
      <PointsCard />
      <Featured />
      {isCurator(me) && <AssignedByMe me={me} />}
      {isAdmin(me) && <ReasonsCard />}
    </Page>
  );
}

/** /learning/team (the link in a manager's reminder): the team's learning on its own. */
export function TeamLearningPage() {
  return (
    <Page title="Team learning">
      <LearnTabs current="/learning" />
      <TeamLearning />
    </Page>
  );
}

function MyLearning({ me, initial }) {
  // The filter lives in the address (?state=...), so a reload or the back button keeps it.
  const filter = FILTERS.some(([key]) => key === initial) ? initial : "open";
  const list = useAsync(
    async (signal) => {
      const [items, requests] = await Promise.all([
        all("/me/learning", { query: { state: filter, limit: 200 }, limit: 500 }),
        // My waiting requests: the row says "waiting for an answer" instead of offering a second one.
        api("/assignment-requests", { query: { pending: true, limit: 500 }, signal }).catch(() => ({ items: [] })),
      ]);
      const pending = new Map();
      for (const request of requests.items) if (request.user_id === me.id) pending.set(request.assignment_id, request);
      return { items, pending };
    },
    [filter, me.id],
  );
  const choose = (key) => {
    navigate(key === "open" ? "/learning" : `/learning?state=${key}`, { replace: true });
  };
  const overdue = list.data ? list.data.items.filter((item) => item.overdue).length : 0;
  return (
    <section aria-labelledby="my-learning-heading" class="learn-section">
      <div class="row learn-section-head">
        <h2 id="my-learning-heading" class="grow">
          My learning
        </h2>
        {overdue > 0 && filter !== "overdue" && <span class="pill pill-danger">{overdue} overdue</span>}
      </div>
      <div class="learn-filters" role="group" aria-label="Which assignments">
        {FILTERS.map(([key, label]) => (
          <button
            key={key}
            type="button"
            class={filter === key ? "learn-chip" : "learn-chip button-secondary"}
            aria-pressed={filter === key ? "true" : "false"}
            onClick={() => choose(key)}
          >
            {label}
          </button>
        ))}
      </div>
      {list.error && <ErrorNote error={list.error} onRetry={list.reload} />}
      {list.loading && !list.data && <Spinner label="Loading your learning" />}
      {list.data && list.data.items.length === 0 && (
        <Empty>
          {filter === "open"
            ? "Nothing to watch right now. When someone assigns you a video or a collection, it shows here."
            : "Nothing here."}
        </Empty>
      )}
      {list.data && list.data.items.length > 0 && (
        <ul class="list learn-list" aria-label="My learning">
          {list.data.items.map((item) => (
            <LearningItem
              key={item.assignment_id}
              item={item}
              pending={list.data.pending.get(item.assignment_id)}
              onChanged={list.reload}
            />
          ))}
        </ul>
      )}
    </section>
  );
}

function LearningItem({ item, pending, onChanged }) {
  const [asking, setAsking] = useState(null); // null | "decline" | "more_time"
  const declineButton = useRef(null);
  const gone = (item.collection && !item.collection.available) || (item.clip && !item.clip.available);
  const title = gone && !item.title ? (item.collection ? "A collection that was removed" : "A video that was removed") : titleOf(item);
  const headingId = `learn-${item.assignment_id}`;
  const pct = Math.round((item.progress || 0) * 100);
  const open = item.state === "not_started" || item.state === "in_progress";
  let href = null;
  let what = "";
  if (item.collection) {
    href = item.collection.available ? `/collections/${item.collection.id}` : null;
    what = `Collection${item.collection.item_count != null ? ` · ${item.collection.item_count} ${item.collection.item_count === 1 ? "item" : "items"}` : ""}`;
  } else if (item.clip) {
    href = item.clip.available ? clipHref(item.clip) : null;
    what = rangeText(item.clip);
  }
  const action = item.state === "completed" || item.state === "excused" ? "Watch again" : item.state === "in_progress" ? "Continue" : "Start";
  const close = () => {
    setAsking(null);
    // Give focus back to where the person was.
    setTimeout(() => declineButton.current && declineButton.current.focus(), 0);
  };
  return (
    <li class={item.overdue ? "learn-item learn-overdue" : "learn-item"} aria-labelledby={headingId}>
      <div class="learn-item-main">
        <Poster video={item.clip && item.clip.video} />
        <div class="grow learn-item-text">
          <h3 id={headingId} class="learn-item-title" tabIndex={-1}>
            {title}
          </h3>
          <p class="small muted">{what}</p>
          <p class="row small learn-meta">
            <span class={STATE_PILL[item.state] || "pill"}>{STATE_LABEL[item.state] || item.state}</span>
            {item.overdue && <span class="pill pill-danger">Overdue</span>}
            {item.due_at && (
              <span class={item.overdue ? "learn-due learn-due-late" : "learn-due"}>
                {item.overdue ? "Was due " : "Due "}
                <time dateTime={item.due_at}>{dayText(item.due_at)}</time>
              </span>
            )}
          </p>
        </div>
      </div>
      {item.message && <p class="learn-message">“{item.message}”</p>}
      <div class="learn-progress">
        <progress max="100" value={pct} aria-label={`Progress on ${title}`} />
        <span class="small muted">
          {pct}% watched{item.threshold_pct ? ` · done at ${item.threshold_pct}%` : ""}
        </span>
      </div>
      {pending && (
        <p class="small learn-waiting" role="status">
          {pending.kind === "decline" ? "You declined this" : "You asked for more time"} ({REASON_LABEL[pending.reason] || pending.reason}):
          waiting for an answer.
        </p>
      )}
      {asking ? (
        <RequestForm item={item} title={title} kind={asking} onCancel={close} onDone={() => {
            setAsking(null);
            onChanged();
            // The buttons give way to "waiting for an answer": keep focus on this assignment.
            setTimeout(() => { const h = document.getElementById(headingId); if (h) h.focus(); }, 0);
          }} />
      ) : (
        <div class="row learn-actions">
          {href ? (
            <Link href={href} class="button" aria-describedby={headingId}>
              {action}
            </Link>
          ) : (
            <span class="small muted">No longer available to watch</span>
          )}
          {open && !pending && !gone && (
            <>
              <button type="button" class="button-secondary" ref={declineButton} aria-describedby={headingId} onClick={() => setAsking("decline")}>
                Decline
              </button>
              <button type="button" class="button-quiet" aria-describedby={headingId} onClick={() => setAsking("more_time")}>
                More time
              </button>
            </>
          )}
        </div>
      )}
    </li>
  );
}

/** Decline, or ask for more time, with one of the API's reasons (and words, for "other"). */
function RequestForm({ item, title, kind, onCancel, onDone }) {
  const [reason, setReason] = useState("");
  const [text, setText] = useState("");
  const [wanted, setWanted] = useState(dateInput(7, item.due_at ? new Date(item.due_at) : new Date()));
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState(null);
  const legend = useRef(null);
  useEffect(() => {
    const first = legend.current && legend.current.parentElement.querySelector("input");
    if (first) first.focus();
  }, []);
  const decline = kind === "decline";
  const name = `reason-${item.assignment_id}`;
  const submit = async (event) => {
    event.preventDefault();
    if (!reason) return setError(new Error("Choose a reason."));
    if (reason === "other" && !text.trim()) return setError(new Error("Tell us the reason in a few words."));
    setBusy(true);
    setError(null);
    try {
      const body = { kind, reason, text: text.trim() };
      if (!decline) body.wanted_due_at = endOfDay(wanted);
      await api(`/assignments/${item.assignment_id}/requests`, { method: "POST", body, idempotent: true });
      toast(decline ? `Declined “${title}”: the assigner will answer` : "Asked for more time");
      onDone();
    } catch (err) {
      if (err.code === "request_pending") setError(new Error("You already asked: wait for the answer to that request."));
      else setError(err);
      setBusy(false);
    }
  };
  return (
    <form class="learn-request" onSubmit={submit} aria-label={decline ? `Decline ${title}` : `More time for ${title}`}>
      <fieldset>
        <legend ref={legend}>{decline ? "Why are you declining?" : "Why do you need more time?"}</legend>
        {REASONS.map(([key, label]) => (
          <label key={key} class="check">
            <input type="radio" name={name} value={key} checked={reason === key} onChange={() => setReason(key)} />
            {label}
          </label>
        ))}
      </fieldset>
      <div class="field">
        <label for={`${name}-text`}>{reason === "other" ? "Tell us more (needed)" : "Tell us more (optional)"}</label>
        <textarea id={`${name}-text`} maxLength={1000} value={text} onInput={(e) => setText(e.currentTarget.value)} />
      </div>
      {!decline && (
        <div class="field">
          <label for={`${name}-due`}>New due date</label>
          <input id={`${name}-due`} type="date" required min={dateInput(1)} value={wanted} onInput={(e) => setWanted(e.currentTarget.value)} />
        </div>
      )}
      <FormEnd busy={busy} error={error} label={decline ? "Decline assignment" : "Ask for more time"} onCancel={onCancel} />
    </form>
  );
}

function PointsCard() {
  const points = useAsync((signal) => api("/me/points", { signal }), []);
  if (!points.data || !points.data.enabled) return null;
  const { totals = {}, badges = [] } = points.data;
  return (
    <section class="card learn-points" aria-labelledby="points-heading">
      <h2 id="points-heading">Your points</h2>
      <dl class="learn-stats">
        {[["week", "This week"], ["month", "This month"], ["all", "All time"]].map(([key, label]) => (
          <div key={key}>
            <dt>{label}</dt>
            <dd>{totals[key] || 0}</dd>
          </div>
        ))}
      </dl>
      {badges.length > 0 ? (
        <ul class="learn-badges" aria-label="Your badges">
          {badges.map((badge) => (
            <li key={badge.name}>
              <span class="pill pill-ok">★ {badge.title}</span>
              <span class="small muted"> {badge.description}</span>
            </li>
          ))}
        </ul>
      ) : (
        <p class="small muted">No badges yet: answers others accept and videos others finish earn them.</p>
      )}
    </section>
  );
}

function Featured() {
  const featured = useAsync((signal) => api("/featured", { signal }), []);
  return (
    <section aria-labelledby="featured-heading" class="learn-section">
      <h2 id="featured-heading">Featured</h2>
      {featured.error && <ErrorNote error={featured.error} onRetry={featured.reload} />}
      {featured.data && featured.data.items.length === 0 && <Empty>Nothing is featured for you right now.</Empty>}
      {featured.data && featured.data.items.length > 0 && (
        <ul class="list" aria-label="Featured">
          {featured.data.items.map((feature) => {
            const collection = feature.collection;
            const clip = feature.clip;
            const available = collection ? collection.available : clip && clip.available;
            const title = collection ? collection.title : clip && clip.video && clip.video.title;
            const href = collection ? `/collections/${collection.id}` : clipHref(clip);
            return (
              <li key={feature.id} class="learn-item-main">
                <Poster video={clip && clip.video} />
                <div class="grow">
                  {available && href ? (
                    <Link href={href} class="strong">
                      {title || "Untitled"}
                    </Link>
                  ) : (
                    <span class="muted">No longer available</span>
                  )}
                  <p class="small muted">
                    {collection ? `Collection${collection.item_count != null ? ` · ${collection.item_count} items` : ""}` : rangeText(clip)}
                    {feature.team_id ? " · for your team" : ""}
                  </p>
                  {feature.note && <p class="small">{feature.note}</p>}
                </div>
              </li>
            );
          })}
        </ul>
      )}
    </section>
  );
}

/** The people below me: a count by state and the rows that need attention. */
function TeamLearning() {
  const [state, setState] = useState("open");
  const team = useAsync((signal) => api("/me/team-learning", { query: { state }, signal }), [state]);
  const items = (team.data && team.data.items) || [];
  const people = new Set(items.map((item) => item.user_id)).size;
  const counts = { not_started: 0, in_progress: 0, completed: 0, excused: 0 };
  let overdue = 0;
  const groups = new Map();
  for (const item of items) {
    if (!groups.has(item.user_id)) groups.set(item.user_id, []);
    groups.get(item.user_id).push(item);
    counts[item.state] = (counts[item.state] || 0) + 1;
    if (item.overdue) overdue += 1;
  }
  // Most overdue first, then by name.
  const byPerson = [...groups.entries()].sort(
    ([, a], [, b]) => b.filter((x) => x.overdue).length - a.filter((x) => x.overdue).length || a[0].display_name.localeCompare(b[0].display_name),
  );
  return (
    <section aria-labelledby="team-heading" class="learn-section">
      <h2 id="team-heading">Your team's learning</h2>
      <div class="row learn-team-filter">
        <label class="small strong" for="team-state">
          Team assignments
        </label>
        <select id="team-state" class="learn-select" value={state} onChange={(e) => setState(e.currentTarget.value)}>
          <option value="overdue">Overdue</option>
          <option value="open">To do</option>
          <option value="completed">Done</option>
          <option value="excused">Excused</option>
          <option value="all">All</option>
        </select>
      </div>
      {team.error && <ErrorNote error={team.error} onRetry={team.reload} />}
      {team.loading && !team.data && <Spinner label="Loading your team's learning" />}
      {team.data && items.length === 0 && <Empty>{state === "overdue" ? "Nobody in your team is overdue." : "Nothing here."}</Empty>}
      {items.length > 0 && (
        <>
          <dl class="learn-stats card">
            <div>
              <dt>People</dt>
              <dd>{people}</dd>
            </div>
            <div>
              <dt>Overdue</dt>
              <dd class={overdue ? "learn-late" : ""}>{overdue}</dd>
            </div>
            <div>
              <dt>In progress</dt>
              <dd>{counts.in_progress}</dd>
            </div>
            <div>
              <dt>Done</dt>
              <dd>{counts.completed}</dd>
            </div>
          </dl>
          <ul class="list" aria-label="Your team's assignments">
            {byPerson.map(([userId, rows]) => {
              const late = rows.filter((row) => row.overdue).length;
              const done = rows.filter((row) => row.state === "completed").length;
              return (
                <li key={userId} class={late ? "learn-overdue" : ""}>
                  <details class="learn-person">
                    <summary>
                      <span class="strong">{rows[0].display_name}</span>
                      <span class="row small learn-counts">
                        <span class="pill">
                          {rows.length} {rows.length === 1 ? "assignment" : "assignments"}
                        </span>
                        {late > 0 && <span class="pill pill-danger">{late} overdue</span>}
                        {done > 0 && <span class="pill pill-ok">{done} done</span>}
                        <span class="learn-chevron" aria-hidden="true">
                          ▾
                        </span>
                      </span>
                    </summary>
                    <ul class="learn-person-rows">
                      {rows.map((item) => (
                        <li key={item.assignment_id}>
                          <p class="small strong">{titleOf(item)}</p>
                          <p class="row small">
                            <span class={STATE_PILL[item.state] || "pill"}>{STATE_LABEL[item.state] || item.state}</span>
                            {item.overdue && <span class="pill pill-danger">Overdue</span>}
                            {item.due_at && <span class={item.overdue ? "learn-late" : "muted"}>Due {dayText(item.due_at)}</span>}
                            <span class="muted">{Math.round((item.progress || 0) * 100)}% watched</span>
                          </p>
                        </li>
                      ))}
                    </ul>
                  </details>
                </li>
              );
            })}
          </ul>
        </>
      )}
    </section>
  );
}

/** Declines and requests for more time waiting for me (as assigner or manager). */
function RequestsToAnswer({ me }) {
  const requests = useAsync(
    async (signal) => {
      const page = await api("/assignment-requests", { query: { pending: true, limit: 50 }, signal });
      const theirs = page.items.filter((request) => request.user_id !== me.id);
      const names = new Map();
      const titles = new Map();
      if (theirs.length === 0) return [];
      // Names and titles for the rows: my people's learning and my own assignments hold most of
      // them (an assignment someone else made is not mine to read); a person read fills the rest.
      const [team, mine] = await Promise.all([
        api("/me/team-learning", { query: { state: "all" }, signal }).catch(() => ({ items: [] })),
        all("/assignments", { limit: 500 }).catch(() => []),
      ]);
      for (const row of team.items) {
        names.set(row.user_id, row.display_name);
        titles.set(row.assignment_id, titleOf(row));
      }
      for (const assignment of mine) titles.set(assignment.id, titleOf(assignment));
      await Promise.all(
        [...new Set(theirs.map((r) => r.user_id))]
          .filter((id) => !names.has(id))
          .map((id) => api(`/users/${id}`, { signal }).then((u) => names.set(id, u.display_name || u.handle), () => {})),
      );
      return theirs.map((request) => ({ ...request, name: names.get(request.user_id), title: titles.get(request.assignment_id) }));
    },
    [me.id],
  );
  const [error, setError] = useState(null);
  const heading = useRef(null);
  const decide = async (request, granted) => {
    setError(null);
    try {
      await api(`/assignment-requests/${request.id}/decision`, { method: "POST", body: { granted } });
      toast(granted ? "Granted" : "Refused");
      requests.setData(requests.data.filter((r) => r.id !== request.id)); // answered: off the list at once
      if (heading.current) heading.current.focus();
    } catch (err) {
      setError(err);
    }
  };
  if (!requests.data || requests.data.length === 0) return null;
  return (
    <section aria-labelledby="requests-heading" class="learn-section">
      <h2 id="requests-heading" ref={heading} tabIndex={-1}>
        Waiting for your answer
      </h2>
      <ErrorNote error={error} />
      <ul class="list" aria-label="Requests waiting for your answer">
        {requests.data.map((request) => (
          <li key={request.id}>
            <p>
              <span class="strong">{request.name || "Someone"}</span>{" "}
              {request.kind === "decline" ? "declines" : "asks for more time on"} <span class="strong">{request.title || "an assignment"}</span>
            </p>
            <p class="small muted">
              {REASON_LABEL[request.reason] || request.reason}
              {request.wanted_due_at ? ` · until ${dayText(request.wanted_due_at)}` : ""} · {ago(request.created_at)}
            </p>
            {request.text && <p class="small">“{request.text}”</p>}
            <div class="row">
              <button type="button" onClick={() => decide(request, true)}>
                Grant
              </button>
              <button type="button" class="button-secondary" onClick={() => decide(request, false)}>
                Refuse
              </button>
            </div>
          </li>
        ))}
      </ul>
    </section>
  );
}

/** The assignments I made, each with its counts by state. */
function AssignedByMe({ me }) {
  const list = useAsync(async (signal) => withCounts((await api("/assignments", { query: { limit: 10 }, signal })).items, signal), []);
  if (!list.data || list.data.length === 0) return null;
  return (
    <section aria-labelledby="assigned-heading" class="learn-section">
      <h2 id="assigned-heading">{isAdmin(me) ? "Latest assignments" : "Assigned by you"}</h2>
      <ul class="list" aria-labelledby="assigned-heading">
        {list.data.map((assignment) => (
          <li key={assignment.id}>
            <AssignmentSummary assignment={assignment} />
          </li>
        ))}
      </ul>
    </section>
  );
}

/** Admins: why people decline or ask for more time, across the organisation. */
function ReasonsCard() {
  const reasons = useAsync((signal) => api("/learning/reasons", { signal }), []);
  if (!reasons.data) return null;
  const { by_kind: byKind = {}, other_texts: texts = [] } = reasons.data;
  const total = REASONS.reduce((sum, [key]) => sum + ((byKind.decline || {})[key] || 0) + ((byKind.more_time || {})[key] || 0), 0);
  return (
    <section aria-labelledby="reasons-heading" class="learn-section">
      <h2 id="reasons-heading">Why people decline</h2>
      {total === 0 ? (
        <Empty>Nobody has declined or asked for more time yet.</Empty>
      ) : (
        <div class="card">
          <table class="learn-table">
            <caption class="visually-hidden">Reasons given, by kind of request</caption>
            <thead>
              <tr>
                <th scope="col">Reason</th>
                <th scope="col">Declined</th>
                <th scope="col">More time</th>
              </tr>
            </thead>
            <tbody>
              {REASONS.map(([key, label]) => (
                <tr key={key}>
                  <th scope="row">{label}</th>
                  <td>{(byKind.decline || {})[key] || 0}</td>
                  <td>{(byKind.more_time || {})[key] || 0}</td>
                </tr>
              ))}
            </tbody>
          </table>
          {texts.length > 0 && (
            <ul class="small learn-texts" aria-label="Other reasons, in their words">
              {texts.slice(0, 10).map((text, index) => (
                <li key={index}>“{text}”</li>
              ))}
            </ul>
          )}
        </div>
      )}
    </section>
  );
}

/* ---------------------------------------------------------------------------------------------
   Top clips: the organisation's board, a team's, or a deal attribute value's; best first. */

export function TopClips({ query }) {
  const teamId = query.get("team_id") || "";
  const attribute = query.get("attribute") || "";
  const [attributeText, setAttributeText] = useState(attribute);
  const teams = useAsync(() => all("/teams", { limit: 500 }), []);
  const board = useAsync(
    (signal) => api("/top", { query: { team_id: teamId || undefined, attribute: attribute || undefined, limit: 50 }, signal }),
    [teamId, attribute],
  );
  const go = (next) => {
    const params = new URLSearchParams();
    if (next.team_id) params.set("team_id", next.team_id);
    if (next.attribute) params.set("attribute", next.attribute);
    const text = params.toString();
    navigate(text ? `/top?${text}` : "/top", { replace: true });
  };
  const submitAttribute = (event) => {
    event.preventDefault();
    go({ attribute: attributeText.trim() });
  };
  const entries = (board.data && board.data.entries) || [];
  return (
    <Page title="Top clips">
      <LearnTabs current="/top" />
      <div class="card learn-top-filters">
        <div class="field">
          <label for="top-board">Board</label>
          <select id="top-board" value={attribute ? "" : teamId} onChange={(e) => go({ team_id: e.currentTarget.value })}>
            <option value="">Whole organisation</option>
            {(teams.data || []).map((team) => (
              <option key={team.id} value={team.id}>
                Team: {team.name}
              </option>
            ))}
          </select>
        </div>
        <form class="field learn-attribute" onSubmit={submitAttribute} role="search" aria-label="Rank by a deal value">
          <label for="top-attribute">Deal attribute</label>
          <div class="row">
            <input
              id="top-attribute"
              class="grow"
              placeholder="competitors:Acme"
              value={attributeText}
              aria-describedby="top-attribute-hint"
              onInput={(e) => setAttributeText(e.currentTarget.value)}
            />
            <button type="submit" class="button-secondary">
              Show
            </button>
            {attribute && (
              <button type="button" class="button-quiet" onClick={() => { setAttributeText(""); go({}); }}>
                Clear
              </button>
            )}
          </div>
          <small id="top-attribute-hint">A name and a value, like competitors:Acme</small>
        </form>
      </div>
      {board.error && <ErrorNote error={board.error} onRetry={board.reload} />}
      {board.loading && !board.data && <Spinner label="Loading the top clips" />}
      {board.data && (
        <p class="small muted" role="status">
          {board.data.computed_at ? `Ranked ${ago(board.data.computed_at)}, from the last 90 days; recent activity counts most.` : "Not ranked yet: boards are ranked every 15 minutes."}
        </p>
      )}
      {board.data && entries.length === 0 && <Empty>No clips rank here yet. Watching, reacting, commenting and sharing make them rank.</Empty>}
      {entries.length > 0 && (
        <ol class="list learn-top" aria-label="Top clips">
          {entries.map((entry) => {
            const clip = entry.clip;
            const video = clip.video;
            const reasons = entry.reasons || {};
            const href = clip.available ? clipHref(clip) : null;
            const count = (n, one, many) => (n ? `${n} ${n === 1 ? one : many}` : null);
            const bits = [
              count(reasons.viewers, "viewer", "viewers"),
              reasons.completions ? `${reasons.completions} finished` : null,
              count(reasons.reactions, "reaction", "reactions"),
              count(reasons.comments, "comment", "comments"),
              count(reasons.votes, "vote", "votes"),
              count(reasons.shares, "share", "shares"),
              count(reasons.accepted_answers, "accepted answer", "accepted answers"),
              reasons.curation ? "curated" : null,
            ].filter(Boolean);
            return (
              <li key={`${entry.rank}-${video ? video.id : "x"}-${clip.start_ms}`} class="learn-top-entry">
                <span class="learn-rank">
                  <span class="visually-hidden">Rank </span>
                  {entry.rank}
                </span>
                <Poster video={video} />
                <div class="grow">
                  {href ? (
                    <Link href={href} class="strong">
                      {(video && video.title) || "Untitled"}
                    </Link>
                  ) : (
                    <span class="muted">No longer available</span>
                  )}
                  <p class="small muted">{rangeText(clip)}</p>
                  {bits.length > 0 && <p class="small">{bits.join(" · ")}</p>}
                </div>
              </li>
            );
          })}
        </ol>
      )}
    </Page>
  );
}
