// Assigning a collection: to people and teams (a combobox over GET /users and /teams), with a
// due date; then the assignment's counts once the worker has handed it out.
import { useEffect, useRef, useState } from "preact/hooks";
import { all, api } from "../api.js";
import { FormEnd } from "../ui.jsx";
import { AssignmentSummary, dateInput, dayText, endOfDay } from "./learning-common.jsx";

export function AssignDialog({ collection, onClose }) {
  const dialog = useRef(null);
  const [chosen, setChosen] = useState([]); // [{kind: "user"|"team", id, label}]
  const [text, setText] = useState("");
  const [due, setDue] = useState(dateInput(7));
  const [message, setMessage] = useState("");
  const [threshold, setThreshold] = useState("");
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState(null);
  const [assignment, setAssignment] = useState(null);
  const pickerRef = useRef(null);

  useEffect(() => {
    const node = dialog.current;
    if (node && !node.open) node.showModal();
    const onCancel = () => onClose(assignment);
    node.addEventListener("close", onCancel);
    return () => node.removeEventListener("close", onCancel);
  }, [assignment]);

  // Once made, the assignment is handed out by a worker: ask until it has been (a few seconds).
  useEffect(() => {
    if (!assignment || assignment.published_at) return undefined;
    let tries = 0;
    let timer;
    const poll = async () => {
      tries += 1;
      try {
        const fresh = await api(`/assignments/${assignment.id}`);
        if (fresh.published_at || tries >= 15) setAssignment(fresh);
        else timer = setTimeout(poll, 1000);
      } catch {
        timer = setTimeout(poll, 2000);
      }
    };
    timer = setTimeout(poll, 800);
    return () => clearTimeout(timer);
  }, [assignment && assignment.id, assignment && assignment.published_at]);

  const submit = async (event) => {
    event.preventDefault();
    let who = chosen;
    if (who.length === 0 && pickerRef.current) {
      // Typed a name and went straight on: take it when it names exactly one person or team.
      let match = pickerRef.current.resolve(text);
      if (!match && text.trim()) {
        // The suggestions may not have caught up with the typing yet: ask once more.
        try {
          const page = await api("/users", { query: { q: text.trim(), is_active: true, limit: 20 } });
          match = pickerRef.current.resolve(text, page.items);
        } catch {
          /* the message below asks them to choose */
        }
      }
      if (match) who = [match];
    }
    if (who.length === 0) return setError(new Error("Choose at least one person or team in “Assign to”."));
    if (!due) return setError(new Error("Choose a due date."));
    const pct = threshold ? Number(threshold) : null;
    if (pct != null && !(pct >= 1 && pct <= 100)) return setError(new Error("The share to watch is a percentage from 1 to 100."));
    setBusy(true);
    setError(null);
    try {
      const made = await api("/assignments", {
        method: "POST",
        idempotent: true,
        body: {
          collection_id: collection.id,
          user_ids: who.filter((x) => x.kind === "user").map((x) => x.id),
          team_ids: who.filter((x) => x.kind === "team").map((x) => x.id),
          due_at: endOfDay(due),
          message: message.trim(),
          threshold_pct: pct,
        },
      });
      setChosen(who);
      setAssignment(made);
    } catch (err) {
      setError(err.status === 403 ? new Error(`${err.message} Only its owner, its editors and admins may assign a collection that is not published for everyone.`) : err);
    } finally {
      setBusy(false);
    }
  };

  const names = chosen.map((x) => x.label).join(", ");
  return (
    <dialog ref={dialog} class="learn-dialog" aria-labelledby="assign-heading">
      <h2 id="assign-heading">Assign “{collection.title}”</h2>
      {assignment ? (
        <div class="stack">
          <p role="status" class="learn-assigned">
            {assignment.published_at
              ? `Assigned to ${assignment.person_count} ${assignment.person_count === 1 ? "person" : "people"} (${names}), due ${dayText(assignment.due_at)}.`
              : `Assigned to ${names}. Handing it out…`}
          </p>
          <AssignmentSummary assignment={assignment} linked={false} />
          <div class="row">
            <button type="button" onClick={() => dialog.current.close()}>
              Done
            </button>
          </div>
        </div>
      ) : (
        <form onSubmit={submit}>
          <Picker handle={pickerRef} chosen={chosen} setChosen={setChosen} text={text} setText={setText} />
          <div class="field">
            <label for="assign-due">Due date</label>
            <input id="assign-due" type="date" required min={dateInput(0)} value={due} onInput={(e) => setDue(e.currentTarget.value)} />
          </div>
          <div class="field">
            <label for="assign-message">Message (optional)</label>
            <textarea id="assign-message" maxLength={2000} placeholder="Before your first Acme call" value={message} onInput={(e) => setMessage(e.currentTarget.value)} />
          </div>
          <div class="field">
            <label for="assign-threshold">Done when watched (%)</label>
            <input
              id="assign-threshold"
              type="number"
              min="1"
              max="100"
              inputMode="numeric"
              value={threshold}
              placeholder="The organisation's default"
              onInput={(e) => setThreshold(e.currentTarget.value)}
            />
          </div>
          <FormEnd busy={busy} error={error} label="Assign collection" onCancel={() => dialog.current.close()} />
        </form>
      )}
    </dialog>
  );
}

