// Who is signed in: the cookie session (no token ever reaches the page) and GET /me.
import { createContext } from "preact";
import { useCallback, useContext, useEffect, useState } from "preact/hooks";
import { api, onSignedOut, setCsrfToken } from "./api.js";
import { forgetPushDevice, pushBelongsTo, pushDeviceId } from "./push.js";

/** What a signed-out tab must not keep: resumable upload URLs (capabilities) and drafts. */
function forgetUploads() {
  for (const key of Object.keys(sessionStorage)) {
    if (key.startsWith("fieldcast-tus::") || key.startsWith("fieldcast-drafts")) sessionStorage.removeItem(key);
  }
}

const SessionContext = createContext(null);

export function SessionProvider({ children }) {
  // undefined: still asking; null: signed out; else the /me body.
  const [me, setMe] = useState(undefined);

  const load = useCallback(async () => {
    // The page-readable CSRF cookie lives as long as the session: without it, sign in first.
    if (!document.cookie.split("; ").some((c) => c.startsWith("fieldcast_csrf="))) {
      setMe(null);
      return;
    }
    try {
      // Both at once: a phone on a slow network pays one round trip, not two.
      const [session, who] = await Promise.all([api("/auth/session"), api("/me")]);
      setCsrfToken(session.csrf_token);
      pushBelongsTo(who.id);
      setMe(who);
    } catch (error) {
      if (error.status === 401) setMe(null);
      else setMe((previous) => (previous === undefined ? { offline: true, error } : previous));
    }
  }, []);

  useEffect(() => {
    load();
    return onSignedOut(() => {
      forgetUploads();
      pushBelongsTo(null);
      setMe(null);
    });
  }, [load]);

  const signIn = useCallback(async (email, password) => {
    const session = await api("/auth/session", { method: "POST", body: { email, password } });
    setCsrfToken(session.csrf_token);
    const who = await api("/me");
    pushBelongsTo(who.id);
    setMe(who);
  }, []);

  const signOut = useCallback(async () => {
    try {
      await api("/auth/session", { method: "DELETE", query: { device_id: pushDeviceId() } });
    } finally {
      forgetPushDevice();
      forgetUploads();
      setCsrfToken(null);
      setMe(null);
    }
  }, []);

  return (
    <SessionContext.Provider value={{ me, signIn, signOut, reload: load }}>{children}</SessionContext.Provider>
  );
}

/** { me, signIn, signOut, reload }: `me` is GET /me's body once signed in. */
export function useSession() {
  return useContext(SessionContext);
}

/** Managers, enablement and admins: curation, assignments, insights. */
export const isCurator = (me) => Boolean(me) && ["manager", "enablement", "admin"].includes(me.role);
export const isAdmin = (me) => Boolean(me) && me.role === "admin";
