// Path routing under /app/: the server answers every /app/... path with the shell.
import { useEffect, useState } from "preact/hooks";

export const ROOT = "/app";

function current() {
  const path = location.pathname.startsWith(ROOT) ? location.pathname.slice(ROOT.length) : "/";
  return { path: path || "/", query: new URLSearchParams(location.search) };
}

export function navigate(to, { replace = false } = {}) {
  const target = to.startsWith(ROOT) ? to : ROOT + to;
  if (replace) history.replaceState(null, "", target);
  else history.pushState(null, "", target);
  window.dispatchEvent(new Event("fieldcast:navigate"));
  window.scrollTo(0, 0);
}

export function useRoute() {
  const [route, setRoute] = useState(current);
  useEffect(() => {
    const update = () => setRoute(current());
    window.addEventListener("popstate", update);
    window.addEventListener("fieldcast:navigate", update);
    return () => {
      window.removeEventListener("popstate", update);
      window.removeEventListener("fieldcast:navigate", update);
    };
  }, []);
  return route;
}

/** Match "/videos/:id" against a path: the named parts, or null. */
export function match(pattern, path) {
  const want = pattern.split("/").filter(Boolean);
  const got = path.split("/").filter(Boolean);
  if (want.length !== got.length) return null;
  const params = {};
  for (let i = 0; i < want.length; i += 1) {
    if (want[i].startsWith(":")) {
      try {
        params[want[i].slice(1)] = decodeURIComponent(got[i]);
      } catch {
        return null; // a malformed escape: no screen, not a crash
      }
    }
    else if (want[i] !== got[i]) return null;
  }
  return params;
}

/** A link inside the app: a real <a href> (keyboard, new tab) that routes without a reload. */
export function Link({ href, children, ...rest }) {
  const onClick = (event) => {
    if (event.defaultPrevented || event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey) return;
    event.preventDefault();
    navigate(href);
  };
  return (
    <a href={ROOT + href} onClick={onClick} {...rest}>
      {children}
    </a>
  );
}

/** A link the API handed out (APP_LINK_BASE/videos/...) as a path inside the app. */
export function appPath(link) {
  try {
    const parsed = new URL(link, location.origin);
    const path = parsed.pathname.startsWith(ROOT) ? parsed.pathname.slice(ROOT.length) : parsed.pathname;
    return path + parsed.search;
  } catch {
    return "/";
  }
}
