"""Upload throughput and memory: a tus upload through the API against a plain streaming PUT.

What: a 1 GiB file of random bytes is uploaded with the official tus client (tuspy, 8 MiB
chunks) to the real API: `fieldcast web` (gunicorn, `wsgi:app`, with the production options)
with one worker process, against real PostgreSQL and Redis and local-disk storage. The bytes
are verified where they landed: the video's `source_bytes` in the database and the stored object,
compared byte for byte with the source file.

Baseline, in the same run: the same file sent as one streaming `requests.put` (read from disk,
`Content-Length` set) to `bench.upload:bare_app`, a bare WSGI app served by the same gunicorn
command line (same worker class, threads and timeouts, one worker) that copies `wsgi.input` to
a file on the same disk in 1 MiB reads and fsyncs it once before answering. The tus path ends
the same way: local storage starts each chunk's writeback as it arrives and fsyncs the file
once, when the last chunk completes it, so both answer their last request with the whole file
on disk.

Figures (one JSON line on stdout, progress on stderr):

- `tus_mb_s`, `bare_put_mb_s`: file size / client-side wall time, first byte to last response
  (the tus time includes its creation POST). MB = 10^6 bytes.
- `throughput_ratio`: tus_mb_s / bare_put_mb_s. Target >= 0.8.
- `rss_growth_mb`: the API worker's peak RSS during the tus upload (sampled every 50 ms) minus
  its RSS just before it, after a warm-up (a health check and a tiny tus upload). MiB.
  Target <= 64.
- `size_mb`, `chunk_mb`: the file size and the tus chunk size, in MiB.

The file is sent `--rounds` times each way (default 5), alternating, and the speeds are medians
(`rss_growth_mb` the largest): a single 1 GiB PUT into the page cache varies by 2x from one
run to the next on a virtual machine, and other work on the machine moves both figures.

Services: a database created for the run on the PostgreSQL server of DATABASE_URL (or at
127.0.0.1:5432) and dropped afterwards, or an embedded PostgreSQL when there is none; a private
Redis server (the product's embedded one, in the run's temporary directory), or the empty
database REDIS_URL reserves for the run (see `bench.harness.own_redis`). The run empties
nothing it did not create.

Run: python -m bench.upload  [--size-mb 1024 | --quick] [--rounds 5]
(--quick: a 16 MiB file, one round each way: a smoke test, not a measurement)
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse, urlunparse

import psutil
import requests

MB = 1_000_000
MIB = 1024 * 1024
CHUNK_MIB = 8
READ_BLOCK = MIB
DEFAULT_SIZE_MIB = 1024
QUICK_SIZE_MIB = 16
DEFAULT_ROUNDS = 5
WARMUP_BYTES = 256 * 1024
RSS_INTERVAL_S = 0.05
TARGET_RATIO = 0.8
TARGET_RSS_GROWTH_MIB = 64

LOCAL_POSTGRES = "postgresql://postgres@127.0.0.1:5432/postgres"
SINK_ENV = "FIELDCAST_BENCH_SINK_DIR"
REPO_ROOT = Path(__file__).resolve().parent.parent
PASSWORD_BYTES = 18


def log(message: str) -> None:
    print(f"[bench.upload] {message}", file=sys.stderr, flush=True)


# -- The baseline server ------------------------------------------------------------------------


def bare_app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    """PUT: stream the body to a new file in $FIELDCAST_BENCH_SINK_DIR; anything else: 200."""
    if environ["REQUEST_METHOD"] != "PUT":
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "3")])
        return [b"ok\n"]
    expected = int(environ.get("CONTENT_LENGTH") or 0)
    stream = environ["wsgi.input"]
    target = Path(os.environ[SINK_ENV]) / f"{uuid.uuid4().hex}.bin"
    written = 0
    started = time.perf_counter()
    with target.open("wb") as out:
        while written < expected:
            block = stream.read(min(READ_BLOCK, expected - written))
            if not block:
                break
            out.write(block)
            written += len(block)
        out.flush()
        received = time.perf_counter()
        os.fsync(out.fileno())
    timings = {"receive_s": received - started, "fsync_s": time.perf_counter() - received}
    body = json.dumps({"name": target.name, "bytes": written, **timings}).encode()
    start_response(
        "201 Created",
        [("Content-Type", "application/json"), ("Content-Length", str(len(body)))],
    )
    return [body]


# -- Services -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Services:
    database_url: str
    redis_url: str
    origin: str


def _postgres_reachable(url: str) -> bool:
    import psycopg

    try:
        with psycopg.connect(url, connect_timeout=3):
            return True
    except psycopg.Error:
        return False


@contextmanager
def _scratch_database(admin_url: str) -> Iterator[str]:
    import psycopg

    name = f"fieldcast_bench_{secrets.token_hex(5)}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield urlunparse(urlparse(admin_url)._replace(path=f"/{name}"))
    finally:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        log(f"dropped scratch database {name}")


@contextmanager
def services(workdir: Path) -> Iterator[Services]:
    """PostgreSQL and Redis, migrated to head, and everything made for the run removed after."""
    from bench.harness import own_redis
    from fieldcast.embedded import EmbeddedPostgres
    from fieldcast.settings import normalise_database_url
    from migrations.config import upgrade

    redis_origin = "the REDIS_URL database" if os.environ.get("REDIS_URL") else "a private Redis"
    with own_redis(workdir) as redis_url:
        server = (os.environ.get("DATABASE_URL") or LOCAL_POSTGRES).replace(
            "postgresql+psycopg://", "postgresql://"
        )
        if _postgres_reachable(server):
            with _scratch_database(server) as db_url:
                upgrade(normalise_database_url(db_url))
                yield Services(db_url, redis_url, f"a scratch database and {redis_origin}")
            return
        postgres = EmbeddedPostgres(workdir / "embedded")
        try:
            log("no PostgreSQL reachable; starting an embedded one")
            db_url = postgres.start()
            upgrade(normalise_database_url(db_url))
            yield Services(db_url, redis_url, f"an embedded PostgreSQL and {redis_origin}")
        finally:
            postgres.stop()


# -- gunicorn -----------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Gunicorn:
    name: str
    process: subprocess.Popen[bytes]
    base: str
    log_path: Path

    def argv(self) -> list[str]:
        return list(psutil.Process(self.process.pid).cmdline())

    def worker(self) -> psutil.Process:
        children = psutil.Process(self.process.pid).children()
        if len(children) != 1:
            raise RuntimeError(f"{self.name}: expected one gunicorn worker, found {children}")
        return children[0]

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


@contextmanager
def gunicorn(
    name: str, argv: list[str], env: dict[str, str], workdir: Path, port: int
) -> Iterator[Gunicorn]:
    """Start a gunicorn master (its own process group) and wait until it answers /healthz."""
    log_path = workdir / f"{name}.log"
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(
            argv,
            env=env,
            cwd=REPO_ROOT,
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    server = Gunicorn(name, process, f"http://127.0.0.1:{port}", log_path)
    try:
        _wait_until_up(server)
        yield server
    finally:
        _stop(process)


def _wait_until_up(server: Gunicorn, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"{server.name} exited at start:\n{server.log_tail()}")
        with suppress(requests.ConnectionError, requests.Timeout):
            if requests.get(server.base + "/healthz", timeout=5).status_code == 200:
                return
        time.sleep(0.1)
    raise RuntimeError(f"{server.name} did not answer within {timeout} s:\n{server.log_tail()}")


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        with suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        with suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def bare_argv(api_argv: list[str], port: int) -> list[str]:
    """The API's own gunicorn command line, serving the bare app on another port."""
    argv = list(api_argv)
    if argv.count("wsgi:app") != 1 or "--bind" not in argv:
        raise RuntimeError(f"unexpected gunicorn command line: {argv}")
    argv[argv.index("wsgi:app")] = "bench.upload:bare_app"
    argv[argv.index("--bind") + 1] = f"127.0.0.1:{port}"
    return argv


