// A textarea that completes `@handle` from GET /videos/{id}/mentionable: typing "@ri" opens a
// listbox of people and teams (arrow keys, Enter or Tab to pick, Escape to close). The API
// resolves `@handle` in the body itself, so picking inserts "@handle " as plain text.
import { useEffect, useRef, useState } from "preact/hooks";
import { api } from "../api.js";

let counter = 0;

/** The `@word` ending at the caret: { start, query } or null. */
function mentionAt(text, caret) {
  const before = text.slice(0, caret);
  const match = /(^|[^\w@])@([\w.-]{0,63})$/.exec(before);
  if (!match) return null;
  return { start: caret - match[2].length - 1, query: match[2] };
}

export function MentionTextarea({ videoId, id, value, onInput, onPick, label, describedBy, onFocus, textareaRef, required = true, rows = 3 }) {
  const [list, setList] = useState({ items: [], open: false, active: 0, token: null });
  const ownRef = useRef(null);
  const ref = textareaRef || ownRef;
  const listId = useRef(`mention-list-${++counter}`).current;
  const request = useRef(null);

  useEffect(() => () => request.current && request.current.abort(), []);

  const lookup = (text, caret) => {
    const token = mentionAt(text, caret);
    if (!token) {
      setList((state) => (state.open ? { ...state, open: false, token: null } : state));
      return;
    }
    if (request.current) request.current.abort();
    const controller = new AbortController();
    request.current = controller;
    api(`/videos/${videoId}/mentionable`, { query: { q: token.query, limit: 8 }, signal: controller.signal })
      .then((answer) => setList({ items: answer.items, open: answer.items.length > 0, active: 0, token }))
      .catch(() => {});
  };

  const pick = (item) => {
    const el = ref.current;
    const { token } = list;
    if (!el || !token) return;
    const caret = el.selectionStart;
    const insert = `@${item.handle} `;
    const next = value.slice(0, token.start) + insert + value.slice(caret);
    onInput(next);
    if (onPick) onPick(item);
    setList({ items: [], open: false, active: 0, token: null });
    const position = token.start + insert.length;
    requestAnimationFrame(() => {
      el.focus();
      el.setSelectionRange(position, position);
    });
  };

  const onKeyDown = (event) => {
    if (!list.open) return;
    if (event.key === "ArrowDown" || event.key === "ArrowUp") {
      event.preventDefault();
      const step = event.key === "ArrowDown" ? 1 : -1;
      setList((state) => ({ ...state, active: (state.active + step + state.items.length) % state.items.length }));
    } else if (event.key === "Enter" || event.key === "Tab") {
      event.preventDefault();
      pick(list.items[list.active]);
    } else if (event.key === "Escape") {
      event.preventDefault();
      event.stopPropagation();
      setList((state) => ({ ...state, open: false }));
    }
  };

  const optionId = (index) => `${listId}-${index}`;
  return (
    <div class="pl-mention">
      <label for={id}>{label}</label>
      <textarea
        id={id}
        ref={ref}
        rows={rows}
        value={value}
        maxLength={5000}
        required={required}
        aria-describedby={describedBy}
        aria-autocomplete="list"
        aria-controls={list.open ? listId : undefined}
        aria-activedescendant={list.open ? optionId(list.active) : undefined}
        onInput={(event) => {
          onInput(event.currentTarget.value);
          lookup(event.currentTarget.value, event.currentTarget.selectionStart);
        }}
        onKeyDown={onKeyDown}
        onFocus={onFocus}
        onBlur={() => setTimeout(() => setList((state) => ({ ...state, open: false })), 150)}
      />
      <span class="visually-hidden" role="status">
        {list.open ? `${list.items.length} ${list.items.length === 1 ? "suggestion" : "suggestions"}: arrow keys to choose, Enter to pick` : ""}
      </span>
      {list.open && (
        <ul class="pl-mention-list" role="listbox" id={listId} aria-label="People and teams to mention">
          {list.items.map((item, index) => (
            <li
              key={item.user_id || item.team_id}
              id={optionId(index)}
              role="option"
              aria-selected={index === list.active ? "true" : "false"}
              class={index === list.active ? "active" : ""}
              // mousedown, not click: the textarea must keep its focus and caret.
              onMouseDown={(event) => {
                event.preventDefault();
                pick(item);
              }}
            >
              <span class="strong">@{item.handle}</span> <span class="muted">{item.display_name}</span>
              {item.kind === "team" && <span class="pill">Team</span>}
              {!item.can_see_video && <span class="pill pill-warn">Can't see this video</span>}
            </li>
          ))}
        </ul>
      )}
    </div>
  );
}
