"""The BI export: every fact in CSV and Parquet, incremental by cursor (late commits
included), scoped to the organisation, without secrets, streamed; and the `bi` schema's views."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pyarrow.parquet as pq
import pytest
import requests
from flask.testing import FlaskClient
from redis import Redis
from sqlalchemy import Connection, text, update
from sqlalchemy.orm import Session

from fieldcast.accounts.deletion import erase
from fieldcast.context import build_context
from fieldcast.db import Database
from fieldcast.exports.facts import FACTS, Fact, Kind
from fieldcast.models.accounts import ApiToken
from fieldcast.models.conversation import Comment, Reaction
from fieldcast.models.programs import Assignee, AssigneeState, Assignment
from fieldcast.models.sharing import RecipientState, Share, ShareRecipient
from fieldcast.models.videos import Video, VideoStatus
from fieldcast.models.viewing import VideoProgress, View
from fieldcast.settings import Settings
from tests import factories
from tests.conftest import bearer
from tests.live_server import committed_factories, serve

T0 = datetime(2026, 11, 2, 9, 30, 15, 123456, tzinfo=UTC)
SECRETS = ("password_hash", "token_hash", "nonce")


def _world(session: Session, org: Any, admin: Any) -> dict[str, Any]:
    """One of each fact's rows in `org`, made as the product makes them."""
    rep = factories.UserFactory(
        org=org, display_name="=HYPERLINK(1)", manager_id=admin.id, department="Field Sales"
    )
    gone = factories.UserFactory(
        org=org, email="gone@example.com", department="West", employee_number="E-1"
    )
    team = factories.TeamFactory(org=org, name="West", description="Field reps, west")
    factories.MembershipFactory(team=team, user=rep, lead=True)
    factories.MembershipFactory(team=team, user=gone)
    video = Video(
        org_id=org.id,
        owner_id=rep.id,
        title="Pricing objection",
        status=VideoStatus.PLAYABLE,
        duration_ms=60_000,
    )
    session.add(video)
    session.flush()
    session.add(
        View(
            org_id=org.id,
            video_id=video.id,
            user_id=admin.id,
            session_id=uuid.uuid4(),
            end_ms=60_000,
            played=text("'{[0,4000), [6000,9000)}'::int4multirange"),
            played_ms=7000,
            position_ms=9000,
            reports=2,
            started_at=T0,
            last_reported_at=T0 + timedelta(seconds=9),
        )
    )
    session.add(
        VideoProgress(
            org_id=org.id,
            user_id=admin.id,
            video_id=video.id,
            played=text("'{[0,4000), [6000,9000)}'::int4multirange"),
            played_ms=7000,
            duration_ms=60_000,
            first_played_at=T0,
        )
    )
    assignment = Assignment(
        org_id=org.id,
        assigned_by=admin.id,
        video_id=video.id,
        message="+watch before Friday",
        due_at=T0 + timedelta(days=7),
        person_count=1,
        published_at=T0,
    )
    share = Share(org_id=org.id, video_id=video.id, sender_id=rep.id, recipient_count=1)
    session.add_all([assignment, share])
    session.flush()
    session.add_all(
        [
            Assignee(
                org_id=org.id,
                assignment_id=assignment.id,
                user_id=rep.id,
                state=AssigneeState.COMPLETED,
                due_at=assignment.due_at,
                played_ms=55_000,
                total_ms=60_000,
                started_at=T0,
                completed_at=T0 + timedelta(hours=1),
            ),
            ShareRecipient(
                org_id=org.id,
                share_id=share.id,
                user_id=admin.id,
                video_id=video.id,
                state=RecipientState.OPENED,
                opened_at=T0,
            ),
        ]
    )
    comment = Comment(org_id=org.id, video_id=video.id, author_id=rep.id, body="Nice", at_ms=500)
    removed = Comment(
        org_id=org.id,
        video_id=video.id,
        author_id=rep.id,
        body="Something rude",
        deleted_at=T0,
    )
    session.add_all(
        [
            comment,
            removed,
            Reaction(org_id=org.id, video_id=video.id, user_id=rep.id, emoji="🔥", at_ms=1500),
        ]
    )
    session.flush()
    erase(session, gone)
    session.flush()
    return {"rep": rep, "gone": gone, "team": team, "video": video, "comment": comment}