# -- Measurements -------------------------------------------------------------------------------


class PeakRss:
    """Samples a process's RSS in a thread; `peak` is the largest sample."""

    def __init__(self, process: psutil.Process, interval: float = RSS_INTERVAL_S) -> None:
        self.process = process
        self.interval = interval
        self.peak = process.memory_info().rss
        self.samples = 1
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)

    def _sample(self) -> None:
        self.peak = max(self.peak, self.process.memory_info().rss)
        self.samples += 1

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self._sample()

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()


# An MP4's first box: the API refuses at the first chunk a file that cannot be a video.
MP4_HEAD = b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom"


def write_random_file(path: Path, size: int) -> None:
    """Incompressible bytes after an MP4's first box, written in 8 MiB pieces (never the
    whole file in memory)."""
    piece = CHUNK_MIB * MIB
    with path.open("wb") as out:
        out.write(MP4_HEAD[:size])
        remaining = size - min(size, len(MP4_HEAD))
        while remaining:
            block = os.urandom(min(piece, remaining))
            out.write(block)
            remaining -= len(block)


def file_digest(path: Path) -> str:
    digest = hashlib.blake2b()
    with path.open("rb") as handle:
        while block := handle.read(8 * MIB):
            digest.update(block)
    return digest.hexdigest()


