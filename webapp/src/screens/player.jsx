// Being built: see the area list in webapp/README.md.
import { Page } from "../ui.jsx";
export function Player() {
  return <Page title="Player" />;
}
