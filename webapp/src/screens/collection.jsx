// Collections: the list (and making one, for curators) and one collection: its videos and clips
// in order, reordered by dragging or with Move up / Move down, added, removed, published and
// assigned.
import { useEffect, useRef, useState } from "preact/hooks";
import { all, api } from "../api.js";
import { Link, navigate } from "../router.jsx";
import { isCurator } from "../session.jsx";
import { Empty, ErrorNote, Page, Spinner, ago, toast, useAsync, FormEnd } from "../ui.jsx";
import { AssignmentSummary, LearnTabs, Poster, clipHref, rangeText, withCounts } from "./learning-common.jsx";
import { AddItems, EditItem } from "./collection-add.jsx";
import { AssignDialog } from "./collection-assign.jsx";
import "./learning.css";

const VISIBILITY = {
  private: "Only you and its editors",
  teams: "Teams",
  organisation: "Everyone in the organisation",
};

export function Collections({ me, query }) {
  const curator = isCurator(me);
  const mine = query.get("mine") === "1";
  const [creating, setCreating] = useState(false);
  const list = useAsync(() => all("/collections", { query: { mine: mine || undefined, limit: 200 }, limit: 500 }), [mine]);
  const newButton = useRef(null);
  return (
    <Page
      title="Collections"
      actions={
        curator &&
        !creating && (
          <button type="button" ref={newButton} onClick={() => setCreating(true)}>
            New collection
          </button>
        )
      }
    >
      <LearnTabs current="/collections" />
      {creating && (
        <CreateCollection
          onCancel={() => {
            setCreating(false);
            setTimeout(() => newButton.current && newButton.current.focus(), 0);
          }}
        />
      )}
      {curator && (
        <div class="learn-filters" role="group" aria-label="Show">
          <button type="button" class={mine ? "learn-chip button-secondary" : "learn-chip"} aria-pressed={mine ? "false" : "true"} onClick={() => navigate("/collections", { replace: true })}>
            All
          </button>
          <button type="button" class={mine ? "learn-chip" : "learn-chip button-secondary"} aria-pressed={mine ? "true" : "false"} onClick={() => navigate("/collections?mine=1", { replace: true })}>
            Mine
          </button>
        </div>
      )}
      {list.error && <ErrorNote error={list.error} onRetry={list.reload} />}
      {list.loading && !list.data && <Spinner label="Loading collections" />}
      {list.data && list.data.length === 0 && (
        <Empty>{curator ? "No collections yet. Make one to put videos and clips in order for your people." : "No collections for you yet."}</Empty>
      )}
      {list.data && list.data.length > 0 && (
        <ul class="list" aria-label="Collections">
          {list.data.map((collection) => (
            <li key={collection.id} class="learn-collection">
              <Link href={`/collections/${collection.id}`} class="strong learn-collection-link">
                {collection.title}
              </Link>
              {collection.description && <p class="small learn-clamp">{collection.description}</p>}
              <p class="row small muted">
                {collection.published_at ? <span class="pill pill-ok">Published</span> : <span class="pill pill-warn">Draft</span>}
                <span>{VISIBILITY[collection.visibility] || collection.visibility}</span>
                <span>updated {ago(collection.updated_at)}</span>
              </p>
            </li>
          ))}
        </ul>
      )}
    </Page>
  );
}

