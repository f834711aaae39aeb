// Being built: see the area list in webapp/README.md.
import { Page } from "../ui.jsx";
export function Feed() {
  return <Page title="Feed" />;
}
export function MyVideos() {
  return <Page title="MyVideos" />;
}
