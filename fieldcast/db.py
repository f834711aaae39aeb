"""Database plumbing: the declarative base, shared column types and the session factory."""

from __future__ import annotations

import enum
import logging
import os
import secrets
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Annotated, Any

from sqlalchemy import (
    BigInteger,
    DateTime,
    Enum,
    FetchedValue,
    ForeignKey,
    ForeignKeyConstraint,
    MetaData,
    String,
    Uuid,
    create_engine,
    event,
    func,
    text,
)
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import InvalidatePoolError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker

log = logging.getLogger(__name__)

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def uuid7() -> uuid.UUID:
    """A time-ordered UUID (RFC 9562 version 7).

    Ids that sort by creation time keep B-tree inserts local and let cursors page by id alone.
    """
    unix_ms = time.time_ns() // 1_000_000
    rand = int.from_bytes(os.urandom(10), "big")
    value = (unix_ms & ((1 << 48) - 1)) << 80
    value |= 0x7 << 76
    value |= ((rand >> 62) & 0xFFF) << 64
    value |= 0b10 << 62
    value |= rand & ((1 << 62) - 1)
    return uuid.UUID(int=value)


def utcnow() -> datetime:
    return datetime.now(UTC)


def new_token(nbytes: int = 32) -> str:
    return secrets.token_urlsafe(nbytes)


def str_enum(cls: type[enum.Enum], name: str, *, length: int = 32) -> Enum:
    """An enum stored as its value strings with a CHECK constraint.

    Adding a member later is a migration that rewrites the constraint, not an ALTER TYPE.
    """
    return Enum(
        cls,
        name=name,
        native_enum=False,
        create_constraint=True,
        length=length,
        values_callable=lambda members: [m.value for m in members],
        validate_strings=True,
    )


def tenant_fk(
    table: str, column: str, target: str, *, ondelete: str, use_alter: bool = False
) -> ForeignKeyConstraint:
    """A reference that stays inside one organisation: (org_id, column) -> target(org_id, id).

    Carrying the tenant key in the reference makes a row pointing at another organisation's
    row impossible, whatever the application code does.
    """
    return ForeignKeyConstraint(
        ["org_id", column],
        [f"{target}.org_id", f"{target}.id"],
        name=f"fk_{table}_{column}_{target}",
        ondelete=ondelete,
        # For a reference that closes a cycle between tables (a video's accepted answer, a
        # comment on the video): created after both tables.
        use_alter=use_alter,
    )


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {
        datetime: DateTime(timezone=True),
        uuid.UUID: Uuid(),
    }


UUIDPK = Annotated[uuid.UUID, mapped_column(primary_key=True, default=uuid7)]
CreatedAt = Annotated[datetime, mapped_column(server_default=func.now(), default=utcnow)]
UpdatedAt = Annotated[
    datetime, mapped_column(server_default=func.now(), default=utcnow, onupdate=utcnow)
]
Str255 = Annotated[str, mapped_column(String(255))]
# Delta sync's marks on a row: set by a trigger on every insert and update (migration 0013,
# `sync_mark_change`), never by the application; see fieldcast/sync/changes.py.
ChangeSeq = Annotated[
    int | None,
    mapped_column(BigInteger, server_default=FetchedValue(), server_onupdate=FetchedValue()),
]
ChangeXid = Annotated[
    int | None,
    mapped_column(BigInteger, server_default=FetchedValue(), server_onupdate=FetchedValue()),
]
OrgFK = Annotated[
    uuid.UUID,
    mapped_column(ForeignKey("organisations.id", ondelete="CASCADE"), index=True),
]


class TenantMixin:
    """Every tenant-owned row carries `org_id`, so every query can be scoped and sharded by it."""

    org_id: Mapped[OrgFK]


# -- The unit of work ------------------------------------------------------------------------------
#
# A request, an outbox task and a periodic job each make ONE unit of work: services change rows
# and `flush()`, and the code that runs the unit commits once at its end (`commit_unit`, or
# `Database.unit_of_work()`), or rolls everything back. The API's request lifecycle is in
# api/unit_of_work.py; an outbox task's in fieldcast/outbox/services.py `execute`.
#
# A few commits must happen before the unit ends, because something outside the database
# depends on them. Each is named below and made through `commit_early`, the only commit call in
# the domain packages (tests/test_unit_of_work.py fails on any other).