@pytest.fixture
def world(session: Session, org: Any, admin: Any, other_org: Any, outsider: Any) -> dict[str, Any]:
    made = _world(session, org, admin)
    made["theirs"] = _world(session, other_org, outsider)
    return made


def _export(
    client: FlaskClient, headers: dict[str, str], fact: str, fmt: str, cursor: str | None = None
) -> tuple[list[dict[str, Any]], str, Any]:
    query = {"format": fmt, **({"cursor": cursor} if cursor else {})}
    response = client.get(f"/api/v1/exports/{fact}", query_string=query, headers=headers)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.is_streamed
    body = response.get_data()
    if fmt == "csv":
        assert response.mimetype == "text/csv"
        rows = list(csv.DictReader(io.StringIO(body.decode())))
    else:
        assert response.mimetype == "application/vnd.apache.parquet"
        rows = pq.read_table(io.BytesIO(body)).to_pylist()
    return rows, response.headers["X-Next-Cursor"], response


def _csv_cell(kind: Kind, value: Any) -> str:
    """What the CSV holds for a value read from the `bi` view: the documented rendering."""
    if value is None:
        return ""
    if kind is Kind.TIME:
        return str(value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"))
    if kind is Kind.BOOL:
        return "true" if value else "false"
    if kind is Kind.TEXT and str(value)[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + str(value)
    return str(value)


def _parquet_cell(kind: Kind, value: Any) -> Any:
    return str(value) if kind is Kind.UUID and value is not None else value


def _expected(session: Session, fact: Fact, org_id: uuid.UUID, fmt: str) -> list[dict[str, Any]]:
    """The organisation's rows as the `bi` schema's view of the fact has them."""
    result = session.execute(
        text(f"SELECT * FROM bi.{fact.name} WHERE org_id = :org"),  # noqa: S608
        {"org": org_id},
    )
    assert list(result.keys()) == fact.column_names
    cell = _csv_cell if fmt == "csv" else _parquet_cell
    kinds = [column.kind for column in fact.columns]
    return [
        {
            name: cell(kind, value)
            for name, kind, value in zip(result.keys(), kinds, row, strict=True)
        }
        for row in result
    ]


def _by_key(fact: Fact, rows: list[dict[str, Any]]) -> dict[tuple[Any, ...], dict[str, Any]]:
    return {tuple(str(row[name]) for name in fact.key): row for row in rows}


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_every_fact_exports_the_organisations_rows_as_the_bi_views_show_them(
    client: FlaskClient, session: Session, admin: Any, world: dict[str, Any], fmt: str
) -> None:
    headers = bearer(client, admin)
    for fact in FACTS.values():
        rows, _, _ = _export(client, headers, fact.name, fmt)
        expected = _expected(session, fact, admin.org_id, fmt)
        assert rows, fact.name
        assert list(rows[0]) == fact.column_names
        assert _by_key(fact, rows) == _by_key(fact, expected), fact.name
        assert {row["org_id"] for row in rows} == {str(admin.org_id)}


def test_the_csv_cells_say_what_the_product_recorded(
    client: FlaskClient, admin: Any, world: dict[str, Any]
) -> None:
    headers = bearer(client, admin)
    rep, gone, video = world["rep"], world["gone"], world["video"]
    people = {row["id"]: row for row in _export(client, headers, "people", "csv")[0]}
    # A formula is shown as text; an erased person is "Former member" without an email.
    assert people[str(rep.id)]["display_name"] == "'=HYPERLINK(1)"
    assert people[str(rep.id)]["manager_id"] == str(admin.id)
    assert people[str(rep.id)]["is_active"] == "true"
    assert people[str(gone.id)]["display_name"] == "Former member"
    assert people[str(gone.id)]["email"] == ""
    assert people[str(gone.id)]["employee_number"] == people[str(gone.id)]["department"] == ""
    assert people[str(rep.id)]["department"] == "Field Sales"
    assert people[str(gone.id)]["deleted_at"].endswith("Z")
    # Erasing ended the person's memberships: only the lead is left.
    members = _export(client, headers, "team_members", "csv")[0]
    assert [(m["user_id"], m["role"]) for m in members] == [(str(rep.id), "lead")]
    (view,) = _export(client, headers, "views", "csv")[0]
    assert view["video_id"] == str(video.id)
    assert view["played"] == "{[0,4000),[6000,9000)}"
    assert view["started_at"] == "2026-11-02T09:30:15.123456Z"
    assert view["completed_at"] == ""
    (assignee,) = _export(client, headers, "assignees", "csv")[0]
    assert (assignee["user_id"], assignee["state"]) == (str(rep.id), "completed")
    assert assignee["completed_at"] == "2026-11-02T10:30:15.123456Z"
    (assignment,) = _export(client, headers, "assignments", "csv")[0]
    assert assignment["message"] == "'+watch before Friday"
    (recipient,) = _export(client, headers, "share_recipients", "csv")[0]
    assert (recipient["user_id"], recipient["state"]) == (str(admin.id), "opened")
    comments = {c["id"]: c for c in _export(client, headers, "comments", "csv")[0]}
    assert comments[str(world["comment"].id)]["body"] == "Nice"
    (removed,) = [c for c in comments.values() if c["deleted_at"]]
    assert removed["body"] == ""
    (reaction,) = _export(client, headers, "reactions", "csv")[0]
    assert (reaction["emoji"], reaction["at_ms"]) == ("🔥", "1500")


def test_parquet_keeps_types(client: FlaskClient, admin: Any, world: dict[str, Any]) -> None:
    headers = bearer(client, admin)
    rows, _, response = _export(client, headers, "views", "parquet")
    table = pq.read_table(io.BytesIO(response.get_data()))
    assert str(table.schema.field("started_at").type) == "timestamp[us, tz=UTC]"
    assert str(table.schema.field("played_ms").type) == "int64"
    assert rows[0]["started_at"] == T0
    assert rows[0]["played_ms"] == 7000
    people = {row["id"]: row for row in _export(client, headers, "people", "parquet")[0]}
    # Parquet keeps text as typed: nothing runs it.
    assert people[str(world["rep"].id)]["display_name"] == "=HYPERLINK(1)"
    assert people[str(world["rep"].id)]["is_active"] is True


def test_no_secret_is_exported_nor_in_a_bi_view(
    client: FlaskClient, session: Session, admin: Any, world: dict[str, Any]
) -> None:
    token = ApiToken(
        org_id=admin.org_id, name="BI", prefix="fct_x", token_hash="f" * 64, user_id=admin.id
    )
    session.add(token)
    session.flush()
    hashes: list[str] = [
        str(h)
        for (h,) in session.execute(
            text("SELECT password_hash FROM users WHERE org_id = :o"), {"o": admin.org_id}
        )
        if h
    ]
    assert hashes
    headers = bearer(client, admin)
    for fact in FACTS.values():
        assert not {name for name in fact.column_names if name in SECRETS or "hash" in name}
        for fmt in ("csv", "parquet"):
            response = client.get(f"/api/v1/exports/{fact.name}?format={fmt}", headers=headers)
            body = response.get_data()
            for secret in [*hashes, token.token_hash]:
                assert secret.encode() not in body, (fact.name, fmt)
            assert b"gone@example.com" not in body
            assert b"Something rude" not in body
    columns: Any = session.execute(
        text(
            "SELECT table_name, column_name FROM information_schema.columns "
            "WHERE table_schema = 'bi'"
        )
    ).all()
    assert {table for table, _ in columns} == set(FACTS)
    assert not [column for _, column in columns if column in SECRETS or "hash" in column]


def test_an_export_from_its_cursor_holds_only_what_was_added_or_changed_since(
    client: FlaskClient, session: Session, admin: Any, world: dict[str, Any]
) -> None:
    headers = bearer(client, admin)
    video, rep = world["video"], world["rep"]
    for fmt in ("csv", "parquet"):
        everything, cursor, _ = _export(client, headers, "views", fmt)
        assert len(everything) == 1
        (old,) = everything
        nothing, same_cursor, _ = _export(client, headers, "views", fmt, cursor)
        assert nothing == []
        # A view is reported on again (exported anew, whole), another starts; others stay out.
        session.execute(
            update(View).where(View.id == uuid.UUID(str(old["id"]))).values(played_ms=9000)
        )
        fresh = View(
            org_id=admin.org_id,
            video_id=video.id,
            user_id=rep.id,
            session_id=uuid.uuid4(),
            end_ms=60_000,
        )
        session.add(fresh)
        session.flush()
        changed, next_cursor, _ = _export(client, headers, "views", fmt, same_cursor)
        assert {str(row["id"]): str(row["played_ms"]) for row in changed} == {
            str(old["id"]): "9000",
            str(fresh.id): "0",
        }
        assert _export(client, headers, "views", fmt, next_cursor)[0] == []
        session.execute(text("DELETE FROM views WHERE id = :id"), {"id": fresh.id})
        session.execute(
            update(View).where(View.id == uuid.UUID(str(old["id"]))).values(played_ms=7000)
        )
    # People: an erased person is a change like any other.
    _, cursor, _ = _export(client, headers, "people", "csv")
    erase(session, rep)
    session.flush()
    (erased,) = _export(client, headers, "people", "csv", cursor)[0]
    assert (erased["id"], erased["display_name"], erased["email"]) == (
        str(rep.id),
        "Former member",
        "",
    )


def test_a_cursor_is_for_its_fact_and_organisation_only(
    client: FlaskClient, admin: Any, outsider: Any, world: dict[str, Any]
) -> None:
    _, cursor, _ = _export(client, bearer(client, admin), "views", "csv")
    theirs = client.get(
        "/api/v1/exports/views", query_string={"cursor": cursor}, headers=bearer(client, outsider)
    )
    assert theirs.status_code == 422
    assert theirs.get_json()["code"] == "invalid_cursor"
    other_fact = client.get(
        "/api/v1/exports/people", query_string={"cursor": cursor}, headers=bearer(client, admin)
    )
    assert other_fact.status_code == 422
    forged = client.get(
        "/api/v1/exports/views",
        query_string={"cursor": cursor[:-2] + "xx"},
        headers=bearer(client, admin),
    )
    assert forged.get_json()["code"] == "invalid_cursor"
    unknown = client.get("/api/v1/exports/passwords", headers=bearer(client, admin))
    assert unknown.status_code == 404


def test_the_other_organisation_sees_only_its_own_rows(
    client: FlaskClient, admin: Any, outsider: Any, world: dict[str, Any]
) -> None:
    ours = {str(world[name].id) for name in ("rep", "gone", "video", "comment", "team")}
    headers = bearer(client, outsider)
    for fact in FACTS.values():
        for fmt in ("csv", "parquet"):
            rows, _, _ = _export(client, headers, fact.name, fmt)
            assert rows, fact.name
            assert {str(row["org_id"]) for row in rows} == {str(outsider.org_id)}
            assert not ours & {str(value) for row in rows for value in row.values()}


# -- late commits, over real transactions -------------------------------------------------------


@pytest.fixture
def committed(settings: Settings, committed_db: Database, redis: Redis) -> Iterator[Any]:
    with serve(build_context(settings, db=committed_db, redis=redis)) as server:
        yield server


def test_a_transaction_committing_after_the_export_is_in_the_next_one(
    committed: Any, committed_db: Database
) -> None:
    """A view written by a transaction that drew its change number before the export and
    committed after it is not lost: the next export from the cursor has it."""
    with committed_factories(committed_db) as session:
        org = factories.OrganisationFactory()
        admin = factories.UserFactory(org=org, admin=True)
        video = Video(
            org_id=org.id,
            owner_id=admin.id,
            title="Late",
            status=VideoStatus.PLAYABLE,
            duration_ms=1000,
        )
        session.add(video)
        session.commit()
        org_id, admin_id, video_id = org.id, admin.id, video.id
    headers = committed.login(admin)

    def view(conn: Connection) -> uuid.UUID:
        view_id = uuid.uuid4()
        conn.execute(
            text(
                "INSERT INTO views (id, org_id, video_id, user_id, session_id, end_ms) "
                "VALUES (:id, :org, :video, :user, :session, 1000)"
            ),
            {
                "id": view_id,
                "org": org_id,
                "video": video_id,
                "user": admin_id,
                "session": uuid.uuid4(),
            },
        )
        return view_id

    engine = committed_db.engine
    with engine.connect() as late:
        late_tx = late.begin()
        late_id = view(late)  # drew its number first, commits last
        with engine.begin() as early:
            early_id = view(early)
        first = requests.get(f"{committed.url}/api/v1/exports/views", headers=headers, timeout=30)
        assert first.status_code == 200
        assert [row["id"] for row in csv.DictReader(io.StringIO(first.text))] == [str(early_id)]
        late_tx.commit()
    cursor = first.headers["X-Next-Cursor"]
    second = requests.get(
        f"{committed.url}/api/v1/exports/views",
        params={"cursor": cursor},
        headers=headers,
        timeout=30,
    )
    assert [row["id"] for row in csv.DictReader(io.StringIO(second.text))] == [str(late_id)]


# -- streaming -----------------------------------------------------------------------------------


def _seed_views(session: Session, org: Any, user: Any, video: Any, rows: int) -> None:
    session.execute(
        text(
            "INSERT INTO views (id, org_id, video_id, user_id, session_id, end_ms, played, "
            "played_ms, started_at) "
            "SELECT gen_random_uuid(), :org, :video, :user, gen_random_uuid(), 60000, "
            "int4multirange(int4range(0, g % 60000 + 1)), g % 60000 + 1, now() "
            "FROM generate_series(1, :rows) AS g"
        ),
        {"org": org.id, "video": video.id, "user": user.id, "rows": rows},
    )


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_a_client_leaving_mid_stream_leaves_no_transaction_open(
    committed: Any, committed_db: Database, fmt: str
) -> None:
    with committed_factories(committed_db) as session:
        org = factories.OrganisationFactory()
        admin = factories.UserFactory(org=org, admin=True)
        video = Video(
            org_id=org.id,
            owner_id=admin.id,
            title="Long",
            status=VideoStatus.PLAYABLE,
            duration_ms=60_000,
        )
        session.add(video)
        session.flush()
        _seed_views(session, org, admin, video, 60_000)
        session.commit()
    headers = committed.login(admin)
    url = f"{committed.url}/api/v1/exports/views?format={fmt}"
    with requests.get(url, headers=headers, stream=True, timeout=30) as response:
        assert response.status_code == 200
        assert next(response.iter_content(4096))
    # The server notices at its next write; its reading transaction then ends.
    deadline = time.monotonic() + 20
    with committed_db.engine.connect() as conn:
        while True:
            open_reads: int = conn.execute(
                text(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                    "AND pid <> pg_backend_pid() AND state <> 'idle' "
                    "AND (query LIKE 'COPY%' OR query LIKE 'FETCH%' OR query LIKE 'DECLARE%')"
                )
            ).scalar_one()
            conn.rollback()
            if open_reads == 0 or time.monotonic() > deadline:
                break
            time.sleep(0.2)
    assert open_reads == 0


_RSS_PROBE = textwrap.dedent(
    """
    import dataclasses, json, sys, threading
    import psutil, requests
    from fieldcast.context import build_context
    from fieldcast.settings import Settings
    from tests.live_server import serve

    settings = Settings.from_env()
    process = psutil.Process()
    out = {}
    with serve(build_context(settings)) as server:
        login = {"email": sys.argv[1], "password": sys.argv[2]}
        token = requests.post(f"{server.url}/api/v1/auth/token", json=login, timeout=30)
        headers = {"Authorization": "Bearer " + token.json()["access_token"]}
        for fmt in ("csv", "parquet"):
            url = f"{server.url}/api/v1/exports/views?format={fmt}"
            # A small export first warms the pools and pyarrow; the large one is measured.
            warm = f"{server.url}/api/v1/exports/people?format={fmt}"
            requests.get(warm, headers=headers, timeout=120).raise_for_status()
            before, peak, size = process.memory_info().rss, 0, 0
            with requests.get(url, headers=headers, stream=True, timeout=120) as response:
                response.raise_for_status()
                for chunk in response.iter_content(65536):
                    size += len(chunk)
                    peak = max(peak, process.memory_info().rss)
            out[fmt] = {"bytes": size, "growth_mb": (peak - before) / 2**20}
    print(json.dumps(out))
    """
)


@pytest.mark.slow
def test_a_large_export_streams_without_the_server_growing(
    settings: Settings, committed_db: Database, database_url: str, redis_url: str
) -> None:
    rows = 100_000
    with committed_factories(committed_db) as session:
        org = factories.OrganisationFactory()
        admin = factories.UserFactory(org=org, admin=True)
        video = Video(
            org_id=org.id,
            owner_id=admin.id,
            title="Big",
            status=VideoStatus.PLAYABLE,
            duration_ms=60_000,
        )
        session.add(video)
        session.flush()
        _seed_views(session, org, admin, video, rows)
        session.commit()
        email = admin.email
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "SECRET_KEY": str(settings.secret_key),
        "LOG_LEVEL": "WARNING",
    }
    probe = subprocess.run(
        [sys.executable, "-c", _RSS_PROBE, email, factories.PASSWORD],
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert probe.returncode == 0, probe.stderr[-3000:]
    figures = json.loads(probe.stdout.strip().splitlines()[-1])
    assert figures["csv"]["bytes"] > rows * 100
    assert figures["parquet"]["bytes"] > 0
    # Held whole, the CSV would be 28 MB more, the Parquet's rows as Python objects about 90;
    # streamed, CSV holds a 64 KB chunk, Parquet three batches of rows.
    assert figures["csv"]["growth_mb"] < 20, figures
    assert figures["parquet"]["growth_mb"] < 60, figures


def test_a_read_only_bi_role_reads_the_views_and_nothing_else(
    session: Session, admin: Any, outsider: Any, world: dict[str, Any]
) -> None:
    """The grants docs/bi.md tells an operator to run: the role reads `bi`, its own
    organisation's schema of it, and no table of the product (roles are transactional: the
    test's rollback removes them)."""
    suffix = uuid.uuid4().hex[:10]
    reader, scoped = f"bi_reader_{suffix}", f"bi_org_{suffix}"
    for statement in (
        f"CREATE ROLE {reader} NOLOGIN NOINHERIT",
        f"GRANT USAGE ON SCHEMA bi TO {reader}",
        f"GRANT SELECT ON ALL TABLES IN SCHEMA bi TO {reader}",
        f"CREATE SCHEMA {scoped}",
        f"CREATE ROLE {scoped} NOLOGIN NOINHERIT",
        f"GRANT USAGE ON SCHEMA {scoped} TO {scoped}",
    ):
        session.execute(text(statement))
    for fact in FACTS:
        session.execute(
            text(
                f"CREATE VIEW {scoped}.{fact} WITH (security_barrier) AS "  # noqa: S608
                f"SELECT * FROM bi.{fact} WHERE org_id = '{admin.org_id}'"
            )
        )
    session.execute(text(f"GRANT SELECT ON ALL TABLES IN SCHEMA {scoped} TO {scoped}"))

    def as_role(role: str, sql: str) -> list[Any]:
        with session.begin_nested():
            session.execute(text(f"SET LOCAL ROLE {role}"))
            rows = list(session.execute(text(sql)))
            session.execute(text("RESET ROLE"))
            return rows

    everyone = as_role(reader, "SELECT DISTINCT org_id FROM bi.people")
    assert {row.org_id for row in everyone} >= {admin.org_id, outsider.org_id}
    ours = as_role(scoped, f"SELECT DISTINCT org_id FROM {scoped}.views")  # noqa: S608
    assert [row.org_id for row in ours] == [admin.org_id]
    for role, sql in (
        (reader, "SELECT password_hash FROM users"),
        (reader, "SELECT token_hash FROM api_tokens"),
        (scoped, "SELECT * FROM bi.people"),
        (reader, "DELETE FROM bi.reactions"),
    ):
        with pytest.raises(Exception, match="permission denied"):
            as_role(role, sql)
