// Insights for managers, enablement and admins: the learning metrics of their people over a
// period (completion, cycle times, why people decline, deal conversion), how one video was
// watched (retention, drop-offs, who watched, a team's view), and their people's assignments.
// Definitions: docs/metrics.md. Every figure says when it was counted rather than polling.
import { useState } from "preact/hooks";
import { all, api } from "../api.js";
import { Link } from "../router.jsx";
import { Empty, ErrorNote, Page, Spinner, ago, clock, useAsync, when } from "../ui.jsx";
import { BarChart, Figure, LineChart, formatPercent } from "./chart.jsx";
import "./insights.css";

const PERIODS = [
  { days: 30, label: "Last 30 days", bucket: "week" },
  { days: 90, label: "Last 90 days", bucket: "week" },
  { days: 180, label: "Last 6 months", bucket: "month" },
  { days: 365, label: "Last 12 months", bucket: "month" },
];

const REASONS = [
  ["no_time", "No time"],
  ["not_relevant", "Not relevant"],
  ["already_know", "Already know it"],
  ["technical_problem", "Technical problem"],
  ["other", "Other"],
];

const number = (value, digits = 1) =>
  value === null || value === undefined ? "–" : Number(value).toLocaleString(undefined, { maximumFractionDigits: digits });

const plural = (n, one, many = `${one}s`) => `${n} ${n === 1 ? one : many}`;

/** "3.5 h" / "2 d" / "40 min" from seconds. */
function duration(seconds) {
  if (seconds === null || seconds === undefined) return "–";
  if (seconds < 90) return `${Math.round(seconds)} s`;
  if (seconds < 5400) return `${Math.round(seconds / 60)} min`;
  if (seconds < 172800) return `${number(seconds / 3600)} h`;
  return `${number(seconds / 86400)} d`;
}

function bucketLabel(iso, bucket) {
  const date = new Date(iso);
  const options = bucket === "month" ? { month: "short", year: "2-digit", timeZone: "UTC" } : { day: "numeric", month: "short", timeZone: "UTC" };
  return date.toLocaleDateString(undefined, options);
}

/** A moment in a video: tenths of a second for short videos, whose points are that close. */
function moment(ms, durationMs) {
  if (durationMs >= 60000) return clock(ms);
  const tenths = Math.floor((ms % 1000) / 100);
  return `${clock(ms)}.${tenths}`;
}

function Computed({ at }) {
  return at ? <p class="muted small">Counted {ago(at)}</p> : null;
}

export function Insights({ me, query }) {
  const teams = useAsync(() => all("/teams", { limit: 500 }).catch(() => []), []);
  // Programs to narrow the metrics to: collections and single assignments (best effort: a
  // reader who may not list them still gets the metrics over every program).
  const programs = useAsync(
    () =>
      Promise.all([all("/collections", { limit: 300 }).catch(() => []), all("/assignments", { limit: 300 }).catch(() => [])]).then(([collections, assignments]) => ({ collections, assignments })),
    [],
  );
  return (
    <Page title="Insights" wide>
      <LearningMetrics teams={teams.data || []} programs={programs.data || { collections: [], assignments: [] }} />
      <ViewerInsights teams={teams.data || []} initialVideo={query.get("video") || ""} />
      <TeamLearning me={me} />
    </Page>
  );
}

/* ---------- Learning metrics ---------- */

function assignmentName(a) {
  const what = a.collection?.title || a.clip?.video?.title || a.clip?.title || "Assignment";
  return `${what} · ${new Date(a.published_at || a.created_at).toLocaleDateString()}`;
}

