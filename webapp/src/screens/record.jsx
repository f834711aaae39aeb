// Record: record with the camera or pick a file, name it, add slides, links and notes, then send
// it over tus (resumable, pausable) and follow processing until it plays.
import { useEffect, useRef, useState } from "preact/hooks";
import { api } from "../api.js";
import { Link, navigate } from "../router.jsx";
import { ErrorNote, Field, Page, Spinner, clock, toast } from "../ui.jsx";
import { ShareSheet } from "./share.jsx";
import {
  STATUS,
  acceptsFile,
  bytes,
  findDraft,
  forgetDraft,
  pendingDrafts,
  postAttachmentFile,
  rememberDraft,
  startUpload,
  uploadMessage,
  uploadPolicy,
} from "./upload.jsx";
import "./record.css";

// ---------------------------------------------------------------------------------------------
// The upload job lives outside the screen, so it keeps going (and is shown again) when the
// person opens another screen meanwhile and comes back to Record.
let job = null;
const jobListeners = new Set();
function setJob(changes) {
  job = changes === null ? null : { ...job, ...changes };
  jobListeners.forEach((listener) => listener(job));
}
function useJob() {
  const [current, setCurrent] = useState(job);
  useEffect(() => {
    jobListeners.add(setCurrent);
    setCurrent(job);
    return () => jobListeners.delete(setCurrent);
  }, []);
  return current;
}

// Back online: a transfer that gave up while offline carries on by itself.
window.addEventListener("online", () => {
  if (job) setJob({ online: true });
  if (job && job.phase === "stalled" && job.control) {
    setJob({ phase: "uploading", error: null });
    job.control.resume();
  } else if (job && job.phase === "uploading" && job.retrying && job.control) {
    job.control.restart();
  }
});
window.addEventListener("offline", () => job && setJob({ online: false }));

async function pollProcessing(videoId) {
  const started = Date.now();
  while (job && job.videoId === videoId) {
    try {
      const video = await api(`/videos/${videoId}`);
      if (!job || job.videoId !== videoId) return;
      setJob({ video });
      if (["playable", "ready"].includes(video.status)) {
        setJob({ phase: "done" });
        if (video.status === "ready") return;
      }
      if (video.status === "failed") {
        setJob({ phase: "failed", error: (video.failure && video.failure.detail) || "Fieldcast could not process this file." });
        return;
      }
    } catch (error) {
      if (error.status === 404) {
        setJob({ phase: "failed", error: "This video was deleted." });
        return;
      }
      // A network blip while polling: keep asking.
    }
    // Quick at first (a phone's clip is playable in seconds), then gentler.
    const wait = Date.now() - started < 60000 ? 2000 : 5000;
    await new Promise((resolve) => setTimeout(resolve, wait));
    // Playable already: keep looking for `ready`, but not for ever.
    if (job && job.phase === "done" && job.video && job.video.status === "playable" && Date.now() - started > 10 * 60000) return;
  }
}

async function beginUpload({ file, videoId, title, policy }) {
  setJob(null);
  setJob({ videoId, title, file, phase: "uploading", sent: 0, total: file.size, error: null, retrying: false, online: navigator.onLine, video: null });
  // An earlier upload still running in the background must not move this one's display.
  const mine = () => job && job.videoId === videoId;
  const control = await startUpload({
    file,
    videoId,
    policy,
    onProgress: (sent, total) => mine() && setJob({ sent, total, retrying: false }),
    onRetry: () => mine() && setJob({ retrying: true, online: navigator.onLine }),
    onSuccess: () => {
      forgetDraft(file);
      if (!mine()) return;
      setJob({ phase: "processing", sent: file.size, retrying: false });
      pollProcessing(videoId);
    },
    onError: (problem) => {
      const fatal = problem.status !== 0 && ![409, 423].includes(problem.status) && problem.status < 500;
      if (fatal) forgetDraft(file);
      if (mine()) setJob({ phase: fatal ? "rejected" : "stalled", error: uploadMessage(problem, policy), retrying: false });
    },
  });
  if (mine()) setJob({ control });
}

// ---------------------------------------------------------------------------------------------
// The camera: a live preview, a timer against the policy's limit, MediaRecorder.

