// You: who you are signed in as, and signing out.
import { useSession } from "../session.jsx";
import { Avatar, Page } from "../ui.jsx";

export function Profile({ me }) {
  const { signOut } = useSession();
  return (
    <Page title="You">
      <section class="card profile">
        <Avatar user={me} size={56} />
        <div>
          <p class="strong">{me.display_name || me.handle}</p>
          <p class="muted">
            @{me.handle} · {me.role}
            {me.organisation && ` · ${me.organisation.name}`}
          </p>
        </div>
      </section>
      <button type="button" class="button-secondary" onClick={signOut}>
        Sign out
      </button>
    </Page>
  );
}