function CreateCollection({ onCancel }) {
  const [title, setTitle] = useState("");
  const [description, setDescription] = useState("");
  const [visibility, setVisibility] = useState("organisation");
  const [teamIds, setTeamIds] = useState([]);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState(null);
  const titleInput = useRef(null);
  const teams = useAsync(() => (visibility === "teams" ? all("/teams", { limit: 500 }) : Promise.resolve(null)), [visibility]);
  useEffect(() => titleInput.current && titleInput.current.focus(), []);
  const submit = async (event) => {
    event.preventDefault();
    if (!title.trim()) return setError(new Error("Give the collection a title."));
    if (visibility === "teams" && teamIds.length === 0) return setError(new Error("Choose at least one team."));
    setBusy(true);
    setError(null);
    try {
      const body = { title: title.trim(), description: description.trim(), visibility };
      if (visibility === "teams") body.team_ids = teamIds;
      const created = await api("/collections", { method: "POST", body, idempotent: true });
      toast(`Made “${created.title}”`);
      navigate(`/collections/${created.id}`);
    } catch (err) {
      setError(err);
      setBusy(false);
    }
  };
  const toggleTeam = (id) => setTeamIds((ids) => (ids.includes(id) ? ids.filter((x) => x !== id) : [...ids, id]));
  return (
    <form class="card" onSubmit={submit} aria-labelledby="new-collection-heading">
      <h2 id="new-collection-heading">New collection</h2>
      <div class="field">
        <label for="collection-title">Title</label>
        <input id="collection-title" ref={titleInput} required maxLength={200} value={title} onInput={(e) => setTitle(e.currentTarget.value)} />
      </div>
      <div class="field">
        <label for="collection-description">Description</label>
        <textarea id="collection-description" maxLength={5000} value={description} onInput={(e) => setDescription(e.currentTarget.value)} />
      </div>
      <div class="field">
        <label for="collection-visibility">Who sees it once published</label>
        <select id="collection-visibility" value={visibility} onChange={(e) => setVisibility(e.currentTarget.value)} aria-describedby="collection-visibility-hint">
          {Object.entries(VISIBILITY).map(([key, label]) => (
            <option key={key} value={key}>
              {label}
            </option>
          ))}
        </select>
        <small id="collection-visibility-hint">Until you publish it, only you and its editors see it. People you assign it to always see it.</small>
      </div>
      {visibility === "teams" && (
        <fieldset class="learn-teams">
          <legend>Teams</legend>
          {teams.loading && <Spinner label="Loading teams" />}
          {(teams.data || []).map((team) => (
            <label key={team.id} class="check">
              <input type="checkbox" checked={teamIds.includes(team.id)} onChange={() => toggleTeam(team.id)} />
              {team.name}
            </label>
          ))}
        </fieldset>
      )}
      <FormEnd busy={busy} error={error} label="Create" onCancel={onCancel} />
    </form>
  );
}

/* ------------------------------------------------------------------------------------------- */

