// Admin sections beyond people and teams: distribution lists, chat channels (team webhooks),
// API tokens and the deal-attribute catalogue.
import { useRef, useState } from "preact/hooks";
import { all, api } from "../api.js";
import { Empty, ErrorNote, Spinner, ago, useAsync, when, FormEnd } from "../ui.jsx";
import { TeamChecks, copyText, useAction, useConfirm, useTeams, useUsers } from "./admin-kit.jsx";

/* ---------- Distribution lists ---------- */

export function ListsSection({ me }) {
  const lists = useAsync(() => all("/distribution-lists", { limit: 1000 }), []);
  const users = useUsers();
  const teams = useTeams();
  const [openId, setOpenId] = useState(null); // a list's id, "new", or null
  const [dialog, confirm] = useConfirm();
  const owner = (id) => (users.data || []).find((u) => u.id === id);
  return (
    <section aria-labelledby="lists-heading">
      <div class="admin-head">
        <h2 id="lists-heading">Distribution lists</h2>
        <button type="button" onClick={() => setOpenId(openId === "new" ? null : "new")} aria-expanded={openId === "new"}>
          New list
        </button>
      </div>
      <p class="muted small">Lists of people and teams to share to in one go. Private lists are their owner's; organisation lists anyone can share to.</p>
      {openId === "new" && (
        <ListForm
          users={users.data || []}
          teams={teams.data || []}
          onDone={(changed) => {
            setOpenId(null);
            if (changed) lists.reload();
          }}
        />
      )}
      {lists.loading && !lists.data && <Spinner label="Loading lists" />}
      <ErrorNote error={lists.error} onRetry={lists.reload} />
      {lists.data &&
        (lists.data.length ? (
          <ul class="list" aria-label="Distribution lists">
            {lists.data.map((list) => (
              <li key={list.id}>
                <div class="admin-row">
                  <div class="grow admin-row-text">
                    <p class="strong">
                      {list.name} <span class={list.visibility === "organisation" ? "pill" : "pill pill-warn"}>{list.visibility === "organisation" ? "Organisation" : "Private"}</span>
                    </p>
                    <p class="muted small">
                      {list.description ? `${list.description} · ` : ""}
                      {list.owner_id === me.id ? "yours" : `by ${owner(list.owner_id)?.display_name || "someone"}`}
                    </p>
                  </div>
                  <button type="button" class="button-secondary" onClick={() => setOpenId(openId === list.id ? null : list.id)} aria-expanded={openId === list.id} aria-label={`Edit ${list.name}`}>
                    Edit
                  </button>
                </div>
                {openId === list.id && (
                  <ListEditor
                    id={list.id}
                    users={users.data || []}
                    teams={teams.data || []}
                    confirm={confirm}
                    onDone={(changed) => {
                      setOpenId(null);
                      if (changed) lists.reload();
                    }}
                  />
                )}
              </li>
            ))}
          </ul>
        ) : (
          <Empty>No lists yet.</Empty>
        ))}
      {dialog}
    </section>
  );
}

function ListEditor({ id, users, teams, confirm, onDone }) {
  const list = useAsync(() => api(`/distribution-lists/${id}`), [id]);
  const action = useAction();
  if (list.loading && !list.data) return <Spinner label="Opening the list" />;
  if (list.error) return <ErrorNote error={list.error} onRetry={list.reload} />;
  const remove = async () => {
    const ok = await confirm({ title: `Delete ${list.data.name}?`, body: "Shares already sent to it keep their recipients.", action: "Delete list" });
    if (ok && (await action.run(() => api(`/distribution-lists/${id}`, { method: "DELETE" }), "List deleted"))) onDone(true);
  };
  return (
    <>
      <ListForm list={list.data} users={users} teams={teams} onDone={onDone} onDelete={remove} />
      <ErrorNote error={action.error} />
    </>
  );
}

