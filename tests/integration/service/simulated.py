"""The job service over the simulated tenant, as the end-to-end service tests share it: the
real Graph adapter against the strict ``SimulatedTenant`` on loopback, on a manual clock
that the service's injected sleep advances (nothing here waits on wall-clock time); Alice's
request, its two approvals, and the tool receipts of the job. The ``sim_env`` fixture that
builds it is in this folder's ``conftest.py``.

Apart from the tests because several files use it: ``test_every_job_ends.py``,
``test_every_job_ends_despite_failures.py`` and ``test_activity.py``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from adapters.graph.simulated import ManualClock, SimulatedTenant
from bot.app import SIMULATED_SEED, seed_people
from bot.executor import RunbookExecutor
from bot.service import JobService
from engine.job import Job
from engine.lifecycle import Approve, Request
from engine.receipts import TOOL_RECEIPT
from engine.tools import ToolResult
from tests.support.fakes import RecordingChat

IDS = seed_people()
TENANT = SIMULATED_SEED["tenantId"]
ROLE = SIMULATED_SEED["roles"][0]["id"]
GROUP = SIMULATED_SEED["groups"][0]["id"]
RECEIPTS_EVERY = timedelta(seconds=10)


@dataclass
class SimEnv:
    service: JobService
    executor: RunbookExecutor
    chat: RecordingChat
    clock: ManualClock
    sim: SimulatedTenant

    async def settle(self) -> None:
        await self.executor.wait_idle()
        await self.service.tasks.settle()


def advancing(clock: ManualClock) -> Callable[[float], Awaitable[None]]:
    async def sleep(seconds: float) -> None:
        clock.advance(max(seconds, 0.0))

    return sleep


def alices_request(env: SimEnv, template: str, targets: dict[str, str]) -> Request:
    """Alice's request as the console form sends it."""
    return Request(
        job_id="job-input",
        actor=env.service.actor("console:alice"),
        template=template,
        targets={"tenant_id": TENANT, **targets},
        minutes=30,
        justification="INC-7 as typed in the form",
        ticket="INC-7",
        channel={"platform": "console", "conversation": "incident-7"},
    )


async def approved_job(env: SimEnv, template: str, targets: dict[str, str]) -> Job:
    """Request, two approvals, and whatever follows until the service is idle."""
    s = env.service
    out = await s.request(alices_request(env, template, targets))
    assert out.ok, out
    for who in ("bob", "carol"):
        approval = Approve(s.actor(f"console:{who}"), out.result["plan_hash"])
        assert (await s.command("job-input", approval)).ok
    await env.settle()
    return await s.load("job-input")


async def tool_receipts(env: SimEnv) -> list[dict[str, Any]]:
    return [
        dict(r.envelope["payload"])
        for r in await env.service.store.chain("job-input")
        if r.envelope is not None and r.envelope["envelope_type"] == TOOL_RECEIPT
    ]


@dataclass
class RealTools:
    """The real adapter; a subclass changes one tool's behaviour."""

    tools: Any

    async def call(self, tool_name: str, arguments: Mapping[str, Any]) -> ToolResult:
        result: ToolResult = await self.tools.call(tool_name, arguments)
        return result

    async def find_marked_grants(self) -> list[Any]:
        found: list[Any] = await self.tools.find_marked_grants()
        return found