def flush_disk() -> None:
    """Write back dirty pages, so one phase does not pay for the previous one's writes."""
    os.sync()


@dataclass
class Account:
    base: str
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def create_draft(self, title: str) -> str:
        response = requests.post(
            self.base + "/api/v1/videos", json={"title": title}, headers=self.headers, timeout=30
        )
        response.raise_for_status()
        return str(response.json()["id"])

    def video(self, video_id: str) -> dict[str, Any]:
        response = requests.get(
            f"{self.base}/api/v1/videos/{video_id}", headers=self.headers, timeout=30
        )
        response.raise_for_status()
        result: dict[str, Any] = response.json()
        return result

    def tus_upload(self, path: Path, video_id: str) -> int:
        """Upload `path` with tuspy in 8 MiB chunks; returns the offset the server confirmed."""
        from tusclient.client import TusClient

        client = TusClient(self.base + "/api/v1/uploads", headers=self.headers)
        uploader = client.uploader(
            file_path=str(path),
            chunk_size=CHUNK_MIB * MIB,
            metadata={"video_id": video_id, "filename": path.name},
        )
        uploader.upload()
        return int(uploader.offset)


def sign_in(database_url: str, base: str) -> Account:
    """A new organisation whose admin signs in through the API."""
    from fieldcast.accounts.services import create_organisation
    from fieldcast.db import Database
    from fieldcast.settings import normalise_database_url

    slug = f"bench-upload-{secrets.token_hex(4)}"
    password = secrets.token_urlsafe(PASSWORD_BYTES)
    database = Database(normalise_database_url(database_url), pool_size=1)
    try:
        with database.unit_of_work() as session:
            created = create_organisation(
                session,
                name="Upload benchmark",
                slug=slug,
                admin_email=f"admin@{slug}.example.com",
                admin_name="Upload Benchmark",
                admin_handle=f"bench_{secrets.token_hex(3)}",
                admin_password=password,
            )
            email = created.admin.email
    finally:
        database.dispose()
    response = requests.post(
        base + "/api/v1/auth/token", json={"email": email, "password": password}, timeout=30
    )
    response.raise_for_status()
    return Account(base, response.json()["access_token"])