/**
 * "Assign to": a combobox (ARIA 1.2 pattern) over people and teams. Arrow keys move through the
 * options, Enter picks one; the picks show as removable chips above. `handle.current.resolve(text)`
 * answers the one option a typed text names, for someone who types a name and submits.
 */
function Picker({ handle: ref, chosen, setChosen, text, setText }) {
  const [teams, setTeams] = useState([]);
  const [people, setPeople] = useState([]);
  const [active, setActive] = useState(0);
  const [open, setOpen] = useState(false);
  const input = useRef(null);

  useEffect(() => {
    all("/teams", { limit: 500 }).then(setTeams, () => setTeams([]));
    setTimeout(() => input.current && input.current.focus(), 0);
  }, []);
  useEffect(() => {
    const controller = new AbortController();
    const q = text.trim();
    const timer = setTimeout(() => {
      api("/users", { query: { q: q || undefined, is_active: true, limit: 20 }, signal: controller.signal }).then(
        (page) => setPeople(page.items),
        (err) => err.name !== "AbortError" && setPeople([]),
      );
    }, q ? 200 : 0);
    return () => {
      clearTimeout(timer);
      controller.abort();
    };
  }, [text]);

  const q = text.trim().toLowerCase();
  const taken = new Set(chosen.map((x) => `${x.kind}:${x.id}`));
  const asOption = (u) => ({ kind: "user", id: u.id, label: u.display_name || u.handle, detail: `@${u.handle} · ${u.role}`, keys: [u.handle, u.email, u.display_name] });
  const options = [
    ...people
      .filter((u) => !q || [u.display_name, u.handle, u.email].some((s) => s && s.toLowerCase().includes(q)))
      .map(asOption),
    ...teams
      .filter((t) => !q || t.name.toLowerCase().includes(q) || (t.handle || "").toLowerCase().includes(q))
      .map((t) => ({ kind: "team", id: t.id, label: t.name, detail: "Team, with its sub-teams", keys: [t.name, t.handle] })),
  ].filter((o) => !taken.has(`${o.kind}:${o.id}`));

  if (ref) {
    ref.current = {
      resolve(typed, found) {
        const want = typed.trim().toLowerCase();
        if (!want) return null;
        const pool = found ? found.map(asOption) : options;
        const exact = pool.filter((o) => o.keys.some((k) => k && k.toLowerCase() === want));
        if (exact.length === 1) return exact[0];
        return pool.length === 1 ? pool[0] : null;
      },
    };
  }

  const pick = (option) => {
    setChosen([...chosen, option]);
    setText("");
    setActive(0);
    setOpen(false);
    input.current && input.current.focus();
  };
  const onKeyDown = (event) => {
    if (event.key === "ArrowDown") {
      event.preventDefault();
      setOpen(true);
      setActive((i) => Math.min(i + 1, options.length - 1));
    } else if (event.key === "ArrowUp") {
      event.preventDefault();
      setActive((i) => Math.max(i - 1, 0));
    } else if (event.key === "Enter" && open && options[active]) {
      event.preventDefault(); // pick, do not submit the form
      pick(options[active]);
    } else if (event.key === "Escape" && open) {
      event.preventDefault(); // close the list, not the dialog
      event.stopPropagation();
      setOpen(false);
    }
  };
  const showList = open && options.length > 0;
  const activeId = showList && options[active] ? `assign-option-${options[active].kind}-${options[active].id}` : undefined;
  return (
    <div class="field learn-picker">
      <label for="assign-to">Assign to</label>
      {chosen.length > 0 && (
        <ul class="learn-chips" aria-label="Chosen">
          {chosen.map((x) => (
            <li key={`${x.kind}:${x.id}`}>
              <span>{x.kind === "team" ? `Team: ${x.label}` : x.label}</span>
              <button type="button" class="button-quiet" aria-label={`Remove ${x.label}`} onClick={() => setChosen(chosen.filter((y) => y !== x))}>
                ×
              </button>
            </li>
          ))}
        </ul>
      )}
      <input
        id="assign-to"
        ref={input}
        role="combobox"
        aria-expanded={showList ? "true" : "false"}
        aria-controls="assign-options"
        aria-autocomplete="list"
        aria-activedescendant={activeId}
        aria-describedby="assign-to-hint"
        autoComplete="off"
        placeholder="A name or a team"
        value={text}
        onInput={(e) => {
          setText(e.currentTarget.value);
          setActive(0);
          setOpen(true);
        }}
        onFocus={() => setOpen(true)}
        onKeyDown={onKeyDown}
      />
      <small id="assign-to-hint">People and teams; a team includes its sub-teams.</small>
      <ul id="assign-options" role="listbox" aria-label="People and teams" class="learn-options" hidden={!showList}>
        {showList &&
          options.slice(0, 12).map((option, index) => (
            <li
              key={`${option.kind}:${option.id}`}
              id={`assign-option-${option.kind}-${option.id}`}
              role="option"
              aria-selected={index === active ? "true" : "false"}
              class={index === active ? "learn-option learn-option-active" : "learn-option"}
              onMouseDown={(e) => e.preventDefault()}
              onClick={() => pick(option)}
            >
              <span class="strong">{option.kind === "team" ? `Team: ${option.label}` : option.label}</span>
              <span class="small muted"> {option.detail}</span>
            </li>
          ))}
      </ul>
    </div>
  );
}