const canRecordHere = typeof MediaRecorder !== "undefined" && Boolean(navigator.mediaDevices && navigator.mediaDevices.getUserMedia);

/** The first recording type this browser makes that the server reads (MP4 on Safari, WebM elsewhere). */
function recordingType() {
  const wanted = [
    "video/mp4;codecs=avc1.42E01E,mp4a.40.2",
    "video/mp4",
    "video/webm;codecs=vp9,opus",
    "video/webm;codecs=vp8,opus",
    "video/webm",
  ];
  return wanted.find((type) => MediaRecorder.isTypeSupported && MediaRecorder.isTypeSupported(type)) || "";
}

function cameraMessage(error) {
  switch (error && error.name) {
    case "NotAllowedError":
    case "SecurityError":
      return "Camera access was refused. Allow the camera and microphone for this site in the browser's settings, or choose a file instead.";
    case "NotFoundError":
    case "OverconstrainedError":
      return "No camera was found on this device. Choose a file instead.";
    case "NotReadableError":
      return "The camera is busy in another app. Close it there and try again.";
    default:
      return (error && error.message) || "The camera could not start.";
  }
}

function Camera({ maxSeconds, onRecorded, onClose }) {
  const preview = useRef(null);
  const stream = useRef(null);
  const recorder = useRef(null);
  const [facing, setFacing] = useState("user");
  const [state, setState] = useState("starting"); // starting | ready | recording | error
  const [error, setError] = useState(null);
  const [elapsed, setElapsed] = useState(0);

  useEffect(() => {
    let cancelled = false;
    setState("starting");
    navigator.mediaDevices
      .getUserMedia({ video: { facingMode: facing, width: { ideal: 1280 }, height: { ideal: 720 } }, audio: true })
      .then((media) => {
        if (cancelled) {
          media.getTracks().forEach((track) => track.stop());
          return;
        }
        stream.current = media;
        if (preview.current) preview.current.srcObject = media;
        setState("ready");
      })
      .catch((problem) => {
        if (cancelled) return;
        setError(cameraMessage(problem));
        setState("error");
      });
    return () => {
      cancelled = true;
      if (recorder.current && recorder.current.state !== "inactive") {
        recorder.current.onstop = null;
        recorder.current.stop();
      }
      if (stream.current) stream.current.getTracks().forEach((track) => track.stop());
      stream.current = null;
    };
  }, [facing]);

  // The timer, and the stop at the policy's limit.
  useEffect(() => {
    if (state !== "recording") return undefined;
    const begun = Date.now();
    const timer = setInterval(() => {
      const seconds = (Date.now() - begun) / 1000;
      setElapsed(seconds);
      if (seconds >= maxSeconds && recorder.current && recorder.current.state === "recording") recorder.current.stop();
    }, 250);
    return () => clearInterval(timer);
  }, [state, maxSeconds]);

  const start = () => {
    const type = recordingType();
    const chunks = [];
    let media;
    try {
      media = new MediaRecorder(stream.current, type ? { mimeType: type, videoBitsPerSecond: 2500000 } : undefined);
    } catch (problem) {
      setError(cameraMessage(problem));
      setState("error");
      return;
    }
    const begun = Date.now();
    media.ondataavailable = (event) => event.data && event.data.size && chunks.push(event.data);
    media.onstop = () => {
      const mime = (media.mimeType || type || "video/webm").split(";")[0];
      const extension = mime.includes("mp4") ? "mp4" : "webm";
      const stamp = new Date().toISOString().slice(0, 16).replace("T", " ").replace(":", ".");
      const file = new File(chunks, `Recording ${stamp}.${extension}`, { type: mime, lastModified: Date.now() });
      setState("ready");
      onRecorded(file, (Date.now() - begun) / 1000);
    };
    // Timeslices, so a long recording is not one huge buffer at the end.
    media.start(1000);
    recorder.current = media;
    setElapsed(0);
    setState("recording");
  };

  const stop = () => recorder.current && recorder.current.state === "recording" && recorder.current.stop();
  const recording = state === "recording";

  return (
    <section class="camera card" aria-label="Camera">
      {error ? (
        <ErrorNote error={{ message: error }} />
      ) : (
        <div class="camera-frame">
          <video ref={preview} class={facing === "user" ? "camera-preview mirrored" : "camera-preview"} autoplay muted playsInline aria-label="Camera preview" />
          {state === "starting" && <p class="camera-overlay">Starting the camera…</p>}
          <p class={recording ? "camera-timer recording" : "camera-timer"} role="timer" aria-live="off">
            {recording && <span class="rec-dot" aria-hidden="true" />}
            {clock(elapsed * 1000)} / {clock(maxSeconds * 1000)}
          </p>
        </div>
      )}
      <div class="row camera-actions">
        {!error &&
          (recording ? (
            <button type="button" class="button-danger" onClick={stop}>
              Stop recording
            </button>
          ) : (
            <button type="button" onClick={start} disabled={state !== "ready"}>
              Start recording
            </button>
          ))}
        {!recording && !error && (
          <button type="button" class="button-secondary" onClick={() => setFacing(facing === "user" ? "environment" : "user")}>
            Switch camera
          </button>
        )}
        {!recording && (
          <button type="button" class="button-quiet" onClick={onClose}>
            Close camera
          </button>
        )}
      </div>
      <p class="visually-hidden" role="status">
        {recording ? "Recording" : state === "ready" ? "Camera ready" : ""}
      </p>
    </section>
  );
}

