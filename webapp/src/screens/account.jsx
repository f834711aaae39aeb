// The screens a link in an email opens, signed in or not: accepting an invitation, and setting a
// new password (and asking for the email that carries its link).
import { useEffect, useState } from "preact/hooks";
import { api } from "../api.js";
import { navigate, Link } from "../router.jsx";
import { useSession } from "../session.jsx";
import { ErrorNote, Field, Spinner, useAction, useAsync, when } from "../ui.jsx";

/** A field's first message from a 422 problem (`errors` maps field names to messages). */
function fieldError(error, name) {
  const errors = error && error.problem && error.problem.errors;
  const messages = errors && (errors[name] || (errors.json && errors.json[name]));
  return Array.isArray(messages) ? messages[0] : undefined;
}

const LINK_ENDED = {
  invitation_not_found: "This invitation link is not one we know. Ask for a new invitation.",
  invitation_used: "This invitation has already been accepted. Sign in instead.",
  invitation_revoked: "This invitation was withdrawn. Ask whoever invited you for a new one.",
  invitation_expired: "This invitation has expired. Ask whoever invited you to send it again.",
  password_reset_not_found: "This reset link is not one we know. Ask for a new one below.",
  password_reset_used: "This reset link has already been used. Ask for a new one below.",
  password_reset_expired: "This reset link has expired. Ask for a new one below.",
};

/** The same error, told in words a person can act on. */
function retold(error, message) {
  return Object.assign(new Error(message), { code: error.code, status: error.status, problem: error.problem });
}

function linkError(error) {
  return error && LINK_ENDED[error.code] ? retold(error, LINK_ENDED[error.code]) : error;
}

/** A form's submit: `work` as one action; `done` once it succeeded. */
function useSubmit(work) {
  const action = useAction();
  const [done, setDone] = useState(false);
  const submit = async (event) => {
    event.preventDefault();
    setDone((await action.run(work)) !== false);
  };
  return { busy: action.busy, error: action.error, done, submit };
}

function Frame({ title, children }) {
  useEffect(() => {
    document.title = `${title} · Fieldcast`;
  }, [title]);
  return (
    <main id="main" class="page sign-in">
      <div class="sign-in-brand" aria-hidden="true">▶</div>
      <h1>{title}</h1>
      {children}
    </main>
  );
}

/** A password to set, with the API's rules (10 to 1024 characters) and its 422 message. */
function PasswordField({ label, error, value, onChange }) {
  return (
    <Field label={label} id="new-password" hint="At least 10 characters" error={fieldError(error, "password")}>
      {(props) => <input {...props} type="password" autoComplete="new-password" required minLength={10} maxLength={1024} value={value} onInput={(e) => onChange(e.currentTarget.value)} />}
    </Field>
  );
}

function SignInLink() {
  return (
    <p class="link-line">
      <Link href="/">Go to sign-in</Link>
    </p>
  );
}

