// The share sheet: send a video to people, teams and distribution lists (screens/player.jsx
// opens it), then follow the share. Its earlier shares are listed under the form.
import { useEffect, useMemo, useRef, useState } from "preact/hooks";
import { all, api } from "../api.js";
import { Link } from "../router.jsx";
import { useSession } from "../session.jsx";
import { ErrorNote, Spinner, ago } from "../ui.jsx";
import "./share.css";

const KIND_LABEL = { user: "person", team: "team", list: "list" };

/** Someone or something to share with, as the picker shows it. */
function target(kind, item) {
  if (kind === "user") return { kind, id: item.id, label: item.display_name || item.handle, sub: `@${item.handle}` };
  if (kind === "team") return { kind, id: item.id, label: item.name, sub: item.handle ? `@${item.handle}` : "team" };
  return { kind, id: item.id, label: item.name, sub: item.visibility === "private" ? "private" : "organisation" };
}

function matches(entry, text) {
  const needle = text.trim().toLowerCase();
  if (!needle) return true;
  return `${entry.label} ${entry.sub}`.toLowerCase().includes(needle);
}

/** The "Share with" combobox: people come from the API as one types (GET /users?q=), teams and
 * lists are few and filtered here. Chosen ones show as removable chips above the input. */
function SharePicker({ me, chosen, setChosen }) {
  const [text, setText] = useState("");
  const [open, setOpen] = useState(false);
  const [active, setActive] = useState(-1);
  const [people, setPeople] = useState([]);
  const [groups, setGroups] = useState({ teams: [], lists: [] });
  const [error, setError] = useState(null);
  const input = useRef(null);

  useEffect(() => {
    const controller = new AbortController();
    Promise.all([all("/teams", { limit: 200 }), all("/distribution-lists", { limit: 100 })]).then(
      ([teams, lists]) => setGroups({ teams: teams.map((t) => target("team", t)), lists: lists.map((l) => target("list", l)) }),
      (e) => e.name !== "AbortError" && setError(e),
    );
    return () => controller.abort();
  }, []);

  // People by prefix, a moment after typing stops: one request per pause, not per key.
  useEffect(() => {
    const controller = new AbortController();
    const timer = setTimeout(() => {
      api("/users", { query: { q: text.trim() || undefined, is_active: true, limit: 8 }, signal: controller.signal }).then(
        (page) => setPeople(page.items.filter((u) => u.id !== me.id).map((u) => target("user", u))),
        (e) => e.name !== "AbortError" && setError(e),
      );
    }, 180);
    return () => {
      clearTimeout(timer);
      controller.abort();
    };
  }, [text, me.id]);

  const taken = new Set(chosen.map((c) => `${c.kind}:${c.id}`));
  const options = useMemo(
    () =>
      [...people, ...groups.teams.filter((t) => matches(t, text)), ...groups.lists.filter((l) => matches(l, text))]
        .filter((o) => !taken.has(`${o.kind}:${o.id}`))
        .slice(0, 12),
    // eslint-disable-next-line react-hooks/exhaustive-deps
    [people, groups, text, chosen],
  );
  const expanded = open && options.length > 0;
  // -1: no option highlighted yet; Enter then takes the first one (type "jor", Enter).
  const current = Math.min(active, options.length - 1);

  const pick = (option) => {
    setChosen([...chosen, option]);
    setText("");
    setActive(-1);
    // Closed after a pick, so the list never covers the message and Send; typing opens it.
    setOpen(false);
    input.current && input.current.focus();
  };
  const remove = (entry) => {
    setChosen(chosen.filter((c) => !(c.kind === entry.kind && c.id === entry.id)));
    input.current && input.current.focus();
  };

  const onKeyDown = (event) => {
    if (event.key === "ArrowDown") {
      event.preventDefault();
      setOpen(true);
      setActive((i) => (options.length ? (i + 1) % options.length : -1));
    } else if (event.key === "ArrowUp") {
      event.preventDefault();
      setActive((i) => (options.length ? (i <= 0 ? options.length - 1 : i - 1) : -1));
    } else if (event.key === "Enter" && expanded) {
      event.preventDefault();
      pick(options[Math.max(0, current)]);
    } else if (event.key === "Escape" && expanded) {
      // Close the suggestions, not the whole sheet.
      event.preventDefault();
      event.stopPropagation();
      setOpen(false);
    } else if (event.key === "Backspace" && !text && chosen.length) {
      setChosen(chosen.slice(0, -1));
    }
  };

  return (
    <div class="field share-picker">
      <label for="share-with">Share with</label>
      {chosen.length > 0 && (
        <ul class="share-chips" aria-label="Sharing with">
          {chosen.map((entry) => (
            <li key={`${entry.kind}:${entry.id}`} class="share-chip">
              <span>
                {entry.label} <span class="muted small">{KIND_LABEL[entry.kind]}</span>
              </span>
              <button type="button" class="button-quiet share-chip-remove" aria-label={`Remove ${entry.label}`} onClick={() => remove(entry)}>
                ×
              </button>
            </li>
          ))}
        </ul>
      )}
      <div class="share-combo">
      <input
        id="share-with"
        ref={input}
        type="text"
        role="combobox"
        autoComplete="off"
        aria-autocomplete="list"
        aria-expanded={expanded ? "true" : "false"}
        aria-controls="share-with-options"
        aria-activedescendant={expanded && current >= 0 ? `share-option-${current}` : undefined}
        aria-describedby="share-with-hint"
        placeholder="Name, team or list"
        value={text}
        onInput={(e) => {
          setText(e.currentTarget.value);
          setOpen(true);
          setActive(-1);
        }}
        onFocus={() => setOpen(true)}
        onBlur={() => setOpen(false)}
        onKeyDown={onKeyDown}
      />
      <ul id="share-with-options" role="listbox" aria-label="Suggestions" class="share-options" hidden={!expanded}>
        {options.map((option, index) => (
          <li
            key={`${option.kind}:${option.id}`}
            id={`share-option-${index}`}
            role="option"
            aria-selected={index === current ? "true" : "false"}
            class={index === current ? "share-option active" : "share-option"}
            // mousedown would blur the input (closing the list) before the click lands.
            onMouseDown={(e) => e.preventDefault()}
            onClick={() => pick(option)}
          >
            <span class="strong">{option.label}</span> <span class="muted small">{option.sub} · {KIND_LABEL[option.kind]}</span>
          </li>
        ))}
      </ul>
      </div>
      <small id="share-with-hint">People, teams (with their sub-teams) and distribution lists.</small>
      <ErrorNote error={error} />
    </div>
  );
}