// ---------------------------------------------------------------------------------------------
// Attachments: collected before the draft exists, sent as soon as it does (and at once after).

const DOCUMENT_TYPES = ".pdf,.ppt,.pptx,.key,.doc,.docx,.xls,.xlsx,.numbers,.pages,.txt,.csv,.md,.png,.jpg,.jpeg,.gif,.webp,.heic";
let attachmentKey = 0;

function Attachments({ videoId }) {
  const [items, setItems] = useState([]);
  const [link, setLink] = useState("");
  const [note, setNote] = useState("");
  const [formError, setFormError] = useState(null);
  const inFlight = useRef(new Set());

  const update = (key, changes) => setItems((list) => list.map((item) => (item.key === key ? { ...item, ...changes } : item)));

  // A draft that has attachments already (replacing a file, or continuing after a reload).
  useEffect(() => {
    if (!videoId) return;
    api(`/videos/${videoId}/attachments`).then(
      (page) => {
        const saved = (page && page.items) || [];
        setItems((list) => {
          const known = new Set(list.map((item) => item.id).filter(Boolean));
          const found = saved
            .filter((attachment) => !known.has(attachment.id))
            .map((attachment) => {
              attachmentKey += 1;
              return { key: attachmentKey, kind: attachment.kind, id: attachment.id, title: attachment.title, size: attachment.size_bytes, state: "done" };
            });
          return [...found, ...list];
        });
      },
      () => {},
    );
  }, [videoId]);

  // Send whatever is waiting once there is a draft to attach to.
  useEffect(() => {
    if (!videoId) return;
    for (const item of items) {
      if (item.state !== "queued" || inFlight.current.has(item.key)) continue;
      inFlight.current.add(item.key);
      update(item.key, { state: "sending", error: null });
      const sending =
        item.kind === "file"
          ? postAttachmentFile(videoId, item.file)
          : api(`/videos/${videoId}/attachments`, {
              method: "POST",
              idempotent: true,
              body: item.kind === "link" ? { kind: "link", url: item.url } : { kind: "note", body: item.body },
            });
      sending.then(
        (saved) => update(item.key, { state: "done", id: saved.id, title: saved.title || item.title }),
        (error) => update(item.key, { state: "error", error }),
      ).finally(() => inFlight.current.delete(item.key));
    }
  }, [videoId, items]);

  const add = (item) => {
    attachmentKey += 1;
    setItems((list) => [...list, { key: attachmentKey, state: "queued", ...item }]);
  };

  const addFiles = (event) => {
    for (const file of event.currentTarget.files) add({ kind: "file", file, title: file.name, size: file.size });
    event.currentTarget.value = "";
  };

  const addLink = () => {
    setFormError(null);
    let parsed;
    try {
      parsed = new URL(link.trim());
    } catch {
      parsed = null;
    }
    if (!parsed || !["http:", "https:"].includes(parsed.protocol)) {
      setFormError({ field: "link", message: "Enter a full web address, starting with https://" });
      return;
    }
    add({ kind: "link", url: parsed.toString(), title: parsed.host });
    setLink("");
  };

  const addNote = () => {
    setFormError(null);
    if (!note.trim()) {
      setFormError({ field: "note", message: "Write the note first." });
      return;
    }
    add({ kind: "note", body: note.trim(), title: note.trim().split("\n")[0].slice(0, 80) });
    setNote("");
  };

  const remove = async (item) => {
    if (item.state === "done" && videoId) {
      try {
        await api(`/videos/${videoId}/attachments/${item.id}`, { method: "DELETE" });
      } catch (error) {
        if (error.status !== 404) {
          update(item.key, { error });
          return;
        }
      }
    }
    setItems((list) => list.filter((other) => other.key !== item.key));
  };

  const stateWords = { queued: videoId ? "Waiting" : "Added when you upload", sending: "Sending…", done: "Attached", error: "Not attached" };

  return (
    <fieldset class="attachments">
      <legend>Slides, documents, links and notes (optional)</legend>
      {items.length > 0 && (
        <ul class="list attachment-list" aria-live="polite">
          {items.map((item) => (
            <li key={item.key} class="attachment-item">
              <span class="attachment-kind">{item.kind === "file" ? "File" : item.kind === "link" ? "Link" : "Note"}</span>
              <div class="grow attachment-text">
                <p class="strong">{item.title}</p>
                <p class="small muted">
                  {item.kind === "file" && `${bytes(item.size)} · `}
                  <span class={item.state === "error" ? "field-error" : ""}>{stateWords[item.state]}</span>
                </p>
                {item.error && <p class="small field-error">{item.error.message}</p>}
              </div>
              {item.state === "error" && (
                <button type="button" class="button-quiet" onClick={() => update(item.key, { state: "queued", error: null })}>
                  Retry
                </button>
              )}
              {item.state !== "sending" && (
                <button type="button" class="button-quiet" onClick={() => remove(item)} aria-label={`Remove ${item.title}`}>
                  Remove
                </button>
              )}
            </li>
          ))}
        </ul>
      )}
      <div class="field">
        <input id="record-docs" class="visually-hidden" type="file" multiple accept={DOCUMENT_TYPES} onChange={addFiles} />
        <label for="record-docs" class="button button-secondary file-button">
          Add slides or documents
        </label>
        <small>PDF, PowerPoint, Keynote, Word, Excel, text or images, up to 100 MB each.</small>
      </div>
      <Field label="Link" id="record-link" error={formError && formError.field === "link" ? formError.message : null}>
        {(props) => (
          <div class="row">
            <input
              {...props}
              class="grow"
              type="url"
              inputMode="url"
              placeholder="https://"
              value={link}
              onInput={(event) => setLink(event.currentTarget.value)}
              onKeyDown={(event) => {
                if (event.key === "Enter") {
                  event.preventDefault();
                  addLink();
                }
              }}
            />
            <button type="button" class="button-secondary" onClick={addLink} disabled={!link.trim()}>
              Add link
            </button>
          </div>
        )}
      </Field>
      <Field label="Note" id="record-note" error={formError && formError.field === "note" ? formError.message : null}>
        {(props) => <textarea {...props} rows={2} maxLength={10000} value={note} onInput={(event) => setNote(event.currentTarget.value)} />}
      </Field>
      <button type="button" class="button-secondary" onClick={addNote} disabled={!note.trim()}>
        Add note
      </button>
    </fieldset>
  );
}

