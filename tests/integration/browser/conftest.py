"""The embedded default service for the browser tests (skipped without Chromium)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.app import Runtime
from bot.assembly import CLOCK_FILE_VAR
from bot.clock import FileClock
from bot.config import load_settings
from tests.support.browser import require_chromium


@pytest.fixture
async def runtime(tmp_path: Path) -> AsyncIterator[Runtime]:
    require_chromium()
    # A clock only the test moves: a kill in PIM's first five minutes waits for the strict
    # tenant's removal, which the test allows by moving this clock, not by waiting for real.
    clock = FileClock(tmp_path / "clock")
    clock.set(datetime.now(UTC).replace(microsecond=0))
    environ = {"BREAKGLASS_HOME": str(tmp_path), CLOCK_FILE_VAR: str(clock.path)}
    runtime = Runtime(replace(load_settings(environ), port=0))
    await runtime.start()
    yield runtime
    await runtime.stop()
