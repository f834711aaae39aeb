// Search results and their facets: pieces of screens/search.jsx.
import { Link, appPath } from "../router.jsx";
import { clock, ago } from "../ui.jsx";
import { AGES, DURATIONS, prettyName } from "./search-util.js";

/** A snippet with its matched ranges as <mark>: text nodes only, never HTML. The API's
 * [start, end) offsets count characters (code points), so the text is split as code points. */
export function Snippet({ text, marks }) {
  const chars = Array.from(text || "");
  const ranges = (marks || [])
    .map(([start, end]) => [Math.max(0, start), Math.min(chars.length, end)])
    .filter(([start, end]) => end > start)
    .sort((a, b) => a[0] - b[0]);
  const parts = [];
  let at = 0;
  for (const [start, end] of ranges) {
    if (end <= at) continue; // Overlapping ranges: the part already marked stays marked.
    const from = Math.max(start, at);
    if (from > at) parts.push(chars.slice(at, from).join(""));
    parts.push(<mark key={from}>{chars.slice(from, end).join("")}</mark>);
    at = end;
  }
  if (at < chars.length) parts.push(chars.slice(at).join(""));
  return <span class="search-snippet">{parts}</span>;
}

/** Why a result matched, as a short phrase. */
export function reasonText(reason) {
  const at = reason.at_ms != null ? ` at ${clock(reason.at_ms)}` : "";
  const text =
    {
      title: "in the title",
      description: "in the description",
      attribute: `in ${reason.detail ? prettyName(reason.detail) : "a deal attribute"}`,
      author: "by its author",
      attachment: `in the attachment${reason.detail ? ` “${reason.detail}”` : ""}`,
      transcript: `said${at}`,
      comment: `in a comment${at}`,
    }[reason.kind] || `in the ${reason.kind}`;
  return reason.similar ? `${text} (close match)` : text;
}

export function VideoMeta({ video }) {
  const author = video.author || video.owner;
  return (
    <span class="small muted">
      {author && (author.display_name || author.handle)}
      {video.duration_ms ? ` · ${clock(video.duration_ms)}` : ""}
      {video.created_at ? ` · ${ago(video.created_at)}` : ""}
    </span>
  );
}

export function QuestionPill({ video }) {
  if (video.kind !== "question") return null;
  return <span class={video.question_state === "answered" ? "pill pill-ok" : "pill pill-warn"}>{video.question_state === "answered" ? "answered question" : "open question"}</span>;
}

export function ResultItem({ item }) {
  const { video } = item;
  const reasons = [];
  const seen = new Set();
  for (const reason of item.reasons || []) {
    const text = reasonText(reason);
    if (!seen.has(text)) reasons.push(text);
    seen.add(text);
  }
  return (
    <li class="search-result">
      <div class="search-result-head">
        {video.poster_url ? <img class="search-poster" src={video.poster_url} alt="" loading="lazy" /> : <span class="search-poster" aria-hidden="true" />}
        <div class="search-result-main">
          <Link href={appPath(video.link || `/videos/${video.id}`)} class="search-title">
            {video.title || "Untitled video"}
          </Link>
          <VideoMeta video={video} />
          <div class="row search-reasons">
            <QuestionPill video={video} />
            {reasons.map((text) => (
              <span key={text} class="pill pill-muted">
                {text}
              </span>
            ))}
            <span class="small muted" title="Relevance, engagement and freshness together">
              score {Math.round(item.score * 10) / 10}
            </span>
          </div>
        </div>
      </div>
      {item.moments && item.moments.length > 0 && (
        <ul class="search-moments" aria-label={`Moments in ${video.title || "this video"}`}>
          {item.moments.map((moment, index) => (
            <li key={moment.comment_id || `${moment.kind}-${moment.at_ms}-${index}`}>
              <Link href={appPath(moment.link)} class="search-moment">
                <span class="search-moment-time">{moment.at_ms != null ? clock(moment.at_ms) : "whole video"}</span>
                <span class="search-moment-text">
                  <span class="visually-hidden">{moment.kind === "comment" ? "Comment: " : "Said: "}</span>
                  <Snippet text={moment.snippet.text} marks={moment.snippet.marks} />
                </span>
              </Link>
            </li>
          ))}
        </ul>
      )}
    </li>
  );
}

