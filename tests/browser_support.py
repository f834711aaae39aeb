"""The whole product running as a person runs it (`fieldcast serve`, then `fieldcast load-demo`),
and Debian's Chromium driven by Playwright, for the web app's end-to-end tests and screenshots.

Chromium is the system's (`chromium` from Debian, or CHROMIUM=/path): Playwright's own browser
download is not used. Without it the browser tests are skipped, saying so.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DEMO_PASSWORD = "demo-password-1"
# A phone: the app is built for 360 px wide and up.
PHONE: dict[str, Any] = {
    "viewport": {"width": 360, "height": 780},
    "device_scale_factor": 2,
    "is_mobile": True,
    "has_touch": True,
}


def chromium_path() -> str | None:
    """The system Chromium, or None when it is not installed."""
    given = os.environ.get("CHROMIUM")
    if given:
        return given if Path(given).is_file() else None
    return shutil.which("chromium") or shutil.which("chromium-browser")


def sign_in_through_page(page: Any, handle: str, base: str = "") -> Any:
    """Sign a demo person in as they do: the app's sign-in form, until the main navigation shows."""
    page.goto(f"{base}/app/")
    page.get_by_label("Email").fill(f"{handle}@demo.example.com")
    page.get_by_label("Password").fill(DEMO_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("navigation", name="Main").wait_for()
    return page


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError:
        return 0


@dataclass
class Product:
    base: str
    process: subprocess.Popen[bytes]
    log_path: Path
    demo_output: str = ""
    env: dict[str, str] = field(default_factory=dict)
    # The FCM stand-in the product pushes to, when the tests give it one.
    fcm: Any = None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-6000:]


@contextmanager
def running_product(
    database_url: str, redis_url: str, work_dir: Path, **extra_env: str
) -> Iterator[Product]:
    """`fieldcast serve` on the given database and Redis (and `extra_env`), with the demo
    loaded (its videos uploaded and processed by serve's own worker), stopped afterwards."""
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    keep = {"DATABASE_URL", "REDIS_URL", "STORAGE_URL", "SECRET_KEY", "PUBLIC_BASE_URL"}
    env = {k: v for k, v in os.environ.items() if k not in keep}
    env.update(
        DATABASE_URL=database_url,
        REDIS_URL=redis_url,
        SECRET_KEY="browser-tests-secret-key-" + "y" * 32,
        FIELDCAST_DATA_DIR=str(work_dir / "var"),
        STORAGE_URL=f"file://{work_dir / 'media'}",
        PUBLIC_BASE_URL=base,
        **extra_env,
    )
    log_path = work_dir / "serve.log"
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(
            [sys.executable, "-m", "fieldcast", "serve", "--port", str(port), "--web-workers", "1"],
            env=env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    product = Product(base, process, log_path, env=env)
    try:
        deadline = time.monotonic() + 120
        while _status(f"{base}/readyz") != 200:
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"fieldcast serve did not start:\n{product.log()}")
            time.sleep(0.3)
        demo = subprocess.run(
            [sys.executable, "-m", "fieldcast", "load-demo", "--password", DEMO_PASSWORD],
            env=env,
            capture_output=True,
            text=True,
            timeout=400,
            check=False,
        )
        if demo.returncode != 0:
            raise RuntimeError(f"load-demo failed:\n{demo.stdout}\n{demo.stderr}\n{product.log()}")
        product.demo_output = demo.stdout
        yield product
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=40)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


@dataclass
class PageWatch:
    """What went wrong in a page: script errors, and resources or code the policy refused."""

    errors: list[str] = field(default_factory=list)

    def attach(self, page: Any) -> None:
        page.on("pageerror", lambda error: self.errors.append(f"page error: {error}"))

        def console(message: Any) -> None:
            text = message.text
            if message.type == "error" and "Content Security Policy" in text:
                self.errors.append(f"CSP: {text}")
            elif message.type == "error" and "Failed to load resource" not in text:
                self.errors.append(f"console: {text}")

        page.on("console", console)


def vapid_public_key() -> str:
    """A Web Push (VAPID) public key as Firebase's settings give it: a P-256 point, base64url."""
    import base64

    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    point = (
        ec.generate_private_key(ec.SECP256R1())
        .public_key()
        .public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)
    )
    return base64.urlsafe_b64encode(point).rstrip(b"=").decode()


def browser_push_payload(v1_message: dict[str, Any]) -> dict[str, Any]:
    """What FCM hands a browser for an HTTP v1 message: its `notification` merged with the
    `webpush.notification` overrides, and its `data` (FCM's Web Push delivery)."""
    webpush = v1_message.get("webpush", {}).get("notification", {})
    notification = {**v1_message.get("notification", {}), **webpush}
    return {"notification": notification, "data": v1_message.get("data", {})}