const STATUS_TEXT = { waiting_for_video: "waiting for the video", sending: "sent", recalled: "recalled" };

/** The shares of this video the signed-in person may follow, each linking to its tracking. */
function EarlierShares({ videoId, version }) {
  const [state, setState] = useState({ items: null, error: null });
  useEffect(() => {
    const controller = new AbortController();
    api(`/videos/${videoId}/shares`, { query: { limit: 20 }, signal: controller.signal }).then(
      (page) => setState({ items: page.items, error: null }),
      (error) => error.name !== "AbortError" && setState({ items: [], error: error.status === 404 ? null : error }),
    );
    return () => controller.abort();
  }, [videoId, version]);
  if (state.error) return <ErrorNote error={state.error} />;
  if (!state.items) return <Spinner label="Loading earlier shares" />;
  if (!state.items.length) return null;
  return (
    <section class="share-earlier" aria-labelledby="share-earlier-title">
      <h3 id="share-earlier-title">Shared before</h3>
      <ul class="list" aria-label="Earlier shares">
        {state.items.map((share) => (
          <li key={share.id} class="share-earlier-item">
            <Link href={`/shares/${share.id}`}>
              Shared {ago(share.created_at)}
              {share.recipient_count != null && ` with ${share.recipient_count} ${share.recipient_count === 1 ? "person" : "people"}`}
            </Link>
            <div class="row small muted">
              {share.status && (
                <span class={share.status === "recalled" ? "pill pill-danger" : "pill"}>{STATUS_TEXT[share.status] || share.status}</span>
              )}
              {share.reached && (
                <span>
                  {share.reached.opened} opened · {share.reached.watched} watched
                </span>
              )}
            </div>
            {share.message && <p class="small share-quote">“{share.message}”</p>}
          </li>
        ))}
      </ul>
    </section>
  );
}

