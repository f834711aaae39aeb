// "Ask the peers": questions (videos of kind `question`) and their answers. Asking takes a
// video, so "Ask a question" opens the recorder (/record?question=1); answering in writing,
// voting and accepting happen here. A tab of screens/search.jsx.
import { useEffect, useState } from "preact/hooks";
import { api } from "../api.js";
import { Link, appPath } from "../router.jsx";
import { Empty, ErrorNote, Spinner, ago, clock, useAsync } from "../ui.jsx";
import { VideoMeta } from "./search-results.jsx";

function Answer({ answer, question, mine, onChanged }) {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState(null);
  const comment = answer.kind === "comment" ? answer.comment : null;
  const reply = answer.kind === "video" ? answer.video : null;
  const author = comment ? comment.author : reply.owner;
  const who = author ? author.display_name || author.handle : "Someone";

  const act = async (run) => {
    setBusy(true);
    setError(null);
    try {
      await run();
      onChanged();
    } catch (e) {
      setError(e);
    } finally {
      setBusy(false);
    }
  };
  const vote = () =>
    act(() => {
      const method = answer.voted_by_me ? "DELETE" : "PUT";
      return comment ? api(`/comments/${comment.id}/like`, { method }) : api(`/videos/${reply.id}/vote`, { method });
    });
  const accept = () =>
    act(() =>
      answer.accepted
        ? api(`/videos/${question.id}/accepted-answer`, { method: "DELETE" })
        : api(`/videos/${question.id}/accepted-answer`, { method: "PUT", body: comment ? { comment_id: comment.id } : { video_id: reply.id } }),
    );

  const where = comment
    ? `/videos/${question.id}?comment=${comment.id}${comment.at_ms != null ? `&t=${comment.at_ms}` : ""}`
    : `/videos/${reply.id}`;
  return (
    <li class={answer.accepted ? "search-answer accepted" : "search-answer"}>
      <p class="small muted">
        {answer.accepted && <span class="pill pill-ok">accepted</span>} {who}
        {comment && comment.at_ms != null && ` at ${clock(comment.at_ms)}`}
        {comment ? ` · ${ago(comment.created_at)}` : reply.created_at ? ` · ${ago(reply.created_at)}` : ""}
      </p>
      {comment ? (
        <p class="search-answer-body">{comment.state === "visible" ? comment.body : <em>This answer was removed.</em>}</p>
      ) : (
        <p>
          <Link href={where}>Reply video: {reply.title || "untitled"}</Link>
          {reply.duration_ms ? <span class="small muted"> · {clock(reply.duration_ms)}</span> : null}
        </p>
      )}
      <div class="row">
        <button type="button" class="button-secondary" aria-pressed={answer.voted_by_me ? "true" : "false"} onClick={vote} disabled={busy} aria-label={`Vote up the answer by ${who}, ${answer.votes} ${answer.votes === 1 ? "vote" : "votes"}`}>
          ▲ {answer.votes}
        </button>
        {mine && (
          <button type="button" class={answer.accepted ? "button-quiet" : "button-secondary"} onClick={accept} disabled={busy}>
            {answer.accepted ? "Take back acceptance" : `Accept the answer by ${who}`}
          </button>
        )}
        {comment && (
          <Link href={where} class="button-quiet button">
            Open in the video
          </Link>
        )}
      </div>
      <ErrorNote error={error} />
    </li>
  );
}

