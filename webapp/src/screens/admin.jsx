// Admin: the organisation's people (accounts and invitations) and teams here; distribution
// lists, chat channels, API tokens and the attribute catalogue in admin-more.jsx. Sections are
// tabs as links (/admin/people ...) so each has an address and Back works.
import { useEffect, useRef, useState } from "preact/hooks";
import { all, api } from "../api.js";
import { Link } from "../router.jsx";
import { Empty, ErrorNote, Page, Spinner, ago, useAsync, when, FormEnd } from "../ui.jsx";
import { ROLES, TeamChecks, roleName, teamTree, useAction, useConfirm, useTeams, useUsers } from "./admin-kit.jsx";
import { AttributesSection, ChannelsSection, ListsSection, TokensSection } from "./admin-more.jsx";
import "./admin.css";

const SECTIONS = [
  ["people", "People"],
  ["teams", "Teams"],
  ["lists", "Lists"],
  ["channels", "Channels"],
  ["tokens", "API tokens"],
  ["attributes", "Attributes"],
];

export function Admin({ section = "people", me }) {
  const current = SECTIONS.find(([key]) => key === section);
  const tabs = useRef(null);
  // On a phone the tabs scroll sideways: keep the current one in sight.
  useEffect(() => {
    const active = tabs.current && tabs.current.querySelector('[aria-current="page"]');
    if (active) tabs.current.scrollLeft = Math.max(0, active.offsetLeft - tabs.current.offsetLeft - 16);
  }, [section]);
  return (
    <Page title="Admin" wide>
      <nav aria-label="Admin sections" ref={tabs} class="tabs admin-tabs">
        {SECTIONS.map(([key, name]) => (
          <Link key={key} href={`/admin/${key}`} aria-current={key === section ? "page" : undefined}>
            {name}
          </Link>
        ))}
      </nav>
      {!current && (
        <p>
          No such section. <Link href="/admin/people">Go to People</Link>
        </p>
      )}
      {section === "people" && <PeopleSection me={me} />}
      {section === "teams" && <TeamsSection />}
      {section === "lists" && <ListsSection me={me} />}
      {section === "channels" && <ChannelsSection />}
      {section === "tokens" && <TokensSection me={me} />}
      {section === "attributes" && <AttributesSection />}
    </Page>
  );
}

/* ---------- People ---------- */

function PeopleSection({ me }) {
  const [q, setQ] = useState("");
  const [role, setRole] = useState("");
  const [active, setActive] = useState("true");
  const [open, setOpen] = useState(null); // "invite" | "create" | null
  const [invites, setInvites] = useState(0); // bumped to reload the invitations after sending one
  const users = useAsync(
    () => all("/users", { query: { q: q.trim() || undefined, role: role || undefined, is_active: active || undefined }, limit: 500 }),
    [q, role, active],
  );
  const teams = useTeams();
  const everyone = useUsers();
  const [dialog, confirm] = useConfirm();
  const refresh = () => {
    users.reload();
    everyone.reload();
  };
  return (
    <section aria-labelledby="people-heading">
      <div class="admin-head">
        <h2 id="people-heading">People</h2>
        <div class="row">
          <button type="button" onClick={() => setOpen(open === "invite" ? null : "invite")} aria-expanded={open === "invite"}>
            Invite someone
          </button>
          <button type="button" class="button-secondary" onClick={() => setOpen(open === "create" ? null : "create")} aria-expanded={open === "create"}>
            Create an account
          </button>
        </div>
      </div>
      {open === "invite" && (
        <InviteForm
          teams={teams.data || []}
          onDone={(sent) => {
            setOpen(null);
            if (sent) setInvites(invites + 1);
          }}
        />
      )}
      {open === "create" && (
        <CreateUserForm
          users={everyone.data || []}
          onDone={() => {
            setOpen(null);
            refresh();
          }}
        />
      )}
      <div class="admin-filters">
        <div class="field">
          <label for="people-q">Search people</label>
          <input id="people-q" type="search" value={q} onInput={(e) => setQ(e.currentTarget.value)} placeholder="Name, handle or email" autocomplete="off" />
        </div>
        <div class="field">
          <label for="people-role">Role</label>
          <select id="people-role" value={role} onChange={(e) => setRole(e.currentTarget.value)}>
            <option value="">Any role</option>
            {ROLES.map(([value, name]) => (
              <option key={value} value={value}>
                {name}
              </option>
            ))}
          </select>
        </div>
        <div class="field">
          <label for="people-status">Status</label>
          <select id="people-status" value={active} onChange={(e) => setActive(e.currentTarget.value)}>
            <option value="true">Active</option>
            <option value="false">Deactivated</option>
            <option value="">Everyone</option>
          </select>
        </div>
      </div>
      {users.loading && !users.data && <Spinner label="Loading people" />}
      <ErrorNote error={users.error} onRetry={users.reload} />
      {users.data &&
        (users.data.length ? (
          <ul class="list" aria-label="People">
            {users.data.map((user) => (
              <PersonRow key={user.id} user={user} me={me} users={everyone.data || []} confirm={confirm} onChanged={refresh} />
            ))}
          </ul>
        ) : (
          <Empty>Nobody matches.</Empty>
        ))}
      <Invitations confirm={confirm} version={invites} />
      {dialog}
    </section>
  );
}