/** /invitations/accept?token=...: who invited me to what, then my handle, name and password. */
export function AcceptInvitation({ query }) {
  const token = query.get("token") || "";
  const { signIn, signOut, me } = useSession();
  const preview = useAsync(
    (signal) => (token ? api("/invitations/preview", { method: "POST", body: { token }, signal }) : Promise.reject(new Error("This link has no invitation in it. Open the link from your email again."))),
    [token],
  );
  const [handle, setHandle] = useState("");
  const [name, setName] = useState("");
  const [password, setPassword] = useState("");
  const invitation = preview.data;

  useEffect(() => {
    if (!invitation) return;
    setName(invitation.display_name || "");
    if (!handle) setHandle(invitation.email.split("@")[0].toLowerCase().replace(/[^a-z0-9_-]/g, "").slice(0, 32));
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [invitation]);

  const { busy, error: failure, submit } = useSubmit(
    async () => {
      const body = { token, handle: handle.trim(), password };
      if (name.trim()) body.display_name = name.trim();
      await api("/invitations/accept", { method: "POST", body });
      // The new account signs in here as any person does: a session cookie, no token kept.
      if (me) await signOut();
      await signIn(invitation.email, password);
      navigate("/", { replace: true });
    },
  );
  const error = failure && failure.code === "handle_taken" ? retold(failure, "That handle is taken: choose another.") : linkError(failure);

  if (preview.loading) return <Spinner label="Opening your invitation" />;
  if (preview.error) {
    return (
      <Frame title="Join Fieldcast">
        <ErrorNote error={linkError(preview.error)} />
        <SignInLink />
      </Frame>
    );
  }
  return (
    <Frame title={`Join ${invitation.organisation.name} on Fieldcast`}>
      <p class="lead">
        {invitation.invited_by ? `${invitation.invited_by} invited you` : "You are invited"} as {invitation.role}. The invitation is for {invitation.email} and
        works until {when(invitation.expires_at)}.
      </p>
      <ErrorNote error={error} />
      <form onSubmit={submit} class="stack">
        <Field label="Your name" id="display-name" error={fieldError(error, "display_name")}>
          {(props) => <input {...props} autoComplete="name" required={!invitation.display_name} maxLength={200} value={name} onInput={(e) => setName(e.currentTarget.value)} />}
        </Field>
        <Field label="Handle" id="handle" hint="How people @mention you: 2–32 lower-case letters, digits, _ or -" error={fieldError(error, "handle")}>
          {(props) => (
            <input {...props} autoCapitalize="none" autoComplete="username" required minLength={2} maxLength={32} pattern="[a-z0-9_\-]+" value={handle} onInput={(e) => setHandle(e.currentTarget.value.toLowerCase())} />
          )}
        </Field>
        <PasswordField label="Password" error={error} value={password} onChange={setPassword} />
        <button type="submit" disabled={busy}>
          {busy ? "Joining…" : "Join"}
        </button>
      </form>
    </Frame>
  );
}

/** /password-reset?token=...: a new password; without a token, ask for the email. */
export function PasswordReset({ query }) {
  const token = query.get("token");
  return token ? <NewPassword token={token} /> : <RequestReset />;
}

function RequestReset() {
  const [email, setEmail] = useState("");
  const { busy, done: sent, error, submit } = useSubmit(
    () => api("/auth/password-reset", { method: "POST", body: { email: email.trim() } }),
  );
  if (sent) {
    return (
      <Frame title="Check your email">
        <p role="status">If {email.trim()} has a Fieldcast account, an email with a link to set a new password is on its way. The link works once, for an hour.</p>
        <SignInLink />
      </Frame>
    );
  }
  return (
    <Frame title="Forgot your password?">
      <p class="lead">We will email you a link to set a new one.</p>
      <ErrorNote error={error} />
      <form onSubmit={submit} class="stack">
        <Field label="Email" id="reset-email" error={fieldError(error, "email")}>
          {(props) => <input {...props} type="email" autoComplete="username" required value={email} onInput={(e) => setEmail(e.currentTarget.value)} />}
        </Field>
        <button type="submit" disabled={busy}>
          {busy ? "Sending…" : "Email me a link"}
        </button>
      </form>
      <SignInLink />
    </Frame>
  );
}

function NewPassword({ token }) {
  const { me } = useSession();
  const [password, setPassword] = useState("");
  const { busy, done, error: failure, submit } = useSubmit(() =>
    api("/auth/password-reset/confirm", { method: "POST", body: { token, password } }),
  );
  const error = linkError(failure);
  if (done) {
    return (
      <Frame title="Password changed">
        <p role="status">Your new password is set, and every device that was signed in has been signed out.</p>
        {me ? (
          <p class="link-line">
            <a href="/app/">Sign in again</a>
          </p>
        ) : (
          <SignInLink />
        )}
      </Frame>
    );
  }
  const ended = Boolean(error && LINK_ENDED[error.code]);
  return (
    <Frame title="Set a new password">
      <ErrorNote error={error} />
      {ended ? (
        <p class="link-line">
          <Link href="/password-reset">Ask for a new link</Link>
        </p>
      ) : (
        <form onSubmit={submit} class="stack">
          <PasswordField label="New password" error={error} value={password} onChange={setPassword} />
          <button type="submit" disabled={busy}>
            {busy ? "Saving…" : "Set password"}
          </button>
        </form>
      )}
    </Frame>
  );
}
