// Search state lives in the URL (/search?q=..&attr=..): back, reload, links from the inbox and
// saved searches all land on the same results. These helpers read and write it.

// The filters GET /search and /search/facets take, single-valued, besides the repeatable `attr`.
export const SINGLE = ["attr_match", "attr_time", "deal", "author", "team", "since", "until", "min_duration_s", "max_duration_s", "question"];

// The duration facet's values as filters (the bands of fieldcast/search/engine.py).
export const DURATIONS = {
  under_1_min: { label: "Under 1 min", min: null, max: 59 },
  "1_to_3_min": { label: "1 to 3 min", min: 60, max: 179 },
  "3_to_10_min": { label: "3 to 10 min", min: 180, max: 599 },
  over_10_min: { label: "Over 10 min", min: 600, max: null },
};
// The age facet's values; `age` is this app's own URL parameter, sent as `since`.
export const AGES = { last_7_days: { label: "Last 7 days", days: 7 }, last_30_days: { label: "Last 30 days", days: 30 }, last_90_days: { label: "Last 90 days", days: 90 } };

/** { q, attr: [...], age, and the SINGLE filters } from URLSearchParams. */
export function readState(query) {
  const state = { q: query.get("q") || "", attr: query.getAll("attr"), age: query.get("age") || "" };
  for (const key of SINGLE) state[key] = query.get(key) || "";
  return state;
}

/** The query string of a state (tab and the rest of the app's parameters given in `extra`). */
export function writeState(state, extra = {}) {
  const params = new URLSearchParams();
  if (state.q) params.set("q", state.q);
  for (const a of state.attr || []) params.append("attr", a);
  if (state.age) params.set("age", state.age);
  for (const key of SINGLE) if (state[key]) params.set(key, state[key]);
  for (const [key, value] of Object.entries(extra)) if (value) params.set(key, value);
  const text = params.toString();
  return `/search${text ? `?${text}` : ""}`;
}

/** The API's filters object of a state (what GET /search takes, and a saved search keeps). */
export function apiFilters(state) {
  const filters = {};
  if (state.attr && state.attr.length) filters.attr = state.attr;
  for (const key of SINGLE) {
    if (!state[key]) continue;
    filters[key] = key.endsWith("_duration_s") ? Number(state[key]) : state[key];
  }
  if (state.age && AGES[state.age] && !filters.since) {
    // Rounded to the hour so that the URL's repeated searches ask the same question.
    const since = new Date(Date.now() - AGES[state.age].days * 86400000);
    since.setMinutes(0, 0, 0);
    filters.since = since.toISOString();
  }
  return filters;
}

/** A saved search's { q, filters } as a state. */
export function fromSaved(saved) {
  const filters = saved.filters || {};
  const state = { q: saved.q || "", attr: filters.attr || [], age: "" };
  for (const key of SINGLE) state[key] = filters[key] == null ? "" : String(filters[key]);
  return state;
}

export const hasCriteria = (state) => Boolean(state.q.trim() || Object.keys(apiFilters(state)).length);

/** "industry" → "Industry", "deal_size" → "Deal size". */
export const prettyName = (name) => (name.charAt(0).toUpperCase() + name.slice(1)).replace(/_/g, " ");