export function CollectionView({ id, me }) {
  const collection = useAsync((signal) => api(`/collections/${id}`, { signal }), [id]);
  const [items, setItems] = useState(null);
  const [error, setError] = useState(null);
  const [announcement, setAnnouncement] = useState("");
  const [editing, setEditing] = useState(false);
  const [assigning, setAssigning] = useState(false);
  const [assignedVersion, setAssignedVersion] = useState(0);
  const [busy, setBusy] = useState(false);
  const moves = useRef(0); // only the latest move's answer sets the order
  const publishButton = useRef(null);
  const itemsHeading = useRef(null);
  const data = collection.data;
  useEffect(() => {
    if (data) setItems(data.items);
  }, [data]);

  if (collection.error) {
    return (
      <Page title="Collection">
        <LearnTabs current="/collections" />
        <ErrorNote error={collection.error.status === 404 ? new Error("This collection does not exist or is not yours to see.") : collection.error} onRetry={collection.error.status === 404 ? undefined : collection.reload} />
      </Page>
    );
  }
  if (!data || !items || data.id !== id) {
    return (
      <Page title="Collection">
        <Spinner label="Loading the collection" />
      </Page>
    );
  }
  const canEdit = data.can_edit;
  const curator = isCurator(me);
  const firstPlayable = items.find((item) => item.available && item.video);

  /** Move item `from` (index) to index `to`: the API takes the item to put after (null: first). */
  const move = async (from, to, focusAfter) => {
    if (from === to || to < 0 || to >= items.length) return;
    const before = items;
    const moved = items[from];
    const rest = items.filter((_, index) => index !== from);
    const next = [...rest.slice(0, to), moved, ...rest.slice(to)];
    const after = to === 0 ? null : next[to - 1].id;
    setItems(next); // at once: the server's order replaces it when it answers
    setError(null);
    setAnnouncement(`${titleOfItem(moved)} moved to position ${to + 1} of ${next.length}.`);
    if (focusAfter) focusAfter(moved.id);
    const mine = ++moves.current;
    try {
      const answer = await api(`/collections/${id}/items/move`, { method: "POST", body: { item_ids: [moved.id], after_item_id: after }, idempotent: true });
      if (answer && answer.items && mine === moves.current) setItems(answer.items);
    } catch (err) {
      if (mine === moves.current) setItems(before);
      else collection.reload(); // a later move went ahead on top of this one: take the server's order
      setError(err);
      setAnnouncement("The move did not go through.");
    }
  };

  const remove = async (item) => {
    const before = items;
    setItems(items.filter((x) => x.id !== item.id));
    setError(null);
    try {
      await api(`/collections/${id}/items/${item.id}`, { method: "DELETE" });
      setAnnouncement(`Removed ${titleOfItem(item)}.`);
      if (itemsHeading.current) itemsHeading.current.focus(); // its buttons are gone with it
      toast(`Removed ${titleOfItem(item)}`);
    } catch (err) {
      setItems(before);
      setError(err);
    }
  };

  const publish = async (on) => {
    setBusy(true);
    setError(null);
    try {
      const answer = await api(`/collections/${id}/${on ? "publish" : "unpublish"}`, { method: "POST", idempotent: true });
      collection.setData(answer);
      // Publish and Unpublish trade places: keep focus on whichever is there now.
      setTimeout(() => publishButton.current && publishButton.current.focus(), 0);
      toast(on ? "Published" : "Unpublished: only you and its editors see it");
    } catch (err) {
      if (err.code === "not_publishable") {
        setError(new Error(`${err.message} Remove the videos you do not see yourself, or ask their owner to publish.`));
      } else setError(err);
    } finally {
      setBusy(false);
    }
  };

  const destroy = async () => {
    if (!window.confirm(`Delete “${data.title}”? Its assignments stop too.`)) return;
    try {
      await api(`/collections/${id}`, { method: "DELETE" });
      toast(`Deleted “${data.title}”`);
      navigate("/collections");
    } catch (err) {
      setError(err);
    }
  };

  return (
    <Page title={data.title}>
      <LearnTabs current="/collections" />
      <div class="card learn-head">
        {editing ? (
          <EditDetails collection={data} onDone={(answer) => { if (answer) collection.setData(answer); setEditing(false); }} />
        ) : (
          <>
            {data.description && <p class="learn-description">{data.description}</p>}
            <p class="row small muted">
              {data.published_at ? <span class="pill pill-ok">Published</span> : <span class="pill pill-warn">Draft</span>}
              <span>{VISIBILITY[data.visibility] || data.visibility}</span>
              <span>
                {items.length} {items.length === 1 ? "item" : "items"}
              </span>
            </p>
            <div class="row learn-head-actions">
              {firstPlayable && (
                <Link class="button" href={clipHref(firstPlayable)}>
                  Play from the start
                </Link>
              )}
              {canEdit &&
                (data.published_at ? (
                  <button type="button" class="button-secondary" ref={publishButton} disabled={busy} onClick={() => publish(false)}>
                    Unpublish
                  </button>
                ) : (
                  <button type="button" ref={publishButton} disabled={busy || items.length === 0} onClick={() => publish(true)} aria-describedby={items.length === 0 ? "publish-hint" : undefined}>
                    Publish
                  </button>
                ))}
              {curator && (
                <button type="button" class="button-secondary" onClick={() => setAssigning(true)}>
                  Assign
                </button>
              )}
              {curator && data.published_at && <FeatureToggle collection={data} />}
              {canEdit && (
                <button type="button" class="button-quiet" onClick={() => setEditing(true)}>
                  Edit details
                </button>
              )}
              {canEdit && data.owner_id === me.id && (
                <button type="button" class="button-quiet learn-danger" onClick={destroy}>
                  Delete
                </button>
              )}
            </div>
            {canEdit && items.length === 0 && !data.published_at && (
              <p id="publish-hint" class="small muted">
                Add a video or a clip before publishing.
              </p>
            )}
          </>
        )}
      </div>
      <ErrorNote error={error} />
      <p class="visually-hidden" role="status" aria-live="polite">
        {announcement}
      </p>
      {canEdit && <AddItems collectionId={id} onAdded={(added) => { setItems((list) => [...list, ...added]); setAnnouncement(`Added ${added.map(titleOfItem).join(", ")}.`); }} />}
      <h2 id="items-heading" ref={itemsHeading} tabIndex={-1}>
        In this collection
      </h2>
      {items.length === 0 ? (
        <Empty>{canEdit ? "Nothing in it yet: add a video or a clip." : "Nothing in this collection yet."}</Empty>
      ) : (
        <ItemList collectionId={id} items={items} canEdit={canEdit} onMove={move} onRemove={remove} onSaved={(saved) => setItems((list) => list.map((x) => (x.id === saved.id ? saved : x)))} />
      )}
      {curator && <CollectionAssignments collectionId={id} version={assignedVersion} />}
      {assigning && (
        <AssignDialog
          collection={data}
          onClose={(assignment) => {
            setAssigning(false);
            if (assignment) setAssignedVersion((v) => v + 1);
          }}
        />
      )}
    </Page>
  );
}

