"""Every error is problem+json: those gunicorn answers before the app sees the request (a real
`fieldcast web` on a loopback port), and everything the framework raises on its own (routing,
methods, body size and type, malformed JSON)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient

from api.log_masking import mask_secrets
from fieldcast.settings import Settings

# Its fixtures are made once per module: the module's tests share one worker.
pytestmark = pytest.mark.xdist_group("test_server_errors")

PROBLEM_JSON = "application/problem+json"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _exchange(port: int, raw: bytes) -> tuple[int, dict[str, str], bytes]:
    """Send raw bytes, read the whole answer (the server closes after an error)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
        conn.sendall(raw)
        chunks = []
        while chunk := conn.recv(65536):
            chunks.append(chunk)
    head, _, body = b"".join(chunks).partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return int(status_line.split()[1]), headers, body


@pytest.fixture(scope="module")
def gunicorn_web(
    settings: Settings, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[int, Path]]:
    """`fieldcast web` under gunicorn, with its access log on: (port, its output file)."""
    port = _free_port()
    root = Path(__file__).resolve().parent.parent
    env = {
        **os.environ,
        "DATABASE_URL": settings.database_url or "",
        "REDIS_URL": settings.redis_url or "",
        "SECRET_KEY": settings.secret_key or "",
        "FIELDCAST_DATA_DIR": str(tmp_path_factory.mktemp("web")),
        "PYTHONPATH": str(root),
        "LOG_LEVEL": "WARNING",
        "GUNICORN_ACCESS_LOG": "1",
    }
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    output_path = tmp_path_factory.mktemp("web-log") / "output.log"
    output = output_path.open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "fieldcast", "web", "--bind", f"127.0.0.1:{port}", "--workers", "1"],
        cwd=root,
        env=env,
        stdout=output,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                text = output_path.read_text(errors="replace")
                pytest.fail(f"fieldcast web exited ({process.returncode}):\n{text[-4000:]}")
            try:
                if _exchange(port, _request("/healthz"))[0] == 200:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail("fieldcast web did not answer /healthz within 60 s")
            time.sleep(0.2)
        yield port, output_path
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        output.close()


@pytest.fixture(scope="module")
def gunicorn_port(gunicorn_web: tuple[int, Path]) -> int:
    return gunicorn_web[0]


