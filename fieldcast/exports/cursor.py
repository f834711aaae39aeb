"""An export's cursor: where the last export of one fact of one organisation stood.

The cursor holds a `SyncPoint` (fieldcast/sync/changes.py), taken before the export reads its
rows: the last value of the change sequence and the transactions then in flight. Every insert
and update of an exported row stamps it with the next sequence value and its transaction's id
(triggers of migrations 0013 and 0031), so the next export from the cursor sends each row
whose value is above the point's, or whose transaction had not committed when the point was
taken. A transaction that drew its value early and committed late is caught by the second
condition, so a change is never missed; a row may be sent twice (changed while an export read,
or written by a transaction in flight at the point), never lost. Clients keep the latest
copy of each row by its key.

The cursor is signed (SECRET_KEY) and names its organisation and fact: a cursor of another
fact or organisation is refused (422 `invalid_cursor`) rather than answering with a wrong
delta. It never expires: no removal has to be remembered for it.
"""

from __future__ import annotations

import hashlib
import uuid
from typing import Any

from sqlalchemy import column, table
from sqlalchemy.dialects.postgresql import psycopg

from fieldcast.errors import ErrorCode, InvalidInput
from fieldcast.sync import tokens
from fieldcast.sync.changes import SyncPoint, changed_since

_VERSION = 1
# The longest cursor accepted; an issued one is about 200 characters.
MAX_CURSOR_LENGTH = 2000


def _scope(org_id: uuid.UUID, fact: str) -> str:
    return hashlib.sha256(f"bi-export\n{org_id}\n{fact}".encode()).hexdigest()[:16]


def issue(secret: str, org_id: uuid.UUID, fact: str, point: SyncPoint) -> str:
    return tokens.sign(secret, {"v": _VERSION, "e": _scope(org_id, fact), **point.to_json()})


def read(secret: str, cursor: str, org_id: uuid.UUID, fact: str) -> SyncPoint:
    """The point a cursor of this organisation's fact holds; 422 `invalid_cursor` otherwise."""
    try:
        payload = tokens.verify(secret, cursor, field="cursor")
    except InvalidInput:
        raise _invalid() from None
    if payload.get("v") != _VERSION or payload.get("e") != _scope(org_id, fact):
        raise _invalid()
    try:
        return SyncPoint.from_json(payload)
    except (KeyError, ValueError, TypeError):
        raise _invalid() from None


def _invalid() -> InvalidInput:
    return InvalidInput(
        "The cursor is not one an export of this fact handed out; export again without it.",
        code=ErrorCode.INVALID_CURSOR,
        errors={"cursor": ["Not a cursor of this fact's export."]},
    )


_DIALECT = psycopg.dialect()


def changed_sql(point: SyncPoint) -> tuple[str, dict[str, Any]]:
    """`changed_since` as SQL text over an exported table's `change_seq` and `change_xid`,
    with its parameters (psycopg's `%(name)s` style)."""
    marks = table("t", column("change_seq"), column("change_xid"))
    compiled = changed_since(point, marks.c).compile(
        dialect=_DIALECT, compile_kwargs={"render_postcompile": True}
    )
    # The predicate names the columns as `t.change_seq`: bare names read the fact's table.
    return str(compiled).replace("t.change_", "change_"), dict(compiled.params)
