// You: who you are signed in as, your name and time zone, what Fieldcast may push to you and
// when, your points and badges, your devices, signing out and deleting your account.
import { useEffect, useRef, useState } from "preact/hooks";
import { api } from "../api.js";
import { forgetPushDevice, pushDeviceId, pushState, turnOffPush, turnOnPush } from "../push.js";
import { useSession } from "../session.jsx";
import { Avatar, ErrorNote, Page, Spinner, ago, toast, useAsync, when } from "../ui.jsx";
import { roleName, useAction, useConfirm } from "./admin-kit.jsx";
import "./profile.css";

export function Profile({ me }) {
  const { signOut } = useSession();
  return (
    <Page title="You">
      <section class="card profile">
        <Avatar user={me} size={56} />
        <div>
          <p class="strong">{me.display_name || me.handle}</p>
          <p class="muted">
            @{me.handle} · {roleName(me.role)}
            {me.organisation && ` · ${me.organisation.name}`}
          </p>
          {me.teams && me.teams.length > 0 && (
            <ul class="profile-teams" aria-label="Your teams">
              {me.teams.map((team) => (
                <li key={team.id} class="pill">
                  {team.name}
                  {team.role === "lead" ? " · lead" : ""}
                </li>
              ))}
            </ul>
          )}
        </div>
      </section>
      <Details me={me} />
      <Points me={me} />
      <Notifications />
      <Devices />
      <section aria-labelledby="account-heading" class="profile-section">
        <h2 id="account-heading">Account</h2>
        <div class="row">
          <button type="button" class="button-secondary" onClick={signOut}>
            Sign out
          </button>
          <DeleteAccount me={me} />
        </div>
      </section>
    </Page>
  );
}

/* ---------- Name and time zone ---------- */

function zones() {
  try {
    return Intl.supportedValuesOf("timeZone");
  } catch {
    return [];
  }
}

function Details({ me }) {
  const { reload } = useSession();
  const [form, setForm] = useState({ display_name: me.display_name, time_zone: me.time_zone });
  const action = useAction();
  const changed = form.display_name !== me.display_name || form.time_zone !== me.time_zone;
  const list = zones();
  const submit = async (event) => {
    event.preventDefault();
    if (await action.run(() => api("/me", { method: "PATCH", body: form }), "Saved")) reload();
  };
  return (
    <section aria-labelledby="details-heading" class="profile-section">
      <h2 id="details-heading">Your details</h2>
      <form class="card" onSubmit={submit}>
        <div class="field">
          <label for="me-name">Display name</label>
          <input id="me-name" value={form.display_name} onInput={(e) => setForm({ ...form, display_name: e.currentTarget.value })} required maxLength={120} autocomplete="name" />
        </div>
        <div class="field">
          <label for="me-tz">Time zone</label>
          <input id="me-tz" list="me-tz-list" value={form.time_zone} onInput={(e) => setForm({ ...form, time_zone: e.currentTarget.value })} maxLength={64} aria-describedby="me-tz-hint" />
          <datalist id="me-tz-list">
            {list.map((zone) => (
              <option key={zone} value={zone} />
            ))}
          </datalist>
          <small id="me-tz-hint">Quiet hours and due dates follow it. This browser is in {Intl.DateTimeFormat().resolvedOptions().timeZone}.</small>
        </div>
        <ErrorNote error={action.error} />
        <button type="submit" disabled={!changed || action.busy}>
          Save details
        </button>
      </form>
    </section>
  );
}

/* ---------- Points and badges ---------- */

const KIND_NAMES = {
  video_completed: "Your videos completed by others",
  answer_accepted: "Answers accepted",
  comment_liked: "Comments liked",
  assignment_on_time: "Assignments done on time",
};

