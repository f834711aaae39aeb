"""Screenshots of the web app's main screens for docs/screenshots/ (shown in the README), taken
in Debian's Chromium at a phone's viewport against the product with the demo loaded.

Run: python -m tests.screenshots   (PostgreSQL and Redis as the benchmarks find them:
DATABASE_URL's server or the local one, REDIS_URL or a private Redis; both cleaned up)
"""

from __future__ import annotations

import json
import sys
import tempfile
import urllib.request
from pathlib import Path
from typing import Any

from bench.harness import scratch_environment
from tests.browser_support import (
    DEMO_PASSWORD,
    chromium_path,
    running_product,
    sign_in_through_page,
)

OUT = Path(__file__).resolve().parents[1] / "docs" / "screenshots"
VIEWPORT: dict[str, Any] = {"viewport": {"width": 390, "height": 844}, "device_scale_factor": 1,
            "is_mobile": True, "has_touch": True}  # fmt: skip


def _first_video(base: str, who: str, title: str) -> str:
    login = urllib.request.Request(
        f"{base}/api/v1/auth/token",
        data=json.dumps({"email": f"{who}@demo.example.com", "password": DEMO_PASSWORD}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(login, timeout=10) as response:
        token = json.loads(response.read())["access_token"]
    feed = urllib.request.Request(
        f"{base}/api/v1/feed", headers={"Authorization": f"Bearer {token}"}
    )
    with urllib.request.urlopen(feed, timeout=10) as response:
        for item in json.loads(response.read())["items"]:
            video = item.get("video", item)
            if video["title"] == title:
                return str(video["id"])
    raise SystemExit(f"{title!r} is not in the demo feed")


def _signed_in(browser: Any, base: str, handle: str) -> Any:
    context = browser.new_context(**VIEWPORT, base_url=base)
    return sign_in_through_page(context.new_page(), handle)


def _shot(page: Any, path: str, name: str) -> None:
    page.goto(f"/app{path}")
    page.wait_for_load_state("networkidle")
    page.wait_for_timeout(800)
    page.screenshot(path=str(OUT / f"{name}.png"))
    print(f"docs/screenshots/{name}.png  ({path})", file=sys.stderr)


def main() -> None:
    from playwright.sync_api import sync_playwright

    chromium = chromium_path()
    if chromium is None:
        raise SystemExit("Chromium is needed: apt-get install chromium, or set CHROMIUM")
    OUT.mkdir(parents=True, exist_ok=True)
    with (
        scratch_environment() as env,
        tempfile.TemporaryDirectory() as work,
        running_product(env["DATABASE_URL"], env["REDIS_URL"], Path(work)) as product,
        sync_playwright() as playwright,
    ):
        browser = playwright.chromium.launch(executable_path=chromium)
        base = product.base
        pricing = _first_video(base, "sam", "Handling Acme's pricing objection")

        page = browser.new_context(**VIEWPORT, base_url=base).new_page()
        page.goto("/app/")
        page.wait_for_load_state("networkidle")
        page.screenshot(path=str(OUT / "sign-in.png"))

        riley = _signed_in(browser, base, "riley")
        _shot(riley, "/", "feed")
        _shot(riley, "/record", "record")
        _shot(riley, "/inbox", "inbox")
        _shot(riley, "/search?q=pricing", "search")
        _shot(riley, "/learning", "learning")
        sam = _signed_in(browser, base, "sam")
        _shot(sam, f"/videos/{pricing}", "player")
        eli = _signed_in(browser, base, "eli")
        _shot(eli, "/collections", "collections")
        maya = _signed_in(browser, base, "maya")
        _shot(maya, "/insights", "insights")
        ada = _signed_in(browser, base, "ada")
        _shot(ada, "/admin/people", "admin")
        browser.close()


if __name__ == "__main__":
    main()