/** People as checkboxes with a filter: lists can be long, so only the matches show. */
function PeoplePicker({ users, value, onChange, id }) {
  const [filter, setFilter] = useState("");
  const needle = filter.trim().toLowerCase();
  const shown = users.filter((u) => u.is_active && (!needle || `${u.display_name} ${u.handle} ${u.email}`.toLowerCase().includes(needle)));
  const toggle = (userId) => onChange(value.includes(userId) ? value.filter((x) => x !== userId) : [...value, userId]);
  return (
    <fieldset class="admin-checks">
      <legend>
        People <span class="muted small">({value.length} chosen)</span>
      </legend>
      <label for={`${id}-filter`} class="visually-hidden">
        Filter people
      </label>
      <input id={`${id}-filter`} type="search" placeholder="Filter people" value={filter} onInput={(e) => setFilter(e.currentTarget.value)} />
      <div class="admin-scroll">
        {shown.map((u) => (
          <label key={u.id} class="check">
            <input type="checkbox" checked={value.includes(u.id)} onChange={() => toggle(u.id)} /> {u.display_name} <span class="muted small">@{u.handle}</span>
          </label>
        ))}
        {!shown.length && <p class="muted small">Nobody matches.</p>}
      </div>
    </fieldset>
  );
}

function ListForm({ list, users, teams, onDone, onDelete }) {
  const [form, setForm] = useState({
    name: list?.name || "",
    description: list?.description || "",
    visibility: list?.visibility || "private",
    user_ids: list?.user_ids || [],
    team_ids: list?.team_ids || [],
  });
  const action = useAction();
  const set = (key) => (e) => setForm({ ...form, [key]: e.currentTarget.value });
  const prefix = list ? `list-${list.id}` : "new-list";
  const submit = async (event) => {
    event.preventDefault();
    const work = list ? () => api(`/distribution-lists/${list.id}`, { method: "PATCH", body: form }) : () => api("/distribution-lists", { method: "POST", body: form, idempotent: true });
    if (await action.run(work, list ? "List saved" : `${form.name} is ready`)) onDone(true);
  };
  return (
    <form class={list ? "admin-form admin-panel" : "card admin-form"} onSubmit={submit} aria-label={list ? `Edit ${list.name}` : "New list"}>
      {!list && <h3>New list</h3>}
      {list && (
        <p class="muted small" role="status">
          Reaches {list.recipient_count} {list.recipient_count === 1 ? "person" : "people"} now.
        </p>
      )}
      <div class="admin-grid">
        <div class="field">
          <label for={`${prefix}-name`}>List name</label>
          <input id={`${prefix}-name`} value={form.name} onInput={set("name")} required maxLength={120} />
        </div>
        <div class="field">
          <label for={`${prefix}-visibility`}>Who can use it</label>
          <select id={`${prefix}-visibility`} value={form.visibility} onChange={set("visibility")}>
            <option value="private">Only its owner (private)</option>
            <option value="organisation">Everyone in the organisation</option>
          </select>
        </div>
      </div>
      <div class="field">
        <label for={`${prefix}-description`}>Description</label>
        <textarea id={`${prefix}-description`} value={form.description} onInput={set("description")} maxLength={2000} rows={2} />
      </div>
      <div class="admin-grid">
        <PeoplePicker id={prefix} users={users} value={form.user_ids} onChange={(user_ids) => setForm({ ...form, user_ids })} />
        <TeamChecks teams={teams} value={form.team_ids} onChange={(team_ids) => setForm({ ...form, team_ids })} legend="Teams" />
      </div>
      <FormEnd busy={action.busy} error={action.error} label={list ? "Save list" : "Create list"} onCancel={() => onDone(false)}>
        {onDelete && (
          <button type="button" class="button-danger admin-push-right" onClick={onDelete}>
            Delete list
          </button>
        )}
      </FormEnd>
    </form>
  );
}

/* ---------- Chat channels ---------- */

