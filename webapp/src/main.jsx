// The app: the session decides between signing in and the screens; the path picks the screen.
import { render } from "preact";
import { useEffect, useState } from "preact/hooks";
import { Link, match, navigate, useRoute } from "./router.jsx";
import { SessionProvider, isAdmin, isCurator, useSession } from "./session.jsx";
import { ErrorNote, Spinner, Toasts } from "./ui.jsx";
import { SignIn } from "./screens/signin.jsx";
import { Feed } from "./screens/feed.jsx";
import { useUnread } from "./screens/inbox.jsx";

/** A screen loaded when first opened: the first screen after sign-in (the feed) is in app.js,
 * every other one in a chunk of its own. */
function lazyScreen(load, name) {
  let loaded = null;
  let pending = null;
  const start = () => (pending = pending || load());
  function LazyScreen(props) {
    const [Component, setComponent] = useState(() => loaded);
    const [error, setError] = useState(null);
    useEffect(() => {
      if (loaded) return;
      start().then(
        (module) => {
          loaded = module[name];
          setComponent(() => loaded);
        },
        setError,
      );
    }, []);
    if (error) {
      return (
        <main id="main" class="page">
          <ErrorNote error={new Error("This screen could not be loaded: Fieldcast may have been updated, or the connection dropped. Reload to go on.")} onRetry={() => location.reload()} />
        </main>
      );
    }
    return Component ? <Component {...props} /> : <Spinner />;
  }
  LazyScreen.preload = start;
  return LazyScreen;
}

const MyVideos = lazyScreen(() => import("./screens/feed.jsx"), "MyVideos");
const Record = lazyScreen(() => import("./screens/record.jsx"), "Record");
const Player = lazyScreen(() => import("./screens/player.jsx"), "Player");
const Inbox = lazyScreen(() => import("./screens/inbox.jsx"), "Inbox");
const ShareTracking = lazyScreen(() => import("./screens/inbox.jsx"), "ShareTracking");
const Search = lazyScreen(() => import("./screens/search.jsx"), "Search");
const Learning = lazyScreen(() => import("./screens/learning.jsx"), "Learning");
const Collections = lazyScreen(() => import("./screens/learning.jsx"), "Collections");
const CollectionView = lazyScreen(() => import("./screens/learning.jsx"), "CollectionView");
const TopClips = lazyScreen(() => import("./screens/learning.jsx"), "TopClips");
const Insights = lazyScreen(() => import("./screens/insights.jsx"), "Insights");
const Admin = lazyScreen(() => import("./screens/admin.jsx"), "Admin");
const Profile = lazyScreen(() => import("./screens/profile.jsx"), "Profile");
const TeamLearning = lazyScreen(() => import("./screens/learning.jsx"), "TeamLearningPage");
const AcceptInvitation = lazyScreen(() => import("./screens/account.jsx"), "AcceptInvitation");
const PasswordReset = lazyScreen(() => import("./screens/account.jsx"), "PasswordReset");

// Opened from an email's link, signed in or not.
const PUBLIC_ROUTES = [
  ["/invitations/accept", AcceptInvitation],
  ["/password-reset", PasswordReset],
];

// Most specific first. `need`: who may open the screen (others see it missing from the menu).
const ROUTES = [
  ["/", Feed],
  ["/record", Record],
  ["/mine", MyVideos],
  ["/videos/:id", Player],
  ["/inbox", Inbox],
  ["/shares/:id", ShareTracking],
  ["/search", Search],
  ["/learning", Learning],
  ["/learning/team", TeamLearning], // anyone with reports gets the reminder (the API scopes it)
  ["/collections", Collections],
  ["/collections/:id", CollectionView],
  ["/top", TopClips],
  ["/insights", Insights, isCurator],
  ["/admin", Admin, isAdmin],
  ["/admin/:section", Admin, isAdmin],
  ["/me", Profile],
];