/** A filter chip: a toggle button named by the facet value first, then its count. */
function Chip({ label, count, pressed, onToggle }) {
  return (
    <button type="button" class="search-chip" aria-pressed={pressed ? "true" : "false"} onClick={onToggle}>
      {/* The name is the visible text: "retail (3)". */}
      <span>{label}</span>
      {count != null && " "}
      {count != null && <span class="search-chip-count">({count})</span>}
    </button>
  );
}

function Group({ title, children }) {
  const items = [children].flat(Infinity).filter(Boolean);
  if (!items.length) return null;
  return (
    <div class="search-facet" role="group" aria-label={title}>
      <h3 class="search-facet-title">{title}</h3>
      <div class="search-chips">{items}</div>
    </div>
  );
}

/** Facet counts as filter chips; chosen filters stay visible (and removable) even at zero. */
export function Facets({ facets, state, update }) {
  const attrs = facets ? facets.attributes || {} : {};
  const chosenAttrs = new Set(state.attr);
  const toggleAttr = (key) =>
    update({ attr: chosenAttrs.has(key) ? state.attr.filter((a) => a !== key) : [...state.attr, key] });
  const names = new Set(Object.keys(attrs));
  // A chosen attribute filter the counts no longer list (negated, or an "either" one).
  const orphans = state.attr.filter((a) => {
    const [name, value] = a.split(":");
    return !(names.has(name) && (attrs[name] || []).some((v) => v.value === value));
  });
  const durationOf = (value) => DURATIONS[value];
  const durationChosen = (value) => {
    const band = durationOf(value);
    return band && String(band.min ?? "") === state.min_duration_s && String(band.max ?? "") === state.max_duration_s;
  };
  return (
    <div class="search-facets">
      {orphans.length > 0 && (
        <Group title="Chosen">
          {orphans.map((a) => (
            <Chip key={a} label={a} pressed onToggle={() => toggleAttr(a)} />
          ))}
        </Group>
      )}
      {Object.entries(attrs).map(([name, values]) => (
        <Group key={name} title={prettyName(name)}>
          {values.map((v) => {
            const key = `${name}:${v.value}`;
            return <Chip key={key} label={v.label || v.value} count={v.count} pressed={chosenAttrs.has(key)} onToggle={() => toggleAttr(key)} />;
          })}
        </Group>
      ))}
      {facets && (
        <>
          <Group title="Author">
            {(facets.authors || []).map((v) => (
              <Chip
                key={v.value}
                label={v.label || "Someone"}
                count={v.count}
                pressed={state.author === v.value}
                onToggle={() => update({ author: state.author === v.value ? "" : v.value })}
              />
            ))}
            {state.author && !(facets.authors || []).some((v) => v.value === state.author) && (
              <Chip key="chosen" label="Chosen author" pressed onToggle={() => update({ author: "" })} />
            )}
          </Group>
          <Group title="Questions">
            {(facets.question || []).map((v) => (
              <Chip
                key={v.value}
                label={v.label || v.value}
                count={v.count}
                pressed={state.question === v.value}
                onToggle={() => update({ question: state.question === v.value ? "" : v.value })}
              />
            ))}
          </Group>
          <Group title="Length">
            {(facets.duration || []).map((v) => (
              <Chip
                key={v.value}
                label={(durationOf(v.value) || {}).label || v.label || v.value}
                count={v.count}
                pressed={durationChosen(v.value)}
                onToggle={() => {
                  const band = durationOf(v.value) || {};
                  update(
                    durationChosen(v.value)
                      ? { min_duration_s: "", max_duration_s: "" }
                      : { min_duration_s: band.min == null ? "" : String(band.min), max_duration_s: band.max == null ? "" : String(band.max) },
                  );
                }}
              />
            ))}
          </Group>
          <Group title="Made">
            {(facets.created || []).map((v) => (
              <Chip
                key={v.value}
                label={(AGES[v.value] || {}).label || v.label || v.value}
                count={v.count}
                pressed={state.age === v.value}
                onToggle={() => update({ age: state.age === v.value ? "" : v.value, since: "" })}
              />
            ))}
          </Group>
        </>
      )}
    </div>
  );
}