const KINDS = { slack: "Slack", teams: "Microsoft Teams" };

export function ChannelsSection() {
  const teams = useTeams();
  const [teamId, setTeamId] = useState("");
  return (
    <section aria-labelledby="channels-heading">
      <h2 id="channels-heading">Chat channels</h2>
      <p class="muted small">When a video is shared to a team, a card with a link to it is also posted to the team's Slack or Microsoft Teams channels.</p>
      <ErrorNote error={teams.error} onRetry={teams.reload} />
      <div class="field admin-inline-field">
        <label for="channels-team">Team</label>
        <select id="channels-team" value={teamId} onChange={(e) => setTeamId(e.currentTarget.value)} disabled={!teams.data}>
          <option value="">Choose a team</option>
          {(teams.data || []).map((t) => (
            <option key={t.id} value={t.id}>
              {t.name}
            </option>
          ))}
        </select>
      </div>
      {teamId && <TeamWebhooks key={teamId} team={(teams.data || []).find((t) => t.id === teamId)} />}
    </section>
  );
}

function TeamWebhooks({ team }) {
  const hooks = useAsync(() => api(`/teams/${team.id}/webhooks`), [team.id]);
  const [form, setForm] = useState({ kind: "slack", url: "" });
  const action = useAction();
  const [dialog, confirm] = useConfirm();
  const add = async (event) => {
    event.preventDefault();
    if (await action.run(() => api(`/teams/${team.id}/webhooks`, { method: "POST", body: form, idempotent: true }), `${KINDS[form.kind]} channel added to ${team.name}`)) {
      setForm({ ...form, url: "" });
      hooks.reload();
    }
  };
  const remove = async (hook) => {
    const ok = await confirm({ title: `Remove this ${KINDS[hook.kind]} channel from ${team.name}?`, body: "Cards not yet posted to it are dropped.", action: "Remove channel" });
    if (ok && (await action.run(() => api(`/teams/${team.id}/webhooks/${hook.id}`, { method: "DELETE" }), "Channel removed"))) hooks.reload();
  };
  const urlProblem = action.error && action.error.code === "webhook_url_invalid";
  return (
    <div>
      {hooks.loading && !hooks.data && <Spinner label="Loading channels" />}
      <ErrorNote error={hooks.error} onRetry={hooks.reload} />
      {hooks.data &&
        (hooks.data.items.length ? (
          <ul class="list" aria-label={`${team.name}'s channels`}>
            {hooks.data.items.map((hook) => (
              <li key={hook.id} class="admin-row">
                <div class="grow admin-row-text">
                  <p class="strong">{KINDS[hook.kind] || hook.kind}</p>
                  <p class="muted small admin-break">
                    {hook.url} · added {ago(hook.created_at)}
                  </p>
                </div>
                <button type="button" class="button-danger" onClick={() => remove(hook)} aria-label={`Remove the ${KINDS[hook.kind]} channel`}>
                  Remove
                </button>
              </li>
            ))}
          </ul>
        ) : (
          <p class="muted">{team.name} posts to no chat channel.</p>
        ))}
      <form class="card admin-form" onSubmit={add} aria-labelledby="add-channel-heading">
        <h3 id="add-channel-heading">Add a channel to {team.name}</h3>
        <div class="admin-grid">
          <div class="field">
            <label for="channel-kind">Kind</label>
            <select id="channel-kind" value={form.kind} onChange={(e) => setForm({ ...form, kind: e.currentTarget.value })}>
              <option value="slack">Slack</option>
              <option value="teams">Microsoft Teams</option>
            </select>
          </div>
          <div class="field">
            <label for="channel-url">Webhook URL</label>
            <input
              id="channel-url"
              type="url"
              inputMode="url"
              value={form.url}
              onInput={(e) => setForm({ ...form, url: e.currentTarget.value })}
              required
              maxLength={2048}
              placeholder="https://"
              aria-describedby="channel-url-hint"
              aria-invalid={urlProblem ? "true" : undefined}
            />
            <small id="channel-url-hint">
              {form.kind === "slack"
                ? "A Slack app's incoming webhook (https://hooks.slack.com/services/…)."
                : "A Teams Workflows webhook, or a classic Teams incoming webhook."}{" "}
              It must be https, on a host this deployment allows.
            </small>
          </div>
        </div>
        <ErrorNote error={action.error} />
        <button type="submit" disabled={action.busy}>
          Add channel
        </button>
      </form>
      {dialog}
    </div>
  );
}

