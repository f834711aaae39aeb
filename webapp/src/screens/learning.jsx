// Being built: see the area list in webapp/README.md.
import { Page } from "../ui.jsx";
export function Learning() {
  return <Page title="Learning" />;
}
export function Collections() {
  return <Page title="Collections" />;
}
export function CollectionView() {
  return <Page title="CollectionView" />;
}
export function TopClips() {
  return <Page title="TopClips" />;
}