function LearningMetrics({ teams, programs }) {
  const [days, setDays] = useState(90);
  const [teamId, setTeamId] = useState("");
  const [program, setProgram] = useState(""); // "collection:<id>" or "assignment:<id>"
  const period = PERIODS.find((p) => p.days === days);

  const metrics = useAsync(
    async (signal) => {
      // The period ends now (to the minute, so a minute's answers are shared by the server's cache).
      const to = new Date();
      to.setUTCSeconds(0, 0);
      const from = new Date(to.getTime() - days * 86400000);
      const [kind, programId] = program.split(":");
      const scope = { from: from.toISOString(), to: to.toISOString(), team_id: teamId || undefined, [`${kind}_id`]: programId || undefined };
      const get = (path, extra) => api(path, { query: { ...scope, ...extra }, signal });
      const [average, cycle, reasons, conversion] = await Promise.all([
        get("/metrics/completion-average"),
        get("/metrics/learning-cycle"),
        get("/metrics/non-completion-reasons", { bucket: period.bucket }),
        get("/metrics/deal-conversion"),
      ]);
      // Completion over time: the same buckets the reasons' trend lists, each asked on its own.
      const starts = reasons.trend.map((b) => new Date(b.start));
      const over = await Promise.all(
        starts.map((start, i) => {
          const lo = new Date(Math.max(start.getTime(), from.getTime()));
          const hi = i + 1 < starts.length ? starts[i + 1] : to;
          if (hi <= lo) return null;
          return get("/metrics/completion-average", { from: lo.toISOString(), to: hi.toISOString() }).then((r) => ({ start: starts[i], ...r }));
        }),
      );
      return { average, cycle, reasons, conversion, over: over.filter(Boolean) };
    },
    [days, teamId, program],
  );

  return (
    <section aria-labelledby="metrics-heading" class="insights-section">
      <h2 id="metrics-heading">Learning metrics</h2>
      <div class="insights-filters">
        <div class="field">
          <label for="metrics-period">Period</label>
          <select id="metrics-period" value={days} onChange={(e) => setDays(Number(e.currentTarget.value))}>
            {PERIODS.map((p) => (
              <option key={p.days} value={p.days}>
                {p.label}
              </option>
            ))}
          </select>
        </div>
        <div class="field">
          <label for="metrics-team">Team</label>
          <select id="metrics-team" value={teamId} onChange={(e) => setTeamId(e.currentTarget.value)}>
            <option value="">Everyone</option>
            {teams.map((t) => (
              <option key={t.id} value={t.id}>
                {t.name}
              </option>
            ))}
          </select>
        </div>
        <div class="field insights-program">
          <label for="metrics-program">Program</label>
          <select id="metrics-program" value={program} onChange={(e) => setProgram(e.currentTarget.value)}>
            <option value="">All programs</option>
            {programs.collections.length > 0 && (
              <optgroup label="Collections">
                {programs.collections.map((c) => (
                  <option key={c.id} value={`collection:${c.id}`}>
                    {c.title}
                  </option>
                ))}
              </optgroup>
            )}
            {programs.assignments.length > 0 && (
              <optgroup label="Assignments">
                {programs.assignments.map((a) => (
                  <option key={a.id} value={`assignment:${a.id}`}>
                    {assignmentName(a)}
                  </option>
                ))}
              </optgroup>
            )}
          </select>
        </div>
      </div>
      {metrics.error && (metrics.error.status === 403 ? <ErrorNote error={{ message: "Learning metrics are for managers, enablement and admins." }} /> : <ErrorNote error={metrics.error} onRetry={metrics.reload} />)}
      {metrics.loading && !metrics.data && <Spinner label="Counting" />}
      {metrics.data && (
        <div aria-busy={metrics.loading ? "true" : "false"}>
          <MetricsBody {...metrics.data} bucket={period.bucket} />
        </div>
      )}
    </section>
  );
}