// ---------------------------------------------------------------------------------------------
// Progress after "Upload": sending, then processing, then ready to watch.

function UploadPanel({ current, policy, onAnother, onRetryFile }) {
  const [sharing, setSharing] = useState(false);
  const percent = current.total ? Math.floor((current.sent / current.total) * 100) : 0;
  const video = current.video;
  const processing = video ? video.progress || 0 : 0;
  const sending = ["uploading", "paused", "stalled"].includes(current.phase);
  // Announce in steps of 10 %: every percent would drown a screen reader.
  const spoken = Math.floor(percent / 10) * 10;

  const pause = () => {
    current.control && current.control.pause();
    setJob({ phase: "paused", retrying: false });
  };
  const resume = async () => {
    setJob({ phase: "uploading", error: null });
    // The last bytes may have landed just as the person paused: then there is nothing to resume.
    try {
      const video = await api(`/videos/${current.videoId}`);
      if (!["awaiting_upload", "uploading", "failed"].includes(video.status)) {
        forgetDraft(current.file);
        setJob({ phase: "processing", sent: current.total, video });
        pollProcessing(current.videoId);
        return;
      }
    } catch {
      // Offline or flaky: let tus find out where the upload stands.
    }
    current.control && current.control.resume();
  };

  return (
    <section class="card upload-panel" aria-labelledby="upload-heading">
      <h2 id="upload-heading">{current.title}</h2>
      {sending && (
        <>
          <label for="upload-progress" class="upload-label">
            {current.phase === "paused" ? "Upload paused" : "Uploading"} · {percent}% of {bytes(current.total)}
          </label>
          <progress id="upload-progress" max={100} value={percent} />
          <p class="visually-hidden" role="status" aria-live="polite">
            {current.phase === "paused" ? `Upload paused at ${percent}%` : `${spoken}% uploaded`}
          </p>
          {!current.online && (
            <p class="notice" role="status">
              You are offline. The upload carries on by itself when the connection is back; keep this tab open.
            </p>
          )}
          {current.online && current.retrying && (
            <p class="notice" role="status">
              The connection is unsteady: trying again…
            </p>
          )}
          {current.phase === "stalled" && <ErrorNote error={{ message: current.error }} />}
          <div class="row">
            {current.phase === "uploading" && percent >= 100 ? (
              <p class="muted">Finishing…</p>
            ) : current.phase === "uploading" ? (
              <button type="button" class="button-secondary" onClick={pause}>
                Pause
              </button>
            ) : (
              <button type="button" onClick={resume}>
                Resume
              </button>
            )}
          </div>
        </>
      )}

      {current.phase === "rejected" && (
        <>
          <ErrorNote error={{ message: current.error }} />
          <button type="button" onClick={onRetryFile}>
            Choose another file
          </button>
        </>
      )}

      {current.phase === "processing" && (
        <>
          <label for="processing-progress" class="upload-label">
            Uploaded. Processing{processing ? ` · ${processing}%` : "…"}
          </label>
          <progress id="processing-progress" max={100} value={processing || undefined} />
          <p class="small muted" role="status">
            Processing: it usually plays within a minute. You can leave this screen; you'll be told when it's ready.
          </p>
        </>
      )}

      {current.phase === "failed" && (
        <>
          <ErrorNote error={{ message: current.error }} />
          <button type="button" onClick={onRetryFile}>
            Choose another file
          </button>
        </>
      )}

      {current.phase === "done" && video && (
        <>
          <p class="ready-note" role="status">
            <span class="pill pill-ok">{STATUS[video.status].label}</span> Ready to watch
            {video.status === "playable" && <span class="muted small"> · higher qualities follow in a moment</span>}
          </p>
          <div class="row">
            <Link href={`/videos/${video.id}`} class="button">
              Watch
            </Link>
            <button type="button" class="button-secondary" onClick={() => setSharing(true)}>
              Share
            </button>
            <button type="button" class="button-quiet" onClick={onAnother}>
              Record another
            </button>
          </div>
          {sharing && <ShareSheet video={video} onClose={() => setSharing(false)} />}
        </>
      )}
      {policy && sending && <p class="small muted">Uploads resume where they stopped if the connection drops or you reload this tab and choose the same file.</p>}
    </section>
  );
}

