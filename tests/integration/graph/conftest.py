from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from adapters.graph import GraphConfig, GraphTools, RetryPolicy
from adapters.graph.simulated import ManualClock, SimulatedTenant
from adapters.store import SqlStore, sqlite_url
from bot.app import default_directory, seed_people
from bot.service import JobService
from engine.lifecycle import Rules
from engine.ports import ToolPort
from tests.integration.graph.support import MemorySnapshots
from tests.support.engine_sim import fixed_keys

# Small bounds so retries and pacing cost milliseconds, never seconds.
FAST = RetryPolicy(
    max_attempts=5,
    base_delay=0.01,
    max_delay=0.05,
    total_budget=3.0,
    request_timeout=5.0,
    ca_interval=0.04,  # the sim allows one CA request per 0.02 s
    reports_interval=0.0,  # tests that pace the reporting API say so
    readback_attempts=6,
    readback_interval=0.01,
    write_attempts=3,
)


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    """A plain HTTP client, for a test that speaks to the simulated tenant itself."""
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
async def sim(clock: ManualClock) -> AsyncIterator[SimulatedTenant]:
    # As strict as the real tenant: minimum durations, no removal in the first 5 minutes...
    async with SimulatedTenant(clock=clock, ca_interval=0.02, strict=True) as tenant:
        yield tenant


def config_for(sim: SimulatedTenant, retry: RetryPolicy = FAST, **kw: object) -> GraphConfig:
    fields: dict[str, object] = {
        "tenant_id": sim.tenant_id,
        "client_id": sim.client_id,
        "client_secret": sim.client_secret,
        "authority_base_url": sim.authority_base_url,
        "graph_base_url": sim.graph_base_url,
        "retry": retry,
    }
    return GraphConfig(**(fields | kw))  # type: ignore[arg-type]


@pytest.fixture
def config(sim: SimulatedTenant) -> GraphConfig:
    return config_for(sim)


@pytest.fixture
def snapshots() -> MemorySnapshots:
    return MemorySnapshots()


@pytest.fixture
def sleep() -> Callable[[float], Awaitable[None]]:
    """How the client waits between retries; a test module may record the waits instead."""
    return asyncio.sleep


@pytest.fixture
async def tools(
    config: GraphConfig,
    snapshots: MemorySnapshots,
    clock: ManualClock,
    sleep: Callable[[float], Awaitable[None]],
) -> AsyncIterator[GraphTools]:
    async with GraphTools(config, snapshots, clock=clock.now, sleep=sleep) as graph_tools:
        yield graph_tools


async def simulated_service(
    home: Path, sim: SimulatedTenant, clock: ManualClock, **service: Any
) -> tuple[JobService, GraphTools]:
    """A job service on SQLite under ``home`` whose tools call ``sim``; Bob and Carol approve."""
    store = await SqlStore.open(sqlite_url(home))
    tools = GraphTools(config_for(sim), snapshots=store, clock=clock.now)
    return seeded_service(store, tools, clock.now, **service), tools


def seeded_service(
    store: SqlStore, tools: ToolPort, clock: Callable[[], datetime], **service: Any
) -> JobService:
    """A job service over a simulated tenant with the fixed keys and the seed directory,
    in which Bob and Carol approve (the benchmarks build their replicas with it too)."""
    people = seed_people()
    return JobService(
        store=store,
        keys=fixed_keys(),
        rules=Rules(approvers=frozenset({people["bob"], people["carol"]}), simulated=True),
        tools=tools,
        clock=clock,
        directory=default_directory(),
        **service,
    )
