from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from adapters.graph.simulated import ManualClock, SimulatedTenant
from adapters.store import SqlStore, sqlite_url
from bot.executor import RunbookExecutor
from bot.gateway_service import ToolGateway
from bot.service import JobService
from engine.identity import Directory
from engine.lifecycle import Rules
from engine.ports import ToolPort
from tests.integration.graph.conftest import simulated_service
from tests.integration.service.simulated import RECEIPTS_EVERY, SimEnv, advancing
from tests.support.engine_sim import T0, fixed_keys
from tests.support.fakes import Clock, MemoryTenant, RecordingChat
from tests.support.waiting import settle


@dataclass
class Env:
    store: SqlStore
    service: JobService
    gateway: ToolGateway
    executor: RunbookExecutor
    tenant: MemoryTenant
    chat: RecordingChat
    clock: Clock

    async def settle(self) -> None:
        """Wait until every background task the service started has finished."""
        await settle(self.executor.wait_idle, pending=lambda: self.service.tasks)


DIRECTORY = Directory(
    by_chat_identity={
        "console:alice": ["u-alice"],
        "console:bob": ["u-bob"],
        "console:carol": ["u-carol"],
        "console:dave": ["u-dave"],
        "slack:UBOB2": ["u-bob"],
        "console:twin": ["u-bob", "u-carol"],
    }
)


async def no_sleep(_seconds: float) -> None:
    return None


def sleeper(clock: Clock) -> Callable[[float], Awaitable[None]]:
    """The service's sleep on the test clock: time passes at once, and only when waited for."""

    async def sleep(seconds: float) -> None:
        clock.advance(seconds=seconds)
        await asyncio.sleep(0)

    return sleep


Wrap = Callable[[MemoryTenant, Clock], ToolPort]


async def memory_service(
    home: Path,
    rules: Rules,
    tools: Wrap | None = None,
    clock_of: Callable[[Clock], Callable[[], datetime]] | None = None,
    **service: Any,
) -> tuple[JobService, MemoryTenant, Clock]:
    """A job service on SQLite under ``home`` over a memory tenant, on a manual clock;
    ``tools`` wraps the memory tenant (a fake of the outside system's misbehaviour);
    ``clock_of`` makes the service's clock of the manual one (the sleep moves the latter)."""
    store = await SqlStore.open(sqlite_url(home))
    clock = Clock(T0)
    tenant = MemoryTenant()
    job_service = JobService(
        store=store,
        keys=fixed_keys(),
        rules=rules,
        tools=tools(tenant, clock) if tools else tenant,
        clock=clock_of(clock) if clock_of else clock,
        directory=DIRECTORY,
        sleep=sleeper(clock),
        **service,
    )
    return job_service, tenant, clock


async def build_env(
    home: Path, tools: Wrap | None = None, rules: Rules | None = None, **service: Any
) -> Env:
    """A job service with the runbook executor and a recording chat (see memory_service)."""
    svc, tenant, clock = await memory_service(
        home,
        rules or Rules(approvers=frozenset({"u-bob", "u-carol", "u-dave"})),
        tools,
        bundle_dir=home / "bundles",
        **service,
    )
    store = svc.store
    gateway = ToolGateway(svc)
    executor = RunbookExecutor(gateway)
    svc.executor = executor
    chat = RecordingChat()
    svc.notifier.register(chat)
    return Env(store, svc, gateway, executor, tenant, chat, clock)


@asynccontextmanager
async def opened_env(tmp_path: Path, **options: Any) -> AsyncIterator[Env]:
    """``build_env(tmp_path, **options)``, settled and closed afterwards."""
    environment = await build_env(tmp_path, **options)
    yield environment
    await environment.settle()
    await environment.store.close()


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[Env]:
    async with opened_env(tmp_path) as environment:
        yield environment


@pytest.fixture
async def sim_env(tmp_path: Path) -> AsyncIterator[SimEnv]:
    """The job service over the strict simulated tenant (``simulated.py``)."""
    clock = ManualClock()
    async with SimulatedTenant(clock=clock, ca_interval=0.02, strict=True) as sim:
        service, tools = await simulated_service(
            tmp_path,
            sim,
            clock,
            sleep=advancing(clock),
            bundle_dir=tmp_path / "bundles",
            receipts_every=RECEIPTS_EVERY,
        )
        executor = RunbookExecutor(ToolGateway(service))
        service.executor = executor
        chat = RecordingChat()
        service.notifier.register(chat)
        env = SimEnv(service, executor, chat, clock, sim)
        yield env
        await env.settle()
        await tools.close()
        await service.store.close()
