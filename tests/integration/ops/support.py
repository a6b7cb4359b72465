"""Run the real ``breakglass`` command line in a child process with a chosen environment."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

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


def start_serve(env: Mapping[str, str], log: Path) -> subprocess.Popen[bytes]:
    """``breakglass serve`` on a free port, its output into ``log``."""
    with log.open("wb") as sink:
        return subprocess.Popen(
            [sys.executable, "-m", "bot.cli", "serve", "--port", "0"],
            env=env,
            cwd=REPO,
            stdout=sink,
            stderr=sink,
        )


async def serve_state(child: subprocess.Popen[bytes], home: Path, log: Path) -> dict[str, Any]:
    """What ``serve`` writes to ``home``/serve.json once it listens; fails if it exits first."""
    deadline = time.monotonic() + 30
    while not (home / "serve.json").exists():
        assert child.poll() is None, log.read_text()  # noqa: ASYNC240 - only on failure
        assert time.monotonic() < deadline, "serve did not start"
        await asyncio.sleep(0.05)
    state: dict[str, Any] = json.loads((home / "serve.json").read_text())
    return state
