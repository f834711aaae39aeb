"""`fieldcast backup` and `fieldcast restore` on the test PostgreSQL server: the archive, its
checks, restores onto an empty DATABASE_URL, refusals, and archives of older releases."""

from __future__ import annotations

import hashlib
import io
import json
import os
import stat
import subprocess
import sys
import tarfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from sqlalchemy.engine import make_url

from fieldcast.accounts.services import create_organisation
from fieldcast.backup import BackupError, create_backup, libpq_url, restore_backup
from fieldcast.db import Database
from media.storage import LocalStorage, Storage
from migrations.config import upgrade
from tests.conftest import scratch_database

KEY = "backup-test-secret-key-" + "k" * 32


@pytest.fixture
def source_url(server_database_url: str) -> Iterator[str]:
    with scratch_database(server_database_url, "fieldcast_backup_src") as url:
        yield url


@pytest.fixture
def target_url(server_database_url: str) -> Iterator[str]:
    with scratch_database(server_database_url, "fieldcast_backup_dst") as url:
        yield url


def _populate(url: str, storage: Storage) -> None:
    upgrade(url)
    database = Database(url)
    with database.unit_of_work() as session:
        create_organisation(
            session,
            name="Acme",
            slug="acme",
            admin_email="ada@acme.example.com",
            admin_name="Ada",
            admin_handle="ada",
            admin_password="correct horse battery",
        )
    database.dispose()
    storage.put_bytes("org/1/videos/2/source", os.urandom(3 * 1024 * 1024 + 17))
    storage.put_bytes("org/1/videos/2/hls/master.m3u8", b"#EXTM3U\n")


