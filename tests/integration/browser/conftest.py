"""The embedded default service for the browser tests (skipped without Chromium)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import pytest

from bot.app import Runtime
from bot.config import load_settings
from tests.support.browser import require_chromium


@pytest.fixture
async def runtime(tmp_path: Path) -> AsyncIterator[Runtime]:
    require_chromium()
    runtime = Runtime(replace(load_settings({"BREAKGLASS_HOME": str(tmp_path)}), port=0))
    await runtime.start()
    yield runtime
    await runtime.stop()
