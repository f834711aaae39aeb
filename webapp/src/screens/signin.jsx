// Signing in: email and password, or the organisation's identity provider (OIDC with PKCE;
// the server is the provider's client and hands back a one-time code the page redeems for
// the cookie session, docs/mobile.md "Signing in with the organisation's identity provider").
import { useEffect, useState } from "preact/hooks";
import { api, setCsrfToken } from "../api.js";
import { Link } from "../router.jsx";
import { useSession } from "../session.jsx";
import { ErrorNote, Field, Spinner } from "../ui.jsx";

const PKCE_KEY = "fieldcast:oidc";

function base64url(bytes) {
  return btoa(String.fromCharCode(...new Uint8Array(bytes))).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

async function startProviderSignIn(organisation) {
  const verifier = base64url(crypto.getRandomValues(new Uint8Array(48)));
  const state = base64url(crypto.getRandomValues(new Uint8Array(16)));
  const challenge = base64url(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(verifier)));
  // Where the provider sends the browser back: this page, which must be in OIDC_REDIRECT_URIS.
  const redirect = `${location.origin}/app/`;
  sessionStorage.setItem(PKCE_KEY, JSON.stringify({ verifier, state, back: location.pathname + location.search }));
  const query = new URLSearchParams({
    org: organisation,
    redirect_uri: redirect,
    code_challenge: challenge,
    code_challenge_method: "S256",
    state,
  });
  location.assign(`/api/v1/auth/oidc/authorize?${query}`);
}

/** Back from the provider: redeem ?code= with the kept verifier. */
function useProviderReturn(reload) {
  const [state, setState] = useState({ busy: false, error: null });
  useEffect(() => {
    const query = new URLSearchParams(location.search);
    if (!query.has("code") && !query.has("error")) return;
    const kept = JSON.parse(sessionStorage.getItem(PKCE_KEY) || "null");
    sessionStorage.removeItem(PKCE_KEY);
    const back = (kept && kept.back) || "/app/";
    history.replaceState(null, "", back);
    // Nothing from the address is shown unless this page started the sign-in (its `state`),
    // and then only fixed words: a crafted link cannot put its text on the sign-in page.
    if (!kept || kept.state !== query.get("state")) {
      setState({ busy: false, error: new Error("That sign-in did not start here. Start it again.") });
      return;
    }
    if (query.has("error")) {
      const reason = query.get("error") === "access_denied"
        ? "Your organisation did not let this account in. Ask your admin."
        : "The identity provider could not sign you in. Try again later.";
      setState({ busy: false, error: new Error(reason) });
      return;
    }
    setState({ busy: true, error: null });
    api("/auth/oidc/session", { method: "POST", body: { code: query.get("code"), code_verifier: kept.verifier } })
      .then((session) => {
        setCsrfToken(session.csrf_token);
        return reload();
      })
      .catch((error) => setState({ busy: false, error }));
  }, [reload]);
  return state;
}

export function SignIn() {
  const { signIn, reload } = useSession();
  const [email, setEmail] = useState("");
  const [password, setPassword] = useState("");
  const [organisation, setOrganisation] = useState(localStorage.getItem("fieldcast:org") || "");
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState(null);
  const provider = useProviderReturn(reload);

  useEffect(() => {
    document.title = "Sign in · Fieldcast";
  }, []);

  const submit = async (event) => {
    event.preventDefault();
    setBusy(true);
    setError(null);
    try {
      await signIn(email.trim(), password);
    } catch (failure) {
      setError(
        failure.code === "invalid_credentials"
          ? new Error("That email and password do not match an account.")
          : failure,
      );
      setBusy(false);
    }
  };

  const withProvider = async (event) => {
    event.preventDefault();
    const slug = organisation.trim().toLowerCase();
    if (!slug) return;
    localStorage.setItem("fieldcast:org", slug);
    await startProviderSignIn(slug);
  };

  if (provider.busy) return <Spinner label="Signing you in" />;

  return (
    <main id="main" class="page sign-in">
      <div class="sign-in-brand" aria-hidden="true">▶</div>
      <h1>Sign in to Fieldcast</h1>
      <p class="lead">Short videos from the field, shared with your team.</p>
      <ErrorNote error={error || provider.error} />
      <form onSubmit={submit} class="stack">
        <Field label="Email" id="email">
          {(props) => (
            <input {...props} type="email" autoComplete="username" required value={email} onInput={(e) => setEmail(e.currentTarget.value)} />
          )}
        </Field>
        <Field label="Password" id="password">
          {(props) => (
            <input {...props} type="password" autoComplete="current-password" required value={password} onInput={(e) => setPassword(e.currentTarget.value)} />
          )}
        </Field>
        <button type="submit" disabled={busy}>
          {busy ? "Signing in…" : "Sign in"}
        </button>
      </form>
      <p class="link-line">
        <Link href="/password-reset">Forgot your password?</Link>
      </p>
      <details class="provider">
        <summary>Sign in with your organisation's identity provider</summary>
        <form onSubmit={withProvider} class="stack">
          <Field label="Organisation" id="organisation" hint="Its short name, as your admin gave it (e.g. demo)">
            {(props) => (
              <input {...props} autoCapitalize="none" autoComplete="organization" required value={organisation} onInput={(e) => setOrganisation(e.currentTarget.value)} />
            )}
          </Field>
          <button type="submit" class="button-secondary">
            Continue to sign-in
          </button>
        </form>
      </details>
    </main>
  );
}