/* ---------- API tokens ---------- */

export function TokensSection({ me }) {
  const tokens = useAsync(() => all("/api-tokens", { limit: 1000 }), []);
  const users = useUsers();
  const [creating, setCreating] = useState(false);
  const [secret, setSecret] = useState(null); // the one response that carries `token`
  const action = useAction();
  const [dialog, confirm] = useConfirm();
  const person = (id) => (users.data || []).find((u) => u.id === id);
  const revoke = async (token) => {
    const ok = await confirm({ title: `Revoke “${token.name}”?`, body: "Integrations using it stop working at once. This cannot be undone.", action: "Revoke token" });
    if (ok && (await action.run(() => api(`/api-tokens/${token.id}`, { method: "DELETE" }), "Token revoked"))) tokens.reload();
  };
  return (
    <section aria-labelledby="tokens-heading">
      <div class="admin-head">
        <h2 id="tokens-heading">API tokens</h2>
        <button type="button" onClick={() => setCreating(!creating)} aria-expanded={creating}>
          New token
        </button>
      </div>
      <p class="muted small">For integrations (CRM, BI, LMS): each token acts as one person, with their rights. The secret is shown once.</p>
      {secret && <NewSecret token={secret} onClose={() => setSecret(null)} />}
      {creating && (
        <TokenForm
          me={me}
          users={users.data || []}
          onDone={(created) => {
            setCreating(false);
            if (created) {
              setSecret(created);
              tokens.reload();
            }
          }}
        />
      )}
      <ErrorNote error={action.error} />
      {tokens.loading && !tokens.data && <Spinner label="Loading tokens" />}
      <ErrorNote error={tokens.error} onRetry={tokens.reload} />
      {tokens.data &&
        (tokens.data.length ? (
          <ul class="list" aria-label="API tokens">
            {[...tokens.data].sort((a, b) => Boolean(a.revoked_at) - Boolean(b.revoked_at)).map((token) => {
              const expired = token.expires_at && new Date(token.expires_at) < new Date();
              return (
                <li key={token.id} class="admin-row">
                  <div class="grow admin-row-text">
                    <p class="strong">
                      {token.name} {token.revoked_at ? <span class="pill pill-danger">Revoked</span> : expired ? <span class="pill pill-warn">Expired</span> : <span class="pill pill-ok">Active</span>}
                    </p>
                    <p class="muted small">
                      <code>{token.prefix}…</code> · acts as {person(token.user_id)?.display_name || "a former member"} · made {ago(token.created_at)}
                    </p>
                    <p class="muted small">
                      {token.last_used_at ? `Last used ${ago(token.last_used_at)}` : "Never used"}
                      {token.expires_at && ` · ${expired ? "expired" : "expires"} ${when(token.expires_at)}`}
                      {token.revoked_at && ` · revoked ${when(token.revoked_at)}`}
                    </p>
                  </div>
                  {!token.revoked_at && (
                    <button type="button" class="button-danger" onClick={() => revoke(token)} disabled={action.busy} aria-label={`Revoke ${token.name}`}>
                      Revoke
                    </button>
                  )}
                </li>
              );
            })}
          </ul>
        ) : (
          <Empty>No API tokens yet.</Empty>
        ))}
      {dialog}
    </section>
  );
}

