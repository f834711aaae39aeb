"""`fieldcast load-demo` next to a running `fieldcast serve`: it finds the services, and the
commands it prints reach the port the product really listens on."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from fieldcast.cli import main
from fieldcast.db import Database
from fieldcast.embedded import write_runtime


def _load_demo(data_dir: Path, **env: str | None) -> str:
    result = CliRunner().invoke(
        main,
        ["load-demo", "--password", "demo-password-1", "--no-videos"],
        env={
            "DATABASE_URL": None,
            "REDIS_URL": None,
            "SECRET_KEY": None,
            "PUBLIC_BASE_URL": None,
            "FIELDCAST_DATA_DIR": str(data_dir),
            **env,
        },
    )
    assert result.exit_code == 0, result.output
    return result.output


def _serve_runtime(data_dir: Path, database_url: str, redis_url: str, base: str) -> None:
    # What a running `fieldcast serve --port 8765` leaves in its data directory.
    write_runtime(
        data_dir, {"database_url": database_url, "redis_url": redis_url, "public_base_url": base}
    )


def test_load_demo_prints_the_url_serve_listens_on(
    committed_db: Database, database_url: str, redis_url: str, tmp_path: Path
) -> None:
    _serve_runtime(tmp_path, database_url, redis_url, "http://127.0.0.1:8765")
    output = _load_demo(tmp_path)
    assert "riley@demo.example.com" in output
    assert "curl -s -X POST http://127.0.0.1:8765/api/v1/auth/token" in output
    assert ":8000" not in output


def test_public_base_url_wins_when_set(
    committed_db: Database, database_url: str, redis_url: str, tmp_path: Path
) -> None:
    _serve_runtime(tmp_path, database_url, redis_url, "http://127.0.0.1:8765")
    output = _load_demo(tmp_path, PUBLIC_BASE_URL="https://fieldcast.example.com")
    assert "curl -s -X POST https://fieldcast.example.com/api/v1/auth/token" in output