class EarlyCommit(enum.StrEnum):
    """Why a unit of work commits before its end. Each member says what outside the database
    must not happen (or must not be lost) before the commit."""

    #: An outbox job is claimed (status `running`, one more attempt, a lease) and the claim is
    #: committed before its task runs: another worker must see the lease and leave the job
    #: alone, and a worker that dies mid-task must have its attempt counted. The lease is then
    #: renewed on a connection of its own while the task runs.
    OUTBOX_LEASE = "outbox_lease"
    #: The (notification, device) claims of a push are committed before FCM is called: a
    #: duplicate or retried job then skips what this one sends, and a phone is not buzzed twice.
    PUSH_CLAIM = "push_claim"
    #: What FCM answered (accepted messages, dead tokens) is committed before the job asks to
    #: be retried for the rest: the retry rolls the task's transaction back, and the accepted
    #: pushes must stay recorded as sent.
    PUSH_RESULTS = "push_results"
    #: Before work that lasts seconds to minutes outside the database (a tus chunk streaming in,
    #: ffmpeg converting a video), the transaction that read and locked rows ends: no row lock
    #: and no connection idle in a transaction is held while the bytes stream or ffmpeg runs.
    BEFORE_LONG_WORK = "before_long_work"
    #: A tus chunk's new offset is committed as soon as its bytes are stored: the stored bytes
    #: and the offset the client resumes from must agree even when finishing the upload then
    #: fails.
    TUS_OFFSET = "tus_offset"
    #: Progress of a long job (what the probe found, percent done): the app polling the video
    #: sees it while the job still runs.
    JOB_PROGRESS = "job_progress"
    #: An output of video processing (the first playable rendition, poster, ladder, offline
    #: MP4, storyboard) is recorded as soon as its files are stored: the next output may fail
    #: and roll back, a retry must not forget files already stored, and apps use the output
    #: meanwhile (a video is playable, and its waiting shares go out, the moment its first
    #: rendition is stored, not once the job's scratch files are cleared and its row is done).
    #: An HEVC copy is recorded once its first seconds are stored, while the rest is: its
    #: playlist names only what is stored.
    MEDIA_OUTPUT = "media_output"
    #: A periodic job working through a batch (expiring uploads, settling videos) commits each
    #: item it handled: no lock is held over the whole batch, and one failing item does not
    #: undo the others.
    BATCH_ITEM = "batch_item"
    #: A refused request that must still change something: a refresh token presented a second
    #: time ends its whole login session (a copy leaked) although the request answers 401.
    SESSION_FAMILY_REVOKED = "session_family_revoked"
    #: A file refused at its first bytes (not a video): the video fails, the upload is removed
    #: and its stored bytes discarded, although the request answers 422.
    UPLOAD_REFUSED = "upload_refused"


_EARLY_COMMITS_KEY = "fieldcast.early_commits"
_ON_COMMIT_KEY = "fieldcast.on_commit"


def commit_early(session: Session, reason: EarlyCommit) -> None:
    """Commit before the unit of work ends, for one of the documented reasons.

    The session remembers that it did, so the request that carried an idempotency key can
    free the key if it fails after this point (the key committed with this commit).
    """
    session.info.setdefault(_EARLY_COMMITS_KEY, []).append(reason)
    session.commit()


def early_commits(session: Session) -> list[EarlyCommit]:
    """The early commits this session made, oldest first."""
    return list(session.info.get(_EARLY_COMMITS_KEY, []))


@contextmanager
def commit_apart(engine: Engine, reason: EarlyCommit) -> Iterator[Connection]:
    """A connection of its own whose statements commit at the end of the block, beside the
    unit of work in progress (which neither sees nor waits for them), for a documented reason:
    an outbox lease renewed while its task runs, the percent done of a long job."""
    del reason  # named for the reader and for grep; the commit is the same for every reason
    with engine.begin() as connection:
        yield connection


def commit_unit(session: Session) -> None:
    """Commit a unit of work at its end: the one commit of a request, an outbox task or a job."""
    session.commit()


def on_commit(session: Session, callback: Callable[[], None]) -> None:
    """Run `callback` once the session's transaction commits; forget it if it rolls back.

    For work outside the database that must follow the change, never precede it (deleting the
    stored bytes of an upload whose row is deleted).
    """
    session.info.setdefault(_ON_COMMIT_KEY, []).append(callback)


@event.listens_for(Session, "after_commit")
def _run_on_commit(session: Session) -> None:
    for callback in session.info.pop(_ON_COMMIT_KEY, []):
        try:
            callback()
        except Exception:
            log.warning("a callback after commit failed", exc_info=True)


