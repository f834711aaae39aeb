"""The `fieldcast` command: serve the embedded default, or run one role of a deployment."""

from __future__ import annotations

import logging
import os
import re
import signal
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from fieldcast.settings import Settings, SettingsError

log = logging.getLogger("fieldcast.cli")


def _settings() -> Settings:
    try:
        settings = Settings.from_env()
    except SettingsError as exc:
        raise click.ClickException(f"configuration error: {exc}") from None
    return settings


def _settings_with_embedded() -> Settings:
    """Settings, with the services of a running `fieldcast serve` filled in where unset."""
    from fieldcast.embedded import read_runtime, secret_key_for

    settings = _settings()
    if settings.database_url and settings.redis_url:
        return settings
    runtime = read_runtime(settings.data_dir)
    if runtime is None:
        raise click.ClickException(
            "DATABASE_URL and REDIS_URL are not set and no `fieldcast serve` is running "
            f"with data directory {settings.data_dir}. Start `fieldcast serve` first, "
            "or set them."
        )
    env = dict(os.environ)
    env.setdefault("DATABASE_URL", runtime["database_url"])
    env.setdefault("REDIS_URL", runtime["redis_url"])
    env.setdefault("SECRET_KEY", secret_key_for(settings.data_dir))
    return Settings.from_env(env)


def _require(settings: Settings, *names: str) -> None:
    try:
        settings.require(*names)
    except SettingsError as exc:
        raise click.ClickException(str(exc)) from None


@click.group()
def main() -> None:
    """Fieldcast: the backend for mobile-first peer video microlearning."""


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@click.option("--web-workers", default=2, show_default=True, type=int)
@click.option(
    "--restart-limit",
    default=5,
    show_default=True,
    type=click.IntRange(min=1),
    help="Give up when one part fails this many times within --restart-window.",
)
@click.option("--restart-window", default=300.0, show_default=True, type=float, help="Seconds.")
def serve(
    host: str, port: int, web_workers: int, restart_limit: int, restart_window: float
) -> None:
    """Start the whole product: database, Redis, migrations, API, workers and the scheduler.

    With no configuration, PostgreSQL and Redis run embedded and keep their data in
    FIELDCAST_DATA_DIR (default ./var). A part that dies is started again after a backoff;
    one that keeps failing stops everything. Ctrl-C stops everything.
    """
    from fieldcast.embedded import (
        EmbeddedPostgres,
        EmbeddedRedis,
        RestartPolicy,
        Supervisor,
        python_command,
        runtime_file,
        secret_key_for,
        write_runtime,
    )
    from fieldcast.observability import configure_logging

    settings = _settings()
    configure_logging(settings.log_level, json_lines=False)
    data_dir = settings.data_dir
    data_dir.mkdir(parents=True, exist_ok=True)
    postgres = EmbeddedPostgres(data_dir) if not settings.database_url else None
    redis = EmbeddedRedis(data_dir) if not settings.redis_url else None
    supervisor = Supervisor(
        RestartPolicy(limit=restart_limit, window=restart_window), adopt_orphans=True
    )
    gave_up: str | None = None
    try:
        env = dict(os.environ)
        if postgres is not None:
            click.echo(f"Starting embedded PostgreSQL in {postgres.pgdata} ...")
            supervisor.start(postgres, service=True)
            assert postgres.url is not None
            env["DATABASE_URL"] = postgres.url
        if redis is not None:
            click.echo(f"Starting embedded Redis in {data_dir / 'redis'} ...")
            supervisor.start(redis, service=True)
            assert redis.url is not None
            env["REDIS_URL"] = redis.url
        env.setdefault("SECRET_KEY", secret_key_for(data_dir))
        env.setdefault("FIELDCAST_DATA_DIR", str(data_dir))
        env.setdefault("PUBLIC_BASE_URL", f"http://{host}:{port}")
        write_runtime(
            data_dir,
            {
                "database_url": env["DATABASE_URL"],
                "redis_url": env["REDIS_URL"],
                "public_base_url": env["PUBLIC_BASE_URL"],
            },
        )
        child_settings = Settings.from_env(env)

        from migrations.config import upgrade

        click.echo("Applying migrations ...")
        assert child_settings.database_url is not None
        upgrade(child_settings.database_url)

        # Should serve die, gunicorn's quick shutdown (SIGINT) stops its workers at once; on
        # SIGTERM it would wait for requests for up to its graceful timeout. The workers and
        # the scheduler are killed outright: what they were doing runs again later.
        supervisor.spawn(
            "web",
            python_command("web", "--bind", f"{host}:{port}", "--workers", str(web_workers)),
            env,
            parent_death_signal=signal.SIGINT,
        )
        # Two workers, so a long ladder never holds back a first playable or a push; the media
        # one also transcribes, when no video waits for its renditions. Both build search
        # documents first (short jobs), so a comment is found within seconds even while one
        # of them encodes.
        supervisor.spawn(
            "worker-fast",
            python_command(
                "worker",
                *("--queue", "notify", "--queue", "search"),
                *("--queue", "media-fast", "--queue", "default"),
            ),
            env,
        )
        supervisor.spawn(
            "worker-media",
            python_command(
                "worker",
                *("--queue", "search", "--queue", "media"),
                *("--queue", "media-fast", "--queue", "transcribe"),
            ),
            env,
        )
        supervisor.spawn("scheduler", python_command("scheduler"), env)
        click.echo(
            f"\nFieldcast is up: the web app at http://{host}:{port}/app/, the API's document at "
            f"http://{host}:{port}/docs  (health: /healthz, /readyz)\n"
            "Load a demo organisation in another terminal:  fieldcast load-demo\n"
            "Press Ctrl-C to stop.\n"
        )
        gave_up = supervisor.run()
    finally:
        supervisor.stop()
        runtime_file(data_dir).unlink(missing_ok=True)
        click.echo(f"Fieldcast stopped because {gave_up}." if gave_up else "Fieldcast stopped.")
    sys.exit(0 if gave_up is None else 1)


