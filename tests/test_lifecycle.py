"""A video's whole life through the API, on the real services: deleted (gone for everyone at
once, its pending pushes dropped, its inbox items showing it removed), restored until the purge,
purged (every stored object of it gone, on local disk and on S3), archived and unarchived; and
a share recalled (its recipients lose what it alone gave them, its pending pushes dropped)."""

from __future__ import annotations

import io
import uuid
from datetime import timedelta
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from fieldcast.context import AppContext, set_current
from fieldcast.db import utcnow
from fieldcast.inbox import delivery
from fieldcast.inbox import services as inbox
from fieldcast.inbox.types import NotificationType
from fieldcast.models.attachments import Attachment, AttachmentKind
from fieldcast.models.inbox import Notification
from fieldcast.models.outbox import OutboxJob, OutboxStatus
from fieldcast.models.sharing import RecipientState, Share, ShareRecipient
from fieldcast.models.uploads import Upload, UploadProtocol
from fieldcast.models.videos import Video, VideoStatus
from fieldcast.outbox import services as outbox
from fieldcast.outbox.names import TaskName
from fieldcast.uploads import services as uploads_services
from fieldcast.videos import processing, purge
from media.storage import LocalStorage, S3Storage, Storage, StorageError, storage_from_url
from tests import factories
from tests.api_support import share_video
from tests.push_support import RecordingSink
from tests.worker_support import drain_outbox as drain

LEASE = timedelta(seconds=60)


def _video(session: Session, owner: Any, status: VideoStatus = VideoStatus.PLAYABLE) -> Video:
    video = Video(org_id=owner.org_id, owner_id=owner.id, title="Competitor pricing", status=status)
    session.add(video)
    session.flush()
    return video


def _inbox(client: FlaskClient, auth: Any, user: Any) -> list[dict[str, Any]]:
    response = client.get("/api/v1/notifications", headers=auth(user))
    assert response.status_code == 200, response.get_json()
    items: list[dict[str, Any]] = response.get_json()["items"]
    return items


def _listed(client: FlaskClient, auth: Any, user: Any, path: str = "/api/v1/videos") -> set[str]:
    response = client.get(path, headers=auth(user))
    assert response.status_code == 200, response.get_json()
    return {item["id"] for item in response.get_json()["items"]}


# -- delete and restore ---------------------------------------------------------------------------


