"""The web app end to end in a real browser (Debian's Chromium, driven by Playwright) at a phone's
viewport, against the whole product as a person starts it: `fieldcast serve`, then
`fieldcast load-demo` (whose videos serve's own worker processes).

Every page is watched for script errors and for anything the Content Security Policy refused.
Without Chromium the browser tests are skipped, saying so (scripts/test says it too); the demo's
content is checked either way.
"""

from __future__ import annotations

import email
import email.policy
import json
import os
import re
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest

from media.ffmpeg import ffmpeg_binary
from tests.browser_support import (
    DEMO_PASSWORD,
    PHONE,
    PageWatch,
    Product,
    browser_push_payload,
    chromium_path,
    running_product,
    sign_in_through_page,
    vapid_public_key,
)
from tests.conftest import claimed_redis_db, make_url_redis, scratch_database
from tests.fcm_server import FcmServer, write_service_account
from tests.oidc_provider import OpenIdProvider

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("browser")]

CHROMIUM = chromium_path()
needs_chromium = pytest.mark.skipif(
    CHROMIUM is None,
    reason="Chromium is not installed (apt-get install chromium, or set CHROMIUM=/path): "
    "the web app's browser tests did not run",
)
AXE = Path(__file__).resolve().parents[1] / "webapp" / "node_modules" / "axe-core" / "axe.min.js"
PRICING = "Handling Acme's pricing objection"
OPENER = "A discovery call opener that works"
SLOW_MS = 30_000


@pytest.fixture(scope="module")
def product(
    server_database_url: str, redis_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Product]:
    work_dir = tmp_path_factory.mktemp("browser-product")
    with (
        scratch_database(server_database_url, "fieldcast_browser") as database_url,
        FcmServer() as fcm,
        ExitStack() as stack,
    ):
        given = os.environ.get("TEST_REDIS_URL")
        # Without TEST_REDIS_URL: the tests' private Redis, a database of its own there.
        own_redis = (
            stack.enter_context(claimed_redis_db(given)) if given else make_url_redis(redis_url, 2)
        )
        # Pushes go to the local FCM stand-in; browsers are told how to get FCM tokens.
        web_config = {
            "apiKey": "AIzaSyLocalTestsOnly",
            "appId": "1:1234567890:web:0123456789abcdef",
            "messagingSenderId": "1234567890",
            "projectId": "fieldcast-tests",
            "vapidKey": vapid_public_key(),
        }
        running = stack.enter_context(
            running_product(
                database_url,
                own_redis,
                work_dir,
                FCM_CREDENTIALS=str(write_service_account(work_dir / "fcm.json", fcm)),
                FCM_ENDPOINT=fcm.base_url,
                FCM_WEB_CONFIG=json.dumps(web_config),
                # The tests' identity provider listens on loopback, over plain HTTP.
                OIDC_ALLOW_HTTP_LOOPBACK="true",
            )
        )
        running.fcm = fcm
        yield running