def stored_source(database_url: str, video_id: str) -> tuple[int | None, str | None]:
    """The video's `source_bytes` and `source_key` as the API recorded them."""
    from sqlalchemy import select

    from fieldcast.db import Database
    from fieldcast.models.videos import Video
    from fieldcast.settings import normalise_database_url

    database = Database(normalise_database_url(database_url), pool_size=1)
    try:
        with database.session() as session:
            row = session.execute(
                select(Video.source_bytes, Video.source_key).where(Video.id == uuid.UUID(video_id))
            ).one()
    finally:
        database.dispose()
    return row[0], row[1]


def measure_bare_put(
    server: Gunicorn, source: Path, sink: Path, size: int, *, quiet: bool = False
) -> float:
    """One streaming PUT of the file; returns MB/s after checking what was stored."""
    with source.open("rb") as body:
        started = time.perf_counter()
        response = requests.put(
            server.base + "/sink",
            data=body,
            headers={"Content-Length": str(size), "Content-Type": "application/octet-stream"},
            timeout=3600,
        )
        elapsed = time.perf_counter() - started
    response.raise_for_status()
    answer = response.json()
    stored = sink / answer["name"]
    if answer["bytes"] != size or stored.stat().st_size != size:
        raise RuntimeError(f"bare PUT stored {stored.stat().st_size} bytes, not {size}")
    if file_digest(stored) != file_digest(source):
        raise RuntimeError("bare PUT stored different bytes than were sent")
    stored.unlink()
    if not quiet:
        log(
            f"bare PUT: {size / MB:.0f} MB in {elapsed:.2f} s (server: {answer['receive_s']:.2f} s "
            f"receiving, {answer['fsync_s']:.2f} s in fsync)"
        )
    return size / MB / elapsed


def measure_tus(
    api: Gunicorn, account: Account, source: Path, database_url: str, storage: Path
) -> tuple[float, float]:
    """The tus upload; returns (MB/s, worker RSS growth in MiB) after checking what was stored."""
    size = source.stat().st_size
    video_id = account.create_draft("upload benchmark")
    flush_disk()
    worker = api.worker()
    time.sleep(0.5)
    before = worker.memory_info().rss
    with PeakRss(worker) as rss:
        started = time.perf_counter()
        offset = account.tus_upload(source, video_id)
        elapsed = time.perf_counter() - started
    growth = (rss.peak - before) / MIB
    log(
        f"tus: {size / MB:.0f} MB in {elapsed:.2f} s; worker RSS {before / MIB:.1f} MiB before, "
        f"{rss.peak / MIB:.1f} MiB peak ({rss.samples} samples)"
    )
    if offset != size:
        raise RuntimeError(f"tus upload ended at offset {offset}, not {size}")
    status = account.video(video_id)["status"]
    if status != "processing":
        raise RuntimeError(f"after the upload the video is {status!r}, not 'processing'")
    source_bytes, source_key = stored_source(database_url, video_id)
    if source_bytes != size or source_key is None:
        raise RuntimeError(f"the video records {source_bytes} source bytes, not {size}")
    stored = storage / source_key
    if stored.stat().st_size != size or file_digest(stored) != file_digest(source):
        raise RuntimeError(f"the stored object {stored} differs from the uploaded file")
    stored.unlink()
    return size / MB / elapsed, growth


# -- The run ------------------------------------------------------------------------------------


def warn_if_busy() -> None:
    """Both figures are wall times on one machine: other work running alongside skews them."""
    load, cores = os.getloadavg()[0], os.cpu_count() or 1
    if load > cores:
        log(f"warning: load average {load:.1f} on {cores} cores; the timings will be noisy")


