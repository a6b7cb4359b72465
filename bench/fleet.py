"""Replicas in one process for tests and ``bench.replica_kill`` (``make load`` and ``make
chaos`` run each in a process of its own: ``bench.replica_process``): each a whole
``JobService`` of its own (store connections, Graph client, gateway, runbook executor, lease
owner id), sharing only the database and one simulated tenant over HTTP, as two processes
would. Time is one ``ManualClock`` the driver moves: the services read it, their sleeps wait
for it, and the tenant's rules (strict PIM: no removal in the first 5 minutes) run on it.
A replica "dies" by no longer being ticked and forgetting its leases, without any cleanup.
"""

from __future__ import annotations

import asyncio
import time as wall
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from adapters.graph import GraphConfig, GraphTools
from adapters.graph.simulated import ManualClock, SimulatedTenant
from adapters.store import SqlStore
from bot.app import SIMULATED_SEED, seed_people
from bot.executor import RunbookExecutor
from bot.gateway_service import ToolGateway
from bot.service import JobService
from engine.cst import TokenKind
from engine.job import Job
from engine.lifecycle import Approve, Request
from engine.ports import ToolPort
from engine.tools import ToolResult
from tests.integration.graph.conftest import FAST, seeded_service  # FAST: millisecond retries
from tests.support.engine_sim import entra_role_request

IDS = seed_people()
ROLE = SIMULATED_SEED["roles"][0]["id"]
LEASE_TTL = timedelta(seconds=30)
STEP = timedelta(seconds=10)  # how far the test moves time between two ticks (< TTL / 2)
HANG_GUARD_SECONDS = 60.0  # only against a hung test, never a timing assumption


class SharedTime:
    """The shared clock, and sleeps that end when the test has moved it far enough."""

    def __init__(self, start: datetime | None = None) -> None:
        self.manual = ManualClock(start)
        self._moved = asyncio.Condition()
        self.sleepers: set[asyncio.Task[Any]] = set()  # tasks waiting for the clock

    def now(self) -> Any:
        return self.manual.now()

    async def sleep(self, seconds: float) -> None:
        # Even a zero wait lets time pass (as it would in a real process): the waiter resumes
        # at the next move of the clock, never in a loop that the clock cannot end.
        until = self.manual.now() + timedelta(seconds=max(seconds, 0.001))
        task = asyncio.current_task()
        assert task is not None
        self.sleepers.add(task)
        try:
            async with self._moved:
                await self._moved.wait_for(lambda: self.manual.now() >= until)
        finally:
            self.sleepers.discard(task)

    async def advance(self, delta: timedelta) -> None:
        self.manual.advance(delta)
        async with self._moved:
            self._moved.notify_all()
        for _ in range(5):  # let woken sleepers run up to their next await
            await asyncio.sleep(0)


@dataclass
class Stalled:
    """A replica's link to the tenant that has stopped answering writes (the process is
    about to die): calls wait until cancelled; reads still pass."""

    inner: ToolPort
    writes: list[str] = field(default_factory=list)

    async def call(self, tool_name: str, arguments: Any) -> ToolResult:
        if ".write_" in tool_name or ".exclude_" in tool_name:
            self.writes.append(tool_name)
            await asyncio.Event().wait()
        return await self.inner.call(tool_name, arguments)

    async def find_marked_grants(self) -> Any:
        return await self.inner.find_marked_grants()


@dataclass
class Counting:
    """Which tools a replica called, in order (what reached its Graph client)."""

    inner: ToolPort
    called: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)  # job ids whose grant this call removed

    async def call(self, tool_name: str, arguments: Any) -> ToolResult:
        self.called.append(tool_name)
        result = await self.inner.call(tool_name, arguments)
        if result.body.get("removed") is True and not result.body.get("already_gone"):
            self.removed.append(str(arguments.get("job_id", "")))
        return result

    async def find_marked_grants(self) -> Any:
        return await self.inner.find_marked_grants()


