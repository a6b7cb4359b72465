"""A job service whose executor is OpenClaw: the real pinned OpenClaw process, driven by the
scripted model through our receipting proxy, calling tools through our MCP gateway.

The tests marked ``needs_openclaw`` need the pinned OpenClaw under .openclaw/ (``make
openclaw``); without it they skip, saying so. The MCP gateway tests need only Python.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from adapters.openclaw.install import Installation, find_installation
from bot.openclaw_executor import OpenClawConfig, OpenClawExecutor
from engine.errors import ConfigError
from tests.integration.agent.conftest import AgentEnv, Options, build


def _installation() -> Installation | None:
    try:
        return find_installation()
    except ConfigError:
        return None


INSTALLATION = _installation()
NOT_INSTALLED = "OpenClaw is not installed (run `make openclaw`): skipping the OpenClaw tests"


def pytest_runtest_setup(item: pytest.Item) -> None:
    """Skip every test that needs OpenClaw from this one place, so the report folds the
    skips into one line (a skip raised in a fixture is reported at each test instead)."""
    if INSTALLATION is None and "installation" in getattr(item, "fixturenames", ()):
        pytest.skip(NOT_INSTALLED)


@pytest.fixture
def installation() -> Installation:
    assert INSTALLATION is not None  # pytest_runtest_setup skipped the test otherwise
    return INSTALLATION


needs_openclaw = pytest.mark.usefixtures("installation")


MakeEnv = Callable[..., Awaitable[tuple[AgentEnv, OpenClawExecutor]]]


@pytest.fixture
async def make_env(tmp_path: Path) -> AsyncIterator[MakeEnv]:
    made: list[tuple[AgentEnv, OpenClawExecutor]] = []

    async def make(**changes: Any) -> tuple[AgentEnv, OpenClawExecutor]:
        home = tmp_path / f"env{len(made)}"
        home.mkdir()
        env = await build(home, Options(agent=False, **changes))
        executor = OpenClawExecutor(
            env.gateway, OpenClawConfig(proxy_url=env.proxy_url, home=home / "service")
        )
        env.service.executor = executor
        made.append((env, executor))
        return env, executor

    yield make
    for env, executor in made:
        await executor.close()
        await env.close()
