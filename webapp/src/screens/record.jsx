// Being built: see the area list in webapp/README.md.
import { Page } from "../ui.jsx";
export function Record() {
  return <Page title="Record" />;
}