function PersonRow({ user, me, users, confirm, onChanged }) {
  const [editing, setEditing] = useState(false);
  const action = useAction();
  const name = user.display_name || user.handle;
  const setActive = async (isActive) => {
    if (!isActive) {
      const ok = await confirm({
        title: `Deactivate ${name}?`,
        body: "Their sessions and API tokens end at once and their phones are forgotten. Their videos stay. You can reactivate them later.",
        action: "Deactivate",
      });
      if (!ok) return;
    }
    if (await action.run(() => api(`/users/${user.id}`, { method: "PATCH", body: { is_active: isActive } }), isActive ? `${name} is active again` : `${name} is deactivated`)) onChanged();
  };
  const remove = async () => {
    const ok = await confirm({
      title: `Delete ${name}'s account?`,
      body: "Their sign-ins, devices, inbox and memberships are deleted and their name is erased; their videos stay under “Former member”. This cannot be undone.",
      action: "Delete account",
    });
    if (ok && (await action.run(() => api(`/users/${user.id}`, { method: "DELETE" }), `${name}'s account is deleted`))) onChanged();
  };
  return (
    <li>
      <div class="admin-row">
        <div class="grow admin-row-text">
          <p class="strong">
            {name} {!user.is_active && <span class="pill pill-warn">Deactivated</span>}
          </p>
          <p class="muted small">
            @{user.handle} · {user.email}
          </p>
          <p class="small">
            <span class="pill">{roleName(user.role)}</span> {user.teams && user.teams.length > 0 && <span class="muted">{user.teams.map((t) => t.name + (t.role === "lead" ? " (lead)" : "")).join(", ")}</span>}
          </p>
        </div>
        <div class="row">
          <button type="button" class="button-secondary" onClick={() => setEditing(!editing)} aria-expanded={editing} aria-label={`Edit ${name}`}>
            Edit
          </button>
          {user.id !== me.id &&
            (user.is_active ? (
              <button type="button" class="button-danger" onClick={() => setActive(false)} disabled={action.busy} aria-label={`Deactivate ${name}`}>
                Deactivate
              </button>
            ) : (
              <button type="button" class="button-secondary" onClick={() => setActive(true)} disabled={action.busy} aria-label={`Reactivate ${name}`}>
                Reactivate
              </button>
            ))}
        </div>
      </div>
      <ErrorNote error={action.error} />
      {editing && (
        <EditUserForm
          user={user}
          users={users}
          canDelete={user.id !== me.id}
          onDelete={remove}
          onDone={(changed) => {
            setEditing(false);
            if (changed) onChanged();
          }}
        />
      )}
    </li>
  );
}

function ManagerSelect({ id, value, onChange, users, exclude }) {
  return (
    <select id={id} value={value || ""} onChange={(e) => onChange(e.currentTarget.value)}>
      <option value="">No manager</option>
      {users
        .filter((u) => u.is_active && u.id !== exclude)
        .map((u) => (
          <option key={u.id} value={u.id}>
            {u.display_name} (@{u.handle})
          </option>
        ))}
    </select>
  );
}