function Answers({ question, me, onState }) {
  const { data, error, reload } = useAsync((signal) => api(`/videos/${question.id}/answers`, { signal }), [question.id]);
  // Accepting (or taking back) changes the question's state: the row above shows it.
  useEffect(() => {
    if (data) onState(data.state);
  }, [data && data.state]);
  const [text, setText] = useState("");
  const [busy, setBusy] = useState(false);
  const [postError, setPostError] = useState(null);
  const mine = question.author && question.author.id === me.id;
  const post = async (event) => {
    event.preventDefault();
    if (!text.trim()) return;
    setBusy(true);
    setPostError(null);
    try {
      await api(`/videos/${question.id}/comments`, { method: "POST", idempotent: true, body: { body: text.trim() } });
      setText("");
      reload();
    } catch (e) {
      if (e.code === "mention_without_access") e.message = `${e.message} Share the video with them first, or leave the mention out.`;
      setPostError(e);
    } finally {
      setBusy(false);
    }
  };
  const formId = `answer-${question.id}`;
  return (
    <div class="search-answers">
      {error && <ErrorNote error={error} onRetry={reload} />}
      {!data && !error && <Spinner label="Loading answers" />}
      {data &&
        (data.items.length ? (
          <ul class="list" aria-label={`Answers to ${question.title || "the question"}`}>
            {data.items.map((answer) => (
              <Answer key={answer.kind === "comment" ? answer.comment.id : answer.video.id} answer={answer} question={question} mine={mine} onChanged={reload} />
            ))}
          </ul>
        ) : (
          <Empty>No answers yet: be the first.</Empty>
        ))}
      {!mine && (
        <form onSubmit={post} class="search-answer-form">
          <div class="field">
            <label for={formId}>Your answer</label>
            <textarea id={formId} maxLength={5000} value={text} onInput={(e) => setText(e.currentTarget.value)} />
          </div>
          <ErrorNote error={postError} />
          <div class="row">
            <button type="submit" disabled={busy || !text.trim()}>
              Post answer
            </button>
            <Link href={`/record?answers=${question.id}`} class="button button-secondary">
              Answer with a video
            </Link>
          </div>
        </form>
      )}
    </div>
  );
}

function Question({ item, me }) {
  const [open, setOpen] = useState(false);
  const [state, setState] = useState(item.video.question_state || "open");
  const { video } = item;
  const panel = `question-${video.id}`;
  return (
    <li class="search-result">
      <Link href={appPath(video.link || `/videos/${video.id}`)} class="search-title">
        {video.title || "Untitled question"}
      </Link>
      <VideoMeta video={video} />
      <div class="row">
        <span class={state === "answered" ? "pill pill-ok" : "pill pill-warn"}>{state}</span>
        <button type="button" class="button-quiet" aria-expanded={open ? "true" : "false"} aria-controls={panel} onClick={() => setOpen(!open)}>
          {open ? "Hide answers" : "Show answers"}
        </button>
      </div>
      <div id={panel} hidden={!open}>
        {open && <Answers question={video} me={me} onState={setState} />}
      </div>
    </li>
  );
}

export function AskThePeers({ me, q, onClearQuery }) {
  const [state, setState] = useState("open");
  const [cursor, setCursor] = useState(null);
  const { data, error, reload } = useAsync(
    async (signal) => {
      const page = await api("/search", { query: { q: q || undefined, question: state, limit: 20, cursor }, signal });
      return page;
    },
    [state, cursor, q],
  );
  return (
    <div>
      <div class="row search-ask">
        <p class="grow">Stuck on a deal? Record a short question; peers answer in writing or on video.</p>
        <Link href="/record?question=1" class="button">
          Ask a question
        </Link>
      </div>
      <div class="row" role="group" aria-label="Which questions">
        {["open", "answered", "any"].map((s) => (
          <button
            key={s}
            type="button"
            class="search-chip"
            aria-pressed={state === s ? "true" : "false"}
            onClick={() => {
              setState(s);
              setCursor(null);
            }}
          >
            {s === "any" ? "All questions" : s === "open" ? "Open questions" : "Answered questions"}
          </button>
        ))}
      </div>
      {q && (
        <p class="row small muted">
          Questions matching “{q}”.
          <button type="button" class="button-quiet" onClick={onClearQuery}>
            Clear the query
          </button>
        </p>
      )}
      {error && <ErrorNote error={error} onRetry={reload} />}
      {!data && !error && <Spinner label="Loading questions" />}
      {data &&
        (data.items.length ? (
          <ol class="list" aria-label="Questions">
            {data.items.map((item) => (
              <Question key={item.video.id} item={item} me={me} />
            ))}
          </ol>
        ) : (
          <Empty>{state === "open" ? "No open questions right now." : "No questions here yet."}</Empty>
        ))}
      {data && data.next_cursor && (
        <p>
          <button type="button" class="button-secondary" onClick={() => setCursor(data.next_cursor)}>
            Next questions
          </button>
        </p>
      )}
    </div>
  );
}
