"""The whole service started while its store refuses every write (a full disk: PostgreSQL
SQLSTATE 53100), as a supervisor restarts it during the outage. It must start (DESIGN §10:
every job ends, and only a running process ends a window), be live but not ready, end an
open CA exclusion's window on time, unrecorded (ADR 0021), and end the job whole once the
disk has room. What a person reads says so without a traceback or a password, and what an
HTTP client reads names neither the database nor a file of it.

A CA exclusion, not a role: PIM ends a role's assignment at the window's end by itself, so
only an exclusion shows that the service ended it. The full disk is the database's own
(``faults.disk.PostgresDisk``: a trigger raising 53100 on every table; reads still work).
The service's time is a :class:`FileClock` only this test moves, and it stands still at the
window's end: whatever ends the exclusion there is on time, with no wall clock involved.
The simulated tenant has no replication lag, so the rollback recorded once the disk has room,
which finds the exclusion gone already, believes its read at once (``replication_settle``
0; ADR 0013's wait is the rollback's own concern): the clock need not move for it either.
Waits are for an observable state, bounded only as a guard against a hang.
"""

from __future__ import annotations

import asyncio
import logging
import re
import signal
import subprocess
import time
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from bot.app import SIMULATED_SEED, Runtime
from bot.assembly import CLOCK_FILE_VAR
from bot.clock import FileClock
from bot.config import Settings, load_settings
from bot.readiness import STORE_UNAVAILABLE
from engine.errors import StoreError
from engine.job import ACTIVE
from tests.integration.crash.test_embedded_restart import HANG_GUARD, job_view, until
from tests.integration.faults.disk import PostgresDisk
from tests.integration.ops.support import clean_environ, serve_state, start_serve

pytestmark = pytest.mark.postgres
T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
GROUP = SIMULATED_SEED["groups"][0]["id"]
POLICY = SIMULATED_SEED["conditionalAccessPolicies"][0]["id"]
VERIFIED_READ = "breakglass.microsoft_graph.read_ca_policy: success"  # the write's read
PASSWORD = "hunter2-in-the-url"  # trust auth ignores it; no line a person reads carries it
# The server's refusal names a file of the database; the store's URL names the database.
NOT_FOR_CLIENTS = ("base/", "postgresql", PASSWORD)
SIMULATOR = re.compile(r"simulated tenant \S+ at (http://127\.0\.0\.1:\d+);")
NOT_READY = "the store refused a write: not ready until it accepts one again"


def with_password(url: str) -> str:
    return url.replace("postgres@", f"postgres:{PASSWORD}@", 1)


def settings(home: Path, clock: FileClock, url: str) -> Settings:
    env = {"BREAKGLASS_HOME": str(home), "BREAKGLASS_DATABASE_URL": url}
    env[CLOCK_FILE_VAR] = str(clock.path)
    # The timers' first rounds come after the test: it runs the tick's rounds itself.
    loaded = replace(load_settings(env), port=0, tick_seconds=60.0, sweep_seconds=3600.0)
    return replace(loaded, replication_settle_seconds=0)


async def get(http: aiohttp.ClientSession, url: str) -> tuple[int, dict[str, Any]]:
    async with http.get(url) as response:
        body = await response.json()
        for text in NOT_FOR_CLIENTS:
            assert text not in str(body), body
        return response.status, body


async def post(http: aiohttp.ClientSession, url: str, body: dict[str, Any]) -> Any:
    async with http.post(url, json=body) as response:
        answer = await response.json()
        assert answer["ok"], answer
        return answer


async def open_an_exclusion(http: aiohttp.ClientSession, internal: str) -> str:
    """Alice's request that the seed's first group skip its first CA policy for 5 minutes,
    approved by Bob and Carol; returns once the exclusion is written and read back."""
    request = {"as": "console:alice", "template": "ca-exclusion", "principal": GROUP}
    request |= {"resource": POLICY, "minutes": 5, "justification": "MFA down", "ticket": "T-9"}
    created = await post(http, f"{internal}/console/api/request", request)
    job_id, plan = created["job_id"], created["result"]["plan_hash"]
    for who in ("bob", "carol"):
        act = {"as": f"console:{who}", "verb": "approve", "job_id": job_id, "plan_hash": plan}
        await post(http, f"{internal}/console/api/act", act)
    await until(http, internal, job_id, lambda j: j["last_tool_call"] == VERIFIED_READ)
    return str(job_id)


async def excluded(http: aiohttp.ClientSession, simulator: str) -> bool:
    """Does the tenant's policy still exclude the group (its true state, no replica lag)?"""
    async with http.get(f"{simulator}/_sim/state") as response:
        policies = (await response.json())["policies"]
    [policy] = [p for p in policies if p["id"] == POLICY]
    return GROUP in policy["conditions"]["users"]["excludeGroups"]


async def assert_live_not_ready_and_still_excluded(
    http: aiohttp.ClientSession, public: str, simulator: str
) -> None:
    """A start on the full disk: alive, not ready, and the window not yet over."""
    assert await get(http, f"{public}/healthz") == (200, {"ok": True})
    status, body = await get(http, f"{public}/readyz")
    assert (status, body.get("error")) == (503, STORE_UNAVAILABLE), body
    assert await excluded(http, simulator)


def simulator_of(text: str) -> str:
    found = SIMULATOR.search(text)
    assert found is not None, text
    return found.group(1)


async def to_window_end(
    http: aiohttp.ClientSession, internal: str, job_id: str, clock: FileClock
) -> None:
    end = datetime.fromisoformat((await job_view(http, internal, job_id))["window_end"])
    assert clock.now() < end, "the window is open"
    clock.set(end)  # and there it stays