function EditUserForm({ user, users, canDelete, onDelete, onDone }) {
  const [form, setForm] = useState({ display_name: user.display_name, handle: user.handle, role: user.role, manager_id: user.manager_id || "", time_zone: user.time_zone });
  const action = useAction();
  const set = (key) => (e) => setForm({ ...form, [key]: e.currentTarget.value });
  const prefix = `edit-${user.id}`;
  const submit = async (event) => {
    event.preventDefault();
    const body = { ...form, manager_id: form.manager_id || null };
    if (await action.run(() => api(`/users/${user.id}`, { method: "PATCH", body }), "Saved")) onDone(true);
  };
  return (
    <form class="admin-form" onSubmit={submit} aria-label={`Edit ${user.display_name}`}>
      <div class="admin-grid">
        <div class="field">
          <label for={`${prefix}-name`}>Display name</label>
          <input id={`${prefix}-name`} value={form.display_name} onInput={set("display_name")} required maxLength={120} />
        </div>
        <div class="field">
          <label for={`${prefix}-handle`}>Handle</label>
          <input id={`${prefix}-handle`} value={form.handle} onInput={set("handle")} required maxLength={32} autocapitalize="none" />
        </div>
        <div class="field">
          <label for={`${prefix}-role`}>Role</label>
          <select id={`${prefix}-role`} value={form.role} onChange={set("role")}>
            {ROLES.map(([value, name]) => (
              <option key={value} value={value}>
                {name}
              </option>
            ))}
          </select>
        </div>
        <div class="field">
          <label for={`${prefix}-manager`}>Manager</label>
          <ManagerSelect id={`${prefix}-manager`} value={form.manager_id} onChange={(v) => setForm({ ...form, manager_id: v })} users={users} exclude={user.id} />
        </div>
        <div class="field">
          <label for={`${prefix}-tz`}>Time zone</label>
          <input id={`${prefix}-tz`} value={form.time_zone} onInput={set("time_zone")} maxLength={64} placeholder="Europe/London" />
        </div>
      </div>
      <FormEnd busy={action.busy} error={action.error} label="Save changes" onCancel={() => onDone(false)}>
        {canDelete && (
          <button type="button" class="button-danger admin-push-right" onClick={onDelete}>
            Delete account
          </button>
        )}
      </FormEnd>
    </form>
  );
}

function CreateUserForm({ users, onDone }) {
  const [form, setForm] = useState({ email: "", display_name: "", handle: "", role: "rep", password: "", manager_id: "" });
  const action = useAction();
  const set = (key) => (e) => setForm({ ...form, [key]: e.currentTarget.value });
  const submit = async (event) => {
    event.preventDefault();
    const body = { ...form, manager_id: form.manager_id || null, password: form.password || null };
    if (await action.run(() => api("/users", { method: "POST", body, idempotent: true }), `${form.display_name}'s account is ready`)) onDone();
  };
  return (
    <form class="card admin-form" onSubmit={submit} aria-labelledby="create-user-heading">
      <h3 id="create-user-heading">Create an account</h3>
      <p class="muted small">For someone who signs in with a password you hand over, or through the identity provider. Inviting by email is usually better.</p>
      <div class="admin-grid">
        <div class="field">
          <label for="new-user-email">Email</label>
          <input id="new-user-email" type="email" value={form.email} onInput={set("email")} required autocomplete="off" />
        </div>
        <div class="field">
          <label for="new-user-name">Display name</label>
          <input id="new-user-name" value={form.display_name} onInput={set("display_name")} required maxLength={120} />
        </div>
        <div class="field">
          <label for="new-user-handle">Handle</label>
          <input id="new-user-handle" value={form.handle} onInput={set("handle")} required maxLength={32} autocapitalize="none" />
        </div>
        <div class="field">
          <label for="new-user-role">Role</label>
          <select id="new-user-role" value={form.role} onChange={set("role")}>
            {ROLES.map(([value, name]) => (
              <option key={value} value={value}>
                {name}
              </option>
            ))}
          </select>
        </div>
        <div class="field">
          <label for="new-user-manager">Manager</label>
          <ManagerSelect id="new-user-manager" value={form.manager_id} onChange={(v) => setForm({ ...form, manager_id: v })} users={users} />
        </div>
        <div class="field">
          <label for="new-user-password">Password (optional)</label>
          <input id="new-user-password" type="password" value={form.password} onInput={set("password")} minLength={10} autocomplete="new-password" aria-describedby="new-user-password-hint" />
          <small id="new-user-password-hint">At least 10 characters. Leave empty for single sign-on only.</small>
        </div>
      </div>
      <FormEnd busy={action.busy} error={action.error} label="Create account" onCancel={onDone} />
    </form>
  );
}