// The screen the address names starts loading now, beside the session's requests, not after.
{
  const path = location.pathname.startsWith("/app") ? location.pathname.slice(4) || "/" : "/";
  const first = [...PUBLIC_ROUTES, ...ROUTES].find(([pattern]) => match(pattern, path));
  if (first && first[1].preload) first[1].preload().catch(() => {}); // the screen says so itself
}

function NotFound() {
  return (
    <main id="main" class="page">
      <h1>Not here</h1>
      <p>
        This page does not exist. <Link href="/">Back to the feed</Link>
      </p>
    </main>
  );
}

function Screen({ route, me }) {
  for (const [pattern, Component, need] of ROUTES) {
    const params = match(pattern, route.path);
    if (params && (!need || need(me))) return <Component {...params} query={route.query} me={me} />;
  }
  return <NotFound />;
}

function NavItem({ href, label, icon, current, badge }) {
  const active = href === "/" ? current === "/" : current.startsWith(href);
  return (
    <Link href={href} class={active ? "nav-item active" : "nav-item"} aria-current={active ? "page" : undefined}>
      <span class="nav-icon" aria-hidden="true">{icon}</span>
      <span class="nav-label">{label}</span>
      {badge > 0 && (
        <span class="badge" aria-label={`${badge} unread`}>
          {badge > 99 ? "99+" : badge}
        </span>
      )}
    </Link>
  );
}

function Shell({ me }) {
  const route = useRoute();
  const unread = useUnread(me);
  return (
    <>
      <a class="skip" href="#main">
        Skip to content
      </a>
      <header class="top-bar">
        <Link href="/" class="brand">
          Fieldcast
        </Link>
        <nav class="top-links" aria-label="More">
          {isCurator(me) && <Link href="/insights">Insights</Link>}
          {isAdmin(me) && <Link href="/admin">Admin</Link>}
          <Link href="/me" aria-label={`Your profile, ${me.display_name || me.handle}`}>
            {me.handle}
          </Link>
        </nav>
      </header>
      <Screen route={route} me={me} />
      <nav class="bottom-nav" aria-label="Main">
        <NavItem href="/" label="Home" icon="⌂" current={route.path} />
        <NavItem href="/search" label="Search" icon="⌕" current={route.path} />
        <NavItem href="/record" label="Record" icon="●" current={route.path} />
        <NavItem href="/inbox" label="Inbox" icon="✉" current={route.path} badge={unread} />
        <NavItem href="/learning" label="Learning" icon="★" current={route.path} />
      </nav>
      <Toasts />
    </>
  );
}

function App() {
  const { me } = useSession();
  const route = useRoute();
  useEffect(() => {
    if (!("serviceWorker" in navigator)) return undefined;
    navigator.serviceWorker.register("/app/sw.js", { scope: "/app/" }).catch(() => {});
    // A tapped notification opens its link here, without reloading (and losing) this tab.
    const open = (event) => {
      if (event.data && event.data.type === "open" && typeof event.data.path === "string") navigate(event.data.path);
    };
    navigator.serviceWorker.addEventListener("message", open);
    return () => navigator.serviceWorker.removeEventListener("message", open);
  }, []);
  const open = PUBLIC_ROUTES.find(([pattern]) => match(pattern, route.path));
  if (open && me !== undefined) {
    const Public = open[1];
    return <Public query={route.query} />;
  }
  if (me === undefined) return <Spinner label="Opening Fieldcast" />;
  if (me === null) return <SignIn />;
  if (me.offline) {
    return (
      <main id="main" class="page">
        <h1>Fieldcast is out of reach</h1>
        <p role="alert">{me.error.message}</p>
        <button type="button" onClick={() => location.reload()}>
          Try again
        </button>
      </main>
    );
  }
  return <Shell me={me} />;
}

const root = document.getElementById("app");
root.textContent = "";
render(
  <SessionProvider>
    <App />
  </SessionProvider>,
  root,
);
