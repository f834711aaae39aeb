"""Pushes the phone can render well: localization keys and args for the app's own strings,
the server's text in the device's language from the shipped gettext catalogues, one thread per
video, the poster as the picture and a deep link built from configuration."""

from __future__ import annotations

import dataclasses
import json
import re
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from babel.messages.extract import extract_from_file
from babel.messages.pofile import read_po
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from fieldcast import links
from fieldcast.context import AppContext
from fieldcast.inbox import wording
from fieldcast.inbox.services import notify
from fieldcast.inbox.types import NotificationType
from fieldcast.models.devices import Device
from fieldcast.models.inbox import Notification
from fieldcast.models.videos import Rendition, RenditionKind, Video
from fieldcast.settings import Settings
from fieldcast.videos import playback
from notifications.fcm import encode
from notifications.push import PushMessage
from tests import factories
from tests.fcm_server import FcmServer
from tests.test_push_fcm import fcm  # noqa: F401 - the fixture
from tests.test_sharing import _device, _video
from tests.worker_support import drain_outbox as drain

LOCALES = Path(wording.__file__).resolve().parent.parent / "locales"
PLACEHOLDER = re.compile(r"\{(\w+)\}")
JPEG = b"\xff\xd8\xff\xe0" + b"\0" * 64 + b"\xff\xd9"


# -- the catalogues -------------------------------------------------------------------------------


def _extracted() -> dict[str, str]:
    source = Path(wording.__file__)
    return {
        context: message
        for _, message, _, context in extract_from_file(
            "python", str(source), keywords={"N_": ((1, "c"), 2)}
        )
        if isinstance(message, str) and context
    }


def test_every_type_has_a_wording_and_every_key_is_extracted() -> None:
    assert set(wording.WORDINGS) == set(NotificationType)
    keys = {text.key for entry in wording.WORDINGS.values() for text in (entry.title, entry.body)}
    assert keys == set(_extracted())
    with (LOCALES / "push.pot").open("rb") as pot:
        template = {m.context: m.id for m in read_po(pot) if m.id}
    assert template == _extracted(), "run the README's pybabel extract and update commands"


@pytest.mark.parametrize("language", sorted(wording.languages() - {"en"}))
def test_each_shipped_catalogue_translates_every_message(language: str) -> None:
    with (LOCALES / language / "LC_MESSAGES" / "push.po").open("rb") as po:
        catalogue = read_po(po, locale=language)
    messages = {m.context: m for m in catalogue if m.id}
    assert set(messages) == set(_extracted())
    for key, message in messages.items():
        assert message.string and not message.fuzzy, f"{language}: {key} is not translated"
        assert message.string != message.id, f"{language}: {key} is English"
        assert isinstance(message.string, str) and isinstance(message.id, str)
        assert set(PLACEHOLDER.findall(message.string)) == set(PLACEHOLDER.findall(message.id))


def test_english_and_at_least_german_are_shipped() -> None:
    assert {"en", "de", "es"} <= wording.languages()