function InviteForm({ teams, onDone }) {
  const [form, setForm] = useState({ email: "", role: "rep", display_name: "", team_ids: [] });
  const action = useAction();
  const set = (key) => (e) => setForm({ ...form, [key]: e.currentTarget.value });
  const submit = async (event) => {
    event.preventDefault();
    const body = { ...form, display_name: form.display_name.trim() || null };
    const done = await action.run(() => api("/invitations", { method: "POST", body, idempotent: true }), `Invitation sent to ${form.email}`);
    if (done) onDone(true);
  };
  const hint = action.error && { email_taken: "This address already has an account.", invitation_pending: "An invitation to this address is open: resend or revoke it below." }[action.error.code];
  return (
    <form class="card admin-form" onSubmit={submit} aria-labelledby="invite-heading">
      <h3 id="invite-heading">Invite someone</h3>
      <div class="admin-grid">
        <div class="field">
          <label for="invite-email">Email</label>
          <input id="invite-email" type="email" value={form.email} onInput={set("email")} required autocomplete="off" />
        </div>
        <div class="field">
          <label for="invite-name">Name (optional)</label>
          <input id="invite-name" value={form.display_name} onInput={set("display_name")} maxLength={120} />
        </div>
        <div class="field">
          <label for="invite-role">Role</label>
          <select id="invite-role" value={form.role} onChange={set("role")}>
            {ROLES.map(([value, name]) => (
              <option key={value} value={value}>
                {name}
              </option>
            ))}
          </select>
        </div>
      </div>
      <TeamChecks teams={teams} value={form.team_ids} onChange={(team_ids) => setForm({ ...form, team_ids })} legend="Teams they join" />
      <FormEnd busy={action.busy} label="Send invitation" onCancel={() => onDone(false)} error={action.error && (hint ? { message: hint } : action.error)} />
    </form>
  );
}

function Invitations({ confirm, version }) {
  const [status, setStatus] = useState("pending");
  const list = useAsync(() => all("/invitations", { query: { status }, limit: 500 }), [status, version]);
  const action = useAction();
  // A new invitation made above shows here without a reload.
  const resend = async (invitation) => {
    if (await action.run(() => api(`/invitations/${invitation.id}/resend`, { method: "POST", idempotent: true }), `A new link went to ${invitation.email}`)) list.reload();
  };
  const revoke = async (invitation) => {
    const ok = await confirm({ title: `Revoke the invitation to ${invitation.email}?`, body: "The link stops working at once. You can invite them again later.", action: "Revoke" });
    if (ok && (await action.run(() => api(`/invitations/${invitation.id}`, { method: "DELETE" }), "Invitation revoked"))) list.reload();
  };
  return (
    <section aria-labelledby="invitations-heading" class="admin-sub">
      <div class="admin-head">
        <h3 id="invitations-heading">Invitations</h3>
        <div class="field admin-inline-field">
          <label for="invitation-status">Invitations to show</label>
          <select id="invitation-status" value={status} onChange={(e) => setStatus(e.currentTarget.value)}>
            <option value="pending">Pending</option>
            <option value="accepted">Accepted</option>
            <option value="expired">Expired</option>
            <option value="revoked">Revoked</option>
          </select>
        </div>
      </div>
      <ErrorNote error={action.error || list.error} />
      {list.loading && !list.data && <Spinner label="Loading invitations" />}
      {list.data &&
        (list.data.length ? (
          <ul class="list" aria-label="Invitations">
            {list.data.map((inv) => (
              <li key={inv.id} class="admin-row">
                <div class="grow admin-row-text">
                  <p class="strong">{inv.display_name || inv.email}</p>
                  <p class="muted small">
                    {inv.email} · {roleName(inv.role)} · sent {ago(inv.sent_at)}
                    {inv.status === "pending" && ` · expires ${when(inv.expires_at)}`}
                  </p>
                </div>
                {(inv.status === "pending" || inv.status === "expired") && (
                  <div class="row">
                    <button type="button" class="button-secondary" onClick={() => resend(inv)} disabled={action.busy} aria-label={`Resend the invitation to ${inv.email}`}>
                      Resend
                    </button>
                    {inv.status === "pending" && (
                      <button type="button" class="button-danger" onClick={() => revoke(inv)} disabled={action.busy} aria-label={`Revoke the invitation to ${inv.email}`}>
                        Revoke
                      </button>
                    )}
                  </div>
                )}
              </li>
            ))}
          </ul>
        ) : (
          <Empty>No {status} invitations.</Empty>
        ))}
    </section>
  );
}

/* ---------- Teams ---------- */

