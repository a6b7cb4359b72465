"""Conditional Access allows one request a second per tenant, and the reporting API five per
ten seconds, whatever the number of replicas: two replicas pacing through the store's shared
slots never make the strict tenant answer 429, while two replicas pacing each on their own do
(the failure the shared slots prevent)."""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections.abc import AsyncIterator, Coroutine
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from adapters.graph import GraphClient
from adapters.graph.client import CA_PREFIX, REPORTS_PREFIX
from adapters.graph.simulated import ManualClock, SimulatedTenant
from adapters.store import SqlStore
from bench.fleet import HANG_GUARD_SECONDS
from tests.integration.graph.conftest import FAST, config_for
from tests.integration.graph.support import MFA_POLICY

pytestmark = pytest.mark.postgres

T0 = datetime(2026, 1, 1, tzinfo=UTC)
POLICY = f"{CA_PREFIX}policies/{MFA_POLICY}"
AUDITS = f"{REPORTS_PREFIX}directoryAudits"
PER_REPLICA = 4


class JumpTime:
    """Virtual time that stands still while any worker is busy (in HTTP, in the database) and
    jumps to the earliest wake-up once every worker sleeps or is done, like trio's autojump
    clock: each request reaches the tenant at exactly the instant its pacer chose, however
    fast the machine is. Kept as a datetime so one-second slots stay exact."""

    def __init__(self) -> None:
        self.now = T0
        self.arrivals: list[float] = []  # tenant's rate-gate readings: one per CA request
        self._sleepers: list[tuple[datetime, int, asyncio.Future[None]]] = []
        self._order = itertools.count()
        self._changed = asyncio.Event()

    def utc(self) -> datetime:
        return self.now

    def rate_clock(self) -> float:
        self.arrivals.append((self.now - T0).total_seconds())
        return self.arrivals[-1]

    async def sleep(self, seconds: float) -> None:
        woken = asyncio.get_running_loop().create_future()
        until = self.now + timedelta(seconds=max(seconds, 0.0))
        heapq.heappush(self._sleepers, (until, next(self._order), woken))
        self._changed.set()
        await woken

    async def run(self, *workers: Coroutine[Any, Any, None]) -> list[BaseException | None]:
        tasks = [asyncio.create_task(w) for w in workers]
        for task in tasks:
            task.add_done_callback(lambda _: self._changed.set())
        while not all(t.done() for t in tasks):
            if sum(not t.done() for t in tasks) == len(self._sleepers):
                self._wake_earliest()
                continue
            self._changed.clear()
            await asyncio.wait_for(self._changed.wait(), HANG_GUARD_SECONDS)
        return [t.exception() for t in tasks]

    def _wake_earliest(self) -> None:
        self.now = max(self.now, self._sleepers[0][0])
        while self._sleepers and self._sleepers[0][0] <= self.now:
            heapq.heappop(self._sleepers)[2].set_result(None)


@pytest.fixture
def time() -> JumpTime:
    return JumpTime()


@pytest.fixture
async def strict_tenant(time: JumpTime) -> AsyncIterator[SimulatedTenant]:
    clock = ManualClock()
    async with SimulatedTenant(
        clock=clock, ca_interval=1.0, strict=True, rate_clock=time.rate_clock
    ) as sim:
        yield sim


async def replicas_read(
    url: str, sim: SimulatedTenant, time: JumpTime, *, shared: bool, path: str = POLICY
) -> list[BaseException | None]:
    """Two replicas (each its own store connections and Graph client) read ``path``
    ``PER_REPLICA`` times each, at the same moments (CA paced at 1 s, reports at 2 s)."""
    retry = replace(FAST, ca_interval=1.0, reports_interval=2.0, total_budget=30.0)
    config = config_for(sim, retry)
    stores = [await SqlStore.open(url) for _ in range(2)]
    clients = [
        GraphClient(
            config, sleep=time.sleep, pacing=store if shared else None, pacing_clock=time.utc
        )
        for store in stores
    ]

    async def reads(client: GraphClient) -> None:
        for _ in range(PER_REPLICA):
            await client.get(path)

    try:
        return await time.run(*(reads(c) for c in clients))
    finally:
        for client in clients:
            await client.close()
        for store in stores:
            await store.close()


def ca_statuses(sim: SimulatedTenant) -> list[int]:
    return [e.status for e in sim.requests_log if "conditionalAccess" in e.path]


async def test_two_replicas_share_one_request_a_second(
    pg_schema_url: str, strict_tenant: SimulatedTenant, time: JumpTime
) -> None:
    failures = await replicas_read(pg_schema_url, strict_tenant, time, shared=True)
    assert failures == [None, None]
    assert ca_statuses(strict_tenant) == [200] * (2 * PER_REPLICA)  # never a 429
    # One a second at the tenant, and no slower: slot after slot, none left unused.
    assert time.arrivals == [float(n) for n in range(2 * PER_REPLICA)]


async def test_two_replicas_pacing_alone_are_throttled(
    pg_schema_url: str, strict_tenant: SimulatedTenant, time: JumpTime
) -> None:
    await replicas_read(pg_schema_url, strict_tenant, time, shared=False)
    assert 429 in ca_statuses(strict_tenant)  # both sent their first request at once


def report_statuses(sim: SimulatedTenant) -> list[int]:
    return [e.status for e in sim.requests_log if "auditLogs" in e.path]


async def test_two_replicas_share_the_reporting_apis_five_per_ten_seconds(
    pg_schema_url: str, strict_tenant: SimulatedTenant, time: JumpTime
) -> None:
    failures = await replicas_read(pg_schema_url, strict_tenant, time, shared=True, path=AUDITS)
    assert failures == [None, None]
    assert report_statuses(strict_tenant) == [200] * (2 * PER_REPLICA)
    assert time.arrivals == [2.0 * n for n in range(2 * PER_REPLICA)]  # one every 2 s


async def test_two_replicas_pacing_reports_alone_are_throttled(
    pg_schema_url: str, strict_tenant: SimulatedTenant, time: JumpTime
) -> None:
    await replicas_read(pg_schema_url, strict_tenant, time, shared=False, path=AUDITS)
    assert 429 in report_statuses(strict_tenant)  # eight in the first ten seconds
