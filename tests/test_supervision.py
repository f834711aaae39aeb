"""`fieldcast serve` keeps the embedded default running like a process manager: each part is
killed for real and the product is watched while it recovers, on a data directory and port of
the test's own (never the machine's PostgreSQL or Redis)."""

from __future__ import annotations

import contextlib
import json
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import psutil
import pytest
from redis import Redis
from rq.job import Job, JobStatus

from fieldcast.embedded import read_runtime
from media.ffmpeg import ffmpeg_binary
from tests.test_embedded import _env, _fieldcast, _free_port, _get, _leftovers
from workers.queues import get_queue

# Whole stacks of processes: one such file at a time (scripts/test runs them on one worker).
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("stack")]

T = TypeVar("T")

_SERVE = [sys.executable, "-m", "fieldcast", "serve"]
_DEMO_LOGIN = {"email": "riley@demo.example.com", "password": "demo-password-1"}

# Each part of the product, told apart by its command line among serve's children.
PARTS: dict[str, Callable[[list[str]], bool]] = {
    "web": lambda cmd: "gunicorn" in cmd,
    "worker-fast": lambda cmd: "worker" in cmd and "notify" in cmd,
    "worker-media": lambda cmd: "worker" in cmd and "media" in cmd and "notify" not in cmd,
    "scheduler": lambda cmd: "scheduler" in cmd,
    "redis": lambda cmd: bool(cmd) and cmd[0].endswith("redis-server"),
    "postgres": lambda cmd: bool(cmd) and cmd[0].endswith("/postgres"),
}


def _eventually(probe: Callable[[], T | None], what: str, timeout: float = 30) -> T:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            found = probe()
        except (OSError, psutil.Error):
            found = None
        if found:
            return found
        time.sleep(0.2)
    pytest.fail(f"not within {timeout:.0f} s: {what}")


@dataclass
class Serve:
    data_dir: Path
    port: int
    process: subprocess.Popen[bytes]
    log_path: Path

    @classmethod
    def start(cls, data_dir: Path, *args: str) -> Serve:
        port = _free_port()
        data_dir.mkdir(parents=True, exist_ok=True)
        log_path = data_dir.parent / "serve.log"
        # A file, not a pipe: serve and its children log for minutes, and a full pipe would
        # block them.
        with log_path.open("wb") as log_file:
            process = subprocess.Popen(
                [*_SERVE, "--port", str(port), "--web-workers", "1", *args],
                env=_env(data_dir),
                stdout=log_file,
                stderr=subprocess.STDOUT,
            )
        serve = cls(data_dir, port, process, log_path)
        serve.wait_ready(timeout=90)
        return serve

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def ready(self) -> bool:
        if self.process.poll() is not None:
            pytest.fail(f"serve exited ({self.process.returncode}):\n{self.output()[-4000:]}")
        try:
            return _get(f"{self.base}/readyz")[0] == 200
        except OSError:
            return False

    def wait_ready(self, timeout: float = 60) -> None:
        _eventually(self.ready, "the API answers /readyz with 200", timeout)

    def part(self, name: str) -> psutil.Process | None:
        for child in psutil.Process(self.process.pid).children():
            try:
                if PARTS[name](child.cmdline()) and child.status() != psutil.STATUS_ZOMBIE:
                    return child
            except psutil.Error:
                continue
        return None

    def wait_part(self, name: str, *, other_than: int | None = None) -> psutil.Process:
        def found() -> psutil.Process | None:
            part = self.part(name)
            return part if part is not None and part.pid != other_than else None

        return _eventually(found, f"{name} runs (again)", timeout=60)

    def wait_log(self, pattern: str, timeout: float = 30) -> str:
        def found() -> str | None:
            match = re.search(pattern, self.output())
            return match.group(0) if match else None

        return _eventually(found, f"serve logs {pattern!r}", timeout)

    def redis(self) -> Redis:
        runtime = read_runtime(self.data_dir)
        assert runtime is not None
        return Redis.from_url(runtime["redis_url"])

    def run_job(self, queue: str, func: str, *args: Any, timeout: float = 60) -> None:
        """Enqueue a job of the product and wait until a worker has done it."""
        with self.redis() as redis:
            job = get_queue(redis, queue).enqueue_call(func, args=args, result_ttl=600)

        def finished() -> bool:
            with self.redis() as redis:
                status = Job.fetch(job.id, connection=redis).get_status()
            assert status != JobStatus.FAILED, f"{func} failed on {queue}"
            return status == JobStatus.FINISHED

        _eventually(finished, f"a worker on {queue} runs {func}", timeout)

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
        return self.process.wait(timeout=120)