function TokenForm({ me, users, onDone }) {
  const [form, setForm] = useState({ name: "", user_id: me.id, expires: "" });
  const action = useAction();
  const submit = async (event) => {
    event.preventDefault();
    const body = { name: form.name, user_id: form.user_id || null };
    // A date picks the end of that day in the admin's own time.
    if (form.expires) body.expires_at = new Date(`${form.expires}T23:59:59`).toISOString();
    const created = await action.run(() => api("/api-tokens", { method: "POST", body, idempotent: true }));
    if (created) onDone(created);
  };
  return (
    <form class="card admin-form" onSubmit={submit} aria-labelledby="new-token-heading">
      <h3 id="new-token-heading">New API token</h3>
      <div class="admin-grid">
        <div class="field">
          <label for="token-name">Token name</label>
          <input id="token-name" value={form.name} onInput={(e) => setForm({ ...form, name: e.currentTarget.value })} required maxLength={120} placeholder="Salesforce sync" />
        </div>
        <div class="field">
          <label for="token-user">Acts as</label>
          <select id="token-user" value={form.user_id} onChange={(e) => setForm({ ...form, user_id: e.currentTarget.value })}>
            {users
              .filter((u) => u.is_active)
              .map((u) => (
                <option key={u.id} value={u.id}>
                  {u.display_name} (@{u.handle}){u.id === me.id ? " – you" : ""}
                </option>
              ))}
          </select>
        </div>
        <div class="field">
          <label for="token-expires">Expires on (optional)</label>
          <input id="token-expires" type="date" value={form.expires} min={new Date().toISOString().slice(0, 10)} onInput={(e) => setForm({ ...form, expires: e.currentTarget.value })} />
        </div>
      </div>
      <FormEnd busy={action.busy} error={action.error} label="Create token" onCancel={() => onDone(null)} />
    </form>
  );
}

function NewSecret({ token, onClose }) {
  const input = useRef(null);
  const [copied, setCopied] = useState(null);
  const copy = async () => setCopied(await copyText(token.token, input.current));
  return (
    <div class="card admin-secret" role="region" aria-labelledby="secret-heading">
      <h3 id="secret-heading">“{token.name}” is ready: copy it now</h3>
      <p>It is shown only this once: store it in the integration's vault. If it is lost, revoke the token and make another.</p>
      <label for="token-secret" class="strong">
        Token secret
      </label>
      <div class="row">
        <input id="token-secret" ref={input} class="grow admin-code" readOnly value={token.token} onFocus={(e) => e.currentTarget.select()} />
        <button type="button" onClick={copy}>
          Copy secret
        </button>
      </div>
      <p class="small" role="status">
        {copied === true ? "Copied to the clipboard." : copied === false ? "Copying was refused: the secret is selected, copy it with your keyboard." : ""}
      </p>
      <button type="button" class="button-secondary" onClick={onClose}>
        I stored it
      </button>
    </div>
  );
}

/* ---------- Attribute catalogue ---------- */

const TYPES = [
  ["single_choice", "One choice"],
  ["multiple_choice", "Several choices"],
  ["number", "Number"],
  ["text", "Text"],
  ["date", "Date"],
];
const typeName = (type) => (TYPES.find(([value]) => value === type) || [type, type])[1];