function MetricsBody({ average, cycle, reasons, conversion, over, bucket }) {
  const ratio = average.golden_ratio;
  const completionCategories = over.map((b) => ({
    label: bucketLabel(b.start, bucket),
    values: [b.golden_ratio],
    assigned: b.assigned,
  }));
  const known = over.filter((b) => b.golden_ratio !== null);
  const completionLabel = known.length
    ? `Completion over time, share of assigned items completed per ${bucket}: ${known.map((b) => `${bucketLabel(b.start, bucket)} ${formatPercent(b.golden_ratio)}`).join(", ")}.`
    : `Completion over time: nothing was assigned in any ${bucket} of this period.`;
  const reasonCategories = REASONS.map(([key, name]) => ({ label: name, values: [reasons.decline[key], reasons.more_time[key]] }));
  const reasonTotal = reasons.total.decline + reasons.total.more_time;
  const reasonLabel = reasonTotal
    ? `Non-completion reasons: ${reasons.total.decline} declined and ${reasons.total.more_time} asked for more time. ${REASONS.map(([key, name]) => `${name}: ${reasons.decline[key]} declined, ${reasons.more_time[key]} more time`).join("; ")}.`
    : "Non-completion reasons: nobody declined or asked for more time in this period.";
  return (
    <>
      <div class="figures">
        <Figure value={number(average.assigned_per_person, 2)} name="Assigned per person" hint={`${plural(average.assigned, "item")}, ${plural(average.people, "person", "people")}`} />
        <Figure value={number(average.completed_per_person, 2)} name="Completed per person" hint={plural(average.completed, "item")} />
        <Figure value={ratio === null ? "–" : formatPercent(ratio)} name="Golden ratio" hint={ratio === null ? "Nothing assigned" : "completed ÷ assigned"} />
        <Figure value={reasonTotal} name="Declines and requests for time" hint={`${reasons.total.decline} declined, ${reasons.total.more_time} more time`} />
      </div>
      <Computed at={average.computed_at} />

      <h3>Completion over time</h3>
      {completionCategories.length ? (
        <BarChart categories={completionCategories} series={[{ name: "Completed share" }]} label={completionLabel} xLabel={bucket === "month" ? "Month" : "Week from"} yLabel="Completed" formatValue={formatPercent} yMax={1} />
      ) : (
        <Empty>No period to show.</Empty>
      )}

      <h3>Why people don't complete</h3>
      <BarChart categories={reasonCategories} series={[{ name: "Declined" }, { name: "Asked for more time" }]} label={reasonLabel} xLabel="Reason" formatValue={(v) => number(v, 0)} horizontal integer />

      <h3>Learning cycle</h3>
      <div class="table-scroll" tabIndex={0} role="region" aria-label="Table, scrolls sideways">
        <table class="insights-table">
          <caption class="visually-hidden">Time from content creation to publication, assignment and completion</caption>
          <thead>
            <tr>
              <th scope="col">From creation to</th>
              <th scope="col">Median</th>
              <th scope="col">90th percentile</th>
              <th scope="col">Count</th>
            </tr>
          </thead>
          <tbody>
            {[
              ["Publication", cycle.to_publication],
              ["Assignment", cycle.to_assignment],
              ["Completion", cycle.to_completion],
            ].map(([name, stat]) => (
              <tr key={name}>
                <th scope="row">{name}</th>
                <td>{duration(stat.median_s)}</td>
                <td>{duration(stat.p90_s)}</td>
                <td>{stat.count}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>

      <h3>Deal conversion</h3>
      <p class="muted small">Deals closed in the period, by whether their owner had completed a program before the deal closed. An association, not proof the program caused the wins.</p>
      <div class="table-scroll" tabIndex={0} role="region" aria-label="Table, scrolls sideways">
        <table class="insights-table">
          <caption class="visually-hidden">Win rate and deal cycle by program completion</caption>
          <thead>
            <tr>
              <th scope="col">Owners who</th>
              <th scope="col">Deals</th>
              <th scope="col">Won</th>
              <th scope="col">Win rate (95% interval)</th>
              <th scope="col">Median cycle</th>
            </tr>
          </thead>
          <tbody>
            {[
              ["Completed", conversion.completed],
              ["Did not complete", conversion.not_completed],
            ].map(([name, side]) => (
              <tr key={name}>
                <th scope="row">{name}</th>
                <td>{side.deals}</td>
                <td>{side.won}</td>
                <td>
                  {formatPercent(side.win_rate)}
                  {side.win_rate_interval && side.win_rate_interval.length === 2 && ` (${formatPercent(side.win_rate_interval[0])}–${formatPercent(side.win_rate_interval[1])})`}
                </td>
                <td>{side.cycle_days.median === null ? "–" : `${number(side.cycle_days.median)} d`}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
    </>
  );
}

/* ---------- Viewer insights ---------- */

function ViewerInsights({ teams, initialVideo }) {
  const [videoId, setVideoId] = useState(initialVideo);
  const videos = useAsync(
    async (signal) => {
      const items = await all("/videos", { query: { status: ["playable", "ready"], limit: 200 }, limit: 300 });
      return items.sort((a, b) => (a.created_at < b.created_at ? 1 : -1));
    },
    [],
  );
  const choose = (id) => {
    setVideoId(id);
    // Keep the choice in the address so the view can be shared or reloaded, without a navigation.
    const next = new URL(location.href);
    if (id) next.searchParams.set("video", id);
    else next.searchParams.delete("video");
    history.replaceState(null, "", next.pathname + next.search);
  };
  return (
    <section aria-labelledby="viewer-heading" class="insights-section">
      <h2 id="viewer-heading">Viewer insights</h2>
      <div class="field">
        <label for="insights-video">Video</label>
        <select id="insights-video" value={videoId} onChange={(e) => choose(e.currentTarget.value)} disabled={!videos.data}>
          <option value="">{videos.data ? (videos.data.length ? "Choose a video" : "No videos yet") : "Loading videos…"}</option>
          {(videos.data || []).map((v) => (
            <option key={v.id} value={v.id}>
              {v.title || "Untitled"} · {new Date(v.created_at).toLocaleDateString()}
            </option>
          ))}
        </select>
      </div>
      <ErrorNote error={videos.error} onRetry={videos.reload} />
      {videoId ? <VideoInsights key={videoId} videoId={videoId} teams={teams} /> : <p class="muted">Pick a video to see who watched it and where they stopped.</p>}
    </section>
  );
}

function VideoInsights({ videoId, teams }) {
  const insights = useAsync((signal) => api(`/videos/${videoId}/insights`, { signal }), [videoId]);
  if (insights.loading && !insights.data) return <Spinner label="Counting views" />;
  if (insights.error) {
    if (insights.error.status === 404) return <ErrorNote error={{ message: "You can see how a video was watched when you recorded it, manage its author, or work in enablement." }} />;
    return <ErrorNote error={insights.error} onRetry={insights.reload} />;
  }
  const data = insights.data;
  const at = (point) => moment((point * data.duration_ms) / 100, data.duration_ms);
  const r = data.retention || [];
  const label = data.viewers
    ? `Retention: share of viewers still watching across the video. ${formatPercent(r[0])} at the start, ${formatPercent(r[49])} halfway, ${formatPercent(r[r.length - 1])} at the end.`
    : "Retention: nobody has watched this video yet.";
  return (
    <div aria-busy={insights.loading ? "true" : "false"}>
      <div class="figures">
        <Figure value={data.views} name="Views" />
        <Figure value={data.viewers} name="Viewers" />
        <Figure value={formatPercent(data.completion_rate)} name="Completion rate" hint={`${data.completed} completed`} />
        <Figure value={formatPercent(data.average_share)} name="Average watched" />
      </div>
      <p class="muted small">
        Counted {ago(data.computed_at)}
        {data.stale_up_to_s ? `; a popular video's figures may be up to ${Math.round(data.stale_up_to_s / 60)} minutes behind.` : "."}{" "}
        <button type="button" class="button-quiet" onClick={insights.reload}>
          Refresh
        </button>
      </p>
      <h3>Retention</h3>
      <LineChart
        values={r}
        label={label}
        xLabel="Moment in the video"
        yLabel="Still watching"
        columns={["Point (moment)", "Still watching"]}
        formatX={at}
        formatRow={(point) => `${point}% (${at(point)})`}
        yMax={1}
        highlights={(data.top_drop_offs || []).map((s) => ({ from: s.from_point, to: s.to_point }))}
      />
      <div class="insights-columns">
        <Stretches title="Where people stop" empty="Nobody left early." stretches={data.top_drop_offs} noun={["viewer left", "viewers left"]} videoId={videoId} durationMs={data.duration_ms} />
        <Stretches title="What people watch again" empty="Nothing was watched twice." stretches={data.top_rewatches} noun={["replay", "replays"]} videoId={videoId} durationMs={data.duration_ms} />
      </div>
      <Viewers videoId={videoId} />
      <TeamView videoId={videoId} teams={teams} />
    </div>
  );
}

function Stretches({ title, stretches, noun, empty, videoId, durationMs }) {
  const shown = (stretches || []).filter((s) => s.count > 0);
  return (
    <div>
      <h3>{title}</h3>
      {shown.length ? (
        <ul class="list">
          {shown.map((s) => (
            <li key={s.from_point} class="row">
              <Link href={`/videos/${videoId}?t=${s.start_ms}`} class="grow" aria-label={`Play from ${moment(s.start_ms, durationMs)}`}>
                {moment(s.start_ms, durationMs)}–{moment(s.end_ms, durationMs)}
              </Link>
              <span class="pill pill-warn">
                {s.count} {s.count === 1 ? noun[0] : noun[1]}
              </span>
            </li>
          ))}
        </ul>
      ) : (
        <p class="muted">{empty}</p>
      )}
    </div>
  );
}

/** A cursor-paged list of who watched (most played first), with "Show more". */
function usePaged(path, query, deps) {
  const [more, setMore] = useState({ items: [], cursor: null, loading: false, error: null });
  const first = useAsync(
    async (signal) => {
      const page = await api(path, { query, signal });
      setMore({ items: [], cursor: page.next_cursor, loading: false, error: null });
      return page.items;
    },
    deps,
  );
  const loadMore = async () => {
    setMore((m) => ({ ...m, loading: true, error: null }));
    try {
      const page = await api(path, { query: { ...query, cursor: more.cursor } });
      setMore((m) => ({ items: [...m.items, ...page.items], cursor: page.next_cursor, loading: false, error: null }));
    } catch (error) {
      setMore((m) => ({ ...m, loading: false, error }));
    }
  };
  return { ...first, items: [...(first.data || []), ...more.items], cursor: more.cursor, moreLoading: more.loading, moreError: more.error, loadMore };
}

function WatchList({ list, emptyText, label }) {
  if (list.loading && !list.data) return <Spinner label="Loading people" />;
  if (list.error) return <ErrorNote error={list.error} onRetry={list.reload} />;
  if (!list.items.length) return <p class="muted">{emptyText}</p>;
  return (
    <>
      <ul class="list" aria-label={label}>
        {list.items.map((p) => (
          <li key={p.user_id} class="watch-row">
            <div class="grow">
              <p class="strong">{p.display_name}</p>
              <p class="muted small">
                {p.views} {p.views === 1 ? "view" : "views"}
                {p.last_played_at ? ` · last ${ago(p.last_played_at)}` : ""}
              </p>
            </div>
            <div class="watch-share">
              <meter min="0" max="1" value={p.share} aria-label={`${p.display_name} watched ${formatPercent(p.share)}`} />
              <span class="small">{formatPercent(p.share)}</span>
              {p.completed_at ? <span class="pill pill-ok">Completed</span> : p.played_ms ? null : <span class="pill">Not watched</span>}
            </div>
          </li>
        ))}
      </ul>
      <ErrorNote error={list.moreError} />
      {list.cursor && (
        <button type="button" class="button-secondary" onClick={list.loadMore} disabled={list.moreLoading}>
          {list.moreLoading ? "Loading…" : "Show more"}
        </button>
      )}
    </>
  );
}

function Viewers({ videoId }) {
  const list = usePaged(`/videos/${videoId}/insights/viewers`, { limit: 20 }, [videoId]);
  return (
    <>
      <h3>Who watched</h3>
      <WatchList list={list} emptyText="Nobody has watched it yet." label="Viewers, most played first" />
    </>
  );
}

function TeamView({ videoId, teams }) {
  const [teamId, setTeamId] = useState("");
  return (
    <>
      <h3>By team</h3>
      <div class="field">
        <label for="insights-team-view">Team view</label>
        <select id="insights-team-view" value={teamId} onChange={(e) => setTeamId(e.currentTarget.value)}>
          <option value="">Choose a team</option>
          {teams.map((t) => (
            <option key={t.id} value={t.id}>
              {t.name}
            </option>
          ))}
        </select>
      </div>
      {teamId && <TeamFigures key={teamId} videoId={videoId} teamId={teamId} />}
    </>
  );
}

function TeamFigures({ videoId, teamId }) {
  const figures = useAsync((signal) => api(`/videos/${videoId}/insights/teams/${teamId}`, { signal }), [videoId, teamId]);
  const people = usePaged(`/videos/${videoId}/insights/teams/${teamId}/people`, { limit: 20 }, [videoId, teamId]);
  if (figures.loading && !figures.data) return <Spinner label="Counting the team" />;
  if (figures.error) {
    if (figures.error.status === 404) return <ErrorNote error={{ message: "You can't see this team's view of the video." }} />;
    return <ErrorNote error={figures.error} onRetry={figures.reload} />;
  }
  const t = figures.data;
  return (
    <>
      <div class="figures">
        <Figure value={`${t.viewers} of ${t.people}`} name="People watched" />
        <Figure value={formatPercent(t.completion_rate)} name="Completion rate" hint={`${t.completed} completed`} />
        <Figure value={formatPercent(t.average_share)} name="Average watched" />
      </div>
      <WatchList list={people} emptyText="This team has nobody in it." label="The team's people" />
    </>
  );
}

/* ---------- Team learning ---------- */

const STATES = [
  ["overdue", "Overdue"],
  ["open", "Open"],
  ["not_started", "Not started"],
  ["in_progress", "In progress"],
  ["completed", "Completed"],
  ["excused", "Excused"],
  ["all", "All"],
];

function TeamLearning() {
  const [state, setState] = useState("overdue");
  const items = useAsync((signal) => api("/me/team-learning", { query: { state }, signal }), [state]);
  // Group the assignments by person: a manager reads "who is behind", not a flat list.
  const people = new Map();
  for (const item of items.data?.items || []) {
    if (!people.has(item.user_id)) people.set(item.user_id, { name: item.display_name, items: [] });
    people.get(item.user_id).items.push(item);
  }
  return (
    <section aria-labelledby="team-learning-heading" class="insights-section">
      <h2 id="team-learning-heading">Your people's learning</h2>
      <div class="field insights-narrow">
        <label for="team-learning-state">Show</label>
        <select id="team-learning-state" value={state} onChange={(e) => setState(e.currentTarget.value)}>
          {STATES.map(([value, name]) => (
            <option key={value} value={value}>
              {name}
            </option>
          ))}
        </select>
      </div>
      {items.loading && !items.data && <Spinner label="Loading assignments" />}
      <ErrorNote error={items.error} onRetry={items.reload} />
      {items.data &&
        (people.size ? (
          <ul class="list">
            {[...people.entries()].map(([id, person]) => (
              <li key={id}>
                <p class="strong">{person.name}</p>
                <ul class="team-learning-items">
                  {person.items.map((item) => (
                    <li key={item.assignment_id} class="row">
                      <span class="grow">{item.title}</span>
                      {item.overdue && <span class="pill pill-danger">Overdue</span>}
                      <span class="muted small">
                        {Math.round((item.progress || 0) * 100)}%{item.due_at ? ` · due ${when(item.due_at)}` : ""}
                      </span>
                    </li>
                  ))}
                </ul>
              </li>
            ))}
          </ul>
        ) : (
          <Empty>{state === "overdue" ? "Nobody below you is overdue." : "No assignments here."}</Empty>
        ))}
    </section>
  );
}