def test_a_deleted_video_is_gone_for_everyone_at_once_and_comes_back_when_restored(
    client: FlaskClient,
    session: Session,
    context: AppContext,
    sink: RecordingSink,
    org: Any,
    rep: Any,
    admin: Any,
    auth: Any,
) -> None:
    peer, late, other = (factories.UserFactory(org=org) for _ in range(3))
    for person in (peer, late):
        factories.DeviceFactory(user=person)
    video = _video(session, rep)
    session.commit()

    # A share that went out: the peer has the push and the inbox item.
    share_video(client, auth(rep), video, peer)
    drain(context)
    assert len(sink.about(video.id)) == 1
    [item] = _inbox(client, auth, peer)
    assert item["video_state"] == "available"
    # A second share recorded but not sent yet when the author deletes the video.
    pending_share = share_video(client, auth(rep), video, late)
    pushed_before = len(sink.sent)

    deleted = client.delete(f"/api/v1/videos/{video.id}", headers=auth(rep))
    assert deleted.status_code == 204 and deleted.get_data() == b""

    # Gone at once, for everyone: its author, its recipients, admins.
    for user in (rep, peer, late, admin):
        assert client.get(f"/api/v1/videos/{video.id}", headers=auth(user)).status_code == 404
        assert str(video.id) not in _listed(client, auth, user)
    # The pending share's pushes were dropped, and a worker running now sends nothing.
    drain(context)
    assert len(sink.sent) == pushed_before
    assert _inbox(client, auth, late) == []
    states = session.execute(
        select(ShareRecipient.state, ShareRecipient.failure_reason).where(
            ShareRecipient.share_id == uuid.UUID(pending_share)
        )
    ).all()
    assert states == [(RecipientState.FAILED, "video_removed")]
    # The peer's inbox item stays, showing the video removed.
    [item] = _inbox(client, auth, peer)
    assert item["video_state"] == "removed" and item["data"]["video_id"] == str(video.id)

    # Its author and admins find it among the deleted ones, with its purge date; nobody else.
    for user in (rep, admin):
        page = client.get("/api/v1/videos/deleted", headers=auth(user)).get_json()
        [found] = [v for v in page["items"] if v["id"] == str(video.id)]
        purge_after = found["purge_after"]
        assert found["deleted_at"] and purge_after
    assert str(video.id) not in _listed(client, auth, other, "/api/v1/videos/deleted")
    assert str(video.id) not in _listed(client, auth, peer, "/api/v1/videos/deleted")
    session.refresh(video)
    assert video.purge_after is not None and video.deleted_at is not None
    grace = video.purge_after - video.deleted_at
    assert grace == timedelta(seconds=context.settings.video_purge_grace_s) == timedelta(days=7)

    # Deleting again changes nothing; others cannot restore it (it does not exist for them).
    assert client.delete(f"/api/v1/videos/{video.id}", headers=auth(rep)).status_code == 204
    session.refresh(video)
    assert video.purge_after - video.deleted_at == grace
    for user in (peer, other):
        response = client.post(f"/api/v1/videos/{video.id}/restore", headers=auth(user))
        assert response.status_code == 404

    restored = client.post(f"/api/v1/videos/{video.id}/restore", headers=auth(rep))
    assert restored.status_code == 200, restored.get_json()
    assert restored.get_json()["id"] == str(video.id)
    for user in (rep, peer, admin):
        assert client.get(f"/api/v1/videos/{video.id}", headers=auth(user)).status_code == 200
        assert str(video.id) in _listed(client, auth, user)
    assert str(video.id) not in _listed(client, auth, rep, "/api/v1/videos/deleted")
    [item] = _inbox(client, auth, peer)
    assert item["video_state"] == "available"
    # No push goes out again for what was dropped.
    drain(context)
    assert len(sink.sent) == pushed_before


def test_admins_delete_and_restore_but_recipients_and_managers_may_not(
    client: FlaskClient, session: Session, org: Any, rep: Any, admin: Any, auth: Any
) -> None:
    manager = factories.UserFactory(org=org, manager=True)
    rep.manager_id = manager.id
    recipient = factories.UserFactory(org=org)
    video = _video(session, rep)
    session.commit()
    share_video(client, auth(rep), video, recipient)
    url = f"/api/v1/videos/{video.id}"

    # A recipient sees the video but may not delete it; the author's manager does not see it.
    refused = client.delete(url, headers=auth(recipient))
    assert refused.status_code == 403 and refused.get_json()["code"] == "permission_denied"
    assert client.delete(url, headers=auth(manager)).status_code == 404
    assert client.post(f"{url}/archive", headers=auth(recipient)).status_code == 403

    assert client.delete(url, headers=auth(admin)).status_code == 204
    assert client.get(url, headers=auth(rep)).status_code == 404
    assert client.post(f"{url}/restore", headers=auth(recipient)).status_code == 404
    assert client.post(f"{url}/restore", headers=auth(manager)).status_code == 404
    assert client.post(f"{url}/restore", headers=auth(admin)).status_code == 200
    assert client.get(url, headers=auth(recipient)).status_code == 200


def test_a_push_already_running_when_the_video_is_deleted_does_not_go_out(
    session: Session, context: AppContext, sink: RecordingSink, org: Any, rep: Any
) -> None:
    from fieldcast.policy import Principal
    from fieldcast.videos import services as videos

    factories.DeviceFactory(user=rep)
    video = _video(session, rep)
    notification_id = inbox.notify(
        session,
        org_id=org.id,
        user_id=rep.id,
        type=NotificationType.VIDEO_PLAYABLE,
        title="Ready to watch",
        data={"video_id": video.id},
        dedup_key=f"test:{video.id}",
    )
    assert notification_id is not None
    videos.delete_video(
        session, Principal(user=rep), context.storage, video.id, grace=timedelta(days=1)
    )
    # The queued push was dropped with the deletion ...
    job = session.scalars(
        select(OutboxJob).where(OutboxJob.task == TaskName.NOTIFICATIONS_PUSH)
    ).one()
    assert job.status is OutboxStatus.DONE and job.last_error == "dropped: video_removed"
    # ... and a push job that was already past that point checks again before sending.
    outcomes = delivery.deliver(session, [notification_id])
    assert outcomes[notification_id].failure == "video_removed"
    assert sink.sent == []


