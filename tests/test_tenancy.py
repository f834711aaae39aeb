"""Many organisations on one deployment: a storage quota refuses what would pass it before a
byte is stored, and each organisation's retention policy deletes what is past keeping (and
says beforehand what will go, and when)."""

from __future__ import annotations

import io
import uuid
from datetime import timedelta
from typing import Any
from urllib.parse import urlparse

import click
import pytest
from flask.testing import FlaskClient
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from fieldcast.cli import parse_size
from fieldcast.context import AppContext
from fieldcast.db import utcnow
from fieldcast.models.curation import Collection, CollectionItem, CollectionVisibility
from fieldcast.models.programs import Assignment
from fieldcast.models.videos import Video, VideoStatus
from fieldcast.models.viewing import VideoProgress, View
from fieldcast.retention import services as retention
from fieldcast.tenancy import storage as quotas
from tests import factories
from tests.conftest import bearer
from tests.test_uploads import MP4_HEAD, TUS, metadata

PDF = b"%PDF-1.4\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n"


def _draft(client: FlaskClient, headers: dict[str, str]) -> str:
    response = client.post("/api/v1/videos", json={"title": "Pricing"}, headers=headers)
    assert response.status_code == 201
    return str(response.get_json()["id"])


def _tus(client: FlaskClient, headers: dict[str, str], video_id: str, length: int | None) -> Any:
    sizes = {"Upload-Length": str(length)} if length is not None else {"Upload-Defer-Length": "1"}
    return client.post(
        "/api/v1/uploads",
        headers={**headers, **TUS, **sizes, "Upload-Metadata": metadata(video_id)},
    )


def _storage(client: FlaskClient, admin: Any) -> dict[str, Any]:
    response = client.get("/api/v1/organisation/storage", headers=bearer(client, admin))
    assert response.status_code == 200, response.get_json()
    body: dict[str, Any] = response.get_json()
    return body


def test_an_upload_past_the_quota_is_refused_before_any_byte_and_reserved_bytes_count(
    client: FlaskClient, session: Session, org: Any, admin: Any, rep: Any
) -> None:
    session.add(Video(org_id=org.id, owner_id=rep.id, title="Stored", source_bytes=600))
    session.flush()
    quotas.set_quota(session, org.id, 1000)
    headers = bearer(client, rep)
    assert _storage(client, admin)["storage"] == {
        "quota_bytes": 1000,
        "used_bytes": 600,
        "sources_bytes": 600,
        "renditions_bytes": 0,
        "attachments_bytes": 0,
        "uploading_bytes": 0,
    }
    too_big = _tus(client, headers, _draft(client, headers), 401)
    assert too_big.status_code == 413, too_big.get_data(as_text=True)
    assert too_big.get_json()["code"] == "storage_quota_exceeded"
    fits = _tus(client, headers, _draft(client, headers), 300)
    assert fits.status_code == 201
    # The 300 bytes on their way are the organisation's: 100 left for everyone else.
    assert _storage(client, admin)["storage"]["uploading_bytes"] == 300
    assert _tus(client, headers, _draft(client, headers), 101).status_code == 413
    # A length sent later is held to the same room when it is declared.
    deferred = _tus(client, headers, _draft(client, headers), None)
    assert deferred.status_code == 201
    declared = client.patch(
        urlparse(deferred.headers["Location"]).path,
        data=MP4_HEAD[:8],
        headers={
            **headers,
            **TUS,
            "Upload-Offset": "0",
            "Upload-Length": "200",
            "Content-Type": "application/offset+octet-stream",
        },
    )
    assert declared.status_code == 413
    assert declared.get_json()["code"] == "storage_quota_exceeded"
    # Another organisation's quota is its own.
    other = factories.UserFactory(org=factories.OrganisationFactory())
    other_headers = bearer(client, other)
    assert _tus(client, other_headers, _draft(client, other_headers), 5000).status_code == 201


def test_an_attachment_past_the_quota_is_refused_and_nothing_stays_stored(
    client: FlaskClient,
    session: Session,
    org: Any,
    admin: Any,
    rep: Any,
    context: AppContext,
) -> None:
    headers = bearer(client, rep)
    video_id = _draft(client, headers)
    quotas.set_quota(session, org.id, len(PDF) - 1)
    refused = client.post(
        f"/api/v1/videos/{video_id}/attachments/files",
        data={"file": (io.BytesIO(PDF), "deck.pdf", "application/pdf")},
        content_type="multipart/form-data",
        headers=headers,
    )
    assert refused.status_code == 413, refused.get_data(as_text=True)
    assert refused.get_json()["code"] == "storage_quota_exceeded"
    assert _storage(client, admin)["storage"]["attachments_bytes"] == 0
    quotas.set_quota(session, org.id, len(PDF))
    stored = client.post(
        f"/api/v1/videos/{video_id}/attachments/files",
        data={"file": (io.BytesIO(PDF), "deck.pdf", "application/pdf")},
        content_type="multipart/form-data",
        headers=headers,
    )
    assert stored.status_code == 201, stored.get_data(as_text=True)
    assert _storage(client, admin)["storage"]["attachments_bytes"] == len(PDF)
    # Full now: even a small file is refused before it is read.
    again = client.post(
        f"/api/v1/videos/{video_id}/attachments/files",
        data={"file": (io.BytesIO(PDF), "deck2.pdf", "application/pdf")},
        content_type="multipart/form-data",
        headers=headers,
    )
    assert again.status_code == 413


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("1048576", 1048576),
        ("500G", 500 * 1024**3),
        ("1.5T", int(1.5 * 1024**4)),
        ("200MiB", 200 * 1024**2),
        ("64kb", 65536),
    ],
)
def test_quota_sizes_read_as_an_operator_writes_them(text: str, size: int) -> None:
    assert parse_size(text) == size