export function AttributesSection() {
  const catalogue = useAsync(() => api("/attributes"), []);
  const [openName, setOpenName] = useState(null); // an attribute's name, "+new", or null
  const action = useAction();
  const [dialog, confirm] = useConfirm();
  const setStrict = async (strict) => {
    if (await action.run(() => api("/attributes", { method: "PUT", body: { strict } }), strict ? "Only catalogue attributes are accepted now" : "Other attributes are accepted now")) catalogue.reload();
  };
  const remove = async (attribute) => {
    const ok = await confirm({ title: `Remove “${attribute.label}”?`, body: "Values already stored on videos and deals are kept as they are.", action: "Remove attribute" });
    if (ok && (await action.run(() => api(`/attributes/${encodeURIComponent(attribute.name)}`, { method: "DELETE" }), "Attribute removed"))) catalogue.reload();
  };
  const items = catalogue.data ? [...catalogue.data.items].sort((a, b) => (a.position ?? 0) - (b.position ?? 0)) : [];
  return (
    <section aria-labelledby="attributes-heading">
      <div class="admin-head">
        <h2 id="attributes-heading">Deal attributes</h2>
        <button type="button" onClick={() => setOpenName(openName === "+new" ? null : "+new")} aria-expanded={openName === "+new"}>
          New attribute
        </button>
      </div>
      <p class="muted small">What reps tag videos and deals with (stage, industry, competitors…), used by search, top clips and "for this deal".</p>
      {catalogue.loading && !catalogue.data && <Spinner label="Loading the catalogue" />}
      <ErrorNote error={catalogue.error} onRetry={catalogue.reload} />
      <ErrorNote error={action.error} />
      {catalogue.data && (
        <>
          <label class="check admin-switch">
            <input type="checkbox" role="switch" checked={catalogue.data.strict} onChange={(e) => setStrict(e.currentTarget.checked)} disabled={action.busy} />
            Strict catalogue: refuse attributes that are not listed here
          </label>
          {openName === "+new" && (
            <AttributeForm
              onDone={(changed) => {
                setOpenName(null);
                if (changed) catalogue.reload();
              }}
            />
          )}
          {items.length ? (
            <ul class="list" aria-label="Attributes">
              {items.map((attribute) => (
                <li key={attribute.name}>
                  <div class="admin-row">
                    <div class="grow admin-row-text">
                      <p class="strong">
                        {attribute.label} <span class="muted small">{attribute.name}</span>
                      </p>
                      <p class="muted small">
                        {typeName(attribute.type)}
                        {attribute.choices?.length ? ` · ${attribute.choices.length} ${attribute.choices.length === 1 ? "choice" : "choices"}` : ""}
                        {attribute.choices_open ? " · open to new values" : ""}
                        {attribute.bands?.length ? ` · ${attribute.bands.length} bands` : ""}
                      </p>
                    </div>
                    <div class="row">
                      <button type="button" class="button-secondary" onClick={() => setOpenName(openName === attribute.name ? null : attribute.name)} aria-expanded={openName === attribute.name} aria-label={`Edit ${attribute.label}`}>
                        Edit
                      </button>
                      <button type="button" class="button-danger" onClick={() => remove(attribute)} aria-label={`Remove ${attribute.label}`}>
                        Remove
                      </button>
                    </div>
                  </div>
                  {openName === attribute.name && (
                    <AttributeForm
                      attribute={attribute}
                      onDone={(changed) => {
                        setOpenName(null);
                        if (changed) catalogue.reload();
                      }}
                    />
                  )}
                </li>
              ))}
            </ul>
          ) : (
            <Empty>No attributes yet.</Empty>
          )}
        </>
      )}
      {dialog}
    </section>
  );
}

/** Bands as lines "label, min, max" (either end may be empty: open). */
const bandsToText = (bands) => (bands || []).map((b) => `${b.label}, ${b.min ?? ""}, ${b.max ?? ""}`).join("\n");
function textToBands(text) {
  return text
    .split("\n")
    .map((line) => line.trim())
    .filter(Boolean)
    .map((line) => {
      const [label, min, max] = line.split(",").map((part) => (part || "").trim());
      const num = (value) => (value === "" || value === undefined ? null : Number(value));
      return { label, min: num(min), max: num(max) };
    });
}

