// Pieces the admin sections (and the profile) share. Destructive actions are confirmed in a modal
// <dialog> (focus moves in, Escape cancels) rather than window.confirm, so the question can say
// exactly what will happen.
import { useEffect, useRef, useState } from "preact/hooks";
import { all } from "../api.js";
import { useAsync } from "../ui.jsx";

export { useAction } from "../ui.jsx";
import "./admin.css";

/** const [dialog, confirm] = useConfirm(); ... if (await confirm({title, body, action})) ...; render {dialog}. */
export function useConfirm() {
  const [ask, setAsk] = useState(null);
  const confirm = (question) => new Promise((resolve) => setAsk({ ...question, resolve }));
  const close = (answer) => {
    if (ask) ask.resolve(answer);
    setAsk(null);
  };
  return [ask ? <ConfirmDialog {...ask} onClose={close} /> : null, confirm];
}

function ConfirmDialog({ title, body, action = "Confirm", danger = true, onClose }) {
  const ref = useRef(null);
  // close() before unmounting, so the browser hands focus back to the button that asked.
  const finish = (answer) => {
    if (ref.current && ref.current.open) ref.current.close();
    onClose(answer);
  };
  useEffect(() => {
    const dialog = ref.current;
    if (dialog && !dialog.open) dialog.showModal();
    const cancel = (event) => {
      event.preventDefault();
      finish(false);
    };
    dialog.addEventListener("cancel", cancel);
    return () => dialog.removeEventListener("cancel", cancel);
  }, []);
  return (
    <dialog ref={ref} class="confirm-dialog" aria-labelledby="confirm-title" aria-describedby={body ? "confirm-body" : undefined}>
      <h2 id="confirm-title">{title}</h2>
      {body && <p id="confirm-body">{body}</p>}
      <div class="row confirm-actions">
        <button type="button" class="button-secondary" onClick={() => finish(false)} autoFocus>
          Cancel
        </button>
        <button type="button" class={danger ? "button-danger" : ""} onClick={() => finish(true)}>
          {action}
        </button>
      </div>
    </dialog>
  );
}

/** Copy text to the clipboard, falling back to selecting it when the API is refused. */
export async function copyText(text, input) {
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch {
    if (input) {
      input.focus();
      input.select();
    }
    return false;
  }
}

export const ROLES = [
  ["rep", "Rep"],
  ["manager", "Manager"],
  ["enablement", "Enablement"],
  ["admin", "Admin"],
];
export const roleName = (role) => (ROLES.find(([value]) => value === role) || [role, role])[1];

/** Everyone in the organisation (for pickers): active and not, sorted by handle by the API. */
export function useUsers() {
  return useAsync(() => all("/users", { limit: 2000 }), []);
}
export function useTeams() {
  return useAsync(() => all("/teams", { limit: 1000 }), []);
}

export function TeamChecks({ teams, value, onChange, legend }) {
  const toggle = (id) => onChange(value.includes(id) ? value.filter((x) => x !== id) : [...value, id]);
  return (
    <fieldset class="admin-checks">
      <legend>{legend}</legend>
      {teams.length === 0 && <p class="muted small">No teams yet.</p>}
      {teams.map((team) => (
        <label key={team.id} class="check">
          <input type="checkbox" checked={value.includes(team.id)} onChange={() => toggle(team.id)} /> {team.name}
        </label>
      ))}
    </fieldset>
  );
}

/** Teams in tree order (parents before their children), each with its depth. */
export function teamTree(teams) {
  const children = new Map();
  for (const team of teams) {
    const key = team.parent_id && teams.some((t) => t.id === team.parent_id) ? team.parent_id : "";
    if (!children.has(key)) children.set(key, []);
    children.get(key).push(team);
  }
  const out = [];
  const walk = (key, depth) => {
    for (const team of (children.get(key) || []).sort((a, b) => a.name.localeCompare(b.name))) {
      out.push({ team, depth });
      if (depth < 20) walk(team.id, depth + 1);
    }
  };
  walk("", 0);
  return out;
}

