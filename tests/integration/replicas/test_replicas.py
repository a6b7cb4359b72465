"""Two replicas, one PostgreSQL schema, one simulated tenant: each job's rollback runs on
one replica, a Kill on one is refused by the other, and a dead replica's job is taken over
once its lease expires."""

from __future__ import annotations

import asyncio
import logging
import time as wall
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from adapters.graph.simulated import SimulatedTenant
from adapters.store import sqlite_url
from bench.fleet import (
    HANG_GUARD_SECONDS,
    LEASE_TTL,
    STEP,
    Replica,
    SharedTime,
    Stalled,
    approve,
    open_replica,
    quiet,
    tick_all,
)
from engine import catalog
from engine.cst import TokenKind
from engine.job import ACTIVE, CLOSED, KILLED, Job
from engine.lifecycle import Kill
from engine.verify import verify_bundle
from tests.support.engine_sim import trust_for
from tests.support.waiting import eventually

pytestmark = pytest.mark.postgres


def receipts_of(chain: list[Any], tool: str) -> list[dict[str, Any]]:
    return [
        r.envelope["payload"]
        for r in chain
        if r.envelope
        and r.envelope["envelope_type"] == "tool_receipt"
        and r.envelope["payload"].get("tool_name") == tool
    ]


def pim_grants(tenant: SimulatedTenant) -> list[Any]:
    return [a for a in tenant.active_grants() if a.origin == "pim"]


async def assert_verified(replica: Replica, job: Job, state: str = CLOSED) -> None:
    assert job.state == state
    assert job.rollback_verified is True
    bundle, _ = await replica.service.bundle(job)
    report = verify_bundle(bundle, trust_for(replica.service.keys))
    assert report.valid, report.reasons


@asynccontextmanager
async def two_replicas(
    url: str, tenant: SimulatedTenant, time: SharedTime, *, stalled_a: bool = False
) -> AsyncIterator[tuple[Replica, Replica]]:
    """Replicas A and B on one database and one tenant, both closed on the way out."""
    a = await open_replica("a", url, tenant, time, stalled=stalled_a)
    b = await open_replica("b", url, tenant, time)
    try:
        yield a, b
    finally:
        await a.close()
        await b.close()


@asynccontextmanager
async def active_on_a(
    url: str, tenant: SimulatedTenant, time: SharedTime, job_id: str
) -> AsyncIterator[tuple[Replica, Replica]]:
    """Two replicas, and ``job_id`` approved on A with its grant written, both quiet."""
    async with two_replicas(url, tenant, time) as (a, b):
        await approve(a, job_id)
        await quiet(time, a, b)
        yield a, b


async def test_a_throttled_rollback_runs_on_one_replica_once(
    pg_schema_url: str, tenant: SimulatedTenant, time: SharedTime, caplog: pytest.LogCaptureFixture
) -> None:
    async with active_on_a(pg_schema_url, tenant, time, "job-r1") as (a, b):
        assert (await a.job("job-r1")).write_done
        # Killed on B, but A runs the job: the tenant refuses removal for 5 minutes, so the
        # rollback outlives many ticks of both replicas.
        assert (await b.service.command("job-r1", Kill(b.actor("bob")))).ok
        with caplog.at_level(logging.WARNING):
            await tick_all(time, timedelta(minutes=7), a, b)
        job = await a.job("job-r1")
        await assert_verified(a, job, KILLED)
        assert b.tools.called == []  # B never spoke to the tenant for this job
        removals = [n for n in a.tools.called if n == catalog.REMOVE_ROLE]
        chain = await a.store.chain("job-r1")
        assert len(receipts_of(chain, catalog.REMOVE_ROLE)) == len(removals) >= 2
        assert [
            r for r in receipts_of(chain, catalog.REMOVE_ROLE) if r["result_status"] == "success"
        ]
        assert "ESCALATION" not in caplog.text
        assert pim_grants(tenant) == []