function Points({ me }) {
  const points = useAsync((signal) => api("/me/points", { signal }), []);
  // The badges of a profile come from the person's own endpoint (the same for anyone's profile).
  const badges = useAsync((signal) => api(`/users/${me.id}/badges`, { signal }), [me.id]);
  if (points.loading && !points.data) return <Spinner label="Loading your points" />;
  if (points.error) return <ErrorNote error={points.error} onRetry={points.reload} />;
  // The organisation may switch points off: then the feature is hidden.
  if (!points.data.enabled) return null;
  const { totals, by_kind: byKind } = points.data;
  const earned = badges.data?.items || points.data.badges || [];
  return (
    <section aria-labelledby="points-heading" class="profile-section">
      <h2 id="points-heading">Points and badges</h2>
      <div class="figures">
        {[
          ["week", "This week"],
          ["month", "This month"],
          ["quarter", "This quarter"],
          ["all", "All time"],
        ].map(([key, name]) => (
          <div class="figure" key={key}>
            <span class="figure-value">{totals[key] ?? 0}</span>
            <span class="figure-name">{name}</span>
          </div>
        ))}
      </div>
      {byKind && Object.keys(byKind).length > 0 && (
        <details class="profile-kinds">
          <summary>Where your points come from</summary>
          <dl>
            {Object.entries(byKind).map(([kind, value]) => (
              <div key={kind} class="row">
                <dt class="grow">{KIND_NAMES[kind] || kind}</dt>
                <dd>{value}</dd>
              </div>
            ))}
          </dl>
        </details>
      )}
      {earned.length ? (
        <ul class="profile-badges" aria-label="Your badges">
          {earned.map((badge) => (
            <li key={badge.name} class="card">
              <span class="profile-badge-icon" aria-hidden="true">
                ★
              </span>
              <div>
                <p class="strong">{badge.title}</p>
                <p class="muted small">{badge.description}</p>
                <p class="muted small">Earned {when(badge.earned_at)}</p>
              </div>
            </li>
          ))}
        </ul>
      ) : (
        <p class="muted">No badges yet: they come with accepted answers, liked comments, completed videos and assignments done on time.</p>
      )}
    </section>
  );
}

/* ---------- Notifications ---------- */

// Every type the API knows (NotificationPreferences.muted_types), in words, grouped.
const TYPE_GROUPS = [
  [
    "Videos",
    [
      ["share.received", "A video is shared with me"],
      ["video.playable", "My video is ready to watch"],
      ["video.failed", "My video could not be processed"],
      ["content.hidden", "Something of mine was hidden by a moderator"],
      ["search.matches", "New videos match my saved searches"],
    ],
  ],
  [
    "Conversation",
    [
      ["comment.mention", "Someone mentions me"],
      ["comment.reply", "Someone replies to my comment"],
      ["comment.new", "New comments on my videos"],
      ["question.answer", "My question gets an answer"],
      ["answer.accepted", "My answer is accepted"],
    ],
  ],
  [
    "Learning",
    [
      ["assignment.received", "I get an assignment"],
      ["assignment.due", "An assignment is due soon"],
      ["assignment.overdue", "An assignment is overdue"],
      ["assignment.digest", "A digest of my people's assignments"],
      ["assignment.answered", "My request about an assignment is answered"],
      ["assignment.requested", "Someone declines or asks for more time"],
    ],
  ],
];