function TeamsSection() {
  const teams = useTeams();
  const users = useUsers();
  const [creating, setCreating] = useState(false);
  const [openId, setOpenId] = useState(null);
  const [dialog, confirm] = useConfirm();
  return (
    <section aria-labelledby="teams-heading">
      <div class="admin-head">
        <h2 id="teams-heading">Teams</h2>
        <button type="button" onClick={() => setCreating(!creating)} aria-expanded={creating}>
          New team
        </button>
      </div>
      {creating && (
        <TeamForm
          teams={teams.data || []}
          onDone={(changed) => {
            setCreating(false);
            if (changed) teams.reload();
          }}
        />
      )}
      {teams.loading && !teams.data && <Spinner label="Loading teams" />}
      <ErrorNote error={teams.error} onRetry={teams.reload} />
      {teams.data &&
        (teams.data.length ? (
          <ul class="list" aria-label="Teams">
            {teamTree(teams.data).map(({ team, depth }) => (
              <li key={team.id} class={depth ? `admin-depth admin-depth-${Math.min(depth, 3)}` : undefined}>
                <div class="admin-row">
                  <div class="grow admin-row-text">
                    <p class="strong">{team.name}</p>
                    <p class="muted small">
                      {team.handle ? `@${team.handle}` : ""}
                      {team.description ? ` · ${team.description}` : ""}
                    </p>
                  </div>
                  <button type="button" class="button-secondary" onClick={() => setOpenId(openId === team.id ? null : team.id)} aria-expanded={openId === team.id} aria-label={`Manage ${team.name}`}>
                    Manage
                  </button>
                </div>
                {openId === team.id && (
                  <TeamPanel
                    team={team}
                    teams={teams.data}
                    users={users.data || []}
                    confirm={confirm}
                    onChanged={() => teams.reload()}
                    onDeleted={() => {
                      setOpenId(null);
                      teams.reload();
                    }}
                  />
                )}
              </li>
            ))}
          </ul>
        ) : (
          <Empty>No teams yet.</Empty>
        ))}
      {dialog}
    </section>
  );
}

function TeamForm({ team, teams, onDone }) {
  const [form, setForm] = useState({ name: team?.name || "", handle: team?.handle || "", description: team?.description || "", parent_id: team?.parent_id || "" });
  const action = useAction();
  const set = (key) => (e) => setForm({ ...form, [key]: e.currentTarget.value });
  const prefix = team ? `team-${team.id}` : "new-team";
  const submit = async (event) => {
    event.preventDefault();
    const body = { name: form.name, description: form.description, parent_id: form.parent_id || null };
    if (form.handle.trim()) body.handle = form.handle.trim();
    const work = team ? () => api(`/teams/${team.id}`, { method: "PATCH", body }) : () => api("/teams", { method: "POST", body, idempotent: true });
    if (await action.run(work, team ? "Team saved" : `${form.name} is ready`)) onDone(true);
  };
  // A team cannot sit inside itself (the API refuses cycles further down too).
  const parents = teams.filter((t) => !team || t.id !== team.id);
  return (
    <form class={team ? "admin-form" : "card admin-form"} onSubmit={submit} aria-label={team ? `Edit ${team.name}` : "New team"}>
      {!team && <h3>New team</h3>}
      <div class="admin-grid">
        <div class="field">
          <label for={`${prefix}-name`}>Team name</label>
          <input id={`${prefix}-name`} value={form.name} onInput={set("name")} required maxLength={120} />
        </div>
        <div class="field">
          <label for={`${prefix}-handle`}>Handle (optional)</label>
          <input id={`${prefix}-handle`} value={form.handle} onInput={set("handle")} maxLength={32} autocapitalize="none" aria-describedby={`${prefix}-handle-hint`} />
          <small id={`${prefix}-handle-hint`}>For @mentions; made from the name when empty.</small>
        </div>
        <div class="field">
          <label for={`${prefix}-parent`}>Inside team</label>
          <select id={`${prefix}-parent`} value={form.parent_id} onChange={set("parent_id")}>
            <option value="">None (top level)</option>
            {parents.map((t) => (
              <option key={t.id} value={t.id}>
                {t.name}
              </option>
            ))}
          </select>
        </div>
      </div>
      <div class="field">
        <label for={`${prefix}-description`}>Description</label>
        <textarea id={`${prefix}-description`} value={form.description} onInput={set("description")} maxLength={2000} rows={2} />
      </div>
      <FormEnd busy={action.busy} error={action.error} label={team ? "Save team" : "Create team"} onCancel={() => onDone(false)} />
    </form>
  );
}

