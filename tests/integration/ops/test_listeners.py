"""Two listeners (DESIGN §3): the public one carries only webhooks and health; the internal
one, loopback by default, carries the console, the registry, the model proxy and metrics.
Every lifecycle event is one log line carrying the job id."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from bot.app import Runtime
from bot.config import load_settings
from bot.lifecycle_log import log_event
from bot.registry import WPC_PATH
from engine.errors import ConfigError
from engine.ports import ChatEvent
from tests.integration.console.conftest import fast_runtime, role_request

NOW = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.fixture
async def runtime(tmp_path: Path) -> AsyncIterator[Runtime]:
    # The kill test removes at once: the fast clock waits the 5-minute rule out in seconds.
    running = fast_runtime(tmp_path)
    await running.start()
    yield running
    await running.stop()


async def status(session: aiohttp.ClientSession, method: str, url: str) -> int:
    async with session.request(method, url) as response:
        return response.status


async def test_the_public_listener_carries_only_webhooks_and_health(runtime: Runtime) -> None:
    public, internal = runtime.url, runtime.internal_url
    assert public != internal
    assert internal.startswith("http://127.0.0.1:")
    async with aiohttp.ClientSession() as session:
        for path in ("/healthz", "/readyz"):
            assert await status(session, "GET", public + path) == 200
            assert await status(session, "GET", internal + path) == 200
        for method, path in [
            ("GET", "/"),
            ("GET", "/console/api/jobs"),
            ("GET", "/metrics"),
            ("POST", WPC_PATH),
            ("POST", "/v1/chat/completions"),
        ]:
            assert await status(session, method, public + path) == 404, path
        assert await status(session, "GET", internal + "/") == 200
        assert await status(session, "GET", internal + "/console/api/jobs") == 200
        assert await status(session, "GET", internal + "/metrics") == 200


def test_the_console_refuses_a_remote_bind_unless_allowed(tmp_path: Path) -> None:
    path = tmp_path / "breakglass.toml"
    path.write_text('[service]\ninternal_host = "0.0.0.0"\n')
    env = {"BREAKGLASS_HOME": str(tmp_path)}
    with pytest.raises(ConfigError, match=r"service\.internal_host: 0\.0\.0\.0 is not loopback"):
        load_settings(env, path)
    path.write_text('[service]\ninternal_host = "0.0.0.0"\nallow_remote_console = true\n')
    assert load_settings(env, path).internal_host == "0.0.0.0"


async def post(session: aiohttp.ClientSession, url: str, body: Any) -> Any:
    async with session.post(url, json=body) as response:
        assert response.status == 200, await response.text()
        return await response.json()


async def settle(runtime: Runtime) -> None:
    """Wait for the service's background work (the write, the rollback) to finish."""
    await runtime.service.tasks.settle()


async def test_each_lifecycle_event_is_one_log_line_with_the_job_id(
    runtime: Runtime, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="breakglass.lifecycle")
    api = f"{runtime.internal_url}/console/api"
    request = role_request()
    async with aiohttp.ClientSession() as session:
        created = await post(session, f"{api}/request", request)
        job_id, plan = created["job_id"], created["result"]["plan_hash"]
        for who in ("bob", "carol"):
            act = {"as": f"console:{who}", "verb": "approve", "job_id": job_id, "plan_hash": plan}
            await post(session, f"{api}/act", act)
        await settle(runtime)  # the write lands before the kill
        kill = {"as": "console:bob", "verb": "kill", "job_id": job_id, "plan_hash": plan}
        await post(session, f"{api}/act", kill)
    await settle(runtime)
    lines = [r for r in caplog.records if r.name == "breakglass.lifecycle"]
    assert all(getattr(r, "job_id", None) == job_id for r in lines)
    assert all(job_id in r.getMessage() for r in lines)
    events = [getattr(r, "event", "") for r in lines]
    assert events[:2] == ["request", "human_approval"]
    assert events.count("human_approval") == 2
    for kind in ("token_issued", "token_revoked", "tool_call"):  # activation, kill, calls
        assert kind in events, events


def test_the_close_is_one_line_with_the_job_id(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="breakglass.lifecycle")
    job = {"job_id": "bg-0123456789", "state": "closed", "channel": {"platform": "none"}}
    log_event("bg-0123456789", ChatEvent("finish", job, {}, (), NOW))
    [line] = [r for r in caplog.records if r.name == "breakglass.lifecycle"]
    assert line.getMessage() == "job bg-0123456789: closed (closed)"
    assert getattr(line, "job_id", None) == "bg-0123456789"
