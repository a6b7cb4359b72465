"""A sign-in begun on one replica completes on another (the callback reaches whichever the
load balancer picks), and a replayed callback is refused on every replica: begun sign-ins
live in the store, not in one process's memory."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from yarl import URL

from adapters.entra_signin import StepUpFlow, StoredPendingSignIns
from adapters.store import SqlStore, sqlite_url
from bot.job_commands import chat_ports
from bot.service import JobService
from engine import job as states
from engine.stepup import STEP_UP_REPLAYED
from tests.integration.stepup.conftest import BOB, CAROL, StepUpEnv
from tests.support.engine_sim import fixed_keys
from tests.support.fakes import MemoryTenant


@dataclass
class Replica:
    service: JobService
    flow: StepUpFlow


@pytest.fixture
async def replicas(stepup: StepUpEnv, tmp_path: Path) -> AsyncIterator[tuple[Replica, Replica]]:
    """Two replicas over one store file: ``stepup``'s service and a second one."""
    first = stepup.service
    store = await SqlStore.open(sqlite_url(tmp_path))  # the file ``stepup`` opened
    second = JobService(
        store=store,
        keys=fixed_keys(),
        rules=first.rules,
        tools=MemoryTenant(),
        clock=first.clock,
        directory=first.directory,
    )

    def flow(service: JobService) -> StepUpFlow:
        jobs = chat_ports(service).jobs
        pending = StoredPendingSignIns(service.store)
        return StepUpFlow(stepup.flow.config, jobs, stepup.browser, service.clock, pending=pending)

    yield Replica(first, flow(first)), Replica(second, flow(second))
    await store.close()


async def signed_in(env: StepUpEnv, url: str, oid: str) -> tuple[str, str]:
    """The callback's ``state`` and ``code`` after ``oid`` signs in at the tenant."""
    query = URL(await env.sign_in(url, oid)).query
    return query["state"], query["code"]


async def test_a_sign_in_begun_on_one_replica_completes_on_the_other(
    stepup: StepUpEnv, replicas: tuple[Replica, Replica]
) -> None:
    a, b = replicas
    job = await stepup.request()
    for who, oid in (("bob", BOB), ("carol", CAROL)):
        url = await a.flow.begin(job.job_id, job.plan.plan_hash, stepup.actor(who))
        state, code = await signed_in(stepup, url, oid)
        outcome = await b.flow.complete(state, code)
        assert outcome.ok, outcome
    after = await b.service.load(job.job_id)
    assert after.state == states.ACTIVE
    assert [d.step_up is not None for d in after.plan.decisions] == [True, True]


async def test_a_replayed_callback_is_refused_on_every_replica(
    stepup: StepUpEnv, replicas: tuple[Replica, Replica]
) -> None:
    a, b = replicas
    job = await stepup.request()
    url = await a.flow.begin(job.job_id, job.plan.plan_hash, stepup.actor("bob"))
    state, code = await signed_in(stepup, url, BOB)
    assert (await b.flow.complete(state, code)).ok
    before = await a.service.load(job.job_id)
    for replica in (a, b):
        again = await replica.flow.complete(state, code)
        assert (again.ok, again.reason) == (False, STEP_UP_REPLAYED)
    after = await a.service.load(job.job_id)
    assert after.plan.approvers() == before.plan.approvers() == [BOB]  # nothing changed
    assert [r["reason"] for r in after.refusals][-2:] == [STEP_UP_REPLAYED] * 2  # recorded
