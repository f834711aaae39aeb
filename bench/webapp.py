"""The web app on a phone: Lighthouse's mobile preset against the app's main screens.

What runs: the whole product as a person starts it (`fieldcast serve` on a scratch database and
Redis, then `fieldcast load-demo`, whose three videos serve's worker processes), and Lighthouse
(from the npm registry, pinned, through `npm exec`) driving the system Chromium with its mobile
preset: a mid-range phone's screen, 4x slower CPU and slow 4G, simulated. Signed-in screens run
in a Chromium profile where the demo rep signed in through the page (its session cookie kept,
its HTTP cache, service worker and caches then emptied): each screen is a cold load, with a
fresh copy of that profile, Lighthouse told not to reset storage (which would end the session).

Screens: the sign-in page (`signin`), the feed after sign-in (`feed`), the player of a demo
video with its comments (`player`) and search (`search`). The same run's baseline is the API
document's page on the same server (`/docs`, Swagger UI, not built for phones): Lighthouse's
figures move with the machine much less than wall-clock ones (the throttling is simulated), and
the baseline shows how much they moved.

Figures (one JSON line on stdout, progress on stderr), for each screen NAME:
- `NAME_performance`: Lighthouse's performance score, 0-100;
- `NAME_lcp_ms`: largest contentful paint, milliseconds;
- `NAME_accessibility`: Lighthouse's accessibility score (axe-core's checks), 0-100;
and `baseline_docs_performance`, `baseline_docs_lcp_ms`.

Targets: every screen's performance >= 90 and largest contentful paint <= 2,500 ms.

Run: python -m bench.webapp  [--quick: the sign-in page and the feed only] [--reports DIR: keep
the Lighthouse reports]
Needs Node.js with npm (the npm registry reachable once) and Chromium (CHROME_PATH or
`chromium` on PATH).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import requests

from bench import harness
from bench.harness import free_port, scratch_environment, wait_until_up
from tests.browser_support import DEMO_PASSWORD, chromium_path, sign_in_through_page

LIGHTHOUSE = "lighthouse@13.5.0"
TARGETS = {"performance": 90, "lcp_ms": 2500}
STARTED = time.perf_counter()


def log(message: str) -> None:
    harness.log(f"[{time.perf_counter() - STARTED:5.1f} s] {message}")


def chromium() -> str:
    found = os.environ.get("CHROME_PATH") or chromium_path()
    if not found:
        raise SystemExit("Chromium is needed: apt-get install chromium, or set CHROME_PATH")
    return found


def signed_in_profile(base: str, directory: Path) -> Path:
    """A Chromium profile where the demo rep signed in through the app's page, then emptied of
    everything but the cookies: the next load is cold."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(directory), executable_path=chromium(), args=["--no-sandbox"]
        )
        page = sign_in_through_page(context.new_page(), "riley", base)
        page.evaluate(
            """() => navigator.serviceWorker.getRegistrations()
                .then((all) => Promise.all(all.map((r) => r.unregister())))
                .then(() => caches.keys())
                .then((names) => Promise.all(names.map((name) => caches.delete(name))))"""
        )
        context.new_cdp_session(page).send("Network.clearBrowserCache")
        context.close()
    return directory


def lighthouse(url: str, out: Path, *, profile: Path | None) -> dict[str, float]:
    """One Lighthouse run with the mobile preset (its default): the scores and LCP."""
    flags = "--headless=new --no-sandbox"
    command = [
        "npm", "exec", "--yes", f"--package={LIGHTHOUSE}", "--", "lighthouse", url,
        "--quiet", "--output=json", f"--output-path={out}",
        "--only-categories=performance,accessibility",
    ]  # fmt: skip
    if profile is not None:
        # A copy per run: one run's cache must not warm the next.
        copy = out.with_suffix(".profile")
        shutil.copytree(profile, copy)
        flags += f" --user-data-dir={copy}"
        command.append("--disable-storage-reset")
    command.append(f"--chrome-flags={flags}")
    subprocess.run(
        command,
        check=True,
        timeout=300,
        env={**os.environ, "CHROME_PATH": chromium()},
        cwd=out.parent,
    )
    report = json.loads(out.read_text())
    if report.get("runtimeError"):
        raise RuntimeError(f"Lighthouse on {url}: {report['runtimeError']}")
    if profile is not None:
        # The page really was signed in: it read /me with the kept cookie.
        requests_made = report["audits"]["network-requests"]["details"]["items"]
        if not any(
            r["url"].endswith("/api/v1/me") and r.get("statusCode") == 200 for r in requests_made
        ):
            raise RuntimeError(f"Lighthouse on {url}: the page was not signed in")
    categories = report["categories"]
    return {
        "performance": round(categories["performance"]["score"] * 100),
        "lcp_ms": round(report["audits"]["largest-contentful-paint"]["numericValue"]),
        "accessibility": round(categories["accessibility"]["score"] * 100),
    }