@event.listens_for(Session, "after_transaction_end")
def _forget_on_commit(session: Session, transaction: Any) -> None:
    # Only the outermost transaction ending discards them: a rolled-back SAVEPOINT keeps the
    # work done before it.
    if transaction.parent is None:
        session.info.pop(_ON_COMMIT_KEY, None)


def _plan_every_execution(dbapi_connection: Any, _record: Any) -> None:
    """psycopg prepares a statement run five times on a connection, and PostgreSQL may then
    plan it once for all values (a generic plan). Organisations differ in size a hundredfold
    and people in what they see, so the best plan depends on the values: a search planned for
    an admin of a small organisation ran ten times slower for a rep of a large one. Statements
    stay prepared (parsed once) and are planned for their values each time.

    And no plan is compiled to machine code (JIT): that costs tens of milliseconds, paid back
    only by statements that run for seconds, and it is chosen by estimated cost. Statements
    here are bounded by a page; one whose estimate is far off (search facets count the values
    of set-returning functions, which PostgreSQL guesses at a hundred rows each) took 80 ms
    instead of 40 with it."""
    with dbapi_connection.cursor() as cursor:
        cursor.execute("SET plan_cache_mode = force_custom_plan")
        cursor.execute("SET jit = off")
    dbapi_connection.commit()


def plan_once(session: Session) -> None:
    """Plan the rest of the session's transaction's statements once per connection, not for
    their values each time (`_plan_every_execution`): PostgreSQL keeps a generic plan with
    each prepared statement. For a transaction made of lookups by key that runs many times a
    second (a player's progress report): the policy's statements take a millisecond or two to
    plan and a few tenths to run, and their best plan is the same for every value. It ends
    with the transaction (`SET LOCAL`): the pooled connection is back to planning every
    execution for the next."""
    session.execute(text("SET LOCAL plan_cache_mode = force_generic_plan"))


# A pooled connection used within PING_IDLE_S is handed out as it is; one idle for longer is
# pinged first, and replaced (with every connection pooled before it) if PostgreSQL dropped it:
# a restart, a failover, an idle timeout on the way. Under load a connection is idle for
# milliseconds, and a ping on every checkout (`pool_pre_ping`) would cost each request a
# round trip more; a connection lost while in use fails its one request as an outage (503
# with Retry-After, `fieldcast.outages`), and that too replaces the pool's older connections.
PING_IDLE_S = 1.0


def _ping_when_idle(engine: Engine) -> None:
    dialect = engine.dialect

    @event.listens_for(engine, "checkin")
    def checked_in(dbapi_connection: Any, record: Any) -> None:
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def checked_out(dbapi_connection: Any, record: Any, proxy: Any) -> None:
        idle_since = record.info.pop("idle_since", None)
        if idle_since is None or time.monotonic() - idle_since < PING_IDLE_S:
            return  # (None: a connection just made)
        try:
            dialect.do_ping(dbapi_connection)
        except Exception as error:
            raise InvalidatePoolError("the pooled connection was dropped") from error


class Database:
    """One engine and session factory per process, created from the settings."""

    def __init__(self, url: str, *, pool_size: int = 5, echo: bool = False, **kwargs: Any) -> None:
        self.engine: Engine = create_engine(
            url,
            pool_size=pool_size,
            max_overflow=10,
            # Error messages end up in logs: they name the statement, never the values bound
            # to it (emails, token hashes, what a user typed).
            hide_parameters=True,
            echo=echo,
            **kwargs,
        )
        event.listen(self.engine, "connect", _plan_every_execution)
        _ping_when_idle(self.engine)
        self.sessionmaker: sessionmaker[Session] = sessionmaker(
            bind=self.engine, expire_on_commit=False
        )

    @classmethod
    def from_engine(cls, engine: Engine, **session_kwargs: Any) -> Database:
        """Wrap an existing engine or connection (tests bind sessions to one connection)."""
        db = cls.__new__(cls)
        db.engine = engine
        db.sessionmaker = sessionmaker(bind=engine, expire_on_commit=False, **session_kwargs)
        return db

    @contextmanager
    def session(self) -> Iterator[Session]:
        session = self.sessionmaker()
        try:
            yield session
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()

    @contextmanager
    def unit_of_work(self) -> Iterator[Session]:
        """A session whose work commits once, when the block ends without an error (a job's
        unit of work); an error rolls all of it back."""
        with self.session() as session:
            yield session
            commit_unit(session)

    def dispose(self) -> None:
        self.engine.dispose()