def test_dropping_a_deleted_videos_pushes_reads_the_pending_pushes_not_the_inbox(
    session: Session, context: AppContext, sink: RecordingSink, org: Any, rep: Any
) -> None:
    from sqlalchemy import event, insert, text

    from fieldcast.policy import Principal
    from fieldcast.videos import services as videos

    video, other = _video(session, rep), _video(session, rep)
    # A large inbox about another video: nothing of it is read when this one is deleted.
    session.execute(
        insert(Notification),
        [
            inbox.item_values(
                org_id=org.id,
                user_id=rep.id,
                type=NotificationType.VIDEO_PLAYABLE,
                title="Ready to watch",
                data={"video_id": other.id},
                dedup_key=f"test:old:{i}",
            )
            for i in range(3000)
        ],
    )

    def pushed(about: Video, key: str) -> uuid.UUID:
        notification_id = inbox.notify(
            session,
            org_id=org.id,
            user_id=rep.id,
            type=NotificationType.VIDEO_PLAYABLE,
            title="Ready to watch",
            data={"video_id": about.id},
            dedup_key=f"test:{key}",
        )
        assert notification_id is not None
        return notification_id

    current, kept = pushed(video, "current"), pushed(other, "kept")
    # A push recorded before pushes named what they are about: found through its item.
    earlier = pushed(video, "earlier")
    session.execute(
        update(OutboxJob)
        .where(OutboxJob.dedup_key == f"push:{earlier}")
        .values(payload={"notification_id": str(earlier)})
    )
    # ... and the organisation's pushes already sent.
    session.execute(
        insert(OutboxJob),
        [
            {
                "org_id": org.id,
                "task": TaskName.NOTIFICATIONS_PUSH,
                "queue": "notify",
                "payload": {"notification_id": str(uuid.uuid4()), "about": {}},
                "status": OutboxStatus.DONE,
            }
            for _ in range(3000)
        ],
    )
    session.execute(text("ANALYZE notifications"))
    session.execute(text("ANALYZE outbox_jobs"))

    statements: list[tuple[str, Any]] = []

    def capture(conn: Any, cursor: Any, statement: str, parameters: Any, *args: Any) -> None:
        if "outbox_jobs" in statement or "notifications" in statement:
            statements.append((statement, parameters))

    connection = session.connection()
    event.listen(connection, "before_cursor_execute", capture)
    try:
        videos.delete_video(
            session, Principal(user=rep), context.storage, video.id, grace=timedelta(days=1)
        )
    finally:
        event.remove(connection, "before_cursor_execute", capture)

    states = dict(
        session.execute(
            select(OutboxJob.dedup_key, OutboxJob.last_error).where(
                OutboxJob.task == TaskName.NOTIFICATIONS_PUSH
            )
        ).all()
    )
    assert states[f"push:{current}"] == "dropped: video_removed"
    assert states[f"push:{earlier}"] == "dropped: video_removed"
    assert states[f"push:{kept}"] is None

    drops = [(sql, params) for sql, params in statements if "outbox_jobs" in sql]
    assert drops
    for sql, params in statements:
        plan = "\n".join(row[0] for row in connection.exec_driver_sql(f"EXPLAIN {sql}", params))
        assert "Seq Scan on notifications" not in plan, plan
    # The pushes are found among the unfinished jobs, through their index: the sent ones are
    # not read either.
    for sql, params in drops:
        plan = "\n".join(row[0] for row in connection.exec_driver_sql(f"EXPLAIN {sql}", params))
        assert "Seq Scan on outbox_jobs" not in plan, plan