def run(size_mib: int, rounds: int = DEFAULT_ROUNDS) -> dict[str, Any]:
    """Upload the file `rounds` times each way, alternating; medians of the speeds, and the
    largest RSS growth."""
    size = size_mib * MIB
    warn_if_busy()
    workdir = Path(tempfile.mkdtemp(prefix="fieldcast-bench-upload-"))
    try:
        source, warmup = workdir / "source.bin", workdir / "warmup.bin"
        log(f"writing a {size_mib} MiB file of random bytes in {workdir}")
        write_random_file(source, size)
        write_random_file(warmup, WARMUP_BYTES)
        sink, storage = workdir / "sink", workdir / "media"
        sink.mkdir()
        with services(workdir) as services_:
            log(f"services: {services_.origin}")
            api_port, bare_port = free_port(), free_port()
            env = {
                **os.environ,
                # The upload URLs the API hands out name this server.
                "PUBLIC_BASE_URL": f"http://127.0.0.1:{api_port}",
                "DATABASE_URL": services_.database_url,
                "REDIS_URL": services_.redis_url,
                "STORAGE_URL": storage.as_uri(),
                "SECRET_KEY": secrets.token_urlsafe(36),
                "FIELDCAST_DATA_DIR": str(workdir / "var"),
                "MAX_UPLOAD_BYTES": str(max(2 * 1024 * MIB, size + MIB)),
                # A slow disk must not let the access token expire mid-upload.
                "ACCESS_TOKEN_TTL_S": "7200",
                SINK_ENV: str(sink),
            }
            api_command = [
                sys.executable,
                *("-m", "fieldcast", "web"),
                *("--bind", f"127.0.0.1:{api_port}", "--workers", "1"),
            ]
            with gunicorn("api", api_command, env, workdir, api_port) as api:
                command = bare_argv(api.argv(), bare_port)
                log(f"gunicorn: {' '.join(command[1:])}")
                with gunicorn("bare", command, env, workdir, bare_port) as bare:
                    try:
                        measure_bare_put(bare, warmup, sink, WARMUP_BYTES, quiet=True)
                        account = sign_in(services_.database_url, api.base)
                        account.tus_upload(warmup, account.create_draft("warm-up"))
                        bare_speeds, tus_speeds, growths = [], [], []
                        for _ in range(rounds):
                            flush_disk()
                            bare_speeds.append(measure_bare_put(bare, source, sink, size))
                            speed, growth = measure_tus(
                                api, account, source, services_.database_url, storage
                            )
                            tus_speeds.append(speed)
                            growths.append(growth)
                    except Exception:
                        log(f"api log:\n{api.log_tail()}\nbare log:\n{bare.log_tail()}")
                        raise
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    warn_if_busy()
    tus_mb_s, bare_mb_s = statistics.median(tus_speeds), statistics.median(bare_speeds)
    return {
        "benchmark": "upload",
        "size_mb": size_mib,
        "chunk_mb": CHUNK_MIB,
        "tus_mb_s": round(tus_mb_s, 1),
        "bare_put_mb_s": round(bare_mb_s, 1),
        "throughput_ratio": round(tus_mb_s / bare_mb_s, 3),
        "rss_growth_mb": round(max(growths), 1),
        "targets": {"throughput_ratio": TARGET_RATIO, "rss_growth_mb": TARGET_RSS_GROWTH_MIB},
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.upload", description=__doc__)
    parser.add_argument(
        "--size-mb", type=int, default=DEFAULT_SIZE_MIB, help="file size in MiB (default 1024)"
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help=f"a {QUICK_SIZE_MIB} MiB file sent once each way, for a smoke test",
    )
    parser.add_argument(
        "--rounds",
        type=int,
        help=f"uploads each way, alternating; speeds are medians (default {DEFAULT_ROUNDS})",
    )
    args = parser.parse_args(argv)
    size_mib = QUICK_SIZE_MIB if args.quick else args.size_mb
    rounds = args.rounds if args.rounds is not None else (1 if args.quick else DEFAULT_ROUNDS)
    if size_mib < 1 or rounds < 1:
        parser.error("--size-mb and --rounds must be at least 1")
    result = run(size_mib, rounds)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