def test_the_readme_compile_command_compiles_the_catalogues(tmp_path: Path) -> None:
    """`pybabel compile` (what a deployment may run) accepts every catalogue as shipped."""
    for language in wording.languages() - {"en"}:
        target = tmp_path / language / "LC_MESSAGES"
        target.mkdir(parents=True)
        (target / "push.po").write_bytes(
            (LOCALES / language / "LC_MESSAGES" / "push.po").read_bytes()
        )
    done = subprocess.run(
        [sys.executable, "-m", "babel.messages.frontend", "compile", "-d", str(tmp_path),
         "-D", "push", "--statistics"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "12 of 12 messages (100%) translated" in done.stderr


@pytest.mark.parametrize(
    ("locale", "default", "language"),
    [
        ("de-AT", "en", "de"),
        ("de_DE", "en", "de"),
        ("es-419", "en", "es"),
        ("ES", "en", "es"),
        ("fr-FR", "en", "en"),  # not shipped: the deployment's default, then English
        ("fr-FR", "es", "es"),
        (None, "de-CH", "de"),
        ("", "pt-BR", "en"),
    ],
)
def test_the_device_locale_picks_the_language(
    locale: str | None, default: str, language: str
) -> None:
    assert wording.language_for(locale, default) == language


def test_words_in_each_language_with_the_apps_keys() -> None:
    args = {"sender": "Maya", "video": "Pricing objection", "note": ""}
    english = wording.word("share.received", args, "en", title="", body="")
    assert (english.title, english.body) == ("Maya shared “Pricing objection”", "Tap to watch.")
    german = wording.word("share.received", args, "de", title="", body="")
    assert (german.title, german.body) == (
        "Maya hat „Pricing objection“ geteilt",
        "Tippe zum Ansehen.",
    )
    spanish = wording.word("share.received", args, "es", title="", body="")
    assert (spanish.title, spanish.body) == (
        "Maya compartió «Pricing objection»",
        "Toca para verlo.",
    )
    for worded in (english, german, spanish):
        assert worded.title_loc_key == "share_received_title"
        assert worded.title_loc_args == ("Maya", "Pricing objection")
        assert worded.body_loc_key == "share_received_body" and worded.body_loc_args == ()
    noted = wording.word(
        "share.received", {**args, "note": "Listen at 1:20"}, "de", title="", body=""
    )
    assert noted.body == "Listen at 1:20" and noted.body_loc_key is None
    # An item made without args is pushed as it was stored, with no keys.
    legacy = wording.word("share.received", {}, "de", title="Stored", body="As is")
    assert (legacy.title, legacy.body, legacy.title_loc_key) == ("Stored", "As is", None)


def test_long_texts_are_clipped_to_fit_a_push_and_kept_whole_in_the_inbox() -> None:
    args = {"sender": "名" * 120, "video": "題" * 200, "note": "話" * 1000}
    worded = wording.word("share.received", args, "de", title="", body="")
    assert len(worded.title) <= wording.TITLE_LIMIT and worded.title.endswith("…")
    assert len(worded.body) == wording.BODY_LIMIT and worded.body.endswith("…")
    assert all(len(arg) <= wording.ARG_LIMIT for arg in worded.title_loc_args)
    push = PushMessage(
        notification_id=uuid.uuid4(),
        user_id=uuid.uuid4(),
        type="share.received",
        title=worded.title,
        body=worded.body,
        data={"notification_id": str(uuid.uuid4()), "video_id": str(uuid.uuid4()),
              "receipt_token": "t" * 71, "link": "https://app.example.com/videos/x" * 3},
        token="a-token",
        title_loc_key=worded.title_loc_key,
        title_loc_args=worded.title_loc_args,
        group="video:x",
        image="https://media.example.com/" + "k" * 300,
    )  # fmt: skip
    message = json.loads(encode(push))["message"]
    apns = json.dumps({**message["apns"]["payload"], **message["data"]}, ensure_ascii=False)
    android = json.dumps(
        [message["notification"], message["android"], message["data"]], ensure_ascii=False
    )
    assert len(apns.encode()) < 4096 and len(android.encode()) < 4096
    # The inbox item keeps the whole note and title.
    title, body = wording.english(NotificationType.SHARE_RECEIVED, args)
    assert body == "話" * 1000 and "題" * 200 in title


# -- the pushes as FCM receives them --------------------------------------------------------------


def _poster(session: Session, context: AppContext, video: Video) -> str:
    key = f"{video.media_prefix}/poster.jpg"
    context.storage.put_bytes(key, JPEG, content_type="image/jpeg")
    session.add(
        Rendition(
            org_id=video.org_id,
            video_id=video.id,
            name="poster",
            kind=RenditionKind.POSTER,
            source_version=video.source_version,
            storage_key=key,
            width=640,
            height=360,
        )
    )
    session.flush()
    return key


def _localised(session: Session, user: Any, token: str, locale: str | None) -> Device:
    device = _device(session, user, token=token)
    device.locale = locale
    session.flush()
    return device


def test_a_share_push_in_each_phones_language_with_keys_thread_image_and_link(
    client: FlaskClient,
    session: Session,
    org: Any,
    rep: Any,
    auth: Any,
    context: AppContext,
    settings: Settings,
    fcm: FcmServer,  # noqa: F811 - the fixture
) -> None:
    rep.display_name = "Maya Lind"
    german, spanish, other = (factories.UserFactory(org=org) for _ in range(3))
    _localised(session, german, "de-phone", "de-DE")
    _localised(session, german, "en-tablet", "en-GB")
    _localised(session, spanish, "es-phone", "es-MX")
    _localised(session, other, "fr-phone", "fr-FR")
    _localised(session, other, "no-locale", None)
    video = _video(session, rep)
    _poster(session, context, video)
    session.commit()
    response = client.post(
        f"/api/v1/videos/{video.id}/shares",
        json={"user_ids": [str(u.id) for u in (german, spanish, other)]},
        headers=auth(rep),
    )
    assert response.status_code == 201, response.get_json()
    share_id = response.get_json()["id"]
    drain(context)
    sent = {m.token: m.message for m in fcm.messages()}
    assert set(sent) == {"de-phone", "en-tablet", "es-phone", "fr-phone", "no-locale"}

    expected = {
        "de-phone": ("Maya Lind hat „Discovery call“ geteilt", "Tippe zum Ansehen."),
        "en-tablet": ("Maya Lind shared “Discovery call”", "Tap to watch."),
        "es-phone": ("Maya Lind compartió «Discovery call»", "Toca para verlo."),
        "fr-phone": ("Maya Lind shared “Discovery call”", "Tap to watch."),
        "no-locale": ("Maya Lind shared “Discovery call”", "Tap to watch."),
    }
    for token, (title, body) in expected.items():
        message = sent[token]
        assert (message["notification"]["title"], message["notification"]["body"]) == (title, body)
        alert = message["apns"]["payload"]["aps"]["alert"]
        assert (alert["title"], alert["body"]) == (title, body)

        android = message["android"]["notification"]
        assert android["title_loc_key"] == "share_received_title"
        assert android["title_loc_args"] == ["Maya Lind", "Discovery call"]
        assert android["body_loc_key"] == "share_received_body"
        assert alert["title-loc-key"] == "share_received_title"
        assert alert["title-loc-args"] == ["Maya Lind", "Discovery call"]
        assert alert["loc-key"] == "share_received_body"

        # One thread per video; the Notification Service Extension runs.
        assert message["apns"]["payload"]["aps"]["thread-id"] == f"video:{video.id}"
        assert message["apns"]["payload"]["aps"]["mutable-content"] == 1
        assert android["tag"] == f"video:{video.id}"
        # Still one collapse id per notification: a resend replaces itself.
        assert message["android"]["collapse_key"] == message["data"]["notification_id"]

        assert message["data"]["link"] == links.video_link(
            settings, video.id, share_id=uuid.UUID(share_id)
        )
        assert message["data"]["link"].startswith(settings.app_link_base + "/videos/")

    # The poster, signed for at least an hour, fetched as the phone would, without a token.
    image = sent["de-phone"]["notification"]["image"]
    assert sent["de-phone"]["apns"]["fcm_options"]["image"] == image
    assert image.startswith(settings.public_base_url + "/media/")
    parts = urlsplit(image)
    expires = int(parse_qs(parts.query)["exp"][0])
    assert expires >= time.time() + 3600
    assert playback.verify(
        settings.secret_key or "", parts.path, str(expires), parse_qs(parts.query)["sig"][0],
        now=time.time(),
    ) == ""  # fmt: skip
    fetched = client.get(f"{parts.path}?{parts.query}")
    assert fetched.status_code == 200 and fetched.data == JPEG


def test_a_note_is_the_body_as_written_and_no_poster_means_no_image(
    client: FlaskClient,
    session: Session,
    org: Any,
    rep: Any,
    auth: Any,
    context: AppContext,
    fcm: FcmServer,  # noqa: F811 - the fixture
) -> None:
    peer = factories.UserFactory(org=org)
    _localised(session, peer, "peer-de", "de")
    video = _video(session, rep)
    session.commit()
    client.post(
        f"/api/v1/videos/{video.id}/shares",
        json={"user_ids": [str(peer.id)], "message": "Hör dir 1:20 an"},
        headers=auth(rep),
    )
    drain(context)
    (message,) = [m.message for m in fcm.messages() if m.token == "peer-de"]
    assert message["notification"]["body"] == "Hör dir 1:20 an"
    assert "body_loc_key" not in message["android"]["notification"]
    assert "loc-key" not in message["apns"]["payload"]["aps"]["alert"]
    assert message["android"]["notification"]["title_loc_key"] == "share_received_title"
    assert "image" not in message["notification"] and "fcm_options" not in message["apns"]


def test_the_authors_push_in_the_deployments_default_language(
    session: Session,
    rep: Any,
    context: AppContext,
    fcm: FcmServer,  # noqa: F811 - the fixture
) -> None:
    _localised(session, rep, "author-phone", None)
    _localised(session, rep, "author-es", "es-ES")
    video = _video(session, rep)
    notify(
        session,
        org_id=rep.org_id,
        user_id=rep.id,
        type=NotificationType.VIDEO_FAILED,
        args={"video": video.title},
        body="The file is not a video.",
        data={"video_id": str(video.id)},
        dedup_key=f"test-failed:{video.id}",
    )
    session.commit()
    context.settings = dataclasses.replace(context.settings, default_locale="de-DE")
    drain(context)
    sent = {m.token: m.message for m in fcm.messages()}
    german = sent["author-phone"]
    assert german["notification"]["title"] == "„Discovery call“ konnte nicht verarbeitet werden"
    assert german["notification"]["body"] == "Öffne es, um den Grund zu sehen."
    assert german["android"]["notification"]["title_loc_key"] == "video_failed_title"
    assert german["android"]["notification"]["title_loc_args"] == ["Discovery call"]
    assert german["android"]["notification"]["body_loc_key"] == "video_failed_body"
    assert sent["author-es"]["notification"]["title"] == "No se pudo procesar «Discovery call»"
    # The inbox keeps the reason, in the item as stored.
    item = session.execute(
        select(Notification.title, Notification.body).where(Notification.user_id == rep.id)
    ).one()
    assert tuple(item) == ("“Discovery call” could not be processed", "The file is not a video.")