def gunicorn_argv(bind: str, workers: int, threads: int) -> list[str]:
    """The command `fieldcast web` becomes: gunicorn serving `wsgi:app`."""
    argv = [
        sys.executable,
        "-m",
        "gunicorn",
        "--bind",
        bind,
        "--workers",
        str(workers),
        "--threads",
        str(threads),
        "--worker-class",
        "api.server.ProblemThreadWorker",  # gthread, with problem+json for gunicorn's errors
        "--timeout",
        "120",
        "--graceful-timeout",
        "30",
        "--keep-alive",
        "5",
        "--logger-class",
        "api.server.AccessLogger",  # upload URLs' secrets never reach the access log
        "--forwarded-allow-ips",
        os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1"),
        "wsgi:app",
    ]
    if os.environ.get("GUNICORN_ACCESS_LOG"):
        # (Off, gunicorn builds no access line at all: not even one written to /dev/null.)
        argv[-1:-1] = ["--access-logfile", "-"]
    return argv


@main.command()
@click.option("--bind", default="0.0.0.0:8000", show_default=True)
@click.option("--workers", default=None, type=int, help="Default: WEB_CONCURRENCY or 2 x cores + 1")
@click.option("--threads", default=4, show_default=True, type=int)
def web(bind: str, workers: int | None, threads: int) -> None:
    """Run the API under gunicorn."""
    settings = _settings()
    _require(settings, "DATABASE_URL", "REDIS_URL", "SECRET_KEY")
    if workers is None:
        workers = int(os.environ.get("WEB_CONCURRENCY") or (os.cpu_count() or 1) * 2 + 1)
    argv = gunicorn_argv(bind, workers, threads)
    _prepare_multiprocess_metrics(settings)
    os.execv(sys.executable, argv)  # noqa: S606 - replaces this process with gunicorn