def test_processing_stands_down_for_a_deleted_video_and_resumes_when_it_is_restored(
    client: FlaskClient, session: Session, context: AppContext, rep: Any, auth: Any
) -> None:
    video = _video(session, rep, VideoStatus.PROCESSING)
    video.source_key = f"org/{rep.org_id}/videos/{video.id}/source/x"
    video.source_version = 1
    processing.start(session, video)
    session.commit()
    assert client.delete(f"/api/v1/videos/{video.id}", headers=auth(rep)).status_code == 204

    set_current(context)
    try:
        [job_id] = session.scalars(
            select(OutboxJob.id).where(OutboxJob.task == TaskName.VIDEO_PROCESS)
        ).all()
        # It stands down without an error: not failed, nothing told to the author.
        assert outbox.execute(context.db, job_id, lease=LEASE) is OutboxStatus.DONE
    finally:
        set_current(None)
    session.refresh(video)
    assert video.status is VideoStatus.PROCESSING and video.failure_code is None
    assert session.scalar(select(func.count()).select_from(Notification)) == 0

    assert client.post(f"/api/v1/videos/{video.id}/restore", headers=auth(rep)).status_code == 200
    job = session.get(OutboxJob, job_id, populate_existing=True)
    assert job is not None and job.status is OutboxStatus.PENDING and job.attempts == 0


# -- the purge ------------------------------------------------------------------------------------


def _stock(
    session: Session, storage: Storage, video: Video, owner: Any
) -> tuple[list[str], uuid.UUID]:
    """Store what a processed video holds: two source versions with their outputs, an
    attachment file, and an upload of a new file half sent. Returns the keys stored and the
    upload's id (its unfinished parts are stored outside the video's folder)."""
    folder = purge.video_folder(video.org_id, video.id)
    keys = [
        f"{folder}/source/{uuid.uuid4()}",
        f"{folder}/source/{uuid.uuid4()}",
        f"{folder}/v1/first/index.m3u8",
        f"{folder}/v1/first/seg-0.m4s",
        f"{folder}/v2/720p/index.m3u8",
        f"{folder}/v2/poster.jpg",
        f"{folder}/v2/offline.mp4",
    ]
    for key in keys:
        storage.put_bytes(key, b"media bytes")
    attachment_id = uuid.uuid4()
    attachment_key = f"{folder}/attachments/{attachment_id}/deck.pdf"
    storage.put_bytes(attachment_key, b"%PDF-1.4")
    keys.append(attachment_key)
    session.add(
        Attachment(
            id=attachment_id,
            org_id=video.org_id,
            video_id=video.id,
            created_by_id=owner.id,
            kind=AttachmentKind.FILE,
            title="Deck",
            filename="deck.pdf",
            content_type="application/pdf",
            size_bytes=8,
            storage_key=attachment_key,
        )
    )
    upload_id = uuid.uuid4()
    upload_key = f"{folder}/source/{upload_id}"
    state = storage.begin_upload(str(upload_id), upload_key)
    _, state = storage.append_upload(state, 0, io.BytesIO(b"half a video"), limit=1 << 20)
    session.add(
        Upload(
            id=upload_id,
            org_id=video.org_id,
            video_id=video.id,
            owner_id=owner.id,
            protocol=UploadProtocol.TUS,
            length=1 << 20,
            offset=12,
            storage_key=upload_key,
            state=state,
            expires_at=utcnow() + timedelta(hours=1),
        )
    )
    session.flush()
    return keys, upload_id


