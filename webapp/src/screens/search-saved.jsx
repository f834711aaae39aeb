// Saved searches: follow the current query and filters, list, run, mute and delete them.
// Pieces of screens/search.jsx.
import { useState } from "preact/hooks";
import { api } from "../api.js";
import { Link } from "../router.jsx";
import { Empty, ErrorNote, Spinner, ago, toast, useAsync, FormEnd } from "../ui.jsx";
import { apiFilters, fromSaved, prettyName, writeState } from "./search-util.js";

function describe(saved) {
  const parts = [];
  if (saved.q) parts.push(`“${saved.q}”`);
  const f = saved.filters || {};
  for (const a of f.attr || []) parts.push(a.replace(/^(-?)([^:]+):/, (_, not, name) => `${not ? "not " : ""}${prettyName(name)}: `));
  if (f.question) parts.push(`${f.question} questions`);
  if (f.author) parts.push("one author");
  if (f.min_duration_s || f.max_duration_s) parts.push("by length");
  if (f.since) parts.push(`since ${new Date(f.since).toLocaleDateString()}`);
  return parts.join(" · ");
}

/** "Save search": a name (the query when empty), then POST /saved-searches. */
export function SaveSearch({ state, onSaved }) {
  const [open, setOpen] = useState(false);
  const [name, setName] = useState("");
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);
  const save = async (event) => {
    event.preventDefault();
    setBusy(true);
    setError(null);
    // "Made in the last 7 days" is kept as a moving window by the URL, not as a fixed date.
    const filters = apiFilters({ ...state, age: "" });
    try {
      await api("/saved-searches", { method: "POST", idempotent: true, body: { name: name.trim(), q: state.q.trim(), filters } });
      setOpen(false);
      setName("");
      toast("Search saved: new matches come to your inbox");
      if (onSaved) onSaved();
    } catch (e) {
      if (e.code === "saved_search_empty") e.message = "Type a query or choose a filter first: following everything is the feed.";
      setError(e);
    } finally {
      setBusy(false);
    }
  };
  if (!open) {
    return (
      <button type="button" class="button-secondary" onClick={() => setOpen(true)}>
        Save search
      </button>
    );
  }
  return (
    <form class="card search-save" onSubmit={save}>
      <div class="field">
        <label for="search-save-name">Name</label>
        <input id="search-save-name" maxLength={120} value={name} placeholder={state.q || "My search"} onInput={(e) => setName(e.currentTarget.value)} autoFocus />
        <small>You are told in your inbox when new videos or comments match.</small>
      </div>
      <FormEnd busy={busy} error={error} label="Save" onCancel={() => setOpen(false)} />
    </form>
  );
}

export function SavedSearches({ version }) {
  const { data, error, reload, setData } = useAsync((signal) => api("/saved-searches", { signal }), [version]);
  const [actionError, setActionError] = useState(null);
  if (error) return <ErrorNote error={error} onRetry={reload} />;
  if (!data) return <Spinner label="Loading your saved searches" />;
  if (!data.items.length) return <Empty>No saved searches yet. Search, then “Save search” to be told of new matches.</Empty>;

  const remove = async (saved) => {
    setActionError(null);
    try {
      await api(`/saved-searches/${saved.id}`, { method: "DELETE" });
      setData({ items: data.items.filter((s) => s.id !== saved.id) });
      toast(`Stopped following “${saved.name || saved.q}”`);
    } catch (e) {
      setActionError(e);
    }
  };
  const setNotify = async (saved, notify) => {
    setActionError(null);
    try {
      const changed = await api(`/saved-searches/${saved.id}`, { method: "PATCH", body: { notify } });
      setData({ items: data.items.map((s) => (s.id === saved.id ? changed : s)) });
    } catch (e) {
      setActionError(e);
    }
  };

  return (
    <>
      <ErrorNote error={actionError} />
      <ul class="list" aria-label="Saved list">
        {data.items.map((saved) => {
          const label = saved.name || saved.q || "Saved search";
          return (
            <li key={saved.id} class="search-saved">
              <Link href={writeState(fromSaved(saved))} class="search-title" aria-label={`Run ${label}`}>
                {label}
              </Link>
              <p class="small muted">
                {describe(saved)}
                {saved.last_notified_at ? ` · last told ${ago(saved.last_notified_at)}` : ""}
              </p>
              <div class="row">
                <label class="check grow small">
                  <input
                    type="checkbox"
                    aria-label={`Tell me about new matches for ${label}`}
                    checked={saved.notify}
                    onChange={(e) => setNotify(saved, e.currentTarget.checked)} />
                  Tell me about new matches
                </label>
                <button type="button" class="button-quiet" onClick={() => remove(saved)} aria-label={`Delete ${label}`}>
                  Delete
                </button>
              </div>
            </li>
          );
        })}
      </ul>
    </>
  );
}