def _prepare_multiprocess_metrics(settings: Settings) -> None:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        return
    directory = settings.data_dir / "run" / f"metrics-{os.getpid()}"
    directory.mkdir(parents=True, exist_ok=True)
    for stale in directory.glob("*.db"):
        stale.unlink()
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(directory)


@main.command()
@click.option(
    "--queue",
    "queues",
    multiple=True,
    help="Queue to work (repeatable). Default: all, by priority.",
)
@click.option("--burst", is_flag=True, help="Exit when the queues are empty.")
def worker(queues: tuple[str, ...], burst: bool) -> None:
    """Run an RQ worker on the latency-class queues."""
    from workers.queues import QUEUE_NAMES
    from workers.worker import run_worker

    _require(_settings(), "DATABASE_URL", "REDIS_URL")
    run_worker(queues or QUEUE_NAMES, burst=burst)


@main.command()
def scheduler() -> None:
    """Enqueue the periodic jobs (outbox relay, housekeeping)."""
    from workers.schedule import run_scheduler

    _require(_settings(), "DATABASE_URL", "REDIS_URL")
    run_scheduler()


@main.command()
@click.option("--revision", default="head", show_default=True)
def migrate(revision: str) -> None:
    """Apply database migrations."""
    from migrations.config import upgrade

    settings = _settings_with_embedded()
    assert settings.database_url is not None
    upgrade(settings.database_url, revision)
    click.echo(f"Database migrated to {revision}.")


@main.command("db-check")
def db_check() -> None:
    """Fail if the models and the migrations disagree."""
    from fieldcast.schema_check import schema_differences

    settings = _settings_with_embedded()
    assert settings.database_url is not None
    differences = schema_differences(settings.database_url)
    if differences:
        for diff in differences:
            click.echo(f"  {diff}", err=True)
        raise click.ClickException("models and migrations disagree")
    click.echo("Models and migrations agree.")


def _context() -> Any:
    from fieldcast.context import build_context

    return build_context(_settings_with_embedded())


@main.command("create-org")
@click.option("--name", required=True)
@click.option("--slug", required=True)
@click.option("--admin-email", required=True)
@click.option("--admin-name", required=True)
@click.option("--admin-handle", required=True)
@click.password_option("--admin-password", envvar="FIELDCAST_ADMIN_PASSWORD")
def create_org(
    name: str, slug: str, admin_email: str, admin_name: str, admin_handle: str, admin_password: str
) -> None:
    """Create an organisation with its first admin."""
    from fieldcast.accounts.services import create_organisation
    from fieldcast.errors import DomainError

    ctx = _context()
    with ctx.db.unit_of_work() as session:
        try:
            created = create_organisation(
                session,
                name=name,
                slug=slug,
                admin_email=admin_email,
                admin_name=admin_name,
                admin_handle=admin_handle,
                admin_password=admin_password,
            )
        except DomainError as exc:
            raise click.ClickException(f"{exc.detail} {exc.errors or ''}".strip()) from None
    click.echo(f"Organisation {created.organisation.slug} ({created.organisation.id}) created.")
    click.echo(f"Admin: {created.admin.email} (@{created.admin.handle})")


def _public_base_url(settings: Settings) -> str:
    """Where the product answers: PUBLIC_BASE_URL when set, else where the running `fieldcast
    serve` listens (its port may not be the default)."""
    if os.environ.get("PUBLIC_BASE_URL"):
        return settings.public_base_url
    from fieldcast.embedded import read_runtime

    runtime = read_runtime(settings.data_dir) or {}
    return runtime.get("public_base_url") or settings.public_base_url


