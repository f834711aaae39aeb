// Being built: see the area list in webapp/README.md.
import { Page } from "../ui.jsx";
export function Inbox() {
  return <Page title="Inbox" />;
}
export function ShareTracking() {
  return <Page title="ShareTracking" />;
}
/** The unread count for the bottom bar's badge. */
export function useUnread() {
  return 0;
}
