"""A whole service whose store's disk can fill up: SQLite or PostgreSQL under a full disk
(``disk.py``), the real Graph adapter against the strict simulated tenant on loopback, the
runbook executor, a recording chat, and one manual clock for the service and the tenant
that the service's own waits advance (nothing here waits on wall-clock time)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from adapters.graph import GraphTools
from adapters.graph.simulated import ManualClock, SimulatedTenant
from adapters.store import SqlStore
from adapters.store.answers import ANSWER_SECONDS
from bot.app import SIMULATED_SEED, default_directory, seed_people
from bot.executor import RunbookExecutor
from bot.gateway_service import ToolGateway
from bot.kept_commands import spool_in
from bot.service import JobService
from bot.timers import Faults
from engine.access import access_from_config
from engine.job import RESOLVED, Job
from engine.lifecycle import Approve, Request, Rules
from engine.tools import ToolResult
from tests.integration.faults.disk import FullDisk, PostgresDisk, SqliteDisk
from tests.integration.graph.conftest import config_for
from tests.integration.replicas.conftest import pg_schema_url, time  # noqa: F401 (replicas)
from tests.integration.store.conftest import BACKENDS, pg_reachable, pg_url, url_of
from tests.support.engine_sim import fixed_keys
from tests.support.fakes import RecordingChat

__all__ = ["pg_reachable", "pg_url"]

PEOPLE = seed_people()
TENANT = SIMULATED_SEED["tenantId"]
ROLE = SIMULATED_SEED["roles"][0]["id"]
GROUP = SIMULATED_SEED["groups"][0]["id"]
POLICY = SIMULATED_SEED["conditionalAccessPolicies"][0]["id"]
APP = "4f6c1c1e-7a51-5c57-9d43-2b2cf0d8a9e1"  # "Payroll sync" in the seed
JOB = "job-full"
TICK_SECONDS = 30.0  # the service ticks often; every 30 s of the clock is plenty here
TARGETS: dict[str, dict[str, str]] = {
    "entra-role": {"principal_id": PEOPLE["dave"], "role_definition_id": ROLE},
    "ca-exclusion": {"policy_id": POLICY, "group_id": GROUP},
}


@dataclass
class Tripwire:
    """The real Graph adapter; ``before`` runs once, just before the first call of ``tool``
    is sent (the disk fills at that very moment). Every call is counted."""

    tools: GraphTools
    tool: str = ""
    before: Callable[[], Awaitable[None]] | None = None
    sent: list[str] = field(default_factory=list)

    async def call(self, tool_name: str, arguments: Mapping[str, Any]) -> ToolResult:
        if tool_name == self.tool and self.before is not None:
            before, self.before = self.before, None
            await before()
        self.sent.append(tool_name)
        result: ToolResult = await self.tools.call(tool_name, arguments)
        return result

    async def find_marked_grants(self) -> list[Any]:
        found: list[Any] = await self.tools.find_marked_grants()
        return found


@dataclass
class FullEnv:
    service: JobService
    gateway: ToolGateway
    executor: RunbookExecutor
    tools: Tripwire
    chat: RecordingChat
    clock: ManualClock
    sim: SimulatedTenant
    disk: FullDisk
    timer: Faults = field(default_factory=lambda: Faults("tick"))
    store_url: str = ""
    home: Path = Path()  # the service's home: its bundles and its kept commands
    answer_seconds: float = ANSWER_SECONDS  # how long the store waits for the database

    async def settle(self) -> None:
        await self.executor.wait_idle()
        await self.service.tasks.settle()

    async def tick(self) -> None:
        """One round of the service's tick timer, as ``bot.timers._every`` runs it (a failed
        round is logged by ``Faults`` and tried again at the next), then its work settles."""
        try:
            await self.service.tick()
        except Exception as exc:
            self.timer.failed(exc)
        else:
            self.timer.succeeded()
        await self.settle()


APPROVERS = frozenset({PEOPLE["bob"], PEOPLE["carol"]})


def rotating_rules() -> Rules:
    """The agent of Dave's role job may add application passwords (the end removes them)."""
    table = {
        "rotate_credentials": ["application_password"],
        "principals": [PEOPLE["dave"]],
        "roles": [ROLE],
        "step_up": "off",
    }
    access = access_from_config({"entra-role": table}, {})
    return Rules(approvers=APPROVERS, simulated=True, access=access)


def advancing(clock: ManualClock) -> Callable[[float], Awaitable[None]]:
    async def sleep(seconds: float) -> None:
        clock.advance(max(seconds, 0.0))
        await asyncio.sleep(0)

    return sleep


@pytest.fixture(params=BACKENDS)
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return url_of(request, tmp_path)


