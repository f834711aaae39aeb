"""The text of attached documents: PDF, PowerPoint and Word files made here are read by the
worker for search; hostile documents fail with a sentence for their author, never an error."""

from __future__ import annotations

import dataclasses
import io
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from docx import Document
from flask.testing import FlaskClient
from pptx import Presentation
from pptx.util import Inches
from pypdf import PdfReader, PdfWriter
from redis import Redis
from sqlalchemy import select

from fieldcast.attachments import text as attachment_text
from fieldcast.context import AppContext
from fieldcast.db import Database
from fieldcast.models.attachments import Attachment, TextStatus
from fieldcast.models.outbox import OutboxJob
from fieldcast.models.videos import Video
from fieldcast.settings import Settings
from media.documents import DocumentLimits, DocumentUnreadable, extract_text
from tests import factories
from tests.live_server import committed_factories
from tests.worker_support import install_worker_context, run_burst


def pdf_bytes(*lines: str) -> bytes:
    """A one-page PDF showing `lines` in Helvetica, written by hand with a correct xref."""
    content = "BT /F1 18 Tf 72 720 Td 22 TL " + " ".join(f"({line}) '" for line in lines) + " ET"
    objects = [
        "<< /Type /Catalog /Pages 2 0 R >>",
        "<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        "/Resources << /Font << /F1 5 0 R >> >> >>",
        f"<< /Length {len(content)} >>\nstream\n{content}\nendstream",
        "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = io.BytesIO()
    out.write(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(out.tell())
        out.write(f"{number} 0 obj\n{body}\nendobj\n".encode())
    xref = out.tell()
    out.write(f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode())
    for offset in offsets:
        out.write(f"{offset:010d} 00000 n \n".encode())
    out.write(
        f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    )
    return out.getvalue()


def pptx_bytes() -> bytes:
    deck = Presentation()
    slide = deck.slides.add_slide(deck.slide_layouts[1])
    slide.shapes.title.text = "Competitor comparison"
    slide.placeholders[1].text = "Our discount beats Acme"
    box = deck.slides.add_slide(deck.slide_layouts[6]).shapes.add_textbox(
        Inches(1), Inches(1), Inches(4), Inches(1)
    )
    box.text_frame.text = "Renewal pricing tiers"
    out = io.BytesIO()
    deck.save(out)
    return out.getvalue()


def docx_bytes() -> bytes:
    document = Document()
    document.add_heading("Objection handling", level=1)
    document.add_paragraph("When the buyer says the price is too high, ask about budget.")
    table = document.add_table(rows=1, cols=2)
    table.rows[0].cells[0].text = "Competitor"
    table.rows[0].cells[1].text = "Globex"
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


def _write(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def test_pdf_pptx_and_docx_text_is_read(tmp_path: Path) -> None:
    pdf = extract_text(_write(tmp_path, "a.pdf", pdf_bytes("Pricing objection", "Discount")), "pdf")
    assert "Pricing objection" in pdf.text and "Discount" in pdf.text
    deck = extract_text(_write(tmp_path, "a.pptx", pptx_bytes()), "pptx")
    for words in ("Competitor comparison", "Our discount beats Acme", "Renewal pricing tiers"):
        assert words in deck.text
    doc = extract_text(_write(tmp_path, "a.docx", docx_bytes()), "docx")
    assert "price is too high" in doc.text and "Globex" in doc.text
    assert not (pdf.truncated or deck.truncated or doc.truncated)


def test_text_is_cut_at_its_limit(tmp_path: Path) -> None:
    path = _write(tmp_path, "long.txt", ("pricing " * 1000).encode())
    found = extract_text(path, "txt", DocumentLimits(max_chars=100))
    assert found.truncated and len(found.text) <= 100 and found.text.startswith("pricing")


def _encrypted_pdf() -> bytes:
    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(pdf_bytes("Secret pricing"))))
    writer.encrypt(user_password="s3cret", owner_password="owner")
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def _zip_bomb() -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr("word/document.xml", b"\0" * (20 * 1024**2))
    return out.getvalue()


def _not_office() -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("notes.txt", "just a zip")
    return out.getvalue()


@pytest.mark.parametrize(
    ("name", "kind", "data", "says"),
    [
        ("locked.pdf", "pdf", _encrypted_pdf(), "password"),
        ("broken.pdf", "pdf", b"%PDF-1.4\n1 0 obj << /Type /Catalog", "damaged"),
        ("bomb.docx", "docx", _zip_bomb(), "zip bomb"),
        ("plain.docx", "docx", _not_office(), "could not be read as a .docx"),
        ("image.pptx", "pptx", b"\x89PNG\r\n\x1a\n" + b"\0" * 64, "damaged"),
        ("empty.pdf", "pdf", b"", "empty"),
    ],
)
def test_hostile_documents_fail_with_a_reason(
    tmp_path: Path, name: str, kind: str, data: bytes, says: str
) -> None:
    with pytest.raises(DocumentUnreadable) as failed:
        extract_text(_write(tmp_path, name, data), kind)
    assert says in failed.value.detail.lower()


def test_a_document_that_takes_too_long_is_given_up(tmp_path: Path) -> None:
    path = _write(tmp_path, "a.docx", docx_bytes())
    with pytest.raises(DocumentUnreadable, match="too long"):
        extract_text(path, "docx", DocumentLimits(timeout_s=0.001))


# -- the worker ----------------------------------------------------------------------------------


@dataclasses.dataclass
class World:
    ctx: AppContext
    rep: Any
    video: Video
    client: FlaskClient
    headers: dict[str, str]


@pytest.fixture
def world(
    monkeypatch: pytest.MonkeyPatch, settings: Settings, committed_db: Database, redis: Redis
) -> Iterator[World]:
    from api.app import create_app

    ctx = install_worker_context(monkeypatch, settings, committed_db, redis)
    with committed_factories(committed_db) as session:
        rep = factories.UserFactory(org=factories.OrganisationFactory())
        session.flush()
        video = Video(org_id=rep.org_id, owner_id=rep.id, title="Renewal call")
        session.add(video)
        session.commit()
    client = create_app(ctx.settings, context=ctx).test_client()
    login = client.post(
        "/api/v1/auth/token", json={"email": rep.email, "password": factories.PASSWORD}
    )
    headers = {"Authorization": f"Bearer {login.get_json()['access_token']}"}
    yield World(ctx, rep, video, client, headers)


def _attach(world: World, name: str, data: bytes) -> dict[str, Any]:
    answer = world.client.post(
        f"/api/v1/videos/{world.video.id}/attachments/files",
        data={"file": (io.BytesIO(data), name)},
        headers=world.headers,
    )
    assert answer.status_code == 201, answer.get_json()
    body: dict[str, Any] = answer.get_json()
    return body


@pytest.mark.slow
def test_the_worker_reads_attached_documents_and_fails_hostile_ones_readably(
    world: World,
) -> None:
    deck = _attach(world, "deck.pptx", pptx_bytes())
    locked = _attach(world, "locked.pdf", _encrypted_pdf())
    photo = _attach(world, "photo.png", b"\x89PNG\r\n\x1a\n" + b"\0" * 64)
    assert (deck["text_status"], locked["text_status"]) == ("pending", "pending")
    assert photo["text_status"] == "unsupported"
    with world.ctx.db.session() as session:
        jobs = session.scalars(
            select(OutboxJob).where(OutboxJob.task == attachment_text.EXTRACT_TASK)
        ).all()
        assert sorted(j.queue for j in jobs) == ["transcribe", "transcribe"]

    run_burst(["transcribe"])

    listed = world.client.get(
        f"/api/v1/videos/{world.video.id}/attachments", headers=world.headers
    ).get_json()["items"]
    by_name = {item["filename"]: item for item in listed}
    assert by_name["deck.pptx"]["text_status"] == "done"
    assert by_name["locked.pdf"]["text_status"] == "failed"
    assert "password" in by_name["locked.pdf"]["text_failure_detail"]
    assert "text" not in by_name["deck.pptx"]  # the text is for search, not for the app
    with world.ctx.db.session() as session:
        texts = attachment_text.attachment_texts(session, world.rep.org_id, world.video.id)
        stored = session.get_one(Attachment, locked["id"])
        assert stored.text_status is TextStatus.FAILED and stored.text is None
    assert any("Our discount beats Acme" in text for text in texts)


def test_characters_the_database_cannot_store_are_left_out() -> None:
    from media.documents import DocumentLimits, _Collector

    collector = _Collector(DocumentLimits())
    collector.add("price\x00list \ud800 here")
    assert collector.parts == ["price list here"]
