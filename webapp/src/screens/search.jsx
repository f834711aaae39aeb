// Being built: see the area list in webapp/README.md.
import { Page } from "../ui.jsx";
export function Search() {
  return <Page title="Search" />;
}