def _rows(url: str, query: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(libpq_url(url)) as conn:
        return list(conn.execute(query).fetchall())


def _tables(url: str) -> list[str]:
    return [
        row[0] for row in _rows(url, "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
    ]


def _objects(storage: LocalStorage) -> dict[str, str]:
    stored = sorted(storage.keys())
    return {key: hashlib.sha256(b"".join(storage.open(key))).hexdigest() for key in stored}


def _backup(tmp_path: Path, url: str, storage: Storage, name: str = "b.tar") -> Path:
    return create_backup(tmp_path / name, database_url=url, storage=storage, secret_key=KEY).path


def test_round_trip_onto_an_empty_database(
    tmp_path: Path, source_url: str, target_url: str
) -> None:
    source = LocalStorage(tmp_path / "media")
    _populate(source_url, source)
    archive = _backup(tmp_path, source_url, source, "nightly.tar.gz")

    assert stat.S_IMODE(archive.stat().st_mode) == 0o600
    with tarfile.open(archive) as tar:
        names = tar.getnames()
        manifest_file = tar.extractfile("manifest.json")
        assert manifest_file is not None
        manifest = json.loads(manifest_file.read())
    assert names[0] == "database.pgdump" and names[-1] == "manifest.json"
    assert manifest["format_version"] == 1
    assert manifest["alembic_revision"] == _rows(source_url, "SELECT * FROM alembic_version")[0][0]
    assert manifest["database"]["tables"]["organisations"] == 1
    assert manifest["media"]["objects"] == 2
    assert manifest["secret_key"] is True
    assert not list(tmp_path.glob(".*partial"))

    restored = tmp_path / "restored-media"
    data_dir = tmp_path / "fresh"
    restore_backup(
        archive,
        data_dir=data_dir,
        database_url=target_url,
        storage_url=restored.as_uri(),
    )
    assert _rows(target_url, "SELECT slug FROM organisations") == [("acme",)]
    assert _rows(target_url, "SELECT email FROM users") == [("ada@acme.example.com",)]
    assert _objects(LocalStorage(restored)) == _objects(source)
    secret = data_dir / "secret_key"
    assert secret.read_text() == KEY
    assert stat.S_IMODE(secret.stat().st_mode) == 0o600


def test_an_archive_of_an_older_release_is_migrated_on_restore(
    tmp_path: Path, source_url: str, target_url: str
) -> None:
    upgrade(source_url, "0001")
    with psycopg.connect(libpq_url(source_url)) as conn:
        conn.execute(
            "INSERT INTO organisations (id, name, slug) VALUES (%s, 'Old', 'old')", (uuid.uuid4(),)
        )
    archive = _backup(tmp_path, source_url, LocalStorage(tmp_path / "media"))
    restore_backup(
        archive,
        data_dir=tmp_path / "fresh",
        database_url=target_url,
        storage_url=(tmp_path / "restored").as_uri(),
    )
    head = _rows(target_url, "SELECT version_num FROM alembic_version")
    assert head != [("0001",)]
    assert head == [(_head_revision(),)]
    assert _rows(target_url, "SELECT slug FROM organisations") == [("old",)]


def _head_revision() -> str:
    from alembic.script import ScriptDirectory

    from migrations.config import alembic_config

    head = ScriptDirectory.from_config(alembic_config("postgresql://")).get_current_head()
    assert head is not None
    return head


def _damage(archive: Path, member: str) -> None:
    """Flip one byte in the middle of a member's data."""
    with tarfile.open(archive) as tar:
        info = tar.getmember(member)
    with archive.open("r+b") as handle:
        handle.seek(info.offset_data + info.size // 2)
        byte = handle.read(1)
        handle.seek(-1, os.SEEK_CUR)
        handle.write(bytes([byte[0] ^ 0xFF]))


def _assert_nothing_restored(target_url: str, data_dir: Path, restored: Path) -> None:
    assert _tables(target_url) == []
    assert not data_dir.exists()
    assert list(LocalStorage(restored).keys()) == []


def _assert_refused(tmp_path: Path, archive: Path, target_url: str, match: str) -> None:
    """Restoring `archive` fails with `match` and leaves the database, the data directory and
    the storage as empty as they were."""
    data_dir, restored = tmp_path / "fresh", tmp_path / "restored"
    with pytest.raises(BackupError, match=match):
        restore_backup(
            archive, data_dir=data_dir, database_url=target_url, storage_url=restored.as_uri()
        )
    _assert_nothing_restored(target_url, data_dir, restored)


@pytest.mark.parametrize("member", ["media/org/1/videos/2/source", "database.pgdump"])
def test_a_damaged_archive_is_refused_and_nothing_is_restored(
    tmp_path: Path, source_url: str, target_url: str, member: str
) -> None:
    source = LocalStorage(tmp_path / "media")
    _populate(source_url, source)
    archive = _backup(tmp_path, source_url, source)
    _damage(archive, member)
    _assert_refused(tmp_path, archive, target_url, f"'{member}' does not match its checksum")


@pytest.mark.parametrize("cut", ["mid-media", "mid-manifest"])
def test_a_truncated_archive_is_refused_and_nothing_is_restored(
    tmp_path: Path, source_url: str, target_url: str, cut: str
) -> None:
    source = LocalStorage(tmp_path / "media")
    _populate(source_url, source)
    archive = _backup(tmp_path, source_url, source)
    with tarfile.open(archive) as tar:
        member = tar.getmember(
            "media/org/1/videos/2/source" if cut == "mid-media" else "manifest.json"
        )
    with archive.open("r+b") as handle:
        handle.truncate(member.offset_data + member.size // 2)
    _assert_refused(tmp_path, archive, target_url, "truncated")


@pytest.mark.parametrize("step", ["Loading the database", "Migrating"])
def test_a_restore_interrupted_midway_removes_everything_it_wrote(
    tmp_path: Path, source_url: str, target_url: str, step: str
) -> None:
    source = LocalStorage(tmp_path / "media")
    _populate(source_url, source)
    archive = _backup(tmp_path, source_url, source)
    data_dir, restored = tmp_path / "fresh", tmp_path / "restored"
    seen: list[str] = []

    def operator_presses_ctrl_c(message: str) -> None:
        seen.append(message)
        if message.startswith(step):
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        restore_backup(
            archive,
            data_dir=data_dir,
            database_url=target_url,
            storage_url=restored.as_uri(),
            progress=operator_presses_ctrl_c,
        )
    assert any(m.startswith("Restoring 2 media objects") for m in seen)
    _assert_nothing_restored(target_url, data_dir, restored)


def test_restore_refuses_a_data_directory_in_use_or_not_empty(
    tmp_path: Path, source_url: str, target_url: str
) -> None:
    source = LocalStorage(tmp_path / "media")
    _populate(source_url, source)
    archive = _backup(tmp_path, source_url, source)
    data_dir = tmp_path / "used"
    data_dir.mkdir()
    (data_dir / "secret_key").write_text("the key of the data already here")
    with pytest.raises(BackupError, match="not empty"):
        restore_backup(
            archive,
            data_dir=data_dir,
            database_url=target_url,
            storage_url=(tmp_path / "r").as_uri(),
        )
    assert (data_dir / "secret_key").read_text() == "the key of the data already here"

    # --force moves the old contents aside instead of deleting them.
    restore_backup(
        archive,
        data_dir=data_dir,
        database_url=target_url,
        storage_url=(tmp_path / "r").as_uri(),
        force=True,
    )
    assert (data_dir / "secret_key").read_text() == KEY
    (aside,) = tmp_path.glob("used.replaced-*")
    assert (aside / "secret_key").read_text() == "the key of the data already here"


def test_restore_refuses_an_archive_of_a_newer_release(
    tmp_path: Path, source_url: str, target_url: str
) -> None:
    source = LocalStorage(tmp_path / "media")
    _populate(source_url, source)
    with psycopg.connect(libpq_url(source_url)) as conn:
        conn.execute("UPDATE alembic_version SET version_num = '9999_from_the_future'")
    archive = _backup(tmp_path, source_url, source)
    _assert_refused(tmp_path, archive, target_url, "newer release")


def test_the_commands_report_a_damaged_archive_clearly(
    tmp_path: Path, source_url: str, target_url: str
) -> None:
    source = LocalStorage(tmp_path / "media")
    _populate(source_url, source)
    env = {
        **{k: v for k, v in os.environ.items() if k not in {"REDIS_URL", "SECRET_KEY"}},
        "DATABASE_URL": source_url,
        "STORAGE_URL": source.root.as_uri(),
        "FIELDCAST_DATA_DIR": str(tmp_path / "source-var"),
    }
    archive = tmp_path / "cli.tar"
    made = subprocess.run(
        [sys.executable, "-m", "fieldcast", "backup", str(archive)],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert made.returncode == 0, made.stderr
    assert "Keep this file safe" in made.stdout
    _damage(archive, "media/org/1/videos/2/source")
    env.update(
        DATABASE_URL=target_url,
        STORAGE_URL=(tmp_path / "restored").as_uri(),
        FIELDCAST_DATA_DIR=str(tmp_path / "fresh"),
    )
    failed = subprocess.run(
        [sys.executable, "-m", "fieldcast", "restore", str(archive)],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert failed.returncode == 1
    assert "does not match its checksum" in failed.stderr
    assert "Traceback" not in failed.stderr
    _assert_nothing_restored(target_url, tmp_path / "fresh", tmp_path / "restored")


def test_an_archive_without_media_restores_the_database_and_leaves_the_storage_alone(
    tmp_path: Path, source_url: str, target_url: str
) -> None:
    source = LocalStorage(tmp_path / "media")
    _populate(source_url, source)
    archive = create_backup(
        tmp_path / "db-only.tar", database_url=source_url, storage=None, secret_key=KEY
    ).path
    with tarfile.open(archive) as tar:
        assert not [name for name in tar.getnames() if name.startswith("media/")]
    # The bucket the product keeps using, protected by its own versioning.
    restore_backup(
        archive,
        data_dir=tmp_path / "fresh",
        database_url=target_url,
        storage_url=source.root.as_uri(),
    )
    assert _rows(target_url, "SELECT slug FROM organisations") == [("acme",)]
    assert len(list(source.keys())) == 2


def test_media_of_s3_is_backed_up_and_restored_into_s3(
    tmp_path: Path, source_url: str, target_url: str, s3_endpoint: str
) -> None:
    import boto3

    from media.storage import storage_from_url

    client = boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1")
    buckets = [f"fieldcast-{uuid.uuid4().hex[:12]}" for _ in range(2)]
    for bucket in buckets:
        client.create_bucket(Bucket=bucket)
    source, restored = (
        storage_from_url(f"s3://{bucket}/media", s3_endpoint_url=s3_endpoint) for bucket in buckets
    )
    _populate(source_url, source)
    archive = _backup(tmp_path, source_url, source)
    restore_backup(
        archive,
        data_dir=tmp_path / "fresh",
        database_url=target_url,
        storage_url=f"s3://{buckets[1]}/media",
        s3_endpoint_url=s3_endpoint,
    )
    assert sorted(restored.keys()) == sorted(source.keys())
    for key in sorted(source.keys()):
        assert b"".join(restored.open(key)) == b"".join(source.open(key))


def _rewrite_dump(archive: Path, damage: Any) -> None:
    """Rebuild the archive with `damage` applied to the dump and a manifest that agrees: a
    dump pg_restore cannot read to its end, which no checksum can catch."""
    with tarfile.open(archive) as tar:
        members = {info.name: tar.extractfile(info).read() for info in tar}  # type: ignore[union-attr]
    members["database.pgdump"] = damage(members["database.pgdump"])
    manifest = json.loads(members.pop("manifest.json"))
    manifest["files"]["database.pgdump"] = {
        "size": len(members["database.pgdump"]),
        "sha256": hashlib.sha256(members["database.pgdump"]).hexdigest(),
    }
    members["manifest.json"] = json.dumps(manifest).encode()
    archive.unlink()
    with tarfile.open(archive, "w") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


def test_a_dump_that_fails_midway_leaves_the_database_empty(
    tmp_path: Path, source_url: str, target_url: str
) -> None:
    source = LocalStorage(tmp_path / "media")
    _populate(source_url, source)
    archive = _backup(tmp_path, source_url, source)
    # The table definitions come first; the damage hits the table data behind them.
    _rewrite_dump(archive, lambda dump: dump[: len(dump) * 3 // 4])
    _assert_refused(tmp_path, archive, target_url, "loading the database failed")


def test_the_database_password_never_appears_on_a_tools_command_line(
    tmp_path: Path, source_url: str, target_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """pg_dump and psql read it from their environment: a command line is readable by every
    local user while the tool runs. (The test server trusts local connections, so the password
    is carried but not checked.)"""
    storage = LocalStorage(tmp_path / "media")
    _populate(source_url, storage)
    secret = "s3cret-Pass-phrase"
    seen: list[tuple[list[str], str | None]] = []
    real_run, real_popen = subprocess.run, subprocess.Popen

    def run(argv: list[str], *args: Any, **kwargs: Any) -> Any:
        seen.append((list(argv), (kwargs.get("env") or {}).get("PGPASSWORD")))
        return real_run(argv, *args, **kwargs)

    def popen(argv: list[str], *args: Any, **kwargs: Any) -> Any:
        seen.append((list(argv), (kwargs.get("env") or {}).get("PGPASSWORD")))
        return real_popen(argv, *args, **kwargs)

    monkeypatch.setattr(subprocess, "run", run)
    monkeypatch.setattr(subprocess, "Popen", popen)

    def with_password(url: str) -> str:
        return make_url(url).set(password=secret).render_as_string(hide_password=False)

    archive = _backup(tmp_path, with_password(source_url), storage)
    restore_backup(
        archive,
        data_dir=tmp_path / "fresh",
        database_url=with_password(target_url),
        storage_url=(tmp_path / "restored").as_uri(),
    )
    tools = [(argv, pw) for argv, pw in seen if Path(argv[0]).name in {"pg_dump", "psql"}]
    assert {Path(argv[0]).name for argv, _ in tools} == {"pg_dump", "psql"}
    for argv, password in tools:
        assert not any(secret in part for part in argv), argv
        assert password == secret
    assert _tables(target_url)