function Notifications() {
  const prefs = useAsync((signal) => api("/me/notification-preferences", { signal }), []);
  const [status, setStatus] = useState("");
  const action = useAction();
  const [quiet, setQuiet] = useState(null); // the quiet-hours form: {on, start, end}
  useEffect(() => {
    if (prefs.data && quiet === null) {
      const q = prefs.data.quiet_hours;
      setQuiet({ on: Boolean(q), start: q?.start || "22:00", end: q?.end || "07:00" });
    }
  }, [prefs.data]);
  const save = async (next, message) => {
    setStatus("Saving…");
    const saved = await action.run(() => api("/me/notification-preferences", { method: "PUT", body: { muted_types: next.muted_types, quiet_hours: next.quiet_hours } }));
    if (saved) {
      prefs.setData(saved);
      setStatus(message);
    } else {
      setStatus("");
    }
  };
  if (prefs.loading && !prefs.data) return <Spinner label="Loading notification settings" />;
  if (prefs.error) return <ErrorNote error={prefs.error} onRetry={prefs.reload} />;
  const data = prefs.data;
  const toggle = (type, name, on) => {
    const muted = on ? data.muted_types.filter((t) => t !== type) : [...data.muted_types, type];
    save({ ...data, muted_types: muted }, on ? `Pushes on: ${name}` : `Pushes off: ${name}`);
  };
  const saveQuiet = (event) => {
    event.preventDefault();
    save({ ...data, quiet_hours: quiet.on ? { start: quiet.start, end: quiet.end } : null }, quiet.on ? `Quiet from ${quiet.start} to ${quiet.end}` : "No quiet hours");
  };
  return (
    <section aria-labelledby="notifications-heading" class="profile-section">
      <h2 id="notifications-heading">Notifications</h2>
      <p class="muted small">What Fieldcast pushes to your phone. Your inbox shows everything either way.</p>
      <WebPush />
      {TYPE_GROUPS.map(([group, types]) => (
        <fieldset key={group} class="card profile-switches">
          <legend>{group}</legend>
          {types.map(([type, name]) => (
            <label key={type} class="profile-switch">
              <span class="grow">{name}</span>
              <input type="checkbox" role="switch" checked={!data.muted_types.includes(type)} onChange={(e) => toggle(type, name, e.currentTarget.checked)} disabled={action.busy} />
            </label>
          ))}
        </fieldset>
      ))}
      {quiet && (
        <form class="card" onSubmit={saveQuiet} aria-labelledby="quiet-heading">
          <h3 id="quiet-heading">Quiet hours</h3>
          <p class="muted small">Pushes wait until the end of quiet hours ({data.time_zone}); none are lost.</p>
          <label class="profile-switch">
            <span class="grow">Quiet hours</span>
            <input type="checkbox" role="switch" checked={quiet.on} onChange={(e) => setQuiet({ ...quiet, on: e.currentTarget.checked })} />
          </label>
          {quiet.on && (
            <div class="row profile-times">
              <div class="field grow">
                <label for="quiet-start">From</label>
                <input id="quiet-start" type="time" value={quiet.start} onInput={(e) => setQuiet({ ...quiet, start: e.currentTarget.value })} required />
              </div>
              <div class="field grow">
                <label for="quiet-end">Until</label>
                <input id="quiet-end" type="time" value={quiet.end} onInput={(e) => setQuiet({ ...quiet, end: e.currentTarget.value })} required />
              </div>
            </div>
          )}
          <button type="submit" disabled={action.busy}>
            Save quiet hours
          </button>
        </form>
      )}
      <ErrorNote error={action.error} />
      <p class="visually-hidden" role="status" aria-live="polite">
        {status}
      </p>
    </section>
  );
}

/**
 * Pushes to this browser (../push.js): FCM through Firebase's SDK, when the deployment sets
 * FCM_WEB_CONFIG; otherwise it says plainly that pushes need the mobile app.
 */
