"""Attachments as the author's phone adds them and as colleagues list and download them."""

from __future__ import annotations

import dataclasses
import io
import os
import time
import uuid
import zipfile
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import pytest
from sqlalchemy import select

from fieldcast.attachments.services import MAX_ATTACHMENTS_PER_VIDEO
from fieldcast.context import AppContext
from fieldcast.models.attachments import Attachment, AttachmentKind
from fieldcast.videos import playback
from media.storage import S3Storage
from tests import factories
from tests.conftest import SECRET_KEY

PROBLEM_JSON = "application/problem+json"
PDF = b"%PDF-1.7\n" + os.urandom(5000) + b"\n%%EOF\n"


def _pptx() -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr("ppt/presentation.xml", "<presentation/>")
    return out.getvalue()


def _video(client: Any, headers: dict[str, str]) -> str:
    response = client.post("/api/v1/videos", json={"title": "Pricing objection"}, headers=headers)
    assert response.status_code == 201, response.get_json()
    video_id: str = response.get_json()["id"]
    return video_id


def _url(video_id: str | uuid.UUID, suffix: str = "") -> str:
    return f"/api/v1/videos/{video_id}/attachments{suffix}"


def _upload(
    client: Any,
    headers: dict[str, str],
    video_id: str,
    data: bytes,
    filename: str = "Q3 pricing.pdf",
    content_type: str = "application/pdf",
    **fields: str,
) -> Any:
    return client.post(
        _url(video_id, "/files"),
        data={"file": (io.BytesIO(data), filename, content_type), **fields},
        content_type="multipart/form-data",
        headers=headers,
    )


def _local(url: str) -> str:
    """The path and query of an absolute URL, for the test client."""
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}"