def _purge_and_check(
    session: Session,
    db: Any,
    storage: Storage,
    org: Any,
    rep: Any,
    listing: Any,
) -> None:
    kept, doomed = _video(session, rep), _video(session, rep)
    kept_keys, _ = _stock(session, storage, kept, rep)
    doomed_keys, doomed_upload = _stock(session, storage, doomed, rep)
    doomed_folder = purge.video_folder(org.id, doomed.id)
    if isinstance(storage, S3Storage):
        # A direct upload the phone started and never finished, straight to the bucket.
        storage.begin_direct_upload(f"{doomed_folder}/source/direct")
    before = list(listing())
    assert set(doomed_keys) <= set(before)
    assert [key for key in before if str(doomed_upload) in key]  # its partial upload
    # Deleted a week ago, by someone who then did not restore it; the other is only deleted.
    doomed.deleted_at = utcnow() - timedelta(days=8)
    doomed.purge_after = utcnow() - timedelta(days=1)
    kept.deleted_at = utcnow()
    kept.purge_after = utcnow() + timedelta(days=7)
    session.commit()
    doomed_id, kept_id = doomed.id, kept.id

    counts = purge.purge_deleted(db, storage)
    assert counts["purged"] == 1 and counts["failed"] == 0
    assert counts["objects"] >= len(doomed_keys)
    left = list(listing())
    assert [key for key in left if str(doomed_id) in key or str(doomed_upload) in key] == []
    assert set(kept_keys) <= set(left)
    session.expire_all()
    assert session.get(Video, doomed_id) is None
    assert session.scalar(select(func.count()).where(Upload.video_id == doomed_id)) == 0
    assert session.get(Video, kept_id) is not None
    # Again: nothing more to do, nothing fails.
    assert purge.purge_deleted(db, storage) == {"purged": 0, "objects": 0, "failed": 0}


def test_the_purge_removes_every_stored_object_of_the_video_on_local_disk(
    session: Session, db: Any, tmp_path: Any, org: Any, rep: Any
) -> None:
    storage = LocalStorage(tmp_path / "media")

    def listing() -> list[str]:
        # Every file on the disk, internal ones (unfinished uploads) included.
        return [
            p.relative_to(storage.root).as_posix() for p in storage.root.rglob("*") if p.is_file()
        ]

    _purge_and_check(session, db, storage, org, rep, listing)


@pytest.fixture
def s3(s3_endpoint: str) -> S3Storage:
    import boto3

    bucket = f"fieldcast-{uuid.uuid4().hex[:12]}"
    boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1").create_bucket(
        Bucket=bucket
    )
    storage = storage_from_url(f"s3://{bucket}/media/", s3_endpoint_url=s3_endpoint)
    assert isinstance(storage, S3Storage)
    return storage


def test_the_purge_removes_every_stored_object_of_the_video_on_s3(
    session: Session, db: Any, s3: S3Storage, org: Any, rep: Any
) -> None:
    def listing() -> list[str]:
        # The bucket as S3 lists it: every object, and every unfinished multipart upload.
        objects = [
            item["Key"]
            for page in s3.client.get_paginator("list_objects_v2").paginate(Bucket=s3.bucket)
            for item in page.get("Contents", [])
        ]
        uploads = s3.client.list_multipart_uploads(Bucket=s3.bucket).get("Uploads", [])
        return objects + [f"multipart:{u['Key']}" for u in uploads]

    before = listing()
    _purge_and_check(
        session, db, s3, org, rep, lambda: [k.removeprefix("media/") for k in listing()]
    )
    # The bucket lost what the doomed video had and nothing else: the kept video's objects,
    # its unfinished upload and its tail are all there.
    assert set(before) <= set(listing())


class RefusingDiscards:
    """The storage, except that discarding an upload's parts fails (a store that is down)."""

    def __init__(self, storage: Storage) -> None:
        self.storage = storage

    def __getattr__(self, name: str) -> Any:
        return getattr(self.storage, name)

    def abort_upload(self, state: dict[str, Any]) -> None:
        raise StorageError("store unavailable")

    def abort_direct_upload(self, key: str, upload_id: str) -> None:
        raise StorageError("store unavailable")