@main.command("load-demo")
@click.option("--password", default=None, help="Password for every demo user (default: generated)")
@click.option(
    "--videos/--no-videos",
    default=True,
    show_default=True,
    help="Also upload three short videos, then comment on, share and collect them",
)
def load_demo(password: str | None, videos: bool) -> None:
    """Load a demo organisation: teams, a manager, reps and an enablement lead; and videos
    (processed by the running `fieldcast serve`), comments, shares and a collection."""
    from fieldcast import demo_media
    from fieldcast.demo import load_demo_organisation
    from fieldcast.errors import DomainError

    ctx = _context()
    with ctx.db.unit_of_work() as session:
        try:
            demo = load_demo_organisation(session, password=password)
        except DomainError as exc:
            raise click.ClickException(exc.detail) from None
    click.echo(f"Demo organisation '{demo.organisation.name}' ({demo.organisation.slug}) loaded.")
    click.echo(f"Every demo user's password: {demo.password}\n")
    for user in demo.users:
        click.echo(f"  {user.role.value:<11} {user.email:<34} @{user.handle}")
    if videos:
        click.echo("\nUploading the demo videos; the running worker processes them ...")
        video_ids = demo_media.upload_videos(ctx, demo.people())
        if demo_media.wait_until_playable(ctx, video_ids, timeout_s=180):
            with ctx.db.unit_of_work() as session:
                demo_media.converse(session, demo.people(), demo.teams_by_name(), video_ids)
            click.echo("Videos processed; shared, commented on and collected.")
        else:
            click.echo(
                "The videos are not processed yet (is `fieldcast serve` running?): they play "
                "once a worker has processed them; the demo's comments and collection were "
                "left out."
            )
    base = _public_base_url(ctx.settings)
    first = demo.users[0].email
    click.echo(
        f"\nOpen the web app: {base}/app/ (sign in as {first})\n"
        "\nOr try the API:\n"
        f"  curl -s -X POST {base}/api/v1/auth/token -H 'Content-Type: application/json' "
        f'-d \'{{"email": "{first}", "password": "{demo.password}"}}\''
    )


@main.command()
def relay() -> None:
    """Run the outbox relay once (re-enqueue lost work)."""
    from fieldcast.outbox.services import relay as run_relay
    from workers.jobs import import_task_modules

    # A job past its last attempt is given up through its task's handler, which must be known.
    import_task_modules()
    ctx = _context()
    report = run_relay(ctx.db, ctx.dispatcher)
    click.echo(f"expired leases: {report.expired}, re-enqueued: {report.requeued}")


_SIZE = re.compile(r"(\d+(?:\.\d+)?)\s*([kmgt]?)i?b?", re.IGNORECASE)


def parse_size(text: str) -> int:
    """Bytes from `500G`, `1.5TiB`, `200MB`, `1048576` (binary units: K = 1024)."""
    found = _SIZE.fullmatch(text.strip())
    if found is None:
        raise click.BadParameter(f"{text!r} is not a size (500G, 1.5T, 200M, 1048576)")
    number, unit = found.groups()
    return int(float(number) * 1024 ** " KMGT".index(unit.upper() or " "))


@main.command()
@click.argument("slug")
@click.argument("size", required=False)
@click.option("--unlimited", is_flag=True, help="Take the organisation's quota away")
def quota(slug: str, size: str | None, unlimited: bool) -> None:
    """Show or set an organisation's storage quota (SIZE: 500G, 1.5T, 200M; K = 1024 bytes).

    Uploads and attachments that would pass it are refused (413 storage_quota_exceeded);
    what is stored already stays. Its admins see it at GET /api/v1/organisation/storage.
    """
    from sqlalchemy import select

    from fieldcast.models.accounts import Organisation
    from fieldcast.tenancy import storage

    if size is not None and unlimited:
        raise click.UsageError("Give a SIZE or --unlimited, not both.")
    ctx = _context()
    with ctx.db.unit_of_work() as session:
        org = session.scalar(select(Organisation).where(Organisation.slug == slug))
        if org is None:
            raise click.ClickException(f"No organisation {slug!r}.")
        if size is not None or unlimited:
            storage.set_quota(session, org.id, None if unlimited else parse_size(size or "0"))
        quota_bytes = storage.quota_of(session, org.id)
        used = storage.usage(session, org.id).total
    limit = "unlimited" if quota_bytes is None else f"{quota_bytes} bytes"
    click.echo(f"{slug}: {used} bytes stored; quota {limit}")


