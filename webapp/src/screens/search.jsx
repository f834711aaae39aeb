// /search: find videos and the moments in them (transcript lines, comments), narrow by facets,
// follow a search, see what helps with one of my deals, and ask the peers. The query and the
// filters live in the URL (search-util.js), so back, reload and inbox links land on the same view.
import { useEffect, useRef, useState } from "preact/hooks";
import { api } from "../api.js";
import { navigate } from "../router.jsx";
import { Empty, ErrorNote, Page, Spinner, useAsync } from "../ui.jsx";
import { ForMyDeal } from "./search-deal.jsx";
import { AskThePeers } from "./search-questions.jsx";
import { Facets, ResultItem } from "./search-results.jsx";
import { SaveSearch, SavedSearches } from "./search-saved.jsx";
import { apiFilters, fromSaved, hasCriteria, readState, writeState } from "./search-util.js";
import "./search.css";

const TABS = [
  ["results", "Videos"],
  ["deal", "For my deal"],
  ["saved", "Saved"],
  ["questions", "Ask the peers"],
];
const TYPE_DELAY_MS = 350;

function Results({ state, stateKey }) {
  const [more, setMore] = useState({ key: null, items: [], cursor: null, busy: false, error: null });
  const query = { ...apiFilters(state), q: state.q || undefined, limit: 20 };
  const first = useAsync((signal) => api("/search", { query, signal }), [stateKey]);
  const facets = useAsync((signal) => api("/search/facets", { query: { ...query, limit: undefined }, signal }), [stateKey]);
  const extra = more.key === stateKey ? more : { items: [], cursor: null, busy: false, error: null };
  const cursor = extra.key ? extra.cursor : first.data && first.data.next_cursor;

  const update = (partial) => navigate(writeState({ ...state, ...partial }));

  const loadMore = async () => {
    setMore({ ...extra, key: stateKey, busy: true, error: null });
    try {
      const page = await api("/search", { query: { ...query, cursor } });
      setMore({ key: stateKey, items: [...extra.items, ...page.items], cursor: page.next_cursor, busy: false, error: null });
    } catch (error) {
      setMore({ ...extra, key: stateKey, busy: false, error });
    }
  };

  const items = first.data ? [...first.data.items, ...extra.items] : [];
  const total = facets.data ? facets.data.total_text : null;
  return (
    <div class="search-layout">
      <section class="search-side" aria-label="Filters">
        <h2 class="visually-hidden">Filters</h2>
        {facets.error && <ErrorNote error={facets.error} onRetry={facets.reload} />}
        <Facets facets={facets.data} state={state} update={update} />
        {state.attr.length > 0 && (
          <div class="search-attr-options">
            <div class="field">
              <label for="search-attr-time">Deal attributes</label>
              <select id="search-attr-time" value={state.attr_time || "then"} onChange={(e) => update({ attr_time: e.currentTarget.value === "then" ? "" : e.currentTarget.value })}>
                <option value="then">as the video was recorded</option>
                <option value="now">as the deal is now</option>
              </select>
            </div>
            {state.attr.length > 1 && (
              <div class="field">
                <label for="search-attr-match">Match</label>
                <select id="search-attr-match" value={state.attr_match || "all"} onChange={(e) => update({ attr_match: e.currentTarget.value === "all" ? "" : e.currentTarget.value })}>
                  <option value="all">every attribute filter</option>
                  <option value="any">any attribute filter</option>
                </select>
              </div>
            )}
          </div>
        )}
        {Object.keys(apiFilters(state)).length > 0 && (
          <p class="row">
            <button type="button" class="button-quiet" onClick={() => navigate(writeState({ q: state.q, attr: [] }))}>
              Clear filters
            </button>
          </p>
        )}
      </section>
      <section class="search-main" aria-labelledby="search-results-title">
        <div class="row search-summary">
          <h2 id="search-results-title" class="grow" aria-live="polite">
            {first.loading && !first.data ? "Searching…" : total != null ? `${total} ${total === "1" ? "video" : "videos"}` : "Videos"}
          </h2>
          {hasCriteria(state) && <SaveSearch state={state} />}
        </div>
        {first.error && (
          <ErrorNote
            error={first.error.code === "invalid_cursor" ? new Error("These results changed: search again.") : first.error}
            onRetry={first.reload}
          />
        )}
        {first.loading && !first.data && <Spinner label="Searching" />}
        {first.data &&
          (items.length ? (
            <ol class="list search-results" aria-label="Results" aria-busy={first.loading ? "true" : "false"}>
              {items.map((item) => (
                <ResultItem key={item.video.id} item={item} />
              ))}
            </ol>
          ) : (
            <Empty>
              {hasCriteria(state)
                ? "Nothing matches. Try fewer words, another spelling, or fewer filters."
                : "No videos you may see yet. Videos shared with you show up here."}
            </Empty>
          ))}
        <ErrorNote error={extra.error} />
        {cursor && first.data && (
          <p>
            <button type="button" class="button-secondary" onClick={loadMore} disabled={extra.busy}>
              {extra.busy ? "Loading…" : "Show more results"}
            </button>
          </p>
        )}
      </section>
    </div>
  );
}