def _cancelled_then_purged(
    session: Session,
    db: Any,
    storage: Storage,
    rep: Any,
    listing: Any,
    check_gone: Any = None,
) -> None:
    """A video deleted while its file was half sent, whose parts could not be discarded then:
    the upload is gone for its sender at once, and the purge removes its parts."""
    from fieldcast.policy import Principal
    from fieldcast.videos import services as videos

    video = _video(session, rep, VideoStatus.UPLOADING)
    _, upload_id = _stock(session, storage, video, rep)
    ids = [upload_id]
    if isinstance(storage, S3Storage):
        direct_id = uuid.uuid4()
        key = f"{purge.video_folder(video.org_id, video.id)}/source/{direct_id}"
        session.add(
            Upload(
                id=direct_id,
                org_id=video.org_id,
                video_id=video.id,
                owner_id=rep.id,
                protocol=UploadProtocol.S3_MULTIPART,
                length=1 << 24,
                storage_key=key,
                state={"upload_id": storage.begin_direct_upload(key)},
                expires_at=utcnow() + timedelta(hours=1),
            )
        )
        ids.append(direct_id)
    session.commit()
    video_id = video.id

    def parts() -> list[str]:
        return [key for key in listing() if any(str(i) in key for i in ids)]

    assert parts()
    refusing: Any = RefusingDiscards(storage)
    videos.delete_video(session, Principal(user=rep), refusing, video_id, grace=timedelta(days=1))
    session.commit()
    # Discarding the parts failed: they are still stored, and so is what finds them.
    assert parts()
    cancelled = session.scalars(select(Upload).where(Upload.video_id == video_id)).all()
    assert len(cancelled) == len(ids) and all(u.cancelled_at is not None for u in cancelled)
    if check_gone is not None:
        check_gone(upload_id)
    # Nor is the expiry sweep, which leaves cancelled uploads to the purge, a way out.
    session.execute(update(Upload).where(Upload.video_id == video_id).values(expires_at=utcnow()))
    session.execute(
        update(Video).where(Video.id == video_id).values(purge_after=utcnow() - timedelta(1))
    )
    session.commit()
    assert uploads_services.expire(db, storage)["expired"] == 0

    # A purge whose storage still refuses leaves everything for the next run ...
    assert purge.purge_deleted(db, refusing)["failed"] == 1
    session.expire_all()
    assert session.get(Video, video_id) is not None
    assert parts()
    # ... which removes the parts, then the rows.
    assert purge.purge_deleted(db, storage)["purged"] == 1
    assert parts() == []
    session.expire_all()
    assert session.get(Video, video_id) is None
    assert session.scalar(select(func.count()).where(Upload.video_id == video_id)) == 0


def test_a_half_sent_upload_of_a_deleted_video_is_discarded_by_the_purge_on_local_disk(
    client: FlaskClient, session: Session, context: AppContext, rep: Any, auth: Any
) -> None:
    storage = context.storage
    assert isinstance(storage, LocalStorage)

    def listing() -> list[str]:
        return [
            p.relative_to(storage.root).as_posix() for p in storage.root.rglob("*") if p.is_file()
        ]

    def check_gone(upload_id: uuid.UUID) -> None:
        # A client still sending finds it gone, as when the row went with the deletion.
        tus = {**auth(rep), "Tus-Resumable": "1.0.0"}
        assert client.head(f"/api/v1/uploads/{upload_id}", headers=tus).status_code == 404
        response = client.patch(
            f"/api/v1/uploads/{upload_id}",
            data=b"more",
            headers={
                **tus,
                "Upload-Offset": "12",
                "Content-Type": "application/offset+octet-stream",
            },
        )
        assert response.status_code == 404

    _cancelled_then_purged(session, context.db, storage, rep, listing, check_gone)


def test_a_half_sent_upload_of_a_deleted_video_is_discarded_by_the_purge_on_s3(
    session: Session, db: Any, s3: S3Storage, rep: Any
) -> None:
    def listing() -> list[str]:
        objects = [
            item["Key"]
            for page in s3.client.get_paginator("list_objects_v2").paginate(Bucket=s3.bucket)
            for item in page.get("Contents", [])
        ]
        uploads = s3.client.list_multipart_uploads(Bucket=s3.bucket).get("Uploads", [])
        return objects + [f"multipart:{u['Key']}" for u in uploads]

    _cancelled_then_purged(session, db, s3, rep, listing)


