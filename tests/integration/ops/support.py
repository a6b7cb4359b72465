"""Run the real ``breakglass`` command line in a child process with a chosen environment."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]


def clean_environ(home: Path, **more: str) -> dict[str, str]:
    """This process's environment without any BREAKGLASS_* variable, plus ``more``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("BREAKGLASS_")}
    return env | {"BREAKGLASS_HOME": str(home)} | more


def breakglass(
    argv: list[str], env: Mapping[str, str], timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bot.cli", *argv],
        capture_output=True,
        text=True,
        env=dict(env),
        cwd=REPO,
        timeout=timeout,
        check=False,
    )
