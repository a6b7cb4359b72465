"""The embedded default service (simulated tenant, console on) on loopback, port 0."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from bot.app import SIMULATED_SEED, Runtime, seed_people
from bot.config import load_settings

Console = tuple[aiohttp.ClientSession, str, Runtime]


def fast_runtime(home: Path, **changes: Any) -> Runtime:
    """The embedded default under ``home`` on a fast clock. A kill right after approval may
    meet the write in flight: the strict tenant's 5-minute removal rule, or the rollback
    waiting out replication (ADR 0013), then takes minutes of the service's clock; running it
    60 times faster (as the demo does) makes those seconds."""
    settings = load_settings({"BREAKGLASS_HOME": str(home)})
    return Runtime(replace(settings, port=0, clock_scale=60.0, **changes))


@pytest.fixture
async def console(tmp_path: Path) -> AsyncIterator[Console]:
    runtime = fast_runtime(tmp_path)
    await runtime.start()
    url = runtime.internal_url  # the console is on the internal (loopback) listener
    async with aiohttp.ClientSession() as session:
        yield session, url, runtime
    await runtime.stop()


def role_request() -> dict[str, Any]:
    return {
        "as": "console:alice",
        "template": "entra-role",
        "principal": seed_people()["alice"],
        "resource": SIMULATED_SEED["roles"][0]["id"],
        "minutes": 5,
        "justification": "console test",
        "ticket": "T-1",
    }


async def post(session: aiohttp.ClientSession, url: str, body: Any) -> tuple[int, Any]:
    async with session.post(url, json=body) as response:
        return response.status, await response.json()