export function titleOfItem(item) {
  return (item.video && item.video.title) || "An unavailable video";
}

function EditDetails({ collection, onDone }) {
  const [title, setTitle] = useState(collection.title);
  const [description, setDescription] = useState(collection.description || "");
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);
  const submit = async (event) => {
    event.preventDefault();
    setBusy(true);
    try {
      onDone(await api(`/collections/${collection.id}`, { method: "PATCH", body: { title: title.trim(), description: description.trim() } }));
    } catch (err) {
      setError(err);
      setBusy(false);
    }
  };
  return (
    <form onSubmit={submit} aria-label="Edit the collection's details">
      <div class="field">
        <label for="edit-title">Title</label>
        <input id="edit-title" required maxLength={200} value={title} onInput={(e) => setTitle(e.currentTarget.value)} />
      </div>
      <div class="field">
        <label for="edit-description">Description</label>
        <textarea id="edit-description" maxLength={5000} value={description} onInput={(e) => setDescription(e.currentTarget.value)} />
      </div>
      <FormEnd busy={busy} error={error} label="Save" onCancel={() => onDone(null)} />
    </form>
  );
}

/**
 * The items in order. Editors reorder three ways: HTML5 drag and drop (mouse), a drag handle
 * that follows a finger or pen (pointer events: touch browsers do not start HTML5 drags), and
 * Move up / Move down buttons for keyboards and switch access.
 */