@dataclass
class Replica:
    name: str
    service: JobService
    tools: Counting
    graph: GraphTools
    store: SqlStore

    @property
    def gateway(self) -> ToolGateway:
        assert self.service.gateway is not None
        return self.service.gateway

    def actor(self, who: str) -> Any:
        return self.service.actor(f"console:{who}")

    async def job(self, job_id: str) -> Job:
        return await self.service.load(job_id)

    async def agent_token(self, job_id: str) -> str:
        return self.service.token_for(await self.job(job_id), TokenKind.AGENT)

    def die(self) -> None:
        """Stop without cleanup: no more ticks, no lease renewed or released."""
        self.service.leases.forget()

    async def close(self) -> None:
        await self.service.close()
        await self.graph.close()
        await self.store.close()


async def open_replica(
    name: str,
    url: str,
    sim: SimulatedTenant,
    time: SharedTime,
    stalled: bool = False,
    deployment: str = "",
) -> Replica:
    return await open_replica_on(name, url, graph_config(sim, deployment), time, stalled)


async def open_replica_on(
    name: str, url: str, config: GraphConfig, time: SharedTime, stalled: bool = False
) -> Replica:
    """A replica reaching the tenant through ``config`` (in a process of its own, too)."""
    store = await SqlStore.open(url)
    graph = GraphTools(config, snapshots=store, clock=time.now)
    tools = Counting(Stalled(graph) if stalled else graph)
    service = seeded_service(
        store,
        tools,
        time.now,
        sleep=time.sleep,
        replica_id=f"replica-{name}",
        lease_ttl=LEASE_TTL,
        deployment=config.deployment or None,
    )
    gateway = ToolGateway(service)
    service.executor = RunbookExecutor(gateway)
    service.listen()
    await asyncio.wait_for(service.listening.wait(), HANG_GUARD_SECONDS)
    return Replica(name, service, tools, graph, store)


def role_request(
    job_id: str, replica: Replica, minutes: int = 30, principal: str = "alice", role: str = ""
) -> Request:
    alice, tenant = replica.actor("alice"), SIMULATED_SEED["tenantId"]
    return entra_role_request(
        job_id,
        alice,
        tenant,
        IDS[principal],
        role or ROLE,
        minutes=minutes,
        justification="replica test",
        ticket="T-1",
    )


async def approve(replica: Replica, job_id: str) -> None:
    """Request and approve ``job_id`` on ``replica`` (its executor starts there)."""
    out = await replica.service.request(role_request(job_id, replica), key=f"req:{job_id}")
    assert out.ok, out
    plan = out.result["plan_hash"]
    for who in ("bob", "carol"):
        done = await replica.service.command(job_id, Approve(replica.actor(who), plan))
        assert done.ok, done


async def tick_all(time: SharedTime, total: timedelta, *replicas: Replica) -> None:
    """Move time by ``total`` in steps, every live replica ticking after each step."""
    moved = timedelta(0)
    while moved < total:
        step = min(STEP, total - moved)
        await time.advance(step)
        moved += step
        for r in replicas:
            await r.service.tick()
        await quiet(time, *replicas)


async def quiet(time: SharedTime, *replicas: Replica) -> None:
    """Wait until every task of the replicas has ended or waits for the clock: nothing
    more happens until the test moves time (a condition, not a duration)."""

    def busy() -> list[asyncio.Task[Any]]:
        return [
            t for r in replicas for t in r.service.tasks if not t.done() and t not in time.sleepers
        ]

    deadline = wall.monotonic() + HANG_GUARD_SECONDS
    while busy():
        if wall.monotonic() > deadline:
            raise TimeoutError(f"replicas still busy: {[t.get_name() for t in busy()]}")
        await asyncio.sleep(0.001)


def graph_config(sim: SimulatedTenant, deployment: str = "") -> GraphConfig:
    return GraphConfig(
        tenant_id=sim.tenant_id,
        client_id=sim.client_id,
        client_secret=sim.client_secret,
        authority_base_url=sim.authority_base_url,
        graph_base_url=sim.graph_base_url,
        retry=FAST,
        deployment=deployment,
    )
