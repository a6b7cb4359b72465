"""``make test`` on a bare clone (no ../shared): collection never dies and the tests needing
the shared data are skipped under ONE clear summary line."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.integration.ops.support import REPO

NEEDS_SHARED = ["tests/unit/engine/test_conformance.py", "tests/unit/cards", "tests/unit/engine"]


def test_without_shared_data_the_suite_collects_and_skips_in_one_line(tmp_path: Path) -> None:
    env = {**os.environ, "BREAKGLASS_SHARED_DIR": str(tmp_path / "no-shared-here")}
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:randomly",
            "-p",
            "no:cacheprovider",
            *NEEDS_SHARED,
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:]
    skipped = [line for line in done.stdout.splitlines() if line.startswith("SKIPPED [")]
    assert len(skipped) == 1, skipped
    assert "SHARED DATA NOT FOUND" in skipped[0]
    assert "BREAKGLASS_SHARED_DIR" in skipped[0]
    assert "error" not in done.stdout.splitlines()[-1]
