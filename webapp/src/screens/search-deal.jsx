// "For my deal": pick one of my open deals, see what helped in like situations (GET
// /deals/{id}/recommendations). A tab of screens/search.jsx.
import { all, api } from "../api.js";
import { Link, appPath } from "../router.jsx";
import { Empty, ErrorNote, Spinner, clock, useAsync } from "../ui.jsx";
import { QuestionPill, VideoMeta } from "./search-results.jsx";
import { prettyName } from "./search-util.js";

function whyText(why) {
  if (why.kind === "won_deal") return "won deal";
  if (why.kind === "lost_deal") return "lost deal";
  return `${prettyName(why.attribute || "attribute")}: ${why.value}`;
}

function Why({ why }) {
  return (
    <div class="row search-reasons">
      {(why || []).map((w, i) => (
        <span key={i} class={w.kind === "won_deal" ? "pill pill-ok" : "pill pill-muted"}>
          {whyText(w)}
        </span>
      ))}
    </div>
  );
}

function Recommendations({ dealId }) {
  const { data, error, loading, reload } = useAsync((signal) => api(`/deals/${dealId}/recommendations`, { signal }), [dealId]);
  if (error) return <ErrorNote error={error} onRetry={reload} />;
  if (loading && !data) return <Spinner label="Finding what helped in deals like it" />;
  return (
    <>
      <h2>Videos from like deals</h2>
      {data.videos.length ? (
        <ol class="list" aria-label="Recommended videos">
          {data.videos.map(({ video, why }) => (
            <li key={video.id} class="search-result">
              <div class="search-result-head">
                {video.poster_url ? <img class="search-poster" src={video.poster_url} alt="" loading="lazy" /> : <span class="search-poster" aria-hidden="true" />}
                <div class="search-result-main">
                  <Link class="search-title" href={appPath(video.link || `/videos/${video.id}`)}>
                    {video.title || "Untitled video"}
                  </Link>
                  <VideoMeta video={video} />
                  <QuestionPill video={video} />
                  <Why why={why} />
                </div>
              </div>
            </li>
          ))}
        </ol>
      ) : (
        <Empty>No video was recorded in a situation like this deal yet.</Empty>
      )}
      {data.moments.length > 0 && (
        <>
          <h2>Moments people found useful</h2>
          <ul class="list" aria-label="Recommended moments">
            {data.moments.map((moment) => (
              <li key={moment.comment_id}>
                <Link class="search-moment" href={appPath(moment.link)}>
                  <span class="search-moment-time">{clock(moment.at_ms)}</span>
                  <span class="search-moment-text">{moment.body}</span>
                </Link>
                <p class="small muted">
                  {moment.likes} {moment.likes === 1 ? "like" : "likes"} · {moment.replies} {moment.replies === 1 ? "reply" : "replies"}
                </p>
                <Why why={moment.why} />
              </li>
            ))}
          </ul>
        </>
      )}
    </>
  );
}

/** Props: { dealId, onPick(dealId) }: the chosen deal lives in the URL (`for_deal`). */
export function ForMyDeal({ dealId, onPick }) {
  const deals = useAsync(() => all("/me/deals", { limit: 200 }), []);
  if (deals.error) return <ErrorNote error={deals.error} onRetry={deals.reload} />;
  if (!deals.data) return <Spinner label="Loading your deals" />;
  if (!deals.data.length) return <Empty>You own no open deal. Deals come from your CRM.</Empty>;
  const chosen = deals.data.find((d) => d.id === dealId);
  return (
    <div>
      <div class="field">
        <label for="search-deal">Deal</label>
        <select id="search-deal" value={dealId || ""} onChange={(e) => onPick(e.currentTarget.value)}>
          <option value="">Choose one of your open deals</option>
          {deals.data.map((deal) => (
            <option key={deal.id} value={deal.id}>
              {deal.name}
              {deal.account ? ` · ${deal.account}` : ""}
              {deal.stage ? ` (${deal.stage})` : ""}
            </option>
          ))}
        </select>
      </div>
      {chosen && (
        <p class="small muted">
          {Object.entries(chosen.attributes || {})
            .filter(([, v]) => v !== null && v !== "" && !(Array.isArray(v) && !v.length))
            .map(([k, v]) => `${prettyName(k)}: ${Array.isArray(v) ? v.join(", ") : v}`)
            .join(" · ")}
        </p>
      )}
      {chosen && <Recommendations dealId={chosen.id} />}
    </div>
  );
}