/** Why the policy refuses this file (checked here first, so nothing crosses the network for it), or null. */
function fileProblem(policy, file, seconds) {
  if (!policy) return null;
  if (file.size === 0) return "This file is empty. Choose another one.";
  if (!acceptsFile(policy, file)) return "This kind of file is not supported. Choose an MP4, MOV or WebM video.";
  if (file.size > policy.max_bytes) return `This file is ${bytes(file.size)}; Fieldcast takes up to ${bytes(policy.max_bytes)}.`;
  if (seconds && seconds > policy.max_duration_s + 1) {
    return `This video is ${clock(seconds * 1000)} long; Fieldcast takes up to ${clock(policy.max_duration_s * 1000)}. Trim it first.`;
  }
  return null;
}

// ---------------------------------------------------------------------------------------------

export function Record({ query }) {
  const current = useJob();
  const existingId = query.get("video"); // a draft or a failed video taking a (new) file
  // Asking the peers (search's "Ask a question"), or answering a question with a video.
  const asking = query.get("question") === "1";
  const answering = query.get("answers");
  const [policy, setPolicy] = useState(null);
  const [policyError, setPolicyError] = useState(null);
  const [existing, setExisting] = useState(null);
  const [camera, setCamera] = useState(false);
  const [source, setSource] = useState(null); // { file, url, seconds, recorded }
  const [title, setTitle] = useState("");
  const [description, setDescription] = useState("");
  const [draftId, setDraftId] = useState(() => existingId || (job && job.videoId) || null);
  const [errors, setErrors] = useState({});
  const [busy, setBusy] = useState(false);
  const [submitError, setSubmitError] = useState(null);
  const autoTitle = useRef("");
  const [round, setRound] = useState(0); // a new Attachments list for each new video
  const [resumable] = useState(() => (job ? [] : pendingDrafts()));

  useEffect(() => {
    uploadPolicy().then(setPolicy, setPolicyError);
  }, []);

  useEffect(() => {
    if (!existingId) return;
    api(`/videos/${existingId}`).then(
      (video) => {
        setExisting(video);
        setDraftId(video.id);
        setTitle(video.title);
        setDescription(video.description || "");
      },
      (error) => setSubmitError(error),
    );
  }, [existingId]);

  // The policy may arrive after the file was chosen: check the file against it then.
  useEffect(() => {
    if (!policy || !source) return;
    const problem = fileProblem(policy, source.file, source.seconds);
    if (problem) setErrors((e) => ({ ...e, file: problem }));
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [policy]);

  // Free the preview's memory when the source changes or the screen closes.
  const sourceUrl = source && source.url;
  useEffect(() => () => sourceUrl && URL.revokeObjectURL(sourceUrl), [sourceUrl]);

  // Leaving the page mid-upload loses the file (a reload can resume only if it is picked again).
  useEffect(() => {
    const sending = current && ["uploading", "paused", "stalled"].includes(current.phase);
    if (!sending) return undefined;
    const warn = (event) => {
      event.preventDefault();
      event.returnValue = "";
    };
    window.addEventListener("beforeunload", warn);
    return () => window.removeEventListener("beforeunload", warn);
  }, [current && current.phase]);

  const choose = (file, seconds = null, recorded = false) => {
    const problem = fileProblem(policy, file, seconds);
    setErrors(problem ? { file: problem } : {});
    setSubmitError(null);
    setSource({ file, url: URL.createObjectURL(file), seconds, recorded, previewFailed: false });
    // A fresh recording has no name yet: straight to the title.
    if (!title) setTimeout(() => document.getElementById("record-title") && document.getElementById("record-title").focus(), 0);
    // Name it after the file until the person types a title of their own.
    if (!recorded && !problem && (!title || title === autoTitle.current)) {
      autoTitle.current = file.name.replace(/\.[^.]+$/, "").replace(/[_-]+/g, " ").trim().slice(0, 200);
      setTitle(autoTitle.current);
    }
    // The same file picked after a reload: continue its draft and its upload.
    const draft = !existingId && findDraft(file);
    if (draft) {
      setDraftId(draft.videoId);
      if (!title) setTitle(draft.title);
    }
  };

  const onPick = (event) => {
    const file = event.currentTarget.files && event.currentTarget.files[0];
    if (file) choose(file);
    event.currentTarget.value = "";
  };

  const validate = () => {
    const found = {};
    const problem = source ? fileProblem(policy, source.file, source.seconds) : "Record or choose a video first.";
    if (problem) found.file = problem;
    if (!title.trim()) found.title = "Give the video a title.";
    setErrors(found);
    return Object.keys(found).length === 0;
  };

  const submit = async (event) => {
    event.preventDefault();
    setSubmitError(null);
    if (!validate()) {
      const first = document.querySelector(".record-form [aria-invalid='true']");
      if (first) first.focus();
      return;
    }
    setBusy(true);
    try {
      const fields = { title: title.trim(), description: description.trim() };
      let videoId = draftId;
      if (videoId) {
        try {
          const video = existing && existing.id === videoId ? existing : await api(`/videos/${videoId}`);
          if (video.title !== fields.title || (video.description || "") !== fields.description) {
            await api(`/videos/${videoId}`, { method: "PATCH", body: fields });
          }
        } catch (error) {
          // A remembered draft deleted since: make a new one.
          if (error.status !== 404 || existingId) throw error;
          videoId = null;
        }
      }
      if (!videoId) {
        const kind = asking ? { kind: "question" } : answering ? { answers_video_id: answering } : {};
        const video = await api("/videos", { method: "POST", body: { ...fields, ...kind }, idempotent: true });
        videoId = video.id;
      }
      setDraftId(videoId);
      rememberDraft(source.file, videoId, fields.title);
      await beginUpload({ file: source.file, videoId, title: fields.title, policy });
    } catch (error) {
      setSubmitError(error);
    } finally {
      setBusy(false);
    }
  };

  const another = () => {
    setJob(null);
    setRound((n) => n + 1);
    setSource(null);
    setTitle("");
    setDescription("");
    setDraftId(null);
    setExisting(null);
    if (existingId) navigate("/record", { replace: true });
  };

  // A rejected or failed file: the draft takes a new one; keep the title and attachments.
  const retryFile = () => {
    const keep = job;
    setJob(null);
    setSource(null);
    if (keep) {
      setDraftId(keep.videoId);
      setTitle(keep.title);
    }
  };

  const showForm = !current || current.videoId !== draftId || !["uploading", "paused", "stalled", "processing", "done", "failed", "rejected"].includes(current.phase);
  const maxSeconds = policy ? policy.max_duration_s : 600;

  return (
    <Page
      title={existing ? (existing.status === "failed" ? "Replace the video file" : "Add the video file") : asking ? "Ask the peers" : answering ? "Answer with a video" : "Record"}
      actions={
        <Link href="/mine" class="button button-secondary">
          My videos
        </Link>
      }
    >
      <ErrorNote error={policyError} onRetry={() => uploadPolicy().then(setPolicy, setPolicyError)} />
      {current && !showForm && <UploadPanel current={current} policy={policy} onAnother={another} onRetryFile={retryFile} />}
      {current && showForm && ["uploading", "paused", "stalled", "processing"].includes(current.phase) && (
        <p class="notice">
          “{current.title}” is still {current.phase === "processing" ? "processing" : "uploading"}.{" "}
          <button type="button" class="button-quiet" onClick={() => setDraftId(current.videoId)}>
            Show its progress
          </button>
        </p>
      )}
      {existingId && !existing && (submitError ? <ErrorNote error={submitError} /> : <Spinner label="Opening the video" />)}
      {showForm && (!existingId || existing) && (
        <form id="record-form" class="record-form" onSubmit={submit} noValidate>
          {existing && existing.status === "failed" && existing.failure && (
            <p class="notice">The last file failed: {existing.failure.detail}</p>
          )}
          {!source && resumable.length > 0 && !existingId && (
            <div class="notice" role="note">
              <p class="strong">Unfinished upload{resumable.length > 1 ? "s" : ""}</p>
              {resumable.slice(0, 3).map((draft) => (
                <p key={draft.videoId} class="small">
                  “{draft.title}” ({draft.name}): choose the same file again to continue where it stopped.
                </p>
              ))}
            </div>
          )}

          <section class="source" aria-labelledby="source-heading">
            <h2 id="source-heading" class="visually-hidden">
              The video
            </h2>
            {camera && !source && (
              <Camera
                maxSeconds={maxSeconds}
                onClose={() => setCamera(false)}
                onRecorded={(file, seconds) => {
                  setCamera(false);
                  choose(file, seconds, true);
                }}
              />
            )}
            {source ? (
              <div class="card chosen">
                {source.previewFailed && <p class="muted small">This browser can't preview this file; it can still be uploaded.</p>}
                <video
                  hidden={source.previewFailed}
                  class="chosen-preview"
                  src={source.url}
                  controls
                  playsInline
                  preload="metadata"
                  aria-label="Preview of the chosen video"
                  onLoadedMetadata={(event) => {
                    const seconds = event.currentTarget.duration;
                    // MediaRecorder's WebM has no duration in its header (Infinity): keep the timer's.
                    if (!Number.isFinite(seconds) || source.recorded) return;
                    setSource((s) => ({ ...s, seconds }));
                    const problem = fileProblem(policy, source.file, seconds);
                    if (problem) setErrors((e) => ({ ...e, file: problem }));
                  }}
                  // Containers this browser cannot play (AVI, MKV...) still upload: just no preview.
                  onError={() => setSource((s) => (s ? { ...s, previewFailed: true } : s))}
                />
                <p class="small muted chosen-meta">
                  {source.file.name} · {bytes(source.file.size)}
                  {source.seconds ? ` · ${clock(source.seconds * 1000)}` : ""}
                </p>
                <div class="row">
                  <button
                    type="button"
                    class="button-quiet"
                    onClick={() => {
                      setCamera(source.recorded);
                      setSource(null);
                    }}
                  >
                    {source.recorded ? "Record again" : "Choose another video"}
                  </button>
                  {source.recorded && (
                    <a class="button button-quiet" href={source.url} download={source.file.name}>
                      Save a copy
                    </a>
                  )}
                </div>
              </div>
            ) : (
              !camera && (
                <div class="source-choices">
                  {canRecordHere && (
                    <button type="button" class="source-choice" onClick={() => setCamera(true)}>
                      <span class="source-icon" aria-hidden="true">
                        ●
                      </span>
                      Record with the camera
                    </button>
                  )}
                  <input
                    id="record-file"
                    class="visually-hidden"
                    type="file"
                    accept="video/*"
                    onChange={onPick}
                    aria-describedby={errors.file ? "record-file-error" : "record-file-hint"}
                    aria-invalid={errors.file ? "true" : undefined}
                  />
                  <label for="record-file" class="source-choice">
                    <span class="source-icon" aria-hidden="true">
                      ⬆
                    </span>
                    Choose a video
                  </label>
                  {!canRecordHere && (
                    <>
                      <input id="record-capture" class="visually-hidden" type="file" accept="video/*" capture="user" onChange={onPick} />
                      <label for="record-capture" class="source-choice">
                        <span class="source-icon" aria-hidden="true">
                          ●
                        </span>
                        Record a video
                      </label>
                    </>
                  )}
                </div>
              )
            )}
            {!source && !camera && (
              <p id="record-file-hint" class="small muted">
                {policy
                  ? `Up to ${clock(policy.max_duration_s * 1000)} long and ${bytes(policy.max_bytes)}. MP4, MOV or WebM.`
                  : "MP4, MOV or WebM."}
              </p>
            )}
            {errors.file && (
              <p id="record-file-error" class="field-error" role="alert">
                {errors.file}
              </p>
            )}
          </section>

          <Field label="Title" id="record-title" error={errors.title}>
            {(props) => (
              <input {...props} type="text" required maxLength={200} value={title} onInput={(event) => setTitle(event.currentTarget.value)} />
            )}
          </Field>
          <Field label="Description" id="record-description" hint="What should your peers take from it?">
            {(props) => (
              <textarea {...props} rows={3} maxLength={5000} value={description} onInput={(event) => setDescription(event.currentTarget.value)} />
            )}
          </Field>

        </form>
      )}
      {/* Always mounted: what was added before "Upload" keeps sending once the panel shows. */}
      <Attachments key={round} videoId={draftId} />
      {showForm && (!existingId || existing) && (
        <div class="upload-submit">
          <ErrorNote error={submitError} />
          <button type="submit" form="record-form" class="upload-button" disabled={busy || !policy}>
            {busy ? "Starting…" : "Upload"}
          </button>
          {busy && <Spinner label="Creating the video" />}
        </div>
      )}
    </Page>
  );
}

// Tell the person once, anywhere in the app, when their upload becomes playable.
const told = new Set();
jobListeners.add((latest) => {
  if (latest && latest.phase === "done" && !told.has(latest.videoId) && !location.pathname.endsWith("/record")) {
    told.add(latest.videoId);
    toast(`“${latest.title}” is ready to watch`);
  }
});