/** Props: { video, onClose }. A modal <dialog>: Escape or "Close" closes it and calls onClose. */
export function ShareSheet({ video, onClose }) {
  const { me } = useSession();
  const dialog = useRef(null);
  const [chosen, setChosen] = useState([]);
  const [message, setMessage] = useState("");
  const [sending, setSending] = useState(false);
  const [error, setError] = useState(null);
  const [sent, setSent] = useState(null);
  const [version, setVersion] = useState(0);
  // Once sent, the form is gone: focus goes to "Follow this share" rather than to the page.
  useEffect(() => {
    const link = sent && dialog.current && dialog.current.querySelector(".share-sent a");
    if (link) link.focus();
  }, [sent]);

  useEffect(() => {
    const element = dialog.current;
    if (element && !element.open) element.showModal();
    // Straight to the picker: sharing is what the sheet is for.
    const input = element && element.querySelector("#share-with");
    if (input) input.focus();
  }, []);

  const close = () => dialog.current && dialog.current.close();

  const send = async (event) => {
    event.preventDefault();
    if (!chosen.length) {
      setError(new Error("Choose at least one person, team or list to share with."));
      return;
    }
    setSending(true);
    setError(null);
    const ids = (kind) => chosen.filter((c) => c.kind === kind).map((c) => c.id);
    try {
      const share = await api(`/videos/${video.id}/shares`, {
        method: "POST",
        idempotent: true,
        body: { user_ids: ids("user"), team_ids: ids("team"), list_ids: ids("list"), message: message.trim() },
      });
      setSent(share);
      setChosen([]);
      setMessage("");
      setVersion((v) => v + 1);
    } catch (e) {
      if (e.code === "not_found" || e.status === 404) {
        e.message = "One of them is not yours to share with any more, or the video is gone. Check the list and try again.";
      }
      setError(e);
    } finally {
      setSending(false);
    }
  };

  return (
    // A click on "Follow this share" routes away: close the sheet as the click bubbles up.
    <dialog
      ref={dialog}
      class="share-sheet"
      aria-labelledby="share-title"
      onClose={() => onClose && onClose()}
      // A click on the backdrop (the dialog itself, outside its box) closes it too.
      onClick={(e) => (e.target === dialog.current || (e.target.closest && e.target.closest("a[href]"))) && close()}
    >
      <div class="share-body">
        <header class="share-head">
          <h2 id="share-title">Share</h2>
          <button type="button" class="button-quiet" onClick={close}>
            Close
          </button>
        </header>
        {video && video.title && <p class="muted share-video-title">{video.title}</p>}
        {sent ? (
          <div class="share-sent" role="status">
            <p class="strong">
              Shared with {sent.recipient_count} {sent.recipient_count === 1 ? "person" : "people"}.
              {sent.status === "waiting_for_video" && " They are told as soon as the video is ready."}
            </p>
            <p class="row">
              <Link href={`/shares/${sent.id}`} class="button">
                Follow this share
              </Link>
              <button type="button" class="button-secondary" onClick={() => setSent(null)}>
                Share with others
              </button>
            </p>
          </div>
        ) : (
          <form onSubmit={send} noValidate>
            <SharePicker me={me} chosen={chosen} setChosen={setChosen} />
            <div class="field">
              <label for="share-message">Message (optional)</label>
              <textarea id="share-message" maxLength={1000} value={message} onInput={(e) => setMessage(e.currentTarget.value)} />
            </div>
            <ErrorNote error={error} />
            <div class="row">
              <button type="submit" disabled={sending}>
                {sending ? "Sending…" : "Send"}
              </button>
              <span class="muted small" aria-live="polite">
                {chosen.length ? `${chosen.length} chosen` : ""}
              </span>
            </div>
          </form>
        )}
        {video && video.id && <EarlierShares videoId={video.id} version={version} />}
      </div>
    </dialog>
  );
}
