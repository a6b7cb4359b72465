"""A template requiring a PIM request id: checked live against the simulated tenant before
anything is planned. Missing, unknown, not approved (pending, denied) or mismatched ids are
refused before anyone is asked; a good one proceeds and is recorded in the job and the WPC."""

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
from engine.lifecycle.gatekeeping import PREREQUISITE_MISSING
from engine.outcome import Outcome
from engine.prerequisites import PREREQUISITE_INVALID
from tests.integration.graph.conftest import config_for
from tests.integration.graph.support import ALICE, BOB, DAVE, USER_ADMIN, MemorySnapshots
from tests.integration.stepup.conftest import DIRECTORY, role_request
from tests.support.engine_sim import T0, fixed_keys

HELPDESK_ADMIN = "729827e3-9c14-49f7-bb1b-9608f156bbb8"


@dataclass
class Env:
    service: JobService
    tenant: SimulatedTenant

    async def request(self, ticket: str, principal: str = DAVE, job_id: str = "job-pim") -> Outcome:
        command = role_request(self.service, self.tenant, principal, ticket, job_id)
        return await self.service.request(command)


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[Env]:
    clock = ManualClock(T0)
    access = access_from_config(
        {
            "entra-role": {
                "roles": [USER_ADMIN],
                "principals": ["*"],
                "step_up": "off",
                "prerequisite": "pim_request",
            }
        },
        {},
    )
    store = await SqlStore.open(sqlite_url(tmp_path))
    async with SimulatedTenant(clock=clock) as tenant:
        tools = GraphTools(config_for(tenant), MemorySnapshots(), clock=clock.now)
        service = JobService(
            store=store,
            keys=fixed_keys(),
            rules=Rules(approvers=frozenset({BOB, ALICE}), access=access),
            tools=tools,
            clock=clock.now,
            directory=DIRECTORY,
        )
        yield Env(service, tenant)
        await tools.close()
    await store.close()


async def assert_refused(env: Env, outcome: Outcome, reason: str, *words: str) -> None:
    assert not outcome.ok
    assert outcome.reason == reason
    assert all(w in outcome.detail for w in words), outcome.detail
    assert await env.service.open_jobs() == []  # nothing planned, nobody asked


async def test_a_provisioned_request_for_the_same_principal_and_role_proceeds(env: Env) -> None:
    pim_id = env.tenant.file_pim_request(DAVE, USER_ADMIN, "Provisioned")
    outcome = await env.request(pim_id)
    assert outcome.ok, outcome
    job = await env.service.load("job-pim")
    assert job.external_refs["prerequisite"] == pim_id
    recorded = job.plan.payload["metadata"]["breakglass"]["access"]["prerequisite"]
    assert recorded == {
        "kind": "pim_request",
        "id": pim_id,
        "checked": {
            "principal_id": DAVE,
            "role_definition_id": USER_ADMIN,
            "status": "Provisioned",
        },
    }
    bundle, _ = await env.service.bundle(job)
    assert pim_id in str(bundle["payload"]["metadata"])  # the WPC travels in the bundle


async def test_an_approved_request_proceeds(env: Env) -> None:
    assert (await env.request(env.tenant.file_pim_request(DAVE, USER_ADMIN, "Approved"))).ok


async def test_a_missing_id_is_refused(env: Env) -> None:
    await assert_refused(env, await env.request(" "), PREREQUISITE_MISSING, "PIM request id")


async def test_a_ticket_that_is_not_a_pim_request_id_is_refused(env: Env) -> None:
    await assert_refused(env, await env.request("INC-9"), PREREQUISITE_INVALID, "no PIM request")


async def test_an_unknown_id_is_refused(env: Env) -> None:
    unknown = "00000000-0000-0000-0000-00000000beef"
    await assert_refused(env, await env.request(unknown), PREREQUISITE_INVALID, "no PIM request")


@pytest.mark.parametrize("status", ["Denied", "PendingApproval", "Canceled"])
async def test_a_request_not_approved_is_refused(env: Env, status: str) -> None:
    pim_id = env.tenant.file_pim_request(DAVE, USER_ADMIN, status)
    await assert_refused(env, await env.request(pim_id), PREREQUISITE_INVALID, status)


async def test_a_request_for_another_principal_or_role_is_refused(env: Env) -> None:
    for_bob = env.tenant.file_pim_request(BOB, USER_ADMIN, "Provisioned")
    await assert_refused(env, await env.request(for_bob), PREREQUISITE_INVALID, "another principal")
    other_role = env.tenant.file_pim_request(DAVE, HELPDESK_ADMIN, "Provisioned")
    await assert_refused(env, await env.request(other_role), PREREQUISITE_INVALID, "another role")
