// Pieces shared by the learning, collection and top-clips screens.
import { api } from "../api.js";
import { Link, appPath } from "../router.jsx";
import { clock } from "../ui.jsx";

/** The reasons the API takes for a decline or a request for more time (its schema's enum). */
export const REASONS = [
  ["no_time", "I don't have time"],
  ["not_relevant", "It isn't relevant to my work"],
  ["already_know", "I already know this"],
  ["technical_problem", "I can't play it (a technical problem)"],
  ["other", "Another reason"],
];
export const REASON_LABEL = Object.fromEntries(REASONS);

export const STATE_LABEL = {
  not_started: "Not started",
  in_progress: "In progress",
  completed: "Completed",
  excused: "Excused",
};
export const STATE_PILL = {
  not_started: "pill",
  in_progress: "pill pill-warn",
  completed: "pill pill-ok",
  excused: "pill",
};

/** The app path that opens the player at a clip's range (the API's own link when it gave one). */
export function clipHref(clip) {
  if (!clip || !clip.video) return null;
  if (clip.link) return appPath(clip.link);
  const range = clip.start_ms != null ? `?t=${clip.start_ms}${clip.end_ms != null ? `&end=${clip.end_ms}` : ""}` : "";
  return `/videos/${clip.video.id}${range}`;
}

/** "0:05–0:15" for a clip, "Whole video · 0:20" for a whole video. */
export function rangeText(clip) {
  if (!clip) return "";
  if (clip.start_ms != null && clip.end_ms != null) return `Clip ${clock(clip.start_ms)}–${clock(clip.end_ms)}`;
  if (clip.start_ms != null) return `From ${clock(clip.start_ms)}`;
  const duration = clip.video && clip.video.duration_ms;
  return duration ? `Whole video · ${clock(duration)}` : "Whole video";
}

/** "Tue, Dec 15" from an ISO time (the day is what matters for a due date). */
export function dayText(iso) {
  if (!iso) return "";
  return new Date(iso).toLocaleDateString(undefined, { weekday: "short", month: "short", day: "numeric" });
}

/** A date input's value ("2026-12-10") as the end of that day, local time, in ISO form. */
export function endOfDay(value) {
  if (!value) return null;
  const [year, month, day] = value.split("-").map(Number);
  return new Date(year, month - 1, day, 23, 59, 0).toISOString();
}

/** A date input's value for `days` from today, local time. */
export function dateInput(days = 0, from = new Date()) {
  const date = new Date(from.getTime() + days * 86400000);
  const pad = (n) => String(n).padStart(2, "0");
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}`;
}

/** "m:ss" or seconds typed by a person as milliseconds; null when it is not a time. */
export function parseClock(text) {
  const value = String(text || "").trim();
  if (!value) return null;
  if (/^\d+(\.\d+)?$/.test(value)) return Math.round(Number(value) * 1000);
  const match = value.match(/^(?:(\d+):)?(\d{1,2}):(\d{1,2})$/);
  if (!match) return null;
  const [, hours, minutes, seconds] = match;
  if (Number(seconds) > 59) return null;
  return ((Number(hours || 0) * 60 + Number(minutes)) * 60 + Number(seconds)) * 1000;
}

/** The learning area's sections, as tabs across the top of each of its screens. */
export function LearnTabs({ current }) {
  const tabs = [
    ["/learning", "My learning"],
    ["/collections", "Collections"],
    ["/top", "Top clips"],
  ];
  return (
    <nav class="tabs learn-tabs" aria-label="Learning sections">
      {tabs.map(([href, label]) => (
        <Link key={href} href={href} aria-current={current === href ? "page" : undefined}>
          {label}
        </Link>
      ))}
    </nav>
  );
}

/** A poster frame or a plain placeholder of the same size (posters are signed same-origin URLs). */
export function Poster({ video, class: extra = "" }) {
  // Clip summaries carry `poster_url`; full video bodies carry it in `playback`.
  const poster = video && (video.poster_url || (video.playback && video.playback.poster_url));
  if (poster) return <img class={`learn-poster ${extra}`} src={poster} alt="" loading="lazy" />;
  return <span class={`learn-poster learn-poster-empty ${extra}`} aria-hidden="true">▶</span>;
}

/** A title for an assignment row, whatever it assigns. */
export function titleOf(item) {
  return (
    item.title ||
    (item.collection && item.collection.title) ||
    (item.clip && item.clip.video && item.clip.video.title) ||
    "Assignment"
  );
}

/** One assignment: what, to how many, due when, and its people's counts by state. */
export function AssignmentSummary({ assignment, linked = true }) {
  const counts = assignment.counts;
  const collection = assignment.collection;
  const given = (kind) =>
    Object.entries((assignment.reasons && assignment.reasons[kind]) || {})
      .filter(([, count]) => count > 0)
      .map(([reason, count]) => `${REASON_LABEL[reason] || reason} (${count})`);
  const declined = given("decline");
  const moreTime = given("more_time");
  return (
    <div>
      <p class="strong">
        {linked && collection && collection.available ? (
          <Link href={`/collections/${collection.id}`}>{titleOf(assignment)}</Link>
        ) : (
          titleOf(assignment)
        )}
      </p>
      <p class="small muted">
        {assignment.published_at
          ? `${assignment.person_count} ${assignment.person_count === 1 ? "person" : "people"}`
          : "Being handed out…"}
        {assignment.due_at ? ` · due ${dayText(assignment.due_at)}` : ""}
        {assignment.withdrawn_at ? " · withdrawn" : ""}
      </p>
      {counts && (
        <p class="row small learn-counts">
          <span class="pill">{counts.not_started} not started</span>
          <span class="pill pill-warn">{counts.in_progress} in progress</span>
          <span class="pill pill-ok">{counts.completed} done</span>
          {counts.overdue > 0 && <span class="pill pill-danger">{counts.overdue} overdue</span>}
          {counts.excused > 0 && <span class="pill">{counts.excused} excused</span>}
        </p>
      )}
      {declined.length > 0 && <p class="small muted">Declined: {declined.join(", ")}</p>}
      {moreTime.length > 0 && <p class="small muted">Asked for more time: {moreTime.join(", ")}</p>}
    </div>
  );
}


/** Assignments with their counts and reasons (the list leaves them out; the assigner reads each). */
export async function withCounts(assignments, signal, most = 10) {
  return Promise.all(
    assignments.map((assignment, index) =>
      index < most ? api(`/assignments/${assignment.id}`, { signal }).catch(() => assignment) : assignment,
    ),
  );
}
