"""Target limits by group against the simulated tenant: a member of an allowed group may be
elevated (the membership is read live before planning); anyone else is refused before
anyone is asked, and nothing is planned."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from adapters.graph import GraphTools
from adapters.graph.simulated import ManualClock, SimulatedTenant
from adapters.store import SqlStore, sqlite_url
from bot.service import JobService
from engine.access import access_from_config
from engine.lifecycle import Rules
from engine.limits import TARGET_NOT_ALLOWED
from tests.integration.graph.conftest import config_for
from tests.integration.graph.support import BOB, DAVE, USER_ADMIN, MemorySnapshots
from tests.integration.stepup.conftest import CAROL, DIRECTORY, role_request
from tests.support.engine_sim import T0, fixed_keys

RESPONDERS = "92834d79-48cc-5a9e-9744-15121128f4a9"  # "Incident responders" in the seed


@dataclass
class Env:
    service: JobService
    tenant: SimulatedTenant


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[Env]:
    clock = ManualClock(T0)
    limits = {"roles": [USER_ADMIN], "principal_groups": [RESPONDERS], "step_up": "off"}
    access = access_from_config({"entra-role": limits}, {})
    store = await SqlStore.open(sqlite_url(tmp_path))
    async with SimulatedTenant(clock=clock) as tenant:
        tools = GraphTools(config_for(tenant), MemorySnapshots(), clock=clock.now)
        service = JobService(
            store=store,
            keys=fixed_keys(),
            rules=Rules(approvers=frozenset({BOB, CAROL}), access=access),
            tools=tools,
            clock=clock.now,
            directory=DIRECTORY,
        )
        yield Env(service, tenant)
        await tools.close()
    await store.close()


async def test_a_member_of_the_allowed_group_may_be_elevated(env: Env) -> None:
    env.tenant.add_member(RESPONDERS, DAVE)
    outcome = await env.service.request(role_request(env.service, env.tenant, DAVE, "T", "j-1"))
    assert outcome.ok, outcome
    job = await env.service.load("j-1")
    admitted = job.plan.payload["metadata"]["breakglass"]["access"]["limits"]["admitted"]
    assert admitted["principal_id"] == f"group:{RESPONDERS}"


async def test_someone_outside_the_group_is_refused_before_anyone_is_asked(env: Env) -> None:
    env.tenant.add_member(RESPONDERS, DAVE)
    outcome = await env.service.request(role_request(env.service, env.tenant, BOB, "T", "j-2"))
    assert (outcome.ok, outcome.reason) == (False, TARGET_NOT_ALLOWED)
    assert "members of" in outcome.detail
    assert await env.service.open_jobs() == []