def session_cookie(base: str) -> str:
    """The demo rep's browser session, as the app's sign-in makes it."""
    response = requests.post(
        f"{base}/api/v1/auth/session",
        json={"email": "riley@demo.example.com", "password": DEMO_PASSWORD},
        timeout=30,
    )
    response.raise_for_status()
    return "; ".join(f"{name}={value}" for name, value in response.cookies.items())


def a_demo_video(base: str, cookie: str) -> str:
    response = requests.get(f"{base}/api/v1/feed", headers={"Cookie": cookie}, timeout=30)
    response.raise_for_status()
    item = response.json()["items"][0]
    return str(item.get("video", item)["id"])


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--quick", action="store_true", help="the sign-in page and the feed")
    parser.add_argument(
        "--reports", type=Path, help="keep each screen's Lighthouse report (JSON) in this folder"
    )
    args = parser.parse_args(argv)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    figures: dict[str, Any] = {}
    with scratch_environment(PUBLIC_BASE_URL=base) as env, tempfile.TemporaryDirectory() as tmp:
        log(f"starting fieldcast serve on {base}")
        serve = subprocess.Popen(
            [sys.executable, "-m", "fieldcast", "serve", "--port", str(port)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        try:
            wait_until_up(base, timeout=120)
            log("loading the demo (three videos, processed by serve's worker)")
            subprocess.run(
                [sys.executable, "-m", "fieldcast", "load-demo", "--password", DEMO_PASSWORD],
                env=env,
                check=True,
                timeout=600,
                stdout=subprocess.DEVNULL,
            )
            cookie = session_cookie(base)
            profile = signed_in_profile(base, Path(tmp) / "signed-in")
            screens: list[tuple[str, str, Path | None]] = [
                ("baseline_docs", f"{base}/docs", None),
                ("signin", f"{base}/app/", None),
                ("feed", f"{base}/app/", profile),
            ]
            if not args.quick:
                video = a_demo_video(base, cookie)
                screens += [
                    ("player", f"{base}/app/videos/{video}", profile),
                    ("search", f"{base}/app/search?q=pricing", profile),
                ]
            for name, url, signed_in in screens:
                log(f"Lighthouse (mobile): {name} {url}")
                result = lighthouse(url, Path(tmp) / f"{name}.json", profile=signed_in)
                if args.reports:
                    args.reports.mkdir(parents=True, exist_ok=True)
                    shutil.copy(Path(tmp) / f"{name}.json", args.reports / f"{name}.json")
                for key, value in result.items():
                    if name == "baseline_docs" and key == "accessibility":
                        continue
                    figures[f"{name}_{key}"] = value
                log(
                    f"  {name}: performance {result['performance']} (baseline "
                    f"{figures['baseline_docs_performance']}), LCP {result['lcp_ms']} ms "
                    f"(baseline {figures['baseline_docs_lcp_ms']} ms), accessibility "
                    f"{result['accessibility']}"
                )
        finally:
            serve.terminate()
            try:
                serve.wait(timeout=60)
            except subprocess.TimeoutExpired:
                serve.kill()
    screens_measured = [
        key.removesuffix("_performance")
        for key in figures
        if key.endswith("_performance") and not key.startswith("baseline")
    ]
    misses = [
        name
        for name in screens_measured
        if figures[f"{name}_performance"] < TARGETS["performance"]
        or figures[f"{name}_lcp_ms"] > TARGETS["lcp_ms"]
    ]
    log(
        "targets: performance >= 90, LCP <= 2500 ms: "
        + (f"missed by {misses}" if misses else "met")
    )
    print(json.dumps(figures), flush=True)
    return figures


if __name__ == "__main__":
    main()
