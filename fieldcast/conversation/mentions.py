"""@mentions: found in a comment's text when it is written, stored by id, rendered with the
handles people and teams have when it is read.

A client writes `@handle`. At write time each one that names a person or a team of the
organisation becomes a mention: the id it names and the span of the `@handle` in the text. An
`@word` that names nobody stays plain text. When the comment is read, every span is written
again with the current handle of its person or team, so a rename changes how the mention reads
and never whom it names, and a new holder of the old handle is never mentioned by it.

Offsets (`start`, `end`) count UTF-16 code units of the rendered text, as JavaScript, Swift's
`NSString`/`NSRange` and Java/Kotlin strings index text, so the apps make a span tappable with
no conversion.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from fieldcast.models.accounts import Handle, Team, User

# `@` not preceded by a word character, `@` or `-` (so `ana@example.com` is no mention), then a
# handle: 2-32 of [a-z0-9_-], not ending in `-` (`@sam-` mentions @sam), and no word character
# after it (`@josé` is not `@jos`, a 40-letter word is not its first 32).
MENTION_RE = re.compile(r"(?<![\w@-])@([A-Za-z0-9_][A-Za-z0-9_-]{0,30}[A-Za-z0-9_])(?!\w)")
# Mentions one comment resolves at most: the rest of the text stays plain.
MAX_MENTIONS = 50


@dataclass(frozen=True)
class Mention:
    """One span of a comment's stored text naming a person or a team."""

    start: int  # code points into the stored text
    end: int
    user_id: uuid.UUID | None = None
    team_id: uuid.UUID | None = None

    def to_json(self) -> dict[str, Any]:
        owner = {"user_id": str(self.user_id)} if self.user_id else {"team_id": str(self.team_id)}
        return {**owner, "start": self.start, "end": self.end}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Mention:
        return cls(
            start=int(data["start"]),
            end=int(data["end"]),
            user_id=uuid.UUID(data["user_id"]) if data.get("user_id") else None,
            team_id=uuid.UUID(data["team_id"]) if data.get("team_id") else None,
        )


def find(session: Session, org_id: uuid.UUID, text: str) -> list[Mention]:
    """The mentions of `text`: each `@handle` that names a person or a team of the
    organisation, in order (at most MAX_MENTIONS; the same one twice is two spans)."""
    spans = [(m.start(), m.end(), m.group(1).lower()) for m in MENTION_RE.finditer(text)]
    spans = spans[:MAX_MENTIONS]
    if not spans:
        return []
    owners = {
        row.handle: row
        for row in session.execute(
            select(Handle.handle, Handle.user_id, Handle.team_id).where(
                Handle.org_id == org_id, Handle.handle.in_({handle for _, _, handle in spans})
            )
        )
    }
    found = []
    for start, end, handle in spans:
        owner = owners.get(handle)
        if owner is not None:
            found.append(Mention(start, end, user_id=owner.user_id, team_id=owner.team_id))
    return found


@dataclass(frozen=True)
class Name:
    handle: str
    display_name: str


@dataclass(frozen=True)
class Names:
    """The current handles and names of the people and teams some comments mention."""

    users: dict[uuid.UUID, Name]
    teams: dict[uuid.UUID, Name]

    @classmethod
    def load(
        cls, session: Session, org_id: uuid.UUID, mentions: Iterable[Sequence[dict[str, Any]]]
    ) -> Names:
        user_ids: set[uuid.UUID] = set()
        team_ids: set[uuid.UUID] = set()
        for spans in mentions:
            for span in spans:
                if span.get("user_id"):
                    user_ids.add(uuid.UUID(span["user_id"]))
                elif span.get("team_id"):
                    team_ids.add(uuid.UUID(span["team_id"]))
        users = {}
        if user_ids:
            users = {
                row.id: Name(row.handle, row.display_name)
                for row in session.execute(
                    select(User.id, User.handle, User.display_name).where(
                        User.org_id == org_id, User.id.in_(user_ids)
                    )
                )
            }
        teams = {}
        if team_ids:
            teams = {
                row.id: Name(row.handle, row.name)
                for row in session.execute(
                    select(Team.id, Team.handle, Team.name).where(
                        Team.org_id == org_id, Team.id.in_(team_ids)
                    )
                )
            }
        return cls(users, teams)


def _utf16(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def render(text: str, spans: Sequence[dict[str, Any]], names: Names) -> tuple[str, list[dict]]:
    """The text as it reads now, and its mentions with their current handle, name and UTF-16
    offsets into it. A mention of a team deleted since reads as the text that was written,
    without a link."""
    out: list[str] = []
    rendered: list[dict[str, Any]] = []
    position = 0
    length16 = 0
    for span in sorted(spans, key=lambda s: int(s["start"])):
        mention = Mention.from_json(span)
        if mention.start < position:
            continue  # overlapping spans cannot be written; keep the text as it is
        before = text[position : mention.start]
        out.append(before)
        length16 += _utf16(before)
        name = (
            names.users.get(mention.user_id)
            if mention.user_id
            else names.teams.get(mention.team_id)  # type: ignore[arg-type]
        )
        if name is None:
            piece = text[mention.start : mention.end]
            out.append(piece)
            length16 += _utf16(piece)
        else:
            piece = f"@{name.handle}"
            out.append(piece)
            owner = (
                {"user_id": str(mention.user_id), "team_id": None}
                if mention.user_id
                else {"user_id": None, "team_id": str(mention.team_id)}
            )
            rendered.append(
                {
                    **owner,
                    "handle": name.handle,
                    "display_name": name.display_name,
                    "start": length16,
                    "end": length16 + _utf16(piece),
                }
            )
            length16 += _utf16(piece)
        position = mention.end
    out.append(text[position:])
    return "".join(out), rendered
