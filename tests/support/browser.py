"""Real headless Chromium (Debian's ``chromium`` package) driven by Playwright for Python.

Playwright never downloads a browser here: it launches the system binary by path. The
project installs that binary with ``make browser`` (CI runs it before ``make test``); a
machine without it skips the browser tests with one line saying so.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from playwright.async_api import Browser, async_playwright

CHROMIUM = Path("/usr/bin/chromium")
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts" / "browser"
# Hang guard for one observable page state; waits end as soon as the state is shown.
WAIT_MS = 45_000


def require_chromium() -> None:
    if not CHROMIUM.exists():
        pytest.skip(f"no Chromium at {CHROMIUM}: run `make browser` to install it")


@asynccontextmanager
async def chromium() -> AsyncIterator[Browser]:
    """A launched headless Chromium (a Playwright ``Browser``)."""
    require_chromium()
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=ARGS, headless=True
        )
        try:
            yield browser
        finally:
            await browser.close()
