"""The system under test, assembled like ``bot.app.Runtime`` but on virtual time.

One store (SQLite in a temporary directory), one simulated tenant over real HTTP on loopback,
one recording chat channel, and a *node*: the job service, tool gateway, runbook executor and
Graph client of one process. A restart throws the node away and builds a new one over the
same store and tenant, then resumes; a crash first cancels the old node's unfinished work.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, NoReturn

from adapters.graph import GraphTools, RetryPolicy
from adapters.graph.simulated import Fault, SimulatedTenant
from adapters.store import SqlStore, sqlite_url
from bot.app import default_directory, seed_people
from bot.executor import RunbookExecutor
from bot.gateway_service import ToolGateway
from bot.service import JobService
from engine.errors import StoreError
from engine.identity import Directory
from engine.job import Job
from engine.lifecycle import Rules
from tests.integration.graph.conftest import config_for
from tests.support.engine_sim import fixed_keys
from tests.support.fakes import RecordingChat
from tests.support.virtual_time import VirtualClock

START = datetime(2026, 11, 25, 9, 0, 0, tzinfo=UTC)
PEOPLE = seed_people()  # alice, bob, carol, dave, erin -> object ids in the simulated seed
APPROVERS = frozenset({PEOPLE["bob"], PEOPLE["carol"], PEOPLE["dave"]})
# Virtual seconds, so realistic values cost nothing; few attempts so faults can exhaust them.
RETRY = RetryPolicy(
    max_attempts=4,
    base_delay=0.5,
    max_delay=8.0,
    total_budget=120.0,
    request_timeout=20.0,
    ca_interval=0.0,  # the pacer measures real time, which would make runs differ
    reports_interval=0.0,  # likewise for the reporting API (audit and sign-in logs)
    readback_attempts=3,
    readback_interval=1.0,
    write_attempts=2,
)
SETTLE_ROUNDS = 50


def directory() -> Directory:
    """The seed's people on the console, plus an identity that maps to nobody."""
    known = default_directory().by_chat_identity
    return Directory({**known, "console:twin": [PEOPLE["bob"], PEOPLE["carol"]]})


@dataclass
class Node:
    """One process of the service."""

    service: JobService
    gateway: ToolGateway
    executor: RunbookExecutor
    tools: GraphTools

    async def settle(self) -> None:
        """Wait until every task this process spawned has finished (bounded rounds)."""
        for _ in range(SETTLE_ROUNDS):
            await self.executor.wait_idle()
            pending = [t for t in self.service.tasks if not t.done()]
            if not pending:
                return
            await asyncio.gather(*pending, return_exceptions=True)
        raise AssertionError(f"tasks still spawning after {SETTLE_ROUNDS} rounds")

    async def crash(self, open_jobs: list[Job]) -> None:
        """Die now: unfinished work is cancelled, as a killed process would lose it."""
        for job in open_jobs:
            await self.executor.halt(job.job_id)
        await self.cancel_all()

    async def cancel_all(self) -> None:
        """Cancel every task this process spawned, and wait for them to end."""
        for task in list(self.service.tasks):
            task.cancel()
        await asyncio.gather(*self.service.tasks, return_exceptions=True)

    async def close(self) -> None:
        await self.tools.close()


class DeadStore:
    """The store as a killed process sees it: every call fails."""

    def __getattr__(self, name: str) -> Any:
        async def dead(*_args: object, **_kwargs: object) -> NoReturn:
            raise StoreError(f"the process died before {name}")

        return dead


class Outages:
    """ "The tenant is down until T": every Graph request answers 503 until the clock says so."""

    def __init__(self, tenant: SimulatedTenant) -> None:
        self.tenant = tenant
        self.until: datetime | None = None
        self._fault: Fault | None = None

    def start(self, now: datetime, minutes: int) -> None:
        self.until = max(self.until or now, now + timedelta(minutes=minutes))
        if self._fault is None:
            self._fault = Fault("unavailable", times=10**9)
            self.tenant.core.faults.faults.insert(0, self._fault)

    def on_clock(self, now: datetime) -> None:
        if self.until is not None and now >= self.until:
            self.end()

    def end(self) -> None:
        if self._fault is not None and self._fault in self.tenant.core.faults.faults:
            self.tenant.core.faults.faults.remove(self._fault)
        self._fault, self.until = None, None


class World:
    def __init__(self, home: Path, clock: VirtualClock, tenant: SimulatedTenant) -> None:
        self.home = home
        self.clock = clock
        self.tenant = tenant
        self.keys = fixed_keys()
        self.rules = Rules(approvers=APPROVERS, simulated=True)
        self.chat = RecordingChat()
        self.outages = Outages(tenant)
        clock.listeners.append(self.outages.on_clock)
        self.store: SqlStore | None = None
        self.node: Node | None = None

    @classmethod
    async def open(cls, home: Path) -> World:
        clock = VirtualClock(START)
        # ca_interval 0: the simulator's CA gate counts real seconds; throttling comes as faults.
        tenant = SimulatedTenant(clock=clock, ca_interval=0.0)
        await tenant.start()
        world = cls(home, clock, tenant)
        world.store = await SqlStore.open(sqlite_url(home), clock=clock.now)
        world.node = world._build_node()
        await world.node.service.resume()
        return world

    @property
    def service(self) -> JobService:
        assert self.node is not None
        return self.node.service

    def _build_node(self) -> Node:
        assert self.store is not None
        tools = GraphTools(
            config_for(self.tenant, RETRY), self.store, clock=self.clock.now, sleep=self.clock.sleep
        )
        service = JobService(
            store=self.store,
            keys=self.keys,
            rules=self.rules,
            tools=tools,
            clock=self.clock,
            directory=directory(),
            sleep=self.clock.sleep,
            bundle_dir=self.home / "bundles",
            resolver=tools,  # as the running service: targets resolved before approval
        )
        gateway = ToolGateway(service)
        executor = RunbookExecutor(gateway)
        service.executor = executor
        service.notifier.register(self.chat)
        return Node(service, gateway, executor, tools)

    async def settle(self) -> None:
        assert self.node is not None
        await self.node.settle()

    async def restart(self, *, crash: bool) -> None:
        """A new process over the same store and tenant; ``crash`` loses unfinished work."""
        old = self.node
        assert old is not None
        if crash:
            await old.crash(await old.service.open_jobs())
        else:
            await old.settle()
        await old.close()
        self.node = self._build_node()
        await self.node.service.resume()
        await self.settle()

    async def die(self) -> None:
        """SIGKILL mid-call: from now on nothing of the old process reaches the store (a
        receipt it had not written is lost, unlike ``restart(crash=True)``, where cancelled
        calls are still receipted). A new process is built; ``resume()`` is the caller's."""
        old = self.node
        assert old is not None
        old.service.store = DeadStore()  # type: ignore[assignment]
        await old.cancel_all()
        await old.close()
        self.node = self._build_node()

    async def close(self) -> None:
        if self.node is not None:
            await self.node.cancel_all()
            await self.node.executor.wait_idle()
            await self.node.close()
        if self.store is not None:
            await self.store.close()
        await self.tenant.stop()
