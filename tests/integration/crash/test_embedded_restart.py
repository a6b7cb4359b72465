"""The embedded default restarted with a job open (issue 14, observation 4): its in-process
simulated tenant keeps its state under the home, so the restarted service finds the grant it
made, removes it and verifies that, and the job ends closed (not ``failed``) with nothing
privileged and a bundle that verifies.

The service runs in this process (``Runtime``) on a :class:`FileClock` that only this test
moves; every wait is for an observable state, bounded only as a guard against a hang.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from bot.app import Runtime, seed_people
from bot.assembly import CLOCK_FILE_VAR
from bot.clock import FileClock
from bot.config import load_settings
from engine.verify import Trust, verify_bundle
from tests.integration.console.conftest import role_request

VERIFIED_READ = "breakglass.microsoft_graph.read_role_assignment: success"  # the write's read
HANG_GUARD = 60.0  # real seconds: only a hung service ever reaches it


def runtime(home: Path, clock: FileClock) -> Runtime:
    env = {"BREAKGLASS_HOME": str(home), CLOCK_FILE_VAR: str(clock.path)}
    return Runtime(replace(load_settings(env), port=0))


def ours(service: Runtime) -> list[str]:
    """Who holds a role through PIM in the service's in-process tenant (the seed's standing
    administrators hold theirs permanently)."""
    simulator = service._parts.simulator if service._parts is not None else None
    assert simulator is not None
    grants = simulator.active_grants()
    return [a.principal_id for a in grants if a.origin == "pim"]


async def api(http: aiohttp.ClientSession, method: str, url: str, body: Any = None) -> Any:
    async with http.request(method, url, json=body) as response:
        return await response.json()


async def job_view(http: aiohttp.ClientSession, url: str, job_id: str) -> dict[str, Any]:
    jobs = await api(http, "GET", f"{url}/console/api/jobs")
    return next(j for j in jobs if j["job_id"] == job_id)


async def until(
    http: aiohttp.ClientSession,
    url: str,
    job_id: str,
    done: Callable[[dict[str, Any]], bool],
    tick: Runtime | None = None,
) -> dict[str, Any]:
    deadline = time.monotonic() + HANG_GUARD
    while not done(job := await job_view(http, url, job_id)):
        assert time.monotonic() < deadline, f"job stuck in {job['state']}"
        if tick is not None:
            await tick.service.tick()
        await asyncio.sleep(0.02)
    return job


async def open_a_job(http: aiohttp.ClientSession, url: str) -> str:
    request = role_request() | {"justification": "restart test", "ticket": "T-RESTART"}
    created = await api(http, "POST", f"{url}/console/api/request", request)
    assert created["ok"], created
    job_id, plan = created["job_id"], created["result"]["plan_hash"]
    for who in ("bob", "carol"):
        act = {"as": f"console:{who}", "verb": "approve", "job_id": job_id, "plan_hash": plan}
        assert (await api(http, "POST", f"{url}/console/api/act", act))["ok"]
    await until(http, url, job_id, lambda j: j["last_tool_call"] == VERIFIED_READ)
    return str(job_id)


@pytest.mark.slow
async def test_a_restart_with_a_job_open_ends_it_closed_and_verified(tmp_path: Path) -> None:
    clock = FileClock(tmp_path / "clock")
    clock.set(datetime.now(UTC).replace(microsecond=0))
    home = tmp_path / "home"
    async with aiohttp.ClientSession() as http:
        first = runtime(home, clock)
        await first.start()
        url = first.internal_url  # the console is on the internal (loopback) listener
        try:
            job_id = await open_a_job(http, url)
            assert ours(first) == [seed_people()["alice"]]
        finally:
            await first.stop()

        clock.advance(timedelta(minutes=6))  # the window ended while the service was down
        second = runtime(home, clock)
        await second.start()
        url = second.internal_url
        try:
            job = await until(http, url, job_id, lambda j: j["resolved"], tick=second)
            assert (job["state"], job["end_reason"]) == ("closed", "timebox_expired"), json.dumps(
                job
            )
            assert job["rollback_verified"] is True
            assert job["still_privileged"] == []
            assert ours(second) == []
            bundle = await api(http, "GET", f"{url}/console/api/jobs/{job_id}/bundle")
            trust = await api(http, "GET", f"{url}/console/api/trust")
            report = verify_bundle(bundle, Trust.from_json(trust))
            assert report.valid, report.reason_codes
        finally:
            await second.stop()