def _problem(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == PROBLEM_JSON
    body: dict[str, Any] = response.get_json()
    assert body["code"] == code, body
    return body


def _listed(client: Any, headers: dict[str, str], video_id: str) -> list[dict[str, Any]]:
    response = client.get(_url(video_id), headers=headers)
    assert response.status_code == 200, response.get_json()
    items: list[dict[str, Any]] = response.get_json()["items"]
    return items


def _stored_files(storage_dir: Path, video_id: str) -> list[Path]:
    return [p for p in storage_dir.glob(f"org/*/videos/{video_id}/attachments/**/*") if p.is_file()]


def _limit(monkeypatch: pytest.MonkeyPatch, context: AppContext, max_bytes: int) -> None:
    settings = context.settings
    limits = dataclasses.replace(settings.limits, max_attachment_bytes=max_bytes)
    monkeypatch.setattr(context, "settings", dataclasses.replace(settings, limits=limits))


# -- links and notes ---------------------------------------------------------------------------


def test_links_and_notes_round_trip(client: Any, rep: Any, auth: Any) -> None:
    headers = auth(rep)
    video_id = _video(client, headers)

    link = client.post(
        _url(video_id),
        json={"kind": "link", "url": "https://www.example.com/battlecard?deal=42"},
        headers=headers,
    )
    assert link.status_code == 201, link.get_json()
    note = client.post(
        _url(video_id),
        json={
            "kind": "note",
            "title": "  What   worked ",
            "body": "  Lead with the ROI slide.\nThen the case study.  ",
        },
        headers=headers,
    )
    assert note.status_code == 201, note.get_json()
    untitled = client.post(
        _url(video_id),
        json={"kind": "note", "body": "Call back Tuesday\nbring pricing"},
        headers=headers,
    )
    assert untitled.status_code == 201

    assert link.get_json()["title"] == "www.example.com"
    assert link.get_json()["url"] == "https://www.example.com/battlecard?deal=42"
    assert note.get_json()["title"] == "What worked"
    assert note.get_json()["body"] == "Lead with the ROI slide.\nThen the case study."
    assert untitled.get_json()["title"] == "Call back Tuesday"

    items = _listed(client, headers, video_id)
    assert items == [link.get_json(), note.get_json(), untitled.get_json()]
    assert [item["kind"] for item in items] == ["link", "note", "note"]
    for item in items:
        assert item["video_id"] == video_id
        assert item["created_by_id"] == str(rep.id)
        assert item["download_url"] is None and item["filename"] is None


def test_the_video_comes_with_its_attachments(client: Any, rep: Any, auth: Any) -> None:
    headers = auth(rep)
    video_id = _video(client, headers)
    note = client.post(_url(video_id), json={"kind": "note", "body": "Read me"}, headers=headers)
    uploaded = _upload(client, headers, video_id, PDF)
    video = client.get(f"/api/v1/videos/{video_id}", headers=headers).get_json()
    assert [item["id"] for item in video["attachments"]] == [
        note.get_json()["id"],
        uploaded.get_json()["id"],
    ]
    assert client.get(_local(video["attachments"][1]["download_url"])).data == PDF


def test_bad_links_and_notes_name_the_field(client: Any, rep: Any, auth: Any) -> None:
    headers = auth(rep)
    video_id = _video(client, headers)
    cases = [
        ({"kind": "link", "url": "javascript:alert(1)"}, "url"),
        ({"kind": "link", "url": "ftp://files.example.com/deck.pdf"}, "url"),
        ({"kind": "link", "url": "https://"}, "url"),
        ({"kind": "link", "url": "https://example.com/" + "a" * 2000}, "url"),
        ({"kind": "link", "url": "https://user:secret@example.com"}, "url"),
        ({"kind": "link", "url": "https://exa mple.com"}, "url"),
        ({"kind": "link"}, "url"),
        ({"kind": "link", "url": "https://example.com", "body": "x"}, "body"),
        ({"kind": "note", "body": "   "}, "body"),
        ({"kind": "note", "body": "x" * 10_001}, "body"),
        ({"kind": "note", "body": "nul \x00 byte"}, "body"),
        ({"kind": "note", "body": "ok", "title": "   "}, "title"),
        ({"kind": "note", "body": "ok", "title": "x" * 201}, "title"),
        ({"kind": "file", "body": "ok"}, "kind"),
        ({"kind": "note", "body": "ok", "colour": "red"}, "colour"),
    ]
    for body, field in cases:
        response = client.post(_url(video_id), json=body, headers=headers)
        problem = _problem(response, 422, "validation_failed")
        assert field in problem["errors"], (body, problem)
    assert _listed(client, headers, video_id) == []


# -- files -------------------------------------------------------------------------------------


def test_pdf_uploads_and_downloads_through_its_signed_url(client: Any, rep: Any, auth: Any) -> None:
    headers = auth(rep)
    video_id = _video(client, headers)
    response = _upload(client, headers, video_id, PDF, title="Pricing deck")
    assert response.status_code == 201, response.get_json()
    created = response.get_json()
    assert created["kind"] == "file"
    assert created["title"] == "Pricing deck"
    assert created["filename"] == "Q3 pricing.pdf"
    assert created["content_type"] == "application/pdf"
    assert created["size_bytes"] == len(PDF)

    [listed] = _listed(client, headers, video_id)
    assert listed["id"] == created["id"]
    # The signed URL is the credential: no bearer token on the download.
    download = client.get(_local(listed["download_url"]))
    assert download.status_code == 200
    assert download.data == PDF
    assert download.mimetype == "application/pdf"
    disposition = download.headers["Content-Disposition"]
    assert disposition == 'attachment; filename="Q3 pricing.pdf"'

    ranged = client.get(_local(listed["download_url"]), headers={"Range": "bytes=100-299"})
    assert ranged.status_code == 206
    assert ranged.data == PDF[100:300]
    assert ranged.headers["Content-Range"] == f"bytes 100-299/{len(PDF)}"


def test_files_larger_than_ordinary_requests_are_accepted(client: Any, rep: Any, auth: Any) -> None:
    """Other requests stop at 1 MiB; attachments go up to MAX_ATTACHMENT_BYTES."""
    headers = auth(rep)
    video_id = _video(client, headers)
    big = PDF[:9] + os.urandom(3 * 1024 * 1024)
    response = _upload(client, headers, video_id, big, filename="Annual report.pdf")
    assert response.status_code == 201, response.get_json()
    assert response.get_json()["size_bytes"] == len(big)
    assert client.get(_local(response.get_json()["download_url"])).data == big


def test_download_urls_stop_working_when_tampered_with_or_expired(
    client: Any, rep: Any, auth: Any
) -> None:
    headers = auth(rep)
    video_id = _video(client, headers)
    created = _upload(client, headers, video_id, PDF).get_json()
    parts = urlsplit(created["download_url"])
    query = dict(parse_qsl(parts.query))

    later = {**query, "exp": str(int(query["exp"]) + 3600)}
    _problem(client.get(f"{parts.path}?{urlencode(later)}"), 403, "invalid_signature")
    forged = {**query, "sig": "A" * len(query["sig"])}
    _problem(client.get(f"{parts.path}?{urlencode(forged)}"), 403, "invalid_signature")
    other_file = parts.path.rsplit("/", 1)[0] + "/other.pdf"
    _problem(client.get(f"{other_file}?{parts.query}"), 403, "invalid_signature")

    # Signed correctly, but for a moment that has passed.
    expired = playback.signed_path(SECRET_KEY, parts.path, int(time.time()) - 60)
    _problem(client.get(expired), 403, "link_expired")


def test_office_documents_keep_their_name_without_the_path(
    client: Any, rep: Any, auth: Any
) -> None:
    headers = auth(rep)
    video_id = _video(client, headers)
    deck = _pptx()
    response = _upload(
        client,
        headers,
        video_id,
        deck,
        filename="../../Users/sam/Décks/Q3 deck \N{EN DASH} final.pptx",
        content_type="application/octet-stream",
    )
    assert response.status_code == 201, response.get_json()
    created = response.get_json()
    assert created["filename"] == "Q3 deck \N{EN DASH} final.pptx"
    assert created["title"] == "Q3 deck \N{EN DASH} final.pptx"
    assert created["content_type"] == (
        "application/vnd.openxmlformats-officedocument.presentationml.presentation"
    )
    download = client.get(_local(created["download_url"]))
    assert download.data == deck
    assert "Q3%20deck%20%E2%80%93%20final.pptx" in download.headers["Content-Disposition"]


def test_a_photo_without_an_extension_takes_it_from_its_type(
    client: Any, rep: Any, auth: Any
) -> None:
    headers = auth(rep)
    video_id = _video(client, headers)
    png = b"\x89PNG\r\n\x1a\n" + os.urandom(2000)
    response = _upload(
        client, headers, video_id, png, filename="whiteboard", content_type="image/png"
    )
    assert response.status_code == 201, response.get_json()
    assert response.get_json()["filename"] == "whiteboard.png"
    assert client.get(_local(response.get_json()["download_url"])).data == png


def test_files_that_are_not_what_they_claim_are_refused(
    client: Any, rep: Any, auth: Any, storage_dir: Path
) -> None:
    headers = auth(rep)
    video_id = _video(client, headers)
    executable = b"MZ\x90\x00\x03\x00\x00\x00" + os.urandom(3000)
    cases = [
        (executable, "deck.pdf", "application/pdf"),
        (executable, "notes.txt", "text/plain"),
        (b"\x7fELF\x02\x01\x01" + os.urandom(100), "data.csv", "text/csv"),
        (executable, "setup.exe", "application/octet-stream"),
        (b"<html><script>alert(1)</script></html>", "page.html", "text/html"),
        (PDF, "deck.pdf", "text/html"),
        (PDF, "deck", "application/octet-stream"),
        (b"%PDF-1.4 but named as a photo", "photo.jpg", "image/jpeg"),
        (PDF, "slides.pptx", "application/zip"),
    ]
    for data, filename, content_type in cases:
        response = _upload(client, headers, video_id, data, filename, content_type)
        body = _problem(response, 422, "attachment_type_not_allowed")
        assert "file" in body["errors"], (filename, body)
    _problem(_upload(client, headers, video_id, b"", "empty.pdf"), 422, "attachment_empty")

    assert _listed(client, headers, video_id) == []
    assert _stored_files(storage_dir, video_id) == []


def test_the_upload_needs_a_file_part(client: Any, rep: Any, auth: Any) -> None:
    headers = auth(rep)
    video_id = _video(client, headers)
    missing = client.post(
        _url(video_id, "/files"),
        data={"title": "No file"},
        content_type="multipart/form-data",
        headers=headers,
    )
    assert "file" in _problem(missing, 422, "validation_failed")["errors"]
    as_text = client.post(
        _url(video_id, "/files"),
        data={"file": "%PDF-1.4 as a plain field"},
        content_type="multipart/form-data",
        headers=headers,
    )
    assert "file" in _problem(as_text, 422, "validation_failed")["errors"]


@pytest.mark.parametrize("size", [1001, 1000 + 80 * 1024])
def test_oversized_files_are_refused_and_not_kept(
    client: Any,
    rep: Any,
    auth: Any,
    context: AppContext,
    storage_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
    size: int,
) -> None:
    """Just over the limit (seen while streaming) and far over it (the request itself)."""
    headers = auth(rep)
    video_id = _video(client, headers)
    _limit(monkeypatch, context, 1000)
    body = _problem(
        _upload(client, headers, video_id, PDF[:9] + b"x" * (size - 9)), 413, "attachment_too_large"
    )
    assert "1000 bytes" in body["detail"]
    assert _listed(client, headers, video_id) == []
    assert _stored_files(storage_dir, video_id) == []

    exactly = _upload(client, headers, video_id, PDF[:9] + b"x" * 991)
    assert exactly.status_code == 201, exactly.get_json()
    assert exactly.get_json()["size_bytes"] == 1000


def test_the_openapi_document_describes_the_upload(client: Any) -> None:
    spec = client.get("/openapi.json").get_json()
    operation = spec["paths"]["/api/v1/videos/{video_id}/attachments/files"]["post"]
    schema = operation["requestBody"]["content"]["multipart/form-data"]["schema"]
    if "$ref" in schema:
        schema = spec["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    assert schema["properties"]["file"] == {
        "type": "string",
        "format": "binary",
        "description": schema["properties"]["file"]["description"],
    }
    assert schema["required"] == ["file"]
    assert "title" in schema["properties"]
    assert {"201", "403", "404", "413", "422"} <= set(operation["responses"])


def test_on_s3_files_download_from_presigned_urls_and_oversize_leaves_nothing(
    client: Any,
    rep: Any,
    auth: Any,
    context: AppContext,
    s3_endpoint: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import boto3
    import requests

    s3_client = boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1")
    bucket = f"fieldcast-{uuid.uuid4().hex[:12]}"
    s3_client.create_bucket(Bucket=bucket)
    monkeypatch.setattr(context, "storage", S3Storage(bucket, "media", endpoint_url=s3_endpoint))

    def stored() -> list[str]:
        listed = s3_client.list_objects_v2(Bucket=bucket).get("Contents", [])
        return [item["Key"] for item in listed]

    headers = auth(rep)
    video_id = _video(client, headers)
    created = _upload(client, headers, video_id, PDF).get_json()
    download = requests.get(created["download_url"], timeout=10)
    assert download.status_code == 200
    assert download.content == PDF
    assert download.headers["Content-Type"] == "application/pdf"
    assert download.headers["Content-Disposition"].startswith(
        'attachment; filename="Q3 pricing.pdf"'
    )

    _limit(monkeypatch, context, 1000)
    _problem(_upload(client, headers, video_id, PDF), 413, "attachment_too_large")
    assert len(stored()) == 1

    client.delete(_url(video_id, f"/{created['id']}"), headers=headers)
    assert stored() == []


# -- removing and the cap ----------------------------------------------------------------------


def test_delete_removes_the_attachment_and_its_file(
    client: Any, rep: Any, auth: Any, session: Any, storage_dir: Path
) -> None:
    headers = auth(rep)
    video_id = _video(client, headers)
    created = _upload(client, headers, video_id, PDF).get_json()
    kept = client.post(
        _url(video_id), json={"kind": "note", "body": "Keep me"}, headers=headers
    ).get_json()
    key = session.scalars(
        select(Attachment.storage_key).where(Attachment.id == uuid.UUID(created["id"]))
    ).one()
    assert (storage_dir / key).read_bytes() == PDF
    assert key.endswith(f"/videos/{video_id}/attachments/{created['id']}/Q3_pricing.pdf")

    response = client.delete(_url(video_id, f"/{created['id']}"), headers=headers)
    assert response.status_code == 204
    assert response.get_data() == b""
    assert [item["id"] for item in _listed(client, headers, video_id)] == [kept["id"]]
    assert not (storage_dir / key).exists()
    _problem(client.get(_local(created["download_url"])), 404, "not_found")
    again = client.delete(_url(video_id, f"/{created['id']}"), headers=headers)
    _problem(again, 404, "not_found")


def test_a_video_takes_at_most_fifty_attachments(
    client: Any, rep: Any, auth: Any, session: Any, storage_dir: Path
) -> None:
    headers = auth(rep)
    video_id = _video(client, headers)
    session.add_all(
        Attachment(
            org_id=rep.org_id,
            video_id=uuid.UUID(video_id),
            created_by_id=rep.id,
            kind=AttachmentKind.NOTE,
            title=f"Note {i}",
            body="text",
        )
        for i in range(MAX_ATTACHMENTS_PER_VIDEO - 1)
    )
    session.flush()
    last = client.post(_url(video_id), json={"kind": "note", "body": "50th"}, headers=headers)
    assert last.status_code == 201

    over = client.post(
        _url(video_id), json={"kind": "link", "url": "https://a.example"}, headers=headers
    )
    _problem(over, 409, "too_many_attachments")
    _problem(_upload(client, headers, video_id, PDF), 409, "too_many_attachments")
    assert len(_listed(client, headers, video_id)) == MAX_ATTACHMENTS_PER_VIDEO
    assert _stored_files(storage_dir, video_id) == []

    client.delete(_url(video_id, f"/{last.get_json()['id']}"), headers=headers)
    assert _upload(client, headers, video_id, PDF).status_code == 201


# -- who may do what ---------------------------------------------------------------------------


def _every_operation(
    client: Any, headers: dict[str, str], video_id: str, attachment_id: str
) -> dict[str, Any]:
    return {
        "list": client.get(_url(video_id), headers=headers),
        "add": client.post(
            _url(video_id), json={"kind": "note", "body": "Sneaky"}, headers=headers
        ),
        "upload": _upload(client, headers, video_id, PDF),
        "delete": client.delete(_url(video_id, f"/{attachment_id}"), headers=headers),
    }


@pytest.mark.parametrize("who", ["another organisation", "a colleague"])
def test_those_who_cannot_see_the_video_cannot_see_its_attachments(
    client: Any, org: Any, rep: Any, outsider: Any, auth: Any, storage_dir: Path, who: str
) -> None:
    headers = auth(rep)
    video_id = _video(client, headers)
    note = client.post(_url(video_id), json={"kind": "note", "body": "Mine"}, headers=headers)
    stranger = outsider if who == "another organisation" else factories.UserFactory(org=org)

    for name, response in _every_operation(
        client, auth(stranger), video_id, note.get_json()["id"]
    ).items():
        assert response.status_code == 404, name
        assert response.get_json()["code"] == "not_found", name
    assert _listed(client, headers, video_id) == [note.get_json()]
    assert _stored_files(storage_dir, video_id) == []


def test_admins_see_attachments_but_only_the_author_changes_them(
    client: Any, rep: Any, admin: Any, auth: Any, storage_dir: Path
) -> None:
    headers = auth(rep)
    video_id = _video(client, headers)
    uploaded = _upload(client, headers, video_id, PDF).get_json()

    responses = _every_operation(client, auth(admin), video_id, uploaded["id"])
    [seen] = responses.pop("list").get_json()["items"]
    assert seen["id"] == uploaded["id"]
    assert client.get(_local(seen["download_url"])).data == PDF
    for response in responses.values():
        _problem(response, 403, "permission_denied")
    assert [item["id"] for item in _listed(client, headers, video_id)] == [uploaded["id"]]
    assert len(_stored_files(storage_dir, video_id)) == 1


def test_attachment_ids_of_another_video_are_not_found(client: Any, rep: Any, auth: Any) -> None:
    headers = auth(rep)
    first, second = _video(client, headers), _video(client, headers)
    note = client.post(_url(first), json={"kind": "note", "body": "On the first"}, headers=headers)
    response = client.delete(_url(second, f"/{note.get_json()['id']}"), headers=headers)
    _problem(response, 404, "not_found")
    assert len(_listed(client, headers, first)) == 1


def test_lists_are_cacheable(client: Any, rep: Any, auth: Any) -> None:
    headers = auth(rep)
    video_id = _video(client, headers)
    cached_note = {"kind": "note", "body": "Cached"}
    assert client.post(_url(video_id), json=cached_note, headers=headers).status_code == 201
    first = client.get(_url(video_id), headers=headers)
    etag = first.headers["ETag"]
    cached = client.get(_url(video_id), headers={**headers, "If-None-Match": etag})
    assert cached.status_code == 304
    assert cached.get_data() == b""

    added = client.post(_url(video_id), json={"kind": "note", "body": "Added"}, headers=headers)
    assert added.status_code == 201
    changed = client.get(_url(video_id), headers={**headers, "If-None-Match": etag})
    assert changed.status_code == 200
    assert changed.headers["ETag"] != etag
    assert [item["body"] for item in changed.get_json()["items"]].count("Added") == 1
    fresh = {**headers, "If-None-Match": changed.headers["ETag"]}
    assert client.get(_url(video_id), headers=fresh).status_code == 304