export function Search({ query, me }) {
  const state = readState(query);
  const stateKey = writeState(state);
  const tab = TABS.some(([key]) => key === query.get("tab")) ? query.get("tab") : "results";
  const forDeal = query.get("for_deal") || "";
  const savedId = query.get("saved");
  const [text, setText] = useState(state.q);
  const [savedVersion, setSavedVersion] = useState(0);
  const [savedError, setSavedError] = useState(null);
  const lastUrlQ = useRef(state.q);
  const typing = useRef(null);

  // The URL changed under us (back, a saved search, an inbox link): show its query.
  useEffect(() => {
    if (state.q !== lastUrlQ.current) {
      lastUrlQ.current = state.q;
      setText(state.q);
    }
  }, [state.q]);

  // /search?saved=ID (a `search.matches` inbox item): run that saved search.
  useEffect(() => {
    if (!savedId) return undefined;
    const controller = new AbortController();
    api(`/saved-searches/${savedId}`, { signal: controller.signal }).then(
      (saved) => navigate(writeState(fromSaved(saved)), { replace: true }),
      (error) => error.name !== "AbortError" && setSavedError(error),
    );
    return () => controller.abort();
  }, [savedId]);

  useEffect(() => () => clearTimeout(typing.current), []);

  const go = (q, replace = false) => {
    clearTimeout(typing.current);
    lastUrlQ.current = q;
    navigate(writeState({ ...state, q }, { tab: tab === "results" ? "" : tab }), { replace });
  };

  const submit = (event) => {
    event.preventDefault();
    // Searching from another tab shows the results (the questions tab keeps its own list).
    const q = text.trim();
    clearTimeout(typing.current);
    lastUrlQ.current = q;
    navigate(writeState({ ...state, q }, { tab: tab === "questions" ? tab : "" }));
  };

  // Search as you type, a moment after the last key; the URL is replaced, not stacked.
  const onInput = (event) => {
    const value = event.currentTarget.value;
    setText(value);
    clearTimeout(typing.current);
    if (tab !== "results" && tab !== "questions") return;
    typing.current = setTimeout(() => go(value.trim(), true), TYPE_DELAY_MS);
  };

  // What is typed but not yet searched goes along (the type-ahead timer would lose it).
  const switchTab = (key) => {
    clearTimeout(typing.current);
    const q = text.trim();
    lastUrlQ.current = q;
    navigate(writeState({ ...state, q }, { tab: key === "results" ? "" : key, for_deal: key === "deal" ? forDeal : "" }), { replace: true });
  };

  const onTabKey = (event) => {
    const index = TABS.findIndex(([key]) => key === tab);
    let next = null;
    if (event.key === "ArrowRight") next = (index + 1) % TABS.length;
    if (event.key === "ArrowLeft") next = (index - 1 + TABS.length) % TABS.length;
    if (next === null) return;
    event.preventDefault();
    switchTab(TABS[next][0]);
    setTimeout(() => document.getElementById(`search-tab-${TABS[next][0]}`)?.focus(), 0);
  };

  return (
    <Page title="Search" wide>
      <form role="search" class="search-form" onSubmit={submit}>
        <label for="search-q" class="visually-hidden">
          Search
        </label>
        <input
          id="search-q"
          type="search"
          enterKeyHint="search"
          autoComplete="off"
          maxLength={200}
          placeholder="Words, “a phrase”, -not, a or b"
          value={text}
          onInput={onInput}
        />
        <button type="submit">Search</button>
      </form>
      {savedError && <ErrorNote error={savedError.status === 404 ? new Error("That saved search is gone.") : savedError} />}
      <div class="tabs" role="tablist" aria-label="Views" onKeyDown={onTabKey}>
        {TABS.map(([key, label]) => (
          <button
            key={key}
            id={`search-tab-${key}`}
            type="button"
            role="tab"
            aria-selected={tab === key ? "true" : "false"}
            aria-controls="search-panel"
            tabIndex={tab === key ? 0 : -1}
            onClick={() => switchTab(key)}
          >
            {label}
          </button>
        ))}
      </div>
      <div id="search-panel" role="tabpanel" aria-labelledby={`search-tab-${tab}`}>
        {tab === "results" && <Results state={state} stateKey={stateKey} />}
        {tab === "deal" && (
          <ForMyDeal dealId={forDeal} onPick={(id) => navigate(writeState(state, { tab: "deal", for_deal: id }), { replace: true })} />
        )}
        {tab === "saved" && (
          <>
            {hasCriteria(state) && (
              <p class="row">
                <SaveSearch state={state} onSaved={() => setSavedVersion((v) => v + 1)} />
                <span class="small muted">the current query and filters</span>
              </p>
            )}
            <SavedSearches version={savedVersion} />
          </>
        )}
        {tab === "questions" && (
          <AskThePeers
            me={me}
            q={state.q}
            onClearQuery={() => {
              setText("");
              go("");
            }}
          />
        )}
      </div>
    </Page>
  );
}