def _long_encode() -> list[str]:
    """ffmpeg reading a test pattern in real time for ten minutes: a job still running when its
    worker is killed."""
    pattern = "testsrc2=size=32x32:rate=5:duration=600"
    return [ffmpeg_binary(), "-nostdin", "-re", "-f", "lavfi", "-i", pattern, "-f", "null", "-"]


def _all_gone(processes: list[psutil.Process]) -> bool:
    alive = [p for p in processes if p.is_running()]
    return all(p.status() == psutil.STATUS_ZOMBIE for p in alive)


def _login(serve: Serve) -> int:
    request = urllib.request.Request(
        f"{serve.base}/api/v1/auth/token",
        data=json.dumps(
            {"email": "riley@demo.example.com", "password": "demo-password-1"}
        ).encode(),
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


@contextlib.contextmanager
def _data_dir() -> Iterator[Path]:
    """Outside pytest's base temporary directory: running as root, the embedded PostgreSQL runs
    as a user of its own, which must traverse the path, and every pytest session on the
    machine makes its base directory private again."""
    directory = Path(tempfile.mkdtemp(prefix="fc-serve-"))
    try:
        yield directory / "var"
    finally:
        shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture
def data_dir() -> Iterator[Path]:
    with _data_dir() as directory:
        yield directory


@pytest.fixture(scope="module")
def serve() -> Iterator[Serve]:
    """One serve for the kill tests: each kills a part and waits until all is well again."""
    with _data_dir() as data_dir:
        yield from _serve_with_demo(data_dir)


def _serve_with_demo(data_dir: Path) -> Iterator[Serve]:
    serve = Serve.start(data_dir)
    try:
        demo = _fieldcast(
            data_dir, "load-demo", "--password", "demo-password-1", "--no-videos", timeout=60
        )
        assert demo.returncode == 0, demo.stderr
        yield serve
    finally:
        code = serve.stop()
    assert code == 0, serve.output()[-4000:]
    assert _leftovers(data_dir) == []


def test_a_killed_worker_is_started_again_and_the_api_stays_up(serve: Serve) -> None:
    worker = serve.wait_part("worker-fast")
    worker.kill()
    serve.wait_log(rf"worker-fast \(pid {worker.pid}\) was killed by SIGKILL; restarting it in 1 s")
    assert _get(f"{serve.base}/readyz")[0] == 200
    serve.wait_part("worker-fast", other_than=worker.pid)
    serve.wait_log(r"worker-fast restarted \(pid \d+\)")
    serve.run_job("default", "workers.jobs.relay_outbox")
    assert _login(serve) == 200


def test_a_killed_api_is_started_again_on_its_port(serve: Serve) -> None:
    web = serve.wait_part("web")
    web.kill()  # gunicorn's master; its workers must not keep the port
    serve.wait_log(rf"web \(pid {web.pid}\) was killed by SIGKILL; restarting it in 1 s")
    serve.wait_part("web", other_than=web.pid)
    serve.wait_ready()
    assert _login(serve) == 200


def _worker_encoding(serve: Serve) -> tuple[psutil.Process, list[psutil.Process]]:
    """The media worker once its work horse runs a long ffmpeg encode, and the horse and
    ffmpeg processes."""
    worker = serve.wait_part("worker-media")
    with serve.redis() as redis:
        get_queue(redis, "media").enqueue_call("media.ffmpeg.run", args=(_long_encode(),))

    def horse_running_ffmpeg() -> list[psutil.Process] | None:
        tree = worker.children(recursive=True)
        return tree if any("ffmpeg" in p.name() for p in tree) else None

    return worker, _eventually(horse_running_ffmpeg, "the work horse runs ffmpeg")


def test_a_killed_worker_leaves_no_work_horse_or_ffmpeg_behind(serve: Serve) -> None:
    worker, horse_and_ffmpeg = _worker_encoding(serve)
    worker.kill()

    _eventually(
        lambda: _all_gone(horse_and_ffmpeg), "the work horse and ffmpeg are gone", timeout=10
    )
    serve.wait_part("worker-media", other_than=worker.pid)
    serve.run_job("media", "workers.jobs.relay_outbox")


def test_a_killed_redis_is_started_again_and_the_workers_carry_on(serve: Serve) -> None:
    redis = serve.wait_part("redis")
    redis.kill()
    serve.wait_log(rf"redis \(pid {redis.pid}\) was killed by SIGKILL; restarting it")
    serve.wait_part("redis", other_than=redis.pid)
    serve.wait_ready()
    serve.run_job("default", "workers.jobs.relay_outbox")
    serve.run_job("media", "workers.jobs.relay_outbox")


def test_a_redis_that_stops_answering_is_replaced(serve: Serve) -> None:
    redis = serve.wait_part("redis")
    redis.suspend()  # alive, but silent
    serve.wait_log(rf"redis \(pid {redis.pid}\) stopped answering")
    serve.wait_part("redis", other_than=redis.pid)
    serve.wait_ready()
    serve.run_job("default", "workers.jobs.relay_outbox")


def test_a_killed_postgres_is_started_again_on_the_same_data(serve: Serve) -> None:
    postgres = serve.wait_part("postgres")
    postgres.kill()
    serve.wait_log(rf"postgres \(pid {postgres.pid}\) was killed by SIGKILL; restarting it")
    serve.wait_part("postgres", other_than=postgres.pid)
    serve.wait_ready()
    # The API's pool reconnects on its own, and the demo data is still there.
    _eventually(lambda: _login(serve) == 200, "a demo user logs in again")
    serve.run_job("default", "workers.jobs.relay_outbox")


def test_a_part_that_keeps_failing_makes_serve_give_up(data_dir: Path) -> None:
    serve = Serve.start(data_dir, "--restart-limit", "3", "--restart-window", "120")
    try:
        killed = None
        for _ in range(3):
            scheduler = serve.wait_part("scheduler", other_than=killed)
            scheduler.kill()
            killed = scheduler.pid
        code = serve.process.wait(timeout=60)
    finally:
        serve.stop()
    output = serve.output()
    assert code == 1, output[-4000:]
    assert re.search(r"Fieldcast stopped because scheduler failed 3 times within 120 s", output)
    assert re.search(
        r"scheduler failed 3 times within 120 s \(last: scheduler \(pid \d+\) was killed by "
        r"SIGKILL\); giving up and stopping Fieldcast",
        output,
    ), output[-4000:]
    assert _leftovers(data_dir) == []


def test_nothing_outlives_a_killed_serve_not_even_a_job_in_progress(data_dir: Path) -> None:
    serve = Serve.start(data_dir)
    _, horse_and_ffmpeg = _worker_encoding(serve)
    # The API (gunicorn and its workers), the workers and the scheduler.
    product = [
        process
        for name in ("web", "worker-fast", "worker-media", "scheduler")
        if (part := serve.part(name)) is not None
        for process in (part, *part.children(recursive=True))
    ]
    assert _leftovers(data_dir) != []
    serve.process.kill()
    serve.process.wait()
    # A worker must not finish its job first (a ladder may take many minutes) for nobody.
    _eventually(
        lambda: _all_gone([*product, *horse_and_ffmpeg]),
        "the API, the workers, the work horse, ffmpeg and the scheduler are gone",
        timeout=10,
    )
    _eventually(lambda: _leftovers(data_dir) == [], "serve's children are gone", timeout=45)


def test_a_worker_killed_outright_takes_its_work_horse_and_ffmpeg_with_it(
    database_url: str, redis_url: str, tmp_path: Path
) -> None:
    """Without serve too (a worker in a container or under systemd): RQ gives the horse a
    process group of its own, so nothing but the worker's death tells it to stop."""
    env = {
        **_env(tmp_path / "var"),
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "SECRET_KEY": "test-secret-key-" + "x" * 32,
    }
    worker = subprocess.Popen(
        [sys.executable, "-m", "fieldcast", "worker", "--queue", "media"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        with Redis.from_url(redis_url) as redis:
            get_queue(redis, "media").enqueue_call("media.ffmpeg.run", args=(_long_encode(),))
        process = psutil.Process(worker.pid)

        def horse_running_ffmpeg() -> list[psutil.Process] | None:
            tree = process.children(recursive=True)
            return tree if any("ffmpeg" in p.name() for p in tree) else None

        horse_and_ffmpeg = _eventually(horse_running_ffmpeg, "the work horse runs ffmpeg", 60)
        worker.kill()
        worker.wait()
        _eventually(lambda: _all_gone(horse_and_ffmpeg), "the work horse and ffmpeg are gone", 10)
    finally:
        worker.kill()
        worker.wait()