def test_a_purged_video_cannot_be_restored(
    client: FlaskClient, session: Session, context: AppContext, rep: Any, auth: Any
) -> None:
    video = _video(session, rep)
    session.commit()
    assert client.delete(f"/api/v1/videos/{video.id}", headers=auth(rep)).status_code == 204
    session.execute(
        update(Video).where(Video.id == video.id).values(purge_after=utcnow() - timedelta(1))
    )
    session.commit()
    assert purge.purge_deleted(context.db, context.storage)["purged"] == 1
    response = client.post(f"/api/v1/videos/{video.id}/restore", headers=auth(rep))
    assert response.status_code == 404
    assert str(video.id) not in _listed(client, auth, rep, "/api/v1/videos/deleted")


# -- archive --------------------------------------------------------------------------------------


def test_an_archived_video_leaves_the_lists_but_stays_reachable_by_its_link(
    client: FlaskClient, session: Session, context: AppContext, org: Any, rep: Any, auth: Any
) -> None:
    peer = factories.UserFactory(org=org)
    video = _video(session, rep)
    session.commit()
    share_video(client, auth(rep), video, peer)
    url = f"/api/v1/videos/{video.id}"

    archived = client.post(f"{url}/archive", headers=auth(rep))
    assert archived.status_code == 200 and archived.get_json()["archived_at"]
    again = client.post(f"{url}/archive", headers=auth(rep))
    assert again.get_json()["archived_at"] == archived.get_json()["archived_at"]
    for user in (rep, peer):
        assert str(video.id) not in _listed(client, auth, user)
        reached = client.get(url, headers=auth(user))
        assert reached.status_code == 200 and reached.get_json()["archived_at"]
    # Only its author (and admins) archive it; a recipient is refused.
    assert client.post(f"{url}/archive", headers=auth(peer)).status_code == 403

    unarchived = client.post(f"{url}/unarchive", headers=auth(rep))
    assert unarchived.status_code == 200 and unarchived.get_json()["archived_at"] is None
    for user in (rep, peer):
        assert str(video.id) in _listed(client, auth, user)


# -- recall ---------------------------------------------------------------------------------------


def test_a_recalled_share_takes_back_only_what_it_alone_gave(
    client: FlaskClient,
    session: Session,
    context: AppContext,
    sink: RecordingSink,
    org: Any,
    rep: Any,
    admin: Any,
    auth: Any,
) -> None:
    manager = factories.UserFactory(org=org, manager=True)
    rep.manager_id = manager.id
    only_this, also_other, later = (factories.UserFactory(org=org) for _ in range(3))
    for person in (only_this, also_other, later):
        factories.DeviceFactory(user=person)
    video = _video(session, rep)
    session.commit()

    recalled = share_video(client, auth(rep), video, only_this, also_other)
    # Someone else passed the video on to `also_other` too.
    share_video(client, auth(admin), video, also_other)
    drain(context)
    # A third share, not yet fanned out, is recalled too.
    not_sent = share_video(client, auth(rep), video, later)
    pushed = len(sink.sent)
    url = f"/api/v1/shares/{recalled}/recall"

    # The sender's manager follows the share but may not recall it; a recipient does not see it.
    assert client.get(f"/api/v1/shares/{recalled}", headers=auth(manager)).status_code == 200
    refused = client.post(url, headers=auth(manager))
    assert refused.status_code == 403 and refused.get_json()["code"] == "permission_denied"
    assert client.post(url, headers=auth(only_this)).status_code == 404

    response = client.post(url, headers=auth(rep))
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["recalled_at"] and body["status"] == "recalled"
    video_url = f"/api/v1/videos/{video.id}"
    assert client.get(video_url, headers=auth(only_this)).status_code == 404
    assert str(video.id) not in _listed(client, auth, only_this)
    assert client.get(video_url, headers=auth(also_other)).status_code == 200
    [item] = [i for i in _inbox(client, auth, only_this) if i["data"].get("share_id") == recalled]
    assert item["video_state"] == "removed"

    # Recalled by an admin before its fan-out ran: its person never gets a push or access.
    assert client.post(f"/api/v1/shares/{not_sent}/recall", headers=auth(admin)).status_code == 200
    assert client.get(video_url, headers=auth(later)).status_code == 404
    drain(context)
    assert len(sink.sent) == pushed
    assert client.get(video_url, headers=auth(later)).status_code == 404
    # The sender still has both in their record, with when they were recalled.
    followed = client.get(f"/api/v1/videos/{video.id}/shares", headers=auth(rep)).get_json()
    recalled_ids = {s["id"] for s in followed["items"] if s["recalled_at"]}
    assert recalled_ids == {recalled, not_sent}
    # Again: unchanged.
    again = client.post(url, headers=auth(rep))
    assert again.status_code == 200 and again.get_json()["recalled_at"] == body["recalled_at"]
    share = session.get(Share, uuid.UUID(recalled), populate_existing=True)
    assert share is not None and share.recalled_at is not None


