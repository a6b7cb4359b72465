"""Whole role jobs whose principal is deleted mid-window, through the gateway and the rollback.

A deleted user keeps its role in deleted items and gets it back with a restore until the
grant's own schedule ends (docs/graph.md). The job must still end: ``closed`` once the
grant has lapsed (waiting for that within the rollback budget), or at once ``failed``
naming the dormant role when the grant outlives the budget. Before, the removal failed on
Graph's refusal until the budget was spent, and the job ended ``failed`` with an escalation
that said nothing of the deletion.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from adapters.graph import GraphTools
from adapters.graph.roles import PRINCIPAL_DELETED
from adapters.graph.simulated import ManualClock, SimulatedTenant
from bot.gateway_service import ToolGateway
from bot.service import JobService
from engine import catalog
from engine.job import CLOSED, FAILED, Job
from engine.lifecycle import Done
from engine.ports import ChatEvent
from engine.receipts import content_hash
from engine.timeutil import parse_iso
from engine.tools import ToolResult
from engine.verify import verify_bundle
from tests.integration.graph.conftest import simulated_service
from tests.integration.graph.support import DAVE, REQUESTS, USER_ADMIN, has, holders
from tests.integration.graph.test_gateway_boundary import active_job
from tests.support.engine_sim import trust_for
from tests.support.fakes import RecordingChat
from tests.support.waiting import settle

# What the verifier may say about a failed job's bundle (tests/integration/invariant).
FAILURE_CODES = {"BREAKGLASS_ROLLBACK_MISSING", "BREAKGLASS_VERIFICATION_MISSING"}


class Waits:
    """The service's sleep: passes in the clock's time (never the wall clock's), and runs
    ``then`` once, at the first wait after the tenant refused a removal."""

    def __init__(self, sim: SimulatedTenant, clock: ManualClock) -> None:
        self.sim, self.clock = sim, clock
        self.then: Callable[[], Any] | None = None

    async def __call__(self, seconds: float) -> None:
        if self.then is not None and refused_removals(self.sim):
            self.then, then = None, self.then
            then()
        self.clock.advance(max(seconds, 0.0))
        await asyncio.sleep(0)


@pytest.fixture
def waits(sim: SimulatedTenant, clock: ManualClock) -> Waits:
    return Waits(sim, clock)


class Answers:
    """What each tool answered, in order (a receipt carries only its hash)."""

    def __init__(self, tools: GraphTools) -> None:
        self.call, self.seen = tools.call, list[tuple[str, dict[str, Any]]]()

    async def __call__(self, tool: str, arguments: dict[str, Any]) -> ToolResult:
        result = await self.call(tool, arguments)
        self.seen.append((tool, dict(result.body)))
        return result

    def of(self, tool: str) -> list[dict[str, Any]]:
        return [body for name, body in self.seen if name == tool]


@pytest.fixture
async def wired(
    tmp_path: Path, sim: SimulatedTenant, clock: ManualClock, waits: Waits
) -> AsyncIterator[tuple[JobService, Answers]]:
    """A job service over ``sim`` whose tool answers are kept."""
    svc, graph = await simulated_service(tmp_path, sim, clock, sleep=waits)
    answers = Answers(graph)
    graph.call = answers  # type: ignore[method-assign]
    ToolGateway(svc)
    try:
        yield svc, answers
    finally:
        await asyncio.gather(*svc.tasks, return_exceptions=True)
        await graph.close()
        await svc.store.close()


@pytest.fixture
def service(wired: tuple[JobService, Answers]) -> JobService:
    return wired[0]


@pytest.fixture
def answers(wired: tuple[JobService, Answers]) -> Answers:
    return wired[1]


@pytest.fixture
def chat(service: JobService) -> RecordingChat:
    """The channel: what the service told it, in order."""
    recording = RecordingChat()
    service.notifier.register(recording)
    return recording


def told_deleted(chat: RecordingChat) -> list[ChatEvent]:
    """The announcements that the job's principal was deleted, each checked to come before
    the job's end."""
    kinds = chat.kinds()
    assert kinds.count("finish") == 1
    said = [e for e in chat.events if e.detail.get("event") == "principal_deleted"]
    assert all(chat.events.index(e) < kinds.index("finish") for e in said)
    return said


def refused_removals(sim: SimulatedTenant) -> int:
    posts = [e for e in sim.requests_log if e.method == "POST" and REQUESTS in e.path]
    return sum(1 for e in posts if e.status == 400)


async def deleted_mid_window(
    service: JobService, sim: SimulatedTenant, clock: ManualClock, minutes_in: int
) -> Job:
    """A 30-minute User Administrator job for Dave: granted and verified through the
    gateway; Dave deleted ``minutes_in`` minutes in; Done; the rollback run to its end."""
    token = await active_job(
        service, "entra-role", {"principal_id": DAVE, "role_definition_id": USER_ADMIN}
    )
    job = await service.load("job-boundary")
    gateway = service.gateway
    assert gateway is not None
    for step in ("action", "verify_action"):
        node = job.plan.payload["metadata"]["breakglass"][step]
        assert (await gateway.call(job.job_id, token, node["tool"], node["arguments"])).allowed
    clock.advance(timedelta(minutes=minutes_in))
    sim.delete_user(DAVE)
    assert (await service.command(job.job_id, Done(service.actor("console:alice")))).ok
    await settle(pending=lambda: service.tasks)
    return await service.load(job.job_id)


async def receipts(service: JobService, job: Job, tool: str) -> list[dict[str, Any]]:
    return [
        r.envelope["payload"]
        for r in await service.store.chain(job.job_id)
        if r.envelope and r.envelope["payload"].get("tool_name") == tool
    ]


async def statuses(service: JobService, job: Job, tool: str) -> list[str]:
    return [r["result_status"] for r in await receipts(service, job, tool)]


async def receipted(
    service: JobService, job: Job, answers: Answers, tool: str
) -> list[dict[str, Any]]:
    """The tool's answers, each checked against the hash its receipt carries."""
    bodies = answers.of(tool)
    hashes = [r["result_hash_b64u"] for r in await receipts(service, job, tool)]
    assert hashes == [content_hash(body) for body in bodies]
    return bodies


def report(service: JobService, bundle: dict[str, Any]) -> Any:
    return verify_bundle(bundle, trust_for(service.keys))


async def test_deleted_near_the_window_s_end_the_job_waits_for_the_grant_to_lapse_and_closes(
    service: JobService,
    sim: SimulatedTenant,
    clock: ManualClock,
    answers: Answers,
    chat: RecordingChat,
) -> None:
    job = await deleted_mid_window(service, sim, clock, minutes_in=28)

    assert (job.state, job.still_privileged, job.rollback_verified) == (CLOSED, (), True)
    assert report(service, (await service.bundle(job))[0]).valid
    # The receipts say what happened: no removal could run while a restore would have
    # brought the role back; once the grant had lapsed there was nothing left to remove.
    first, *middle, last = await receipted(service, job, answers, catalog.REMOVE_ROLE)
    assert has(first, error=PRINCIPAL_DELETED, lapsed=False, removed=False)
    # The channel was told why the rollback waits, and until when a restore brings the role
    # back: once, though the rollback waited and tried again several times.
    assert middle
    (told,) = told_deleted(chat)
    assert parse_iso(told.detail["not_before"]) == parse_iso(first["lapses_at"])
    assert told.detail["contained"] == []
    assert has(last, principal_deleted=True, lapsed=True, removed=False, verified=True)
    assert parse_iso(last["lapses_at"]) <= clock.now()
    (revoked,) = await receipted(service, job, answers, catalog.REVOKE_SESSIONS)
    assert has(revoked, revoked=False, principal_deleted=True)
    assert clock.now() - parse_iso(job.ended_at) < service.rules.rollback_budget
    sim.restore_user(DAVE)
    assert holders(sim, USER_ADMIN) == set()  # nothing comes back with him


async def test_deleted_early_the_job_fails_at_once_naming_the_dormant_role(
    service: JobService,
    sim: SimulatedTenant,
    clock: ManualClock,
    answers: Answers,
    chat: RecordingChat,
) -> None:
    job = await deleted_mid_window(service, sim, clock, minutes_in=6)

    assert job.state == FAILED
    assert told_deleted(chat) == []  # no wait: the failed end names the dormant role
    (still,) = job.still_privileged
    assert still.startswith(f"principal {DAVE} holds role {USER_ADMIN}")
    assert "deleted during the window" in still
    assert "restoring it from deleted items before" in still
    # At once: a refused removal or two, not retries until the rollback's budget is spent.
    assert clock.now() - parse_iso(job.ended_at) < service.rules.rollback_budget
    assert refused_removals(sim) <= 2
    removals = await receipted(service, job, answers, catalog.REMOVE_ROLE)
    assert len(removals) <= 2
    assert all(has(r, error=PRINCIPAL_DELETED, lapsed=False) for r in removals)
    assert removals[0]["lapses_at"] in still
    *_, read = await receipted(service, job, answers, catalog.READ_ROLE)
    assert has(read, present=False, verified=False, principal_deleted=True)
    verdict = report(service, (await service.bundle(job))[0])
    assert set(verdict.reason_codes) <= FAILURE_CODES, verdict.reasons
    assert await statuses(service, job, catalog.REVOKE_SESSIONS) == ["success"]
    sim.restore_user(DAVE)
    assert holders(sim, USER_ADMIN) == {DAVE}  # what the escalation names is real
    assert len(await service.sweep()) == 1  # and the reconciliation sweep removes it
    assert holders(sim, USER_ADMIN) == set()


async def test_restored_while_the_job_waits_the_role_is_removed_and_the_job_closes(
    service: JobService,
    sim: SimulatedTenant,
    clock: ManualClock,
    waits: Waits,
    answers: Answers,
    chat: RecordingChat,
) -> None:
    waits.then = lambda: sim.restore_user(DAVE)  # at the rollback's first wait

    job = await deleted_mid_window(service, sim, clock, minutes_in=28)

    assert (job.state, job.still_privileged, job.rollback_verified) == (CLOSED, (), True)
    assert len(told_deleted(chat)) == 1
    assert report(service, (await service.bundle(job))[0]).valid
    first, last = await receipted(service, job, answers, catalog.REMOVE_ROLE)
    assert has(first, error=PRINCIPAL_DELETED)
    assert has(last, removed=True, already_gone=False, verified=True)  # back, and removed
    assert "principal_deleted" not in last
    assert [r["userId"] for r in sim.directory.revocations] == [DAVE]  # he is back: revoked
    assert holders(sim, USER_ADMIN) == set()
