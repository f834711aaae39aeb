"""The test run's scheduler (tests/xdist_schedule.py): a worker that dies costs one test."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.timeout(240)


def _run(tmp_path: Path, files: dict[str, str], *extra: str) -> subprocess.CompletedProcess[str]:
    for name, text in files.items():
        (tmp_path / name).write_text(textwrap.dedent(text))
    (tmp_path / "conftest.py").write_text(
        "from tests.xdist_schedule import CrashSafeLoadGroupScheduling\n\n"
        "def pytest_xdist_make_scheduler(config, log):\n"
        "    return CrashSafeLoadGroupScheduling(config, log)\n\n"
        + textwrap.dedent(files.get("conftest.py", ""))
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-n", "2", "--dist", "loadgroup", "-p", "no:randomly",
         "-p", "no:cacheprovider", "-q", "-o", "addopts=", "-o", "timeout=0", *extra,
         str(tmp_path)],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=90,
    )  # fmt: skip


def _counts(output: str) -> dict[str, int]:
    last = output.strip().splitlines()[-1]
    return {word: int(n) for n, word in re.findall(r"(\d+) (passed|failed)", last)}


def test_a_worker_that_dies_after_finishing_many_tests_costs_one_test(tmp_path: Path) -> None:
    """The dead worker's finished single tests are not handed out again as empty work (the
    run used to wait forever at its end), and the test it died on is not run again."""
    singles = "\n".join(f"def test_quick_{n}():\n    pass\n" for n in range(60))
    result = _run(
        tmp_path,
        {
            "test_a.py": singles,
            "test_b.py": """
                import os, time
                def test_dies():
                    time.sleep(1)  # the other worker meanwhile finishes many tests
                    os._exit(3)
                def test_after():
                    pass
            """,
            "test_c.py": singles.replace("quick", "later"),
        },
    )
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    assert _counts(result.stdout) == {"failed": 1, "passed": 121}, output
    assert result.stdout.count("FAILED ") == 1, output
    assert "test_b.py::test_dies" in output


def test_a_group_whose_worker_dies_is_finished_by_the_replacement(tmp_path: Path) -> None:
    """A group's tests after the one a worker died on run on the worker that replaces it, even
    when one test is all that is left for it."""
    result = _run(
        tmp_path,
        {
            "test_g.py": """
                import os
                import pytest
                pytestmark = pytest.mark.xdist_group("stack")
                def test_first():
                    pass
                def test_dies():
                    os._exit(3)
                def test_last():
                    pass
            """,
            "test_h.py": "def test_other():\n    pass\n",
        },
    )
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    assert _counts(result.stdout) == {"failed": 1, "passed": 3}, output


def test_a_groups_tests_run_on_one_worker(tmp_path: Path) -> None:
    """`xdist_group` holds (the files that start whole stacks of processes rely on it): a
    pytest whose node ids lose the group's suffix would spread them over every worker."""
    tests = "\n".join(f"def test_{n}():\n    time.sleep(0.2)\n" for n in range(6))
    result = _run(
        tmp_path,
        {
            "test_g.py": "import time\nimport pytest\n"
            'pytestmark = pytest.mark.xdist_group("stack")\n' + tests,
            "test_h.py": "import time\n" + tests,
        },
        "-vv",  # past the -q
    )
    assert result.returncode == 0, result.stdout + result.stderr
    workers = set(re.findall(r"\[(gw\d+)\] .*PASSED test_g\.py::", result.stdout))
    assert len(workers) == 1, result.stdout
    assert len(set(re.findall(r"\[(gw\d+)\] .*PASSED test_h\.py::", result.stdout))) >= 1


def test_two_workers_dying_one_after_the_other_cost_two_tests(tmp_path: Path) -> None:
    """Both workers die, one after the other, with work still queued: the replacements finish
    it."""
    singles = "import time\n" + "\n".join(
        f"def test_slow_{n}():\n    time.sleep(0.4)\n" for n in range(20)
    )
    result = _run(
        tmp_path,
        {
            "test_a.py": "import os, time\n"
            "def test_dies_first():\n    time.sleep(1)\n    os._exit(3)\n",
            "test_b.py": "import os, time\n"
            "def test_dies_next():\n    time.sleep(3)\n    os._exit(3)\n",
            "test_c.py": singles,
        },
    )
    output = result.stdout + result.stderr
    assert "INTERNALERROR" not in output, output
    assert _counts(result.stdout) == {"failed": 2, "passed": 20}, output
    assert result.stdout.count("FAILED ") == 2, output


def test_the_suite_runs_without_pytest_xdist() -> None:
    """The scheduler hook is optional: `-p no:xdist` runs tests in one process."""
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:xdist", "-p", "no:randomly", "-q",
         "tests/test_log_masking.py"],
        cwd=REPO, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