function ItemList({ collectionId, items, canEdit, onMove, onRemove, onSaved }) {
  const listRef = useRef(null);
  const [editing, setEditing] = useState(null); // the item whose range or note is open
  const [dragging, setDragging] = useState(null); // index being dragged
  const [target, setTarget] = useState(null); // index it would land at

  // Keep keyboard focus on the moved item's button (or its other one at an end of the list).
  const focusAfter = (itemId) => {
    const active = document.activeElement;
    const wanted = (active && active.dataset && active.dataset.move) || "up";
    setTimeout(() => {
      const row = listRef.current && listRef.current.querySelector(`[data-item="${itemId}"]`);
      if (!row) return;
      let button = row.querySelector(`[data-move="${wanted}"]`);
      if (!button || button.disabled) button = row.querySelector(`[data-move="${wanted === "up" ? "down" : "up"}"]`);
      if (button && !button.disabled) button.focus();
    }, 0);
  };

  /** The index a pointer at clientY would drop at: the first row whose middle is below it. */
  const indexAt = (clientY) => {
    const rows = listRef.current ? [...listRef.current.children] : [];
    for (let i = 0; i < rows.length; i += 1) {
      const box = rows[i].getBoundingClientRect();
      if (clientY < box.top + box.height / 2) return i;
    }
    return rows.length;
  };
  /** A drop position among all rows (0..n) as the dragged item's new index. */
  const landing = (from, position) => (position > from ? position - 1 : position);

  const finish = () => {
    if (dragging != null && target != null) {
      const to = landing(dragging, target);
      if (to !== dragging) onMove(dragging, to);
    }
    setDragging(null);
    setTarget(null);
  };

  // HTML5 drag and drop (desktop mice).
  const onDragStart = (index) => (event) => {
    setDragging(index);
    event.dataTransfer.effectAllowed = "move";
    event.dataTransfer.setData("text/plain", items[index].id);
  };
  const onDragOver = (event) => {
    if (dragging == null) return;
    event.preventDefault();
    event.dataTransfer.dropEffect = "move";
    setTarget(indexAt(event.clientY));
  };
  const onDrop = (event) => {
    event.preventDefault();
    finish();
  };

  // Pointer dragging from the handle (touch and pen; the mouse uses the HTML5 drag above).
  const onHandleDown = (index) => (event) => {
    if (event.pointerType === "mouse") return;
    event.preventDefault();
    try {
      event.currentTarget.setPointerCapture(event.pointerId); // keep the moves coming off the handle
    } catch {
      /* a pointer the browser no longer tracks: the moves still arrive while over the handle */
    }
    setDragging(index);
    setTarget(index);
  };
  const onHandleMove = (event) => {
    if (dragging == null || event.pointerType === "mouse") return;
    setTarget(indexAt(event.clientY));
  };
  const onHandleUp = (event) => {
    if (event.pointerType === "mouse") return;
    finish();
  };

  return (
    <ol ref={listRef} class="list learn-items" aria-labelledby="items-heading" onDragOver={canEdit ? onDragOver : undefined} onDrop={canEdit ? onDrop : undefined}>
      {items.map((item, index) => {
        const titleId = `item-title-${item.id}`;
        const href = item.available ? clipHref(item) : null;
        let cls = "learn-row";
        if (dragging === index) cls += " learn-row-dragging";
        if (target != null && dragging != null && target === index && landing(dragging, target) !== dragging) cls += " learn-drop-before";
        if (target != null && dragging != null && target === items.length && index === items.length - 1 && landing(dragging, target) !== dragging) cls += " learn-drop-after";
        return (
          <li
            key={item.id}
            data-item={item.id}
            class={cls}
            draggable={canEdit && editing !== item.id ? "true" : undefined}
            onDragStart={canEdit && editing !== item.id ? onDragStart(index) : undefined}
            onDragEnd={canEdit ? () => { setDragging(null); setTarget(null); } : undefined}
          >
            <div class="learn-item-main">
              {canEdit && (
                <span
                  class="learn-handle"
                  aria-hidden="true"
                  title="Drag to reorder"
                  onPointerDown={onHandleDown(index)}
                  onPointerMove={onHandleMove}
                  onPointerUp={onHandleUp}
                  onPointerCancel={() => { setDragging(null); setTarget(null); }}
                >
                  ⠿
                </span>
              )}
              <span class="learn-position" aria-hidden="true">
                {index + 1}
              </span>
              <Poster video={item.video} />
              <div class="grow learn-item-text">
                <p id={titleId} class="strong learn-item-title">
                  <span class="visually-hidden">{`${index + 1} of ${items.length}: `}</span>
                  {href ? (
                    <Link href={href} draggable="false">
                      {titleOfItem(item)}
                    </Link>
                  ) : item.available ? (
                    titleOfItem(item)
                  ) : (
                    "No longer available"
                  )}
                </p>
                {item.available && <p class="small muted">{rangeText(item)}</p>}
                {item.note && <p class="small">{item.note}</p>}
              </div>
            </div>
            {canEdit && editing === item.id && (
              <EditItem
                collectionId={collectionId}
                item={item}
                onSaved={(saved) => {
                  onSaved(saved);
                  setEditing(null);
                }}
                onCancel={() => setEditing(null)}
              />
            )}
            {canEdit && editing !== item.id && (
              <div class="row learn-actions learn-row-actions">
                <>
                  <button type="button" class="button-quiet" data-move="up" disabled={index === 0} aria-describedby={titleId} onClick={() => onMove(index, index - 1, focusAfter)}>
                    Move up
                  </button>
                  <button
                    type="button"
                    class="button-quiet"
                    data-move="down"
                    disabled={index === items.length - 1}
                    aria-describedby={titleId}
                    onClick={() => onMove(index, index + 1, focusAfter)}
                  >
                    Move down
                  </button>
                  {item.available && (
                    <button type="button" class="button-quiet" aria-describedby={titleId} onClick={() => setEditing(item.id)}>
                      Edit
                    </button>
                  )}
                  <button type="button" class="button-quiet learn-danger" aria-describedby={titleId} onClick={() => onRemove(item)}>
                    Remove
                  </button>
                </>
              </div>
            )}
          </li>
        );
      })}
    </ol>
  );
}

