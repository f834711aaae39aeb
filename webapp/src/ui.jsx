// Small shared pieces. Area-specific components live in their screen's folder.
import { useCallback, useEffect, useRef, useState } from "preact/hooks";

/** Run `load` (an async function of an AbortSignal) when `deps` change: { data, error, loading, reload }. */
export function useAsync(load, deps) {
  const [state, setState] = useState({ data: undefined, error: null, loading: true });
  const counter = useRef(0);
  const run = useCallback(() => {
    const controller = new AbortController();
    const mine = ++counter.current;
    setState((previous) => ({ ...previous, loading: true, error: null }));
    load(controller.signal).then(
      (data) => mine === counter.current && setState({ data, error: null, loading: false }),
      (error) => error.name !== "AbortError" && mine === counter.current && setState({ data: undefined, error, loading: false }),
    );
    return () => controller.abort();
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, deps);
  useEffect(run, [run]);
  return { ...state, reload: run, setData: (data) => setState((s) => ({ ...s, data })) };
}

/** One action at a time: busy while `work` runs, its error kept; `done` is toasted on success.
 * `run` answers the work's result (true when it had none), or false when it failed. */
export function useAction() {
  const [state, setState] = useState({ busy: false, error: null });
  const run = async (work, done) => {
    setState({ busy: true, error: null });
    try {
      const result = await work();
      setState({ busy: false, error: null });
      if (done) toast(done);
      return result ?? true;
    } catch (error) {
      setState({ busy: false, error });
      return false;
    }
  };
  return { ...state, run, clear: () => setState({ busy: false, error: null }) };
}

/** A page: its heading (the document title too) and content. */
export function Page({ title, actions, children, wide = false }) {
  useEffect(() => {
    document.title = title ? `${title} · Fieldcast` : "Fieldcast";
  }, [title]);
  return (
    <main id="main" class={wide ? "page page-wide" : "page"} tabIndex={-1}>
      <header class="page-head">
        <h1>{title}</h1>
        {actions && <div class="page-actions">{actions}</div>}
      </header>
      {children}
    </main>
  );
}

/** A form's last lines: what went wrong, the submit button, Cancel and any `children`. */
export function FormEnd({ busy, error, label, onCancel, children }) {
  return (
    <>
      <ErrorNote error={error} />
      <div class="row">
        <button type="submit" disabled={busy}>
          {label}
        </button>
        <button type="button" class="button-secondary" onClick={onCancel}>
          Cancel
        </button>
        {children}
      </div>
    </>
  );
}

export function Spinner({ label = "Loading" }) {
  return (
    <p class="spinner" role="status">
      <span aria-hidden="true" class="spinner-dot" /> {label}…
    </p>
  );
}

/** An API error as a sentence a person can act on, announced to screen readers. */
export function ErrorNote({ error, onRetry }) {
  if (!error) return null;
  return (
    <div class="error-note" role="alert">
      <p>{error.message || String(error)}</p>
      {onRetry && (
        <button type="button" class="button-secondary" onClick={onRetry}>
          Try again
        </button>
      )}
    </div>
  );
}

export function Empty({ children }) {
  return <p class="empty">{children}</p>;
}

/** A labelled form field: the label is always visible, the hint and error are tied to the input. */
export function Field({ label, hint, error, id, children }) {
  const hintId = hint ? `${id}-hint` : undefined;
  const errorId = error ? `${id}-error` : undefined;
  return (
    <div class="field">
      <label for={id}>{label}</label>
      {children({ id, "aria-describedby": [hintId, errorId].filter(Boolean).join(" ") || undefined, "aria-invalid": error ? "true" : undefined })}
      {hint && <small id={hintId}>{hint}</small>}
      {error && <small id={errorId} class="field-error">{error}</small>}
    </div>
  );
}

export function Avatar({ user, size = 32 }) {
  const name = (user && (user.display_name || user.handle)) || "?";
  const initials = name.split(/\s+/).map((part) => part[0]).slice(0, 2).join("").toUpperCase();
  return (
    <span class="avatar" style={{ width: `${size}px`, height: `${size}px`, fontSize: `${size / 2.6}px` }} aria-hidden="true">
      {initials}
    </span>
  );
}

/** "1:05" from milliseconds. */
export function clock(ms) {
  const total = Math.max(0, Math.floor((ms || 0) / 1000));
  const hours = Math.floor(total / 3600);
  const minutes = Math.floor((total % 3600) / 60);
  const seconds = String(total % 60).padStart(2, "0");
  return hours ? `${hours}:${String(minutes).padStart(2, "0")}:${seconds}` : `${minutes}:${seconds}`;
}

const RELATIVE = new Intl.RelativeTimeFormat(undefined, { numeric: "auto" });
/** "3 hours ago" from an ISO time. */
export function ago(iso) {
  if (!iso) return "";
  const seconds = (new Date(iso).getTime() - Date.now()) / 1000;
  const steps = [["year", 31536000], ["month", 2592000], ["week", 604800], ["day", 86400], ["hour", 3600], ["minute", 60]];
  for (const [unit, size] of steps) {
    if (Math.abs(seconds) >= size) return RELATIVE.format(Math.round(seconds / size), unit);
  }
  return RELATIVE.format(Math.round(seconds), "second");
}

export function when(iso) {
  return iso ? new Date(iso).toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" }) : "";
}

/** A short-lived message at the foot of the screen (role=status). */
let toastListener = null;
export function toast(message) {
  if (toastListener) toastListener(message);
}
export function Toasts() {
  const [message, setMessage] = useState(null);
  useEffect(() => {
    let timer;
    toastListener = (text) => {
      setMessage(text);
      clearTimeout(timer);
      timer = setTimeout(() => setMessage(null), 4000);
    };
    return () => {
      toastListener = null;
      clearTimeout(timer);
    };
  }, []);
  return (
    <div class="toast" role="status" aria-live="polite">
      {message}
    </div>
  );
}