@pytest.mark.slow
@pytest.mark.timeout(120, method="thread")
def test_the_scheduled_purge_runs_in_a_worker(
    monkeypatch: pytest.MonkeyPatch, settings: Any, committed_db: Any, redis: Any
) -> None:
    from tests.worker_support import install_worker_context, run_burst
    from workers.schedule import PERIODIC, enqueue_due

    ctx = install_worker_context(monkeypatch, settings, committed_db, redis)
    with committed_db.session() as s:
        factories.bind(s)
        try:
            owner = factories.UserFactory(org=factories.OrganisationFactory())
            video = _video(s, owner, VideoStatus.READY)
            keys, _ = _stock(s, ctx.storage, video, owner)
            video.deleted_at = utcnow() - timedelta(days=8)
            video.purge_after = utcnow() - timedelta(seconds=1)
            s.commit()
            video_id, folder = video.id, purge.video_folder(video.org_id, video.id)
        finally:
            factories.bind(None)
    stored = list(ctx.storage.keys())
    assert set(keys) <= set(stored)

    [periodic] = [p for p in PERIODIC if p.id == "purge-deleted-videos"]
    assert enqueue_due(redis, (periodic,)) == ["purge-deleted-videos"]
    assert run_burst(["default"]) is True
    left = list(ctx.storage.keys())
    assert not [key for key in left if key.startswith(folder + "/")]
    with committed_db.session() as s:
        assert s.get(Video, video_id) is None


def test_chat_cards_not_yet_posted_are_dropped_with_the_share_or_the_video(
    client: FlaskClient, session: Session, context: AppContext, org: Any, rep: Any, auth: Any
) -> None:
    from fieldcast.integrations import webhooks
    from fieldcast.models.integrations import TeamWebhook, WebhookKind

    team = factories.TeamFactory(org=org)
    factories.MembershipFactory(team=team, user=factories.UserFactory(org=org))
    session.add(
        TeamWebhook(
            org_id=org.id,
            team_id=team.id,
            kind=WebhookKind.SLACK,
            url="https://hooks.slack.com/services/T000/B000/lifecycle",
        )
    )
    recalled_video, deleted_video = _video(session, rep), _video(session, rep)
    session.commit()

    def card_jobs(share_id: str) -> list[OutboxJob]:
        return list(
            session.scalars(
                select(OutboxJob)
                .where(
                    OutboxJob.task == TaskName.WEBHOOKS_POST,
                    OutboxJob.payload["share_id"].astext == share_id,
                )
                .execution_options(populate_existing=True)
            )
        )

    shared = []
    for video in (recalled_video, deleted_video):
        response = client.post(
            f"/api/v1/videos/{video.id}/shares",
            json={"team_ids": [str(team.id)]},
            headers=auth(rep),
        )
        assert response.status_code == 201, response.get_json()
        shared.append(response.get_json()["id"])
        [job] = card_jobs(shared[-1])
        assert job.status is OutboxStatus.PENDING

    assert client.post(f"/api/v1/shares/{shared[0]}/recall", headers=auth(rep)).status_code == 200
    assert client.delete(f"/api/v1/videos/{deleted_video.id}", headers=auth(rep)).status_code == 204
    for share_id, reason in zip(shared, ("share_recalled", "video_removed"), strict=True):
        [job] = card_jobs(share_id)
        assert job.status is OutboxStatus.DONE and job.last_error == f"dropped: {reason}"
        # A post already running checks again and posts nothing (no request leaves).
        set_current(context)
        try:
            webhooks.post_share(session, dict(job.payload))
        finally:
            set_current(None)