function TeamPanel({ team, teams, users, confirm, onChanged, onDeleted }) {
  const members = useAsync(() => all(`/teams/${team.id}/members`, { limit: 2000 }), [team.id]);
  const [editing, setEditing] = useState(false);
  const [adding, setAdding] = useState({ user_id: "", role: "member" });
  const action = useAction();
  const memberIds = new Set((members.data || []).map((m) => m.user.id));
  const setRole = async (member, role) => {
    if (await action.run(() => api(`/teams/${team.id}/members/${member.user.id}`, { method: "PUT", body: { role } }), `${member.user.display_name} is now ${role === "lead" ? "a lead" : "a member"}`)) members.reload();
  };
  const add = async (event) => {
    event.preventDefault();
    if (!adding.user_id) return;
    const person = users.find((u) => u.id === adding.user_id);
    if (await action.run(() => api(`/teams/${team.id}/members/${adding.user_id}`, { method: "PUT", body: { role: adding.role } }), `${person?.display_name || "They"} joined ${team.name}`)) {
      setAdding({ user_id: "", role: "member" });
      members.reload();
    }
  };
  const removeMember = async (member) => {
    const ok = await confirm({ title: `Remove ${member.user.display_name} from ${team.name}?`, body: "They stop receiving what is shared to this team.", action: "Remove" });
    if (ok && (await action.run(() => api(`/teams/${team.id}/members/${member.user.id}`, { method: "DELETE" }), "Removed"))) members.reload();
  };
  const removeTeam = async () => {
    const ok = await confirm({ title: `Delete ${team.name}?`, body: "Its memberships and chat channels go with it. Shares already sent keep their recipients.", action: "Delete team" });
    if (ok && (await action.run(() => api(`/teams/${team.id}`, { method: "DELETE" }), `${team.name} is deleted`))) onDeleted();
  };
  return (
    <div class="admin-panel">
      {editing ? (
        <TeamForm
          team={team}
          teams={teams}
          onDone={(changed) => {
            setEditing(false);
            if (changed) onChanged();
          }}
        />
      ) : (
        <div class="row">
          <button type="button" class="button-secondary" onClick={() => setEditing(true)}>
            Edit team
          </button>
          <button type="button" class="button-danger" onClick={removeTeam} disabled={action.busy}>
            Delete team
          </button>
        </div>
      )}
      <h3>Members</h3>
      <ErrorNote error={action.error || members.error} />
      {members.loading && !members.data && <Spinner label="Loading members" />}
      {members.data &&
        (members.data.length ? (
          <ul class="list admin-members" aria-label={`Members of ${team.name}`}>
            {members.data.map((member) => (
              <li key={member.user.id} class="admin-row">
                <div class="grow admin-row-text">
                  <p class="strong">{member.user.display_name}</p>
                  <p class="muted small">@{member.user.handle}</p>
                </div>
                <select value={member.role} onChange={(e) => setRole(member, e.currentTarget.value)} aria-label={`${member.user.display_name}'s role in ${team.name}`} class="admin-small-select">
                  <option value="member">Member</option>
                  <option value="lead">Lead</option>
                </select>
                <button type="button" class="button-danger" onClick={() => removeMember(member)} aria-label={`Remove ${member.user.display_name}`}>
                  Remove
                </button>
              </li>
            ))}
          </ul>
        ) : (
          <p class="muted">Nobody in this team yet.</p>
        ))}
      <form class="row admin-add" onSubmit={add} aria-label={`Add a member to ${team.name}`}>
        <div class="field grow">
          <label for={`add-member-${team.id}`}>Person to add</label>
          <select id={`add-member-${team.id}`} value={adding.user_id} onChange={(e) => setAdding({ ...adding, user_id: e.currentTarget.value })}>
            <option value="">Choose someone</option>
            {users
              .filter((u) => u.is_active && !memberIds.has(u.id))
              .map((u) => (
                <option key={u.id} value={u.id}>
                  {u.display_name} (@{u.handle})
                </option>
              ))}
          </select>
        </div>
        <div class="field">
          <label for={`add-role-${team.id}`}>As</label>
          <select id={`add-role-${team.id}`} value={adding.role} onChange={(e) => setAdding({ ...adding, role: e.currentTarget.value })}>
            <option value="member">Member</option>
            <option value="lead">Lead</option>
          </select>
        </div>
        <button type="submit" disabled={!adding.user_id || action.busy}>
          Add member
        </button>
      </form>
    </div>
  );
}