function AttributeForm({ attribute, onDone }) {
  const [form, setForm] = useState({
    name: attribute?.name || "",
    label: attribute?.label || "",
    type: attribute?.type || "single_choice",
    choices: (attribute?.choices || []).join("\n"),
    choices_open: Boolean(attribute?.choices_open),
    bands: bandsToText(attribute?.bands),
    position: attribute?.position ?? "",
  });
  const action = useAction();
  const set = (key) => (e) => setForm({ ...form, [key]: e.currentTarget.value });
  const prefix = attribute ? `attr-${attribute.name}` : "new-attr";
  const choiceType = form.type === "single_choice" || form.type === "multiple_choice";
  const submit = async (event) => {
    event.preventDefault();
    const body = { label: form.label, type: form.type };
    if (choiceType) {
      body.choices = form.choices.split("\n").map((c) => c.trim()).filter(Boolean);
      body.choices_open = form.choices_open;
    }
    if (form.type === "number") body.bands = textToBands(form.bands);
    if (form.position !== "") body.position = Number(form.position);
    const name = attribute ? attribute.name : form.name.trim();
    if (await action.run(() => api(`/attributes/${encodeURIComponent(name)}`, { method: "PUT", body }), attribute ? "Attribute saved" : `${form.label} added`)) onDone(true);
  };
  return (
    <form class={attribute ? "admin-form admin-panel" : "card admin-form"} onSubmit={submit} aria-label={attribute ? `Edit ${attribute.label}` : "New attribute"}>
      {!attribute && <h3>New attribute</h3>}
      <div class="admin-grid">
        {!attribute && (
          <div class="field">
            <label for={`${prefix}-name`}>Key</label>
            <input id={`${prefix}-name`} value={form.name} onInput={set("name")} required pattern="[a-z][a-z0-9_]*" maxLength={64} autocapitalize="none" aria-describedby={`${prefix}-name-hint`} />
            <small id={`${prefix}-name-hint`}>Lower-case letters, digits and underscores, from a letter (e.g. deal_size). It cannot change later.</small>
          </div>
        )}
        <div class="field">
          <label for={`${prefix}-label`}>Label</label>
          <input id={`${prefix}-label`} value={form.label} onInput={set("label")} required maxLength={120} />
        </div>
        <div class="field">
          <label for={`${prefix}-type`}>Type</label>
          <select id={`${prefix}-type`} value={form.type} onChange={set("type")}>
            {TYPES.map(([value, name]) => (
              <option key={value} value={value}>
                {name}
              </option>
            ))}
          </select>
        </div>
        <div class="field">
          <label for={`${prefix}-position`}>Position (optional)</label>
          <input id={`${prefix}-position`} type="number" min="0" max="10000" value={form.position} onInput={set("position")} />
        </div>
      </div>
      {choiceType && (
        <>
          <div class="field">
            <label for={`${prefix}-choices`}>Choices, one a line</label>
            <textarea id={`${prefix}-choices`} value={form.choices} onInput={set("choices")} rows={5} />
          </div>
          <label class="check">
            <input type="checkbox" checked={form.choices_open} onChange={(e) => setForm({ ...form, choices_open: e.currentTarget.checked })} /> Open: accept any value and learn it (competitors, products)
          </label>
        </>
      )}
      {form.type === "number" && (
        <div class="field">
          <label for={`${prefix}-bands`}>Bands, one a line: label, min, max</label>
          <textarea id={`${prefix}-bands`} value={form.bands} onInput={set("bands")} rows={4} placeholder={"Small, , 10000\n10k-50k, 10000, 50000\nLarge, 50000, "} aria-describedby={`${prefix}-bands-hint`} />
          <small id={`${prefix}-bands-hint`}>Min is included, max excluded; leave one empty for an open end.</small>
        </div>
      )}
      {attribute && <p class="muted small">Values already stored are kept as they are: changing the type or dropping a choice rewrites nothing.</p>}
      <FormEnd busy={action.busy} error={action.error} label={attribute ? "Save attribute" : "Add attribute"} onCancel={() => onDone(false)} />
    </form>
  );
}