def test_a_size_that_is_not_one_is_refused() -> None:
    with pytest.raises(click.BadParameter):
        parse_size("lots")


def _aged(session: Session, video: Video, days: int) -> None:
    session.execute(
        update(Video).where(Video.id == video.id).values(created_at=utcnow() - timedelta(days=days))
    )


def test_the_retention_policy_deletes_what_is_past_keeping_and_says_so_beforehand(
    client: FlaskClient,
    session: Session,
    context: AppContext,
    org: Any,
    admin: Any,
    rep: Any,
) -> None:
    def video(title: str, days: int) -> Video:
        made = Video(
            org_id=org.id,
            owner_id=rep.id,
            title=title,
            status=VideoStatus.READY,
            duration_ms=60_000,
        )
        session.add(made)
        session.flush()
        _aged(session, made, days)
        return made

    old, young = video("old", 400), video("young", 100)
    assigned, curated = video("assigned", 400), video("curated", 400)
    soon = video("soon", 350)
    session.add(
        Assignment(org_id=org.id, video_id=assigned.id, assigned_by=admin.id, person_count=1)
    )
    collection = Collection(
        org_id=org.id,
        owner_id=admin.id,
        title="Best of",
        visibility=CollectionVisibility.ORGANISATION,
        published_at=utcnow(),
    )
    session.add(collection)
    session.flush()
    session.add(
        CollectionItem(org_id=org.id, collection_id=collection.id, video_id=curated.id, position=0)
    )
    # Two views of `young`: one started 200 days ago, one today; her progress stays.
    for days in (200, 0):
        session.add(
            View(
                org_id=org.id,
                video_id=young.id,
                user_id=rep.id,
                session_id=uuid.uuid4(),
                start_ms=0,
                end_ms=60_000,
                started_at=utcnow() - timedelta(days=days),
            )
        )
    session.add(
        VideoProgress(
            org_id=org.id, user_id=rep.id, video_id=young.id, played_ms=1000, duration_ms=60_000
        )
    )
    session.flush()
    url = "/api/v1/organisation/retention"
    policy = {"video_retention_days": 365, "view_retention_days": 90, "deleted_retention_days": 3}
    assert client.put(url, json=policy, headers=bearer(client, rep)).status_code == 403
    bad = client.put(url, json={**policy, "view_retention_days": 0}, headers=bearer(client, admin))
    assert bad.status_code == 422
    answered = client.put(url, json=policy, headers=bearer(client, admin))
    assert answered.status_code == 200, answered.get_json()
    upcoming = answered.get_json()["upcoming"]
    # Due now: `old` alone (the assigned and the curated ones are held); `soon` within 30 days.
    assert upcoming["videos_deleted"]["due"] == 1
    assert upcoming["videos_deleted"]["within_lookahead"] == 2
    assert upcoming["views_deleted"]["due"] == 1
    assert answered.get_json()["policy"]["deleted_retention_days"] == 3

    grace = timedelta(days=7)
    counts = retention.apply(context.db, context.storage, default_grace=grace)
    assert counts == {"videos_deleted": 1, "views_deleted": 1}
    session.expire_all()
    gone = session.get_one(Video, old.id)
    assert gone.deleted_at is not None and gone.purge_after is not None
    # The organisation's own grace, not the deployment's.
    assert gone.purge_after - gone.deleted_at == timedelta(days=3)
    for kept in (young, assigned, curated, soon):
        assert session.get_one(Video, kept.id).deleted_at is None
    assert (
        session.scalar(select(func.count()).select_from(View).where(View.video_id == young.id)) == 1
    )
    assert session.get(VideoProgress, (rep.id, young.id)) is not None
    # Run again: nothing more is due.
    assert retention.apply(context.db, context.storage, default_grace=grace) == {
        "videos_deleted": 0,
        "views_deleted": 0,
    }
    overview = _storage(client, admin)["upcoming"]
    assert overview["deleted_videos_purged"]["within_lookahead"] == 1
    assert overview["videos_deleted"]["due"] == 0


def test_a_deletion_through_the_api_takes_the_organisations_grace(
    client: FlaskClient, session: Session, org: Any, admin: Any, rep: Any
) -> None:
    headers = bearer(client, rep)
    video_id = _draft(client, headers)
    policy = {
        "video_retention_days": None,
        "view_retention_days": None,
        "deleted_retention_days": 0,
    }
    assert (
        client.put("/api/v1/organisation/retention", json=policy, headers=bearer(client, admin))
    ).status_code == 200
    assert client.delete(f"/api/v1/videos/{video_id}", headers=headers).status_code in (200, 204)
    video = session.get_one(Video, video_id)
    session.refresh(video)
    assert video.purge_after == video.deleted_at