async def test_a_kill_on_b_refuses_the_next_call_on_a(
    pg_schema_url: str, tenant: SimulatedTenant, time: SharedTime
) -> None:
    async with active_on_a(pg_schema_url, tenant, time, "job-r2") as (a, b):
        job = await a.job("job-r2")
        jti = job.token(TokenKind.AGENT).jti  # type: ignore[union-attr]
        token = await a.agent_token("job-r2")
        read = dict(job.plan.payload["metadata"]["breakglass"]["verify_action"]["arguments"])
        a.service.listening.clear()
        started = wall.perf_counter()
        assert (await b.service.command("job-r2", Kill(b.actor("bob")))).ok
        heard = asyncio.ensure_future(
            eventually(lambda: jti in a.service.revoked, HANG_GUARD_SECONDS)
        )
        before = len(a.tools.called)
        outcome = await a.gateway.call("job-r2", token, catalog.READ_ROLE, read)
        assert (outcome.allowed, outcome.reason) == (False, "TOKEN_INVALID")
        assert a.tools.called[before:] == []  # nothing reached the tenant
        refused = [
            r
            for r in receipts_of(await a.store.chain("job-r2"), catalog.READ_ROLE)
            if r["result_status"] == "error"
        ]
        assert refused, "the refusal is receipted in the job's chain"
        await heard  # A's fast path heard the notice
        print(f"kill on B -> A's fast path: {(wall.perf_counter() - started) * 1000:.1f} ms")


async def test_a_replica_lists_open_jobs_as_the_other_replica_left_them(
    pg_schema_url: str, tenant: SimulatedTenant, time: SharedTime
) -> None:
    async with active_on_a(pg_schema_url, tenant, time, "job-r4") as (a, b):
        assert [(j.job_id, j.state) for j in await b.service.open_jobs()] == [("job-r4", ACTIVE)]
        assert (await a.service.command("job-r4", Kill(a.actor("bob")))).ok  # A moves it on
        stored = await a.store.load_job("job-r4")
        listed = await b.service.open_jobs()  # B decoded it before: its version moved
        assert [(j.job_id, j.state) for j in listed] == [("job-r4", stored.state)]
        await tick_all(time, timedelta(minutes=7), a, b)
        assert (await a.job("job-r4")).state == KILLED
        assert await b.service.open_jobs() == []  # ended on A: B no longer lists it


# The dead replica's write is abandoned mid-transaction, as a killed process would leave it:
# its connection may be collected unclosed when the test finally cancels it.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
async def test_a_dead_replicas_job_is_taken_over_when_its_lease_expires(
    pg_schema_url: str, tenant: SimulatedTenant, time: SharedTime
) -> None:
    async with two_replicas(pg_schema_url, tenant, time, stalled_a=True) as (a, b):
        await approve(a, "job-r3")
        stalled = a.tools.inner
        assert isinstance(stalled, Stalled)
        await eventually(lambda: stalled.writes != [], HANG_GUARD_SECONDS)
        a.die()  # killed with its write in flight: nothing receipted, lease left to expire
        await tick_all(time, LEASE_TTL - STEP, b)
        assert b.tools.called == []  # A's lease is still alive: B leaves the job alone
        await tick_all(time, 2 * STEP, b)
        job = await b.job("job-r3")
        assert job.state == ACTIVE
        assert job.write_done
        assert job.verified_after_write
        assert b.tools.called[:2] == [catalog.WRITE_ROLE, catalog.READ_ROLE]
        await tick_all(time, timedelta(minutes=31), b)
        await assert_verified(b, await b.job("job-r3"))
        assert pim_grants(tenant) == []


async def test_grants_carry_the_deployment_and_another_deployments_sweep_skips_them(
    pg_schema_url: str, tenant: SimulatedTenant, time: SharedTime, tmp_path: Path
) -> None:
    a = await open_replica("a", pg_schema_url, tenant, time, deployment="dep-a")
    # Another deployment on the same tenant, with a database of its own: to it, job-r4 is
    # unknown, which alone would make the grant an orphan to remove.
    other = await open_replica("x", sqlite_url(tmp_path), tenant, time, deployment="dep-b")
    try:
        await approve(a, "job-r4")
        await quiet(time, a)
        found = await a.graph.find_marked_grants()
        assert [(g.job_id, g.deployment) for g in found] == [("job-r4", "dep-a")]
        assert await other.service.sweep() == []
        assert len(pim_grants(tenant)) == 1
        assert other.tools.called == []
    finally:
        await a.close()
        await other.close()