/** The assignments I made of this collection, with their counts by state. */
function CollectionAssignments({ collectionId, version }) {
  const list = useAsync(
    async (signal) =>
      withCounts((await all("/assignments", { limit: 500 })).filter((a) => a.collection && a.collection.id === collectionId), signal),
    [collectionId, version],
  );
  // An assignment is handed out by a worker: ask again shortly while one is still on its way.
  useEffect(() => {
    if (!list.data || !list.data.some((a) => !a.published_at)) return undefined;
    const timer = setTimeout(list.reload, 2000);
    return () => clearTimeout(timer);
  }, [list.data]);
  if (!list.data || list.data.length === 0) return null;
  return (
    <section aria-labelledby="collection-assignments-heading">
      <h2 id="collection-assignments-heading">Assignments</h2>
      <ul class="list" aria-label="Assignments of this collection">
        {list.data.map((assignment) => (
          <li key={assignment.id}>
            <AssignmentSummary assignment={assignment} />
          </li>
        ))}
      </ul>
    </section>
  );
}

/** Curators put a published collection forward for the whole organisation (GET/POST/DELETE /featured). */
function FeatureToggle({ collection }) {
  const featured = useAsync(
    async (signal) => (await api("/featured", { signal })).items.find((f) => !f.team_id && f.collection && f.collection.id === collection.id) || null,
    [collection.id],
  );
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState(null);
  if (featured.loading && featured.data === undefined) return null;
  const toggle = async () => {
    setBusy(true);
    setError(null);
    try {
      if (featured.data) {
        await api(`/featured/${featured.data.id}`, { method: "DELETE" });
        featured.setData(null);
        toast("No longer featured");
      } else {
        featured.setData(await api("/featured", { method: "POST", body: { collection_id: collection.id }, idempotent: true }));
        toast("Featured for everyone");
      }
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };
  return (
    <>
      <button type="button" class="button-quiet" disabled={busy} onClick={toggle}>
        {featured.data ? "Stop featuring" : "Feature"}
      </button>
      {error && (
        <span class="small field-error" role="alert">
          {error.message}
        </span>
      )}
    </>
  );
}