@main.command("top-clips")
@click.option("--org", "slug", default=None, help="One organisation's slug (default: all)")
def top_clips(slug: str | None) -> None:
    """Rank the top lists of videos and clips now (the `top-clips` job does it every 15 min)."""
    from fieldcast.curation import top

    ctx = _context()
    if slug is None:
        report = top.compute_all(ctx.db)
        click.echo(", ".join(f"{key}: {value}" for key, value in report.items()))
        return
    computed = top.compute_organisation(ctx.db, slug)
    if computed is None:
        raise click.ClickException(f"No organisation {slug!r}.")
    click.echo(f"{computed.boards} boards, {computed.entries} entries in {computed.seconds:.1f} s")


@main.command()
@click.argument("archive", required=False, type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--media/--no-media",
    default=True,
    show_default=True,
    help="Copy the stored media into the archive (with S3, bucket versioning can stand in).",
)
def backup(archive: Path | None, media: bool) -> None:
    """Write one archive of the database, the media and the secret key.

    Runs beside a live `fieldcast serve` (or on DATABASE_URL and STORAGE_URL). The archive
    holds the key that signs tokens: keep it as safe as the data directory.
    """
    from fieldcast.backup import BackupError, create_backup
    from fieldcast.embedded import read_runtime
    from media.storage import storage_from_url

    settings = _settings()
    database_url = settings.database_url
    if database_url is None:
        runtime = read_runtime(settings.data_dir)
        if runtime is None:
            raise click.ClickException(
                "DATABASE_URL is not set and no `fieldcast serve` is running with data "
                f"directory {settings.data_dir}. Start `fieldcast serve` first, or set it."
            )
        database_url = runtime["database_url"]
    secret_key = settings.secret_key
    key_file = settings.data_dir / "secret_key"
    if secret_key is None and key_file.is_file():
        secret_key = key_file.read_text().strip()
    if archive is None:
        archive = Path(f"fieldcast-backup-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.tar")
    storage = (
        storage_from_url(settings.storage_url, s3_endpoint_url=settings.s3_endpoint_url)
        if media
        else None
    )
    try:
        result = create_backup(
            archive,
            database_url=database_url,
            storage=storage,
            secret_key=secret_key,
            progress=click.echo,
        )
    except BackupError as exc:
        raise click.ClickException(str(exc)) from None
    summary = result.manifest["media"]
    click.echo(
        f"Revision {result.manifest['alembic_revision']}, {summary['objects']} media objects "
        f"({summary['bytes']} bytes). Keep this file safe: it holds the secret key."
    )
    if summary["missing"]:
        click.echo(
            f"{len(summary['missing'])} objects were deleted while they were copied.", err=True
        )


@main.command()
@click.argument("archive", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--force",
    is_flag=True,
    help="Restore into a non-empty data directory (its contents are moved aside) or storage.",
)
def restore(archive: Path, force: bool) -> None:
    """Restore an archive into a fresh FIELDCAST_DATA_DIR (or an empty DATABASE_URL).

    The archive is verified in full first; the database is then migrated to this release.
    Start the product on it with `fieldcast serve`.
    """
    from fieldcast.backup import BackupError, restore_backup

    settings = _settings()
    try:
        manifest = restore_backup(
            archive,
            data_dir=settings.data_dir,
            database_url=settings.database_url,
            storage_url=settings.storage_url,
            s3_endpoint_url=settings.s3_endpoint_url,
            force=force,
            progress=click.echo,
        )
    except BackupError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(
        f"Restored the backup of {manifest['created_at']} into {settings.data_dir}. "
        "Start it with `fieldcast serve`."
    )
    if manifest["secret_key"] and settings.secret_key is not None:
        click.echo(
            "SECRET_KEY is set, so the restored secret_key file is not used: tokens and links "
            "made before the backup stop working unless SECRET_KEY is the backed-up key.",
            err=True,
        )