def _api(
    product: Product,
    who: str,
    path: str,
    body: dict[str, Any] | None = None,
    *,
    method: str | None = None,
) -> Any:
    """The API as `who` (a bearer token), for arranging and checking what the page shows."""
    login = urllib.request.Request(
        f"{product.base}/api/v1/auth/token",
        data=json.dumps({"email": f"{who}@demo.example.com", "password": DEMO_PASSWORD}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(login, timeout=10) as response:
        token = json.loads(response.read())["access_token"]
    request = urllib.request.Request(
        f"{product.base}/api/v1{path}",
        data=json.dumps(body).encode() if body is not None else None,
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        method=method,
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read() or b"null")


def _video_id(product: Product, who: str, title: str) -> str:
    """A video in `who`'s feed or of their own."""
    for path in ("/feed", "/videos?scope=mine"):
        for item in _api(product, who, path)["items"]:
            video = item.get("video", item)
            if video.get("title") == title:
                return str(video["id"])
    raise AssertionError(f"{title!r} is neither in {who}'s feed nor theirs")


def test_the_demo_has_processed_videos_comments_and_a_collection(product: Product) -> None:
    assert "Videos processed" in product.demo_output, product.demo_output
    assert f"{product.base}/app/" in product.demo_output
    pricing = _video_id(product, "sam", PRICING)
    video = _api(product, "sam", f"/videos/{pricing}")
    assert video["status"] in {"playable", "ready"}
    comments = _api(product, "sam", f"/videos/{pricing}/comments")["items"]
    assert any("@riley" in comment["body"] for comment in comments)
    collections = _api(product, "riley", "/collections")["items"]
    assert "Handling objections" in [c["title"] for c in collections]
    learning = _api(product, "riley", "/me/learning")["items"]
    assert "Handling objections" in json.dumps(learning)


# -- the browser ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def playwright() -> Iterator[Any]:
    if CHROMIUM is None:
        pytest.skip(needs_chromium.kwargs["reason"])
    from playwright.sync_api import sync_playwright

    with sync_playwright() as running:
        yield running


@pytest.fixture(scope="module")
def browser(playwright: Any) -> Iterator[Any]:
    launched = playwright.chromium.launch(
        executable_path=CHROMIUM,
        args=["--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream"],
    )
    yield launched
    launched.close()


class Person:
    """One person's phone: a browser context of their own, signed in through the page."""

    def __init__(self, browser: Any, product: Product, handle: str, *, context: Any = None) -> None:
        self.product = product
        self.context = context or browser.new_context(**PHONE, base_url=product.base)
        self.context.set_default_timeout(15_000)
        self.page = self.context.new_page()
        self.watch = PageWatch()
        self.watch.attach(self.page)
        self.handle = handle

    def sign_in(self) -> Any:
        return sign_in_through_page(self.page, self.handle)

    def open(self, path: str) -> Any:
        self.page.goto(f"/app{path}")
        return self.page

    def close(self) -> None:
        errors = self.watch.errors
        self.context.close()
        assert errors == [], errors


@pytest.fixture
def people(browser: Any, product: Product) -> Iterator[Any]:
    opened: list[Person] = []

    def person(handle: str, *, init_script: str | None = None) -> Person:
        someone = Person(browser, product, handle)
        if init_script is not None:  # runs in every page before the app's own scripts
            someone.context.add_init_script(init_script)
        someone.sign_in()
        opened.append(someone)
        return someone

    yield person
    for someone in opened:
        someone.close()


def _expect() -> Any:
    from playwright.sync_api import expect

    return expect


@needs_chromium
def test_signing_in_survives_a_reload_and_signing_out_ends_it(
    people: Any, product: Product
) -> None:
    expect = _expect()
    riley = people("riley")
    page = riley.page
    # Sam's video, shared with riley by the demo.
    expect(page.get_by_role("link", name=re.compile(OPENER))).to_be_visible()
    page.reload()
    expect(page.get_by_role("navigation", name="Main")).to_be_visible()
    cookies = {c["name"]: c for c in riley.context.cookies()}
    assert cookies["fieldcast_session"]["httpOnly"] is True
    # No script can read the session: only the CSRF cookie is visible to the page.
    assert "fieldcast_session" not in page.evaluate("document.cookie")
    riley.open("/me")
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("button", name="Sign in")).to_be_visible()
    page.reload()
    expect(page.get_by_role("button", name="Sign in")).to_be_visible()


@needs_chromium
def test_the_app_opens_offline_from_its_service_worker(people: Any) -> None:
    expect = _expect()
    riley = people("riley")
    page = riley.page
    page.evaluate("navigator.serviceWorker.ready.then(() => true)")
    page.wait_for_function(
        "caches.keys().then((names) => names.some((n) => n.startsWith('fieldcast-')))"
    )
    riley.context.set_offline(True)
    try:
        page.reload()
        # The kept shell and its scripts run; only the API is out of reach.
        expect(page.get_by_role("heading", name="Fieldcast is out of reach")).to_be_visible()
        riley.watch.errors.clear()  # the failed API calls of being offline
    finally:
        riley.context.set_offline(False)
    page.get_by_role("button", name="Try again").click()
    expect(page.get_by_role("navigation", name="Main")).to_be_visible()


@needs_chromium
def test_signing_in_with_the_organisations_identity_provider(
    browser: Any, product: Product
) -> None:
    """OpenID Connect with PKCE from the sign-in page: the page goes to the API, the API to
    the provider (where jordan is signed in), back, and the page redeems the code."""
    expect = _expect()
    with OpenIdProvider() as provider:
        registration = provider.register(redirect_uri=f"{product.base}/api/v1/auth/oidc/callback")
        _api(
            product,
            "ada",
            "/identity-provider",
            {
                "issuer": provider.issuer,
                "client_id": registration.client_id,
                "client_secret": registration.client_secret,
            },
            method="PUT",
        )
        provider.sign_in_as(subject="okta-jordan", email="jordan@demo.example.com", name="Jordan")
        jordan = Person(browser, product, "jordan")
        page = jordan.open("/")
        page.get_by_text("Sign in with your organisation's identity provider").click()
        page.get_by_label("Organisation").fill("demo")
        page.get_by_role("button", name="Continue to sign-in").click()
        expect(page.get_by_role("navigation", name="Main")).to_be_visible()
        assert "code=" not in page.url  # the one-time code is not left in the address bar
        page.reload()
        expect(page.get_by_role("link", name=re.compile("profile, Jordan"))).to_be_visible()
        jordan.close()


@needs_chromium
def test_a_clip_uploaded_with_tus_becomes_playable(
    people: Any, product: Product, tmp_path: Path
) -> None:
    expect = _expect()
    clip = tmp_path / "call-notes.mp4"
    subprocess.run(
        [
            ffmpeg_binary(), "-nostdin", "-loglevel", "error", "-y",
            "-f", "lavfi", "-i", "testsrc2=size=360x640:rate=30",
            "-f", "lavfi", "-i", "sine=frequency=660", "-t", "3",
            "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p",
            "-c:a", "aac", "-shortest", str(clip),
        ],
        check=True,
        timeout=60,
    )  # fmt: skip
    sam = people("sam")
    page = sam.open("/record")
    page.get_by_label("Choose a video").set_input_files(str(clip))
    page.get_by_label("Title").fill("Closing with a next step")
    page.get_by_role("button", name="Upload").click()
    expect(page.get_by_text(re.compile("Playable|Ready to watch"))).to_be_visible(timeout=120_000)
    page.get_by_role("link", name="Watch").click()
    mode = _plays(page)
    if page.evaluate(
        "document.createElement('video').canPlayType('application/vnd.apple.mpegurl')"
    ):
        # The browser's own HLS played it: hls.js was not even fetched.
        assert (mode, _fetched_hls_js(page)) == ("native-hls", False)
    else:
        assert mode == "hls.js"
    mine = _api(product, "sam", "/videos?scope=mine")
    assert "Closing with a next step" in json.dumps(mine)


def _fetched_hls_js(page: Any) -> bool:
    return bool(
        page.evaluate(
            "performance.getEntriesByType('resource').some((e) => e.name.includes('/hls.'))"
        )
    )


def _plays(page: Any) -> str:
    """Play the player's video (muted, as a browser lets a page start it) until a second has
    played; the way it played (the browser's own HLS, hls.js or the MP4)."""
    expect = _expect()
    player = page.get_by_label("Video player")
    expect(player).to_be_visible()
    player.evaluate("video => { video.muted = true; return video.play(); }", timeout=SLOW_MS)
    page.wait_for_function(
        "() => document.querySelector('video.pl-video').currentTime > 1", timeout=SLOW_MS
    )
    return str(player.get_attribute("data-mode"))


@needs_chromium
def test_hls_js_takes_over_where_the_browsers_own_hls_cannot_play_the_stream(
    people: Any, product: Product
) -> None:
    """The browser says "maybe" to HLS, then fails on the stream (here: its playlist address is
    swapped for a missing one): hls.js plays it from there, and the person sees no error."""
    riley = people(
        "riley",
        init_script="""{
          const own = Object.getOwnPropertyDescriptor(HTMLMediaElement.prototype, "src");
          Object.defineProperty(HTMLMediaElement.prototype, "src", {
            get() { return own.get.call(this); },
            set(value) {
              own.set.call(this, /\\.m3u8/.test(value) ? "/app/no-such-playlist.m3u8" : value);
            },
          });
        }""",
    )
    page = riley.open(f"/videos/{_video_id(product, 'riley', OPENER)}")
    # The player says which way it plays once hls.js has taken over.
    _expect()(page.get_by_label("Video player")).to_have_attribute("data-mode", "hls.js")
    assert (_plays(page), _fetched_hls_js(page)) == ("hls.js", True)
    assert page.get_by_role("alert").count() == 0


@needs_chromium
def test_the_player_plays_with_hls_js_where_the_browser_has_no_hls_of_its_own(
    people: Any, product: Product
) -> None:
    """Firefox's case (and an older Chromium's): no native HLS, Media Source there."""
    riley = people(
        "riley",
        init_script="""{
          const own = HTMLMediaElement.prototype.canPlayType;
          HTMLMediaElement.prototype.canPlayType = function (type) {
            return /mpegurl/i.test(type) ? "" : own.call(this, type);
          };
        }""",
    )
    page = riley.open(f"/videos/{_video_id(product, 'riley', OPENER)}")
    assert (_plays(page), _fetched_hls_js(page)) == ("hls.js", True)
    assert page.evaluate("!document.querySelector('video.pl-video').dataset.fallback")


@needs_chromium
def test_a_comment_at_a_moment_with_a_mention_reaches_the_other_person(
    people: Any, product: Product
) -> None:
    expect = _expect()
    video_id = _video_id(product, "riley", OPENER)
    riley = people("riley")
    page = riley.open(f"/videos/{video_id}")
    expect(page.get_by_label("Video player")).to_be_visible()
    comment = page.get_by_role("textbox", name="Comment")
    comment.fill("Love how you paused here ")
    comment.press_sequentially("@sa")
    page.get_by_role("option", name=re.compile("@sam")).click()
    comment.press_sequentially(" try this on Monday")
    page.get_by_role("button", name="Post comment").click()
    comments = page.get_by_role("list", name="Comments")
    expect(comments).to_contain_text("try this on Monday")

    sam = people("sam")
    page = sam.open(f"/videos/{video_id}")
    page.reload()
    expect(page.get_by_role("list", name="Comments")).to_contain_text("try this on Monday")
    expect(page.get_by_role("list", name="Comments")).to_contain_text("@sam")
    # The mention is in sam's inbox, and opens the moment.
    page = sam.open("/inbox")
    notifications = page.get_by_role("list", name="Notifications")
    expect(notifications).to_contain_text("riley", ignore_case=True, timeout=SLOW_MS)


@needs_chromium
def test_a_share_is_followed_from_sent_to_opened(people: Any, product: Product) -> None:
    expect = _expect()
    video_id = _video_id(product, "maya", "Pipeline review: what good looks like")
    maya = people("maya")
    page = maya.open(f"/videos/{video_id}")
    page.get_by_role("button", name="Share").click()
    dialog = page.get_by_role("dialog", name="Share")
    dialog.get_by_label("Share with").fill("jor")
    dialog.get_by_role("option", name=re.compile("Jordan")).click()
    dialog.get_by_role("button", name="Send").click()
    dialog.get_by_role("link", name="Follow this share").click()
    page.wait_for_url(re.compile(r"/app/shares/"))
    share_id = page.url.rsplit("/", 1)[-1]
    recipients = page.get_by_role("list", name="Recipients")
    expect(recipients).to_contain_text("Jordan")
    before = recipients.inner_text()

    jordan = people("jordan")
    # From the push's link: the player reports the share opened.
    jordan.open(f"/videos/{video_id}?share={share_id}")
    expect(jordan.page.get_by_label("Video player")).to_be_visible()

    page.reload()
    expect(page.get_by_role("list", name="Recipients")).to_contain_text(
        re.compile("opened|watched|started", re.IGNORECASE), timeout=SLOW_MS
    )
    assert page.get_by_role("list", name="Recipients").inner_text() != before


@needs_chromium
def test_search_finds_a_moment_and_filters_narrow_it(people: Any, product: Product) -> None:
    expect = _expect()
    riley = people("riley")
    page = riley.open("/search")
    page.get_by_label("Search", exact=True).fill("pricing")
    page.get_by_role("button", name="Search", exact=True).click()
    results = page.get_by_role("list", name="Results")
    expect(results).to_contain_text(PRICING)
    expect(results).not_to_contain_text(OPENER)
    page.get_by_label("Search", exact=True).fill("call")
    page.get_by_role("button", name="Search", exact=True).click()
    expect(results).to_contain_text(OPENER)


@needs_chromium
def test_a_curator_builds_a_collection_and_assigns_it(people: Any, product: Product) -> None:
    expect = _expect()
    eli = people("eli")
    page = eli.open("/collections")
    page.get_by_role("button", name="New collection").click()
    page.get_by_label("Title").fill("Opening calls")
    page.get_by_label("Description").fill("How the best reps start a first call")
    page.get_by_role("button", name="Create").click()
    page.get_by_role("button", name="Add video").click()
    page.get_by_label("Find a video").fill("opener")
    page.get_by_role("button", name=f"Add {OPENER}").click()
    page.get_by_label("Find a video").fill("pricing")
    page.get_by_role("button", name=f"Add {PRICING}").click()
    page.get_by_role("button", name="Done adding").click()
    items = page.get_by_role("link", name=re.compile(f"{PRICING}|{OPENER}"))
    expect(items).to_have_count(2)
    # The pricing video, added last, moves up to open the collection.
    page.get_by_role("button", name="Move up").last.click()
    expect(items.first).to_have_text(re.compile(PRICING))
    page.get_by_role("button", name="Publish").click()
    page.get_by_role("button", name="Assign", exact=True).click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_label("Assign to").fill("ril")
    dialog.get_by_role("option", name=re.compile("Riley")).click()
    dialog.get_by_label("Due date").fill("2030-01-31")
    dialog.get_by_role("button", name="Assign collection").click()
    expect(page.get_by_text(re.compile("Assigned"))).to_be_visible()

    riley = people("riley")
    page = riley.open("/learning")
    expect(page.get_by_role("list", name="My learning")).to_contain_text(
        "Opening calls", timeout=SLOW_MS
    )


def _emailed_link(product: Product, to: str, path: str) -> str:
    """The link in the newest email to `to` (the product writes .eml files without SMTP_URL),
    once the outbox has sent it."""
    mail = Path(product.env["FIELDCAST_DATA_DIR"]) / "outbox-mail"
    pattern = re.compile(re.escape(f"{product.base}{path}?token=") + r"[A-Za-z0-9_\-.~%]+")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        for message in sorted(mail.glob("*.eml"), key=lambda f: f.stat().st_mtime, reverse=True):
            parsed = email.message_from_bytes(message.read_bytes(), policy=email.policy.default)
            if to in str(parsed["To"]):
                body = parsed.get_body(preferencelist=("plain",))
                found = pattern.search(body.get_content() if body else "")
                if found:
                    return found.group(0)
        time.sleep(0.3)
    raise AssertionError(f"no email to {to} with a {path} link:\n{product.log()}")


@needs_chromium
def test_an_invited_person_joins_and_later_resets_their_password(
    browser: Any, product: Product
) -> None:
    """From the invitation email's link to the feed, then the reset email's link: the links
    open the app's screens through this server (APP_LINK_BASE is the product's own address)."""
    expect = _expect()
    address = "casey@demo.example.com"
    _api(product, "ada", "/invitations", {"email": address, "role": "rep", "display_name": "Casey"})
    casey = Person(browser, product, "casey")
    try:
        page = casey.page
        page.goto(_emailed_link(product, address, "/invitations/accept"))
        expect(page.get_by_role("heading", name=re.compile("Join .* on Fieldcast"))).to_be_visible()
        expect(
            page.get_by_text(re.compile(f"Ada .* invited you as rep.*{address}"))
        ).to_be_visible()
        expect(page.get_by_label("Your name")).to_have_value("Casey")
        expect(page.get_by_label("Handle")).to_have_value("casey")
        page.get_by_label("Password").fill("short")
        page.get_by_role("button", name="Join").click()
        assert page.get_by_label("Password").evaluate("input => !input.validity.valid")
        page.get_by_label("Password").fill("first-password-42")
        page.get_by_role("button", name="Join").click()
        expect(page.get_by_role("navigation", name="Main")).to_be_visible()
        assert page.url == f"{product.base}/app/"
        # The link works once.
        page.goto(_emailed_link(product, address, "/invitations/accept"))
        expect(page.get_by_role("alert")).to_contain_text("already been accepted")

        casey.open("/me")
        page.get_by_role("button", name="Sign out").click()
        page.get_by_role("link", name="Forgot your password?").click()
        page.get_by_label("Email").fill(address)
        page.get_by_role("button", name="Email me a link").click()
        expect(page.get_by_role("status")).to_contain_text("on its way")
        page.goto(_emailed_link(product, address, "/password-reset"))
        page.get_by_label("New password").fill("second-password-42")
        page.get_by_role("button", name="Set password").click()
        expect(page.get_by_role("status")).to_contain_text("new password is set")
        page.get_by_role("link", name="Go to sign-in").click()
        page.get_by_label("Email").fill(address)
        page.get_by_label("Password").fill("second-password-42")
        page.get_by_role("button", name="Sign in").click()
        expect(page.get_by_role("navigation", name="Main")).to_be_visible()
    finally:
        casey.close()


@needs_chromium
def test_web_push_reaches_the_subscription_and_shows_what_the_server_sends(
    playwright: Any, product: Product, tmp_path: Path
) -> None:
    """FCM is out of reach here: the browser's subscription is tried and fails, saying so;
    then the message the server really sends (to the FCM stand-in) for a browser's device is
    handed to the app's service worker as FCM would, which shows it and reports it delivered."""
    expect = _expect()
    # A profile on disk: Chromium offers no Push API to its incognito-like contexts.
    context = playwright.chromium.launch_persistent_context(
        str(tmp_path / "profile"), executable_path=CHROMIUM, base_url=product.base, **PHONE
    )
    context.grant_permissions(["notifications"], origin=product.base)
    riley = Person(None, product, "riley", context=context)
    riley.sign_in()
    page = riley.open("/me")
    page.get_by_role("button", name="Turn on notifications").click()
    expect(page.get_by_text(re.compile("push service could not be reached"))).to_be_visible(
        timeout=SLOW_MS
    )

    # The token getToken would have given, registered as the app registers it.
    _api(product, "riley", "/devices", {"token": "riley-browser", "platform": "web"})
    video_id = _video_id(product, "sam", OPENER)
    _api(
        product,
        "sam",
        f"/videos/{video_id}/comments",
        {"body": "@riley the opener lands at this point", "at_ms": 2000},
    )
    fcm = product.fcm

    def this_comments_push(server: Any) -> dict[str, Any] | None:
        # Riley's other notifications (the other tests') may reach the new device too.
        for sent in server.messages(token="riley-browser"):
            if f"/videos/{video_id}" in sent.message.get("data", {}).get("link", ""):
                return dict(sent.message)
        return None

    fcm.wait_until(lambda server: this_comments_push(server) is not None, timeout=60)
    sent = this_comments_push(fcm)
    assert sent is not None
    payload = browser_push_payload(sent)

    cdp = riley.context.new_cdp_session(page)
    registrations: list[str] = []
    cdp.on(
        "ServiceWorker.workerRegistrationUpdated",
        lambda event: registrations.extend(
            r["registrationId"] for r in event["registrations"] if r["scopeURL"].endswith("/app/")
        ),
    )
    cdp.send("ServiceWorker.enable")
    deadline = time.monotonic() + 10
    while not registrations and time.monotonic() < deadline:
        page.wait_for_timeout(100)
    assert registrations, "the app's service worker is not registered"
    cdp.send(
        "ServiceWorker.deliverPushMessage",
        {"origin": product.base, "registrationId": registrations[0], "data": json.dumps(payload)},
    )
    shown: list[dict[str, str]] = []
    deadline = time.monotonic() + 30
    while not shown and time.monotonic() < deadline:
        page.wait_for_timeout(200)
        shown = page.evaluate(
            """() => navigator.serviceWorker.ready
            .then((r) => r.getNotifications())
            .then((all) => all.map((n) => ({title: n.title, body: n.body, link: n.data.link})))
            """
        )
    assert shown, "the service worker showed no notification"
    assert shown[0]["title"] == sent["notification"]["title"]
    assert shown[0]["body"] == sent["notification"]["body"]
    assert f"/videos/{video_id}" in shown[0]["link"]
    # The service worker presented the push's own receipt: the inbox item is delivered.
    notification_id = sent["data"]["notification_id"]
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        items = _api(product, "riley", "/notifications")["items"]
        if any(i["id"] == notification_id and i["delivered_at"] for i in items):
            break
        time.sleep(0.3)
    else:
        raise AssertionError("the push was not reported delivered")
    riley.close()


@needs_chromium
@pytest.mark.skipif(
    not AXE.is_file(),
    reason="axe-core is not installed (cd webapp && npm ci): the accessibility audit did not run",
)
def test_the_main_screens_have_no_accessibility_violations(browser: Any, product: Product) -> None:
    """axe-core's WCAG 2.2 A and AA rules (labels, names, contrast, landmarks, ARIA, touch
    target sizes) on every main screen, as a manager sees them (the most controls), and on the
    screens a person signed out meets."""
    context = browser.new_context(**PHONE, base_url=product.base, bypass_csp=True)
    page = context.new_page()
    video_id = _video_id(product, "maya", PRICING)
    screens = ["/", f"/videos/{video_id}", "/record", "/inbox", "/search?q=pricing", "/learning",
               "/collections", "/top", "/insights", "/me"]  # fmt: skip
    found: dict[str, list[Any]] = {}

    def audit(path: str) -> None:
        page.wait_for_load_state("networkidle")
        page.wait_for_timeout(300)
        page.add_script_tag(path=str(AXE))
        result = page.evaluate(
            "axe.run(document, {runOnly: {type: 'tag', values: "
            "['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'wcag22aa']}})"
        )
        found[path] = [
            (v["id"], v["help"], [node["target"] for node in v["nodes"]][:3])
            for v in result["violations"]
        ]

    for path in ["/", "/password-reset", "/password-reset?token=unknown",
                 "/invitations/accept?token=unknown"]:  # fmt: skip
        page.goto(f"/app{path}")
        audit(f"signed out: {path}")
    sign_in_through_page(page, "maya")
    for path in screens:
        page.goto(f"/app{path}")
        audit(path)
    context.close()
    import pprint

    violations = {path: issues for path, issues in found.items() if issues}
    assert violations == {}, pprint.pformat(violations, width=100)