function WebPush() {
  const state = useAsync(() => pushState(), []);
  const [result, setResult] = useState({ busy: false, message: "", error: null });
  const current = state.data;
  if (state.loading && current === undefined) return null;
  if (current === "unsupported") {
    return <p class="card small">This browser cannot receive push notifications. Your inbox here shows everything.</p>;
  }
  if (current === "unavailable") {
    return <p class="card small">This Fieldcast sends push notifications to the mobile apps only. Your inbox here shows everything.</p>;
  }
  const turnOn = async () => {
    setResult({ busy: true, message: "", error: null });
    try {
      await turnOnPush();
      setResult({ busy: false, error: null, message: "This browser will get your notifications." });
      window.dispatchEvent(new Event("fieldcast:devices"));
      state.reload();
    } catch (error) {
      setResult({ busy: false, error, message: "" });
    }
  };
  const turnOff = async () => {
    await turnOffPush();
    setResult({ busy: false, error: null, message: "This browser gets no more notifications." });
    window.dispatchEvent(new Event("fieldcast:devices"));
    state.reload();
  };
  return (
    <div class="card profile-push">
      <p class="strong">Notifications in this browser</p>
      {current === "denied" && <p class="small muted">Notifications are blocked for this site in the browser's settings.</p>}
      {current === "on" ? (
        <button type="button" class="button-secondary" onClick={turnOff}>
          Turn off notifications
        </button>
      ) : (
        <button type="button" onClick={turnOn} disabled={result.busy || current === "denied"}>
          Turn on notifications
        </button>
      )}
      <p role="status" class="small">
        {result.message}
      </p>
      <ErrorNote error={result.error} />
    </div>
  );
}

/* ---------- Devices ---------- */

const PLATFORMS = { ios: "iPhone or iPad", android: "Android", web: "Web browser" };

function Devices() {
  const devices = useAsync((signal) => api("/devices", { signal }), []);
  const action = useAction();
  const [dialog, confirm] = useConfirm();
  useEffect(() => {
    const again = () => devices.reload();
    window.addEventListener("fieldcast:devices", again);
    return () => window.removeEventListener("fieldcast:devices", again);
  }, [devices.reload]);
  const remove = async (device) => {
    const name = PLATFORMS[device.platform] || device.platform;
    const ok = await confirm({ title: `Remove this ${name}?`, body: "It gets no more pushes until the app registers it again.", action: "Remove device" });
    if (ok && (await action.run(() => api(`/devices/${device.id}`, { method: "DELETE" }), "Device removed"))) {
      if (device.id === pushDeviceId()) forgetPushDevice(); // this browser: its switch goes off
      devices.reload();
    }
  };
  return (
    <section aria-labelledby="devices-heading" class="profile-section">
      <h2 id="devices-heading">Your devices</h2>
      {devices.loading && !devices.data && <Spinner label="Loading devices" />}
      <ErrorNote error={devices.error || action.error} onRetry={devices.error ? devices.reload : undefined} />
      {devices.data &&
        (devices.data.items.length ? (
          <ul class="list" aria-label="Devices that get your notifications">
            {devices.data.items.map((device) => {
              const name = PLATFORMS[device.platform] || device.platform;
              return (
                <li key={device.id} class="row">
                  <div class="grow">
                    <p class="strong">
                      {name}
                      {device.app_version ? ` · app ${device.app_version}` : ""}
                    </p>
                    <p class="muted small">
                      {device.locale ? `${device.locale} · ` : ""}last seen {ago(device.last_registered_at)}
                    </p>
                  </div>
                  <button type="button" class="button-danger" onClick={() => remove(device)} disabled={action.busy} aria-label={`Remove ${name} last seen ${ago(device.last_registered_at)}`}>
                    Remove
                  </button>
                </li>
              );
            })}
          </ul>
        ) : (
          <p class="muted">No phone gets your notifications yet: sign in to the Fieldcast app.</p>
        ))}
      {dialog}
    </section>
  );
}

/* ---------- Account deletion ---------- */

function DeleteAccount({ me }) {
  const { reload } = useSession();
  const [open, setOpen] = useState(false);
  const [password, setPassword] = useState("");
  const action = useAction();
  const ref = useRef(null);
  useEffect(() => {
    const dialog = ref.current;
    if (open && dialog && !dialog.open) dialog.showModal();
  }, [open]);
  const close = () => {
    ref.current?.close();
    setOpen(false);
    setPassword("");
    action.clear();
  };
  const submit = async (event) => {
    event.preventDefault();
    const done = await action.run(() => api("/me", { method: "DELETE", body: { password: password || null } }));
    if (done) {
      ref.current?.close();
      toast("Your account is deleted");
      reload(); // the session is gone: back to signing in
    }
  };
  const hint =
    action.error &&
    {
      reauthentication_required: "That password is not right. Without a password, sign out and sign in again, then delete within five minutes.",
      last_admin: "You are the organisation's only admin: make someone else an admin first.",
    }[action.error.code];
  return (
    <>
      <button type="button" class="button-danger" onClick={() => setOpen(true)}>
        Delete my account
      </button>
      {open && (
        <dialog ref={ref} class="confirm-dialog" aria-labelledby="delete-title" onCancel={close}>
          <form onSubmit={submit}>
            <h2 id="delete-title">Delete your account?</h2>
            {/* Lets password managers tell which account the password belongs to. */}
            <input type="email" class="visually-hidden" autocomplete="username" value={me.email} readOnly tabIndex={-1} aria-hidden="true" />
            <p>Your sign-ins, devices, inbox and memberships are deleted and your name is erased. The videos you recorded stay for your team under “Former member”: delete them first if you want them gone. This cannot be undone.</p>
            <div class="field">
              <label for="delete-password">Your password</label>
              <input id="delete-password" type="password" value={password} onInput={(e) => setPassword(e.currentTarget.value)} autocomplete="current-password" aria-describedby="delete-password-hint" autoFocus />
              <small id="delete-password-hint">Signed in through your company? Leave it empty within five minutes of signing in.</small>
            </div>
            <ErrorNote error={action.error && (hint ? { message: hint } : action.error)} />
            <div class="row confirm-actions">
              <button type="button" class="button-secondary" onClick={close}>
                Cancel
              </button>
              <button type="submit" class="button-danger" disabled={action.busy}>
                Delete my account for good
              </button>
            </div>
          </form>
        </dialog>
      )}
    </>
  );
}