def _request(path: str, *headers: str) -> bytes:
    lines = [f"GET {path} HTTP/1.1", "Host: 127.0.0.1", "Connection: close", *headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


@pytest.mark.slow
@pytest.mark.parametrize(
    ("raw", "status", "code"),
    [
        pytest.param(_request("/api/v1/videos?q=" + "a" * 10_000), 414, "uri_too_long", id="uri"),
        pytest.param(
            _request("/healthz", *(f"X-Extra-{n}: {n}" for n in range(150))),
            431,
            "headers_too_large",
            id="too-many-headers",
        ),
        pytest.param(
            _request("/healthz", "X-Large: " + "a" * 10_000),
            431,
            "headers_too_large",
            id="oversized-header",
        ),
        pytest.param(b"THIS IS NOT HTTP\r\n\r\n", 400, "bad_request", id="request-line"),
        pytest.param(
            _request("/api/v1/videos", "Content-Length: nonsense").replace(b"GET", b"POST", 1),
            400,
            "bad_request",
            id="content-length",
        ),
        pytest.param(
            _request("/healthz", "Bad Header Name: x"), 400, "bad_request", id="header-name"
        ),
    ],
)
def test_errors_gunicorn_answers_are_problem_json(
    gunicorn_port: int, raw: bytes, status: int, code: str
) -> None:
    answered, headers, body = _exchange(gunicorn_port, raw)
    assert answered == status, body[:500]
    assert headers["content-type"] == PROBLEM_JSON
    problem = json.loads(body[: int(headers["content-length"])])
    assert problem["status"] == status
    assert problem["code"] == code
    assert problem["type"] == f"urn:fieldcast:problem:{code}"


# -- errors the framework raises by itself --------------------------------------------------------


def _assert_problem(response: Any, status: int, code: str) -> None:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == PROBLEM_JSON, response.get_data(as_text=True)[:300]
    body = response.get_json(force=True)
    assert body["status"] == status
    assert body["code"] == code


def test_an_unknown_route_is_problem_json(client: FlaskClient) -> None:
    _assert_problem(client.get("/api/v1/no-such-thing"), 404, "not_found")
    _assert_problem(client.get("/no-such-page"), 404, "not_found")


def test_a_method_a_route_does_not_have_is_problem_json(client: FlaskClient) -> None:
    response = client.put("/api/v1/videos")
    _assert_problem(response, 405, "method_not_allowed")
    assert "GET" in response.headers["Allow"]
    _assert_problem(client.post("/healthz"), 405, "method_not_allowed")


def test_a_body_over_the_limit_is_problem_json(
    client: FlaskClient, rep: Any, auth: Any, settings: Settings
) -> None:
    too_big = b"{" + b" " * settings.limits.max_request_bytes + b"}"
    response = client.post(
        "/api/v1/videos", data=too_big, content_type="application/json", headers=auth(rep)
    )
    _assert_problem(response, 413, "request_too_large")


def test_a_body_that_is_not_json_is_problem_json(client: FlaskClient, rep: Any, auth: Any) -> None:
    headers = auth(rep)
    nested_too_deep = "[" * 200_000 + "]" * 200_000
    deep_object = '{"title": "x", "deal_attributes": ' + '{"a": ' * 5000 + "1" + "}" * 5001
    for malformed in ("{not json", nested_too_deep, deep_object):
        response = client.post(
            "/api/v1/videos", data=malformed, content_type="application/json", headers=headers
        )
        _assert_problem(response, 400, "bad_request")
    response = client.post(
        "/api/v1/videos", data="title=x", content_type="text/plain", headers=headers
    )
    # A body that is not JSON is no JSON body at all: the required title is missing.
    _assert_problem(response, 422, "validation_failed")
    assert set(response.get_json()["errors"]) == {"title"}, response.get_json()


def test_the_access_log_leaves_upload_url_secrets_out(gunicorn_web: tuple[int, Path]) -> None:
    port, log = gunicorn_web
    secret = "k" * 43
    path = f"/api/v1/uploads/{uuid.uuid4()}/{secret}"
    _exchange(port, _request(path, "Tus-Resumable: 1.0.0"))
    deadline = time.monotonic() + 10
    while path.rsplit("/", 1)[0] not in log.read_text() and time.monotonic() < deadline:
        time.sleep(0.1)
    text = log.read_text()
    assert f"{path.rsplit('/', 1)[0]}/<secret>" in text
    assert secret not in text


@pytest.mark.parametrize("wanted", [False, True])
def test_gunicorn_builds_access_lines_only_when_the_access_log_is_wanted(
    wanted: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Off by default (the API logs its own requests): not written to /dev/null either, which
    would format a line per request for nothing."""
    from gunicorn.config import Config

    from api.server import AccessLogger
    from fieldcast.cli import gunicorn_argv

    if wanted:
        monkeypatch.setenv("GUNICORN_ACCESS_LOG", "1")
    else:
        monkeypatch.delenv("GUNICORN_ACCESS_LOG", raising=False)
    argv = gunicorn_argv("127.0.0.1:8000", 2, 4)
    assert argv[1:3] == ["-m", "gunicorn"]
    config = Config()
    for name, value in vars(config.parser().parse_args(argv[3:])).items():
        if value is not None and name != "args":
            config.set(name, value)
    assert config.logger_class is AccessLogger
    assert AccessLogger(config).access_log_enabled is wanted
    assert config.accesslog == ("-" if wanted else None)


@pytest.mark.parametrize(
    ("logged", "masked"),
    [
        (
            "PATCH /api/v1/uploads/0b9c1f7e-6a1d-4c7e-9a43-2f1f0d3c9b11/Zm9vYmFy-_x HTTP/1.1",
            "PATCH /api/v1/uploads/0b9c1f7e-6a1d-4c7e-9a43-2f1f0d3c9b11/<secret> HTTP/1.1",
        ),
        ("/api/v1/uploads/abc/s3cr3t?x=1", "/api/v1/uploads/abc/<secret>?x=1"),
        ("/api/v1/uploads", "/api/v1/uploads"),
        ("/api/v1/uploads/abc", "/api/v1/uploads/abc"),
        (
            "GET /play/v/first.m3u8?exp=170&g=Z3JhbnQ&sig=c2ln HTTP/1.1",
            "GET /play/v/first.m3u8?exp=170&g=<secret>&sig=<secret> HTTP/1.1",
        ),
        ("/media/a/b.m4s?sig=abc&name=x.mp4", "/media/a/b.m4s?sig=<secret>&name=x.mp4"),
    ],
)
def test_request_logs_leave_url_secrets_out(logged: str, masked: str) -> None:
    assert mask_secrets(logged) == masked


def test_the_worker_freezes_what_the_app_loaded_out_of_the_collectors_way() -> None:
    import gc

    from gunicorn.config import Config
    from gunicorn.glogging import Logger

    from api.server import ProblemThreadWorker

    class Loaded:
        def wsgi(self) -> Any:
            return lambda environ, start_response: []

    config = Config()
    worker = ProblemThreadWorker(0, os.getpid(), [], Loaded(), 30, config, Logger(config))
    gc.unfreeze()
    try:
        worker.load_wsgi()
        assert worker.wsgi is not None
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()