@pytest.fixture
def answer_seconds() -> float:
    """How long the store's callers wait for the database (a test may parametrize it)."""
    return ANSWER_SECONDS


@pytest.fixture
async def full(tmp_path: Path, store_url: str, answer_seconds: float) -> AsyncIterator[FullEnv]:
    """The service on a store whose disk the test fills (``full.disk``) and frees."""
    clock = ManualClock()
    async with SimulatedTenant(clock=clock, ca_interval=0.02, strict=True) as sim:
        store = await SqlStore.open(store_url, answer_seconds=answer_seconds)
        sqlite = store_url.startswith("sqlite")
        disk: FullDisk = SqliteDisk(store) if sqlite else PostgresDisk(store_url)
        graph = GraphTools(config_for(sim), snapshots=store, clock=clock.now)
        environment = _started(store, Tripwire(graph), clock, sim, disk, store_url, tmp_path)
        environment.answer_seconds = answer_seconds
        try:
            yield environment
        finally:
            await disk.free()
            await environment.service.close()
            await graph.close()
            await store.close()


def _started(
    store: SqlStore,
    tools: Tripwire,
    clock: ManualClock,
    sim: SimulatedTenant,
    disk: FullDisk,
    store_url: str,
    home: Path,
    replica_id: str | None = None,
) -> FullEnv:
    """The service, its gateway, its runbook executor and a recording chat, as a process
    starts them (the production assembly's home layout: ``bot/assembly.py``)."""
    service = JobService(
        store=store,
        keys=fixed_keys(),
        rules=Rules(approvers=APPROVERS, simulated=True),
        tools=tools,
        clock=clock.now,
        directory=default_directory(),
        sleep=advancing(clock),
        bundle_dir=home / "bundles",
        kept_commands=spool_in(home),
        replica_id=replica_id,
    )
    gateway = ToolGateway(service)
    executor = RunbookExecutor(gateway)
    service.executor = executor
    chat = RecordingChat()
    service.notifier.register(chat)
    return FullEnv(
        service, gateway, executor, tools, chat, clock, sim, disk, store_url=store_url, home=home
    )


async def die(env: FullEnv) -> None:
    """The service's process dies: its tasks and its listener end with it, and nothing is
    released or recorded on the way (its leases stay in the store until they expire or its
    successor adopts them). What it held in memory is gone with the object."""
    await env.service.revocations.stop()
    await env.service.tasks.cancel()


@contextlib.asynccontextmanager
async def started_again(env: FullEnv, replica_id: str | None = None) -> AsyncIterator[FullEnv]:
    """A new process of the same replica after ``die`` (or, given ``replica_id``, another
    replica beside it): a new store connection on the same URL, the same keys, tenant, disk
    and home, a new adapter (its calls counted apart), a new chat. Its ``resume`` is the
    caller's, as the app's start is."""
    store = await SqlStore.open(env.store_url, answer_seconds=env.answer_seconds)
    graph = GraphTools(config_for(env.sim), snapshots=store, clock=env.clock.now)
    tools = Tripwire(graph)
    # A SQLite disk fills for one connection (disk.py): the new process's is its own.
    disk = SqliteDisk(store) if env.store_url.startswith("sqlite") else env.disk
    again = _started(store, tools, env.clock, env.sim, disk, env.store_url, env.home, replica_id)
    again.answer_seconds = env.answer_seconds
    try:
        yield again
    finally:
        await again.service.close()
        await graph.close()
        await store.close()


async def active_job(env: FullEnv, template: str) -> None:
    """Alice's request, Bob's and Carol's approvals, and the write and its read done."""
    s = env.service
    request = Request(
        job_id=JOB,
        actor=s.actor("console:alice"),
        template=template,
        targets={"tenant_id": TENANT, **TARGETS[template]},
        minutes=30,
        justification="INC-9: the disk may fill up",
        ticket="INC-9",
        channel={"platform": "console", "conversation": "incident-9"},
    )
    out = await s.request(request)
    assert out.ok, out
    for who in ("bob", "carol"):
        approval = Approve(s.actor(f"console:{who}"), out.result["plan_hash"])
        assert (await s.command(JOB, approval)).ok
    await env.settle()


async def until_ended(env: FullEnv, rounds: int = 60) -> Job:
    """Tick until the job has ended (bounded: a job stuck for ever fails here)."""
    for _ in range(rounds):
        await env.tick()
        job = await env.service.load(JOB)
        if job.state in RESOLVED:
            return job
        env.clock.advance(TICK_SECONDS)
    raise AssertionError(f"job still {job.state} after {rounds} ticks")


def passwords(env: FullEnv) -> list[dict[str, Any]]:
    """The passwords the tenant holds for the application (``APP``)."""
    return list(env.sim.directory.applications[APP].get("passwordCredentials", []))