async def test_a_start_on_a_full_disk_is_live_not_ready_and_ends_the_window_on_time(
    tmp_path: Path, pg_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    clock = FileClock(tmp_path / "clock")
    clock.set(T0)
    config = settings(tmp_path / "home", clock, with_password(pg_url))
    first = Runtime(config)
    await first.start()
    try:  # a job left open by a service stopped (SIGTERM) before its window ends
        async with aiohttp.ClientSession() as http:
            job_id = await open_an_exclusion(http, first.internal_url)
    finally:
        await first.stop()
    disk = PostgresDisk(pg_url)
    await disk.fill()
    second = Runtime(config)
    try:
        await second.start()  # everything it must write is refused: it starts all the same
        assert second.readiness is not None
        simulator, internal = simulator_of(second.describe()), second.internal_url
        async with aiohttp.ClientSession() as http:
            await assert_live_not_ready_and_still_excluded(http, second.url, simulator)

            await to_window_end(http, internal, job_id, clock)
            with pytest.raises(StoreError):  # the tick timer's round, as the app runs it
                await second.readiness.watch(second.service.tick)
            assert not await excluded(http, simulator), "the exclusion outlived its window"
            assert (await job_view(http, internal, job_id))["state"] == ACTIVE, "unrecorded"
            assert (await get(http, f"{second.url}/readyz"))[0] == 503

            await disk.free()
            job = await until(http, internal, job_id, lambda j: j["resolved"], tick=second)
            assert (job["state"], job["end_reason"]) == ("closed", "timebox_expired"), job
            assert (job["rollback_verified"], job["still_privileged"]) == (True, [])
            ready = await get(http, f"{second.url}/readyz")
            assert ready == (200, {"ready": True, "open_jobs": 0})
    finally:
        await disk.free()
        await second.stop()

    ours = [r for r in caplog.records if r.name.startswith("breakglass")]
    said = [r.getMessage() for r in ours]
    assert said.count(NOT_READY) == 1, said  # once, not at every refused round
    assert [m for m in said if m.startswith(f"ESCALATION job {job_id}")], said
    assert not [r for r in ours if r.exc_info], "a traceback"
    assert not [m for m in said if PASSWORD in m], "the password"


# ------------------------------------------------------------------ breakglass serve

SERVE_TOML = """
[service]
tick_seconds = 0.2
[policy]
replication_settle_seconds = 0
"""


async def until_true(check: Callable[[], Awaitable[bool]], what: str) -> None:
    deadline = time.monotonic() + HANG_GUARD
    while not await check():
        assert time.monotonic() < deadline, what
        await asyncio.sleep(0.05)


def stopped(child: subprocess.Popen[bytes]) -> int:
    if child.poll() is None:
        child.send_signal(signal.SIGTERM)
    try:
        return child.wait(timeout=HANG_GUARD)
    except subprocess.TimeoutExpired:
        child.kill()
        child.wait()
        raise


@pytest.mark.slow
async def test_serve_restarted_after_a_crash_on_a_full_disk_ends_the_window_on_time(
    tmp_path: Path, pg_url: str
) -> None:
    """The first process is killed (its leases stay recorded, held by a process that is
    gone); the next one starts on the full disk, with its real timers."""
    home, clock = tmp_path / "home", FileClock(tmp_path / "clock")
    clock.set(T0)
    home.mkdir()
    (home / "breakglass.toml").write_text(SERVE_TOML)
    url = with_password(pg_url)
    env = clean_environ(home, BREAKGLASS_DATABASE_URL=url, **{CLOCK_FILE_VAR: str(clock.path)})
    first = start_serve(env, tmp_path / "first.log")
    try:
        state = await serve_state(first, home, tmp_path / "first.log")
        async with aiohttp.ClientSession() as http:
            job_id = await open_an_exclusion(http, state["internal_url"])
    finally:
        first.kill()
        first.wait()
    (home / "serve.json").unlink()  # the crash left it behind
    disk = PostgresDisk(pg_url)
    await disk.fill()
    log = tmp_path / "second.log"
    second = start_serve(env, log)
    try:
        state = await serve_state(second, home, log)
        public, internal = state["public_url"], state["internal_url"]
        simulator = simulator_of(log.read_text())
        async with aiohttp.ClientSession() as http:
            await assert_live_not_ready_and_still_excluded(http, public, simulator)

            await to_window_end(http, internal, job_id, clock)

            async def ended() -> bool:
                return not await excluded(http, simulator)

            async def escalated() -> bool:  # said once the end's steps have all run
                return f"ESCALATION job {job_id}" in log.read_text()

            await until_true(ended, "the exclusion outlived its window")
            await until_true(escalated, "no ERROR line names the job whose end is unrecorded")
            assert (await job_view(http, internal, job_id))["state"] == ACTIVE, "unrecorded"
            assert (await get(http, f"{public}/readyz"))[0] == 503

            await disk.free()

            async def resolved() -> bool:
                return bool((await job_view(http, internal, job_id))["resolved"])

            await until_true(resolved, "the job did not end once the disk had room")
            job = await job_view(http, internal, job_id)
            assert (job["state"], job["rollback_verified"]) == ("closed", True), job
        assert stopped(second) == 0
    finally:
        await disk.free()
        stopped(second)
    text = log.read_text()
    assert "Traceback" not in text
    assert PASSWORD not in text
    assert text.count(NOT_READY) == 1, text
    assert len(re.findall(rf"ESCALATION job {job_id}\b", text)) == 1, text
