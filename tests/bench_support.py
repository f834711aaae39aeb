"""Running a benchmark's `--quick` mode as a smoke test."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def run_quick(
    module: str, env: dict[str, str], *args: str, timeout: float = 240
) -> tuple[dict[str, Any], list[str], str]:
    """Run `python -m <module> --quick <args>` from the repository; it must exit 0. Returns the
    figures of its last stdout line (its JSON line), every stdout line, and its stderr."""
    done = subprocess.run(
        [sys.executable, "-m", module, "--quick", *args],
        cwd=ROOT,
        env={**env, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    lines = done.stdout.strip().splitlines()
    assert lines, done.stderr[-4000:]
    figures: dict[str, Any] = json.loads(lines[-1])
    return figures, lines, done.stderr
