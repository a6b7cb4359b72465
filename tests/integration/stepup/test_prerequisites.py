"""A template requiring a PIM request id: checked live against the simulated tenant before
anything is planned. Missing, unknown, not approved (pending, denied) or mismatched ids are
refused before anyone is asked; a good one proceeds and is recorded in the job and the WPC."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from engine.lifecycle.gatekeeping import PREREQUISITE_MISSING
from engine.outcome import Outcome
from engine.prerequisites import PREREQUISITE_INVALID
from tests.integration.graph.support import BOB, DAVE, USER_ADMIN
from tests.integration.stepup.conftest import GraphEnv, graph_env

HELPDESK_ADMIN = "729827e3-9c14-49f7-bb1b-9608f156bbb8"


class Env(GraphEnv):
    async def request(self, ticket: str, principal: str = DAVE, job_id: str = "job-pim") -> Outcome:
        return await super().request(ticket, principal, job_id)


PIM_TEMPLATE = {
    "roles": [USER_ADMIN],
    "principals": ["*"],
    "step_up": "off",
    "prerequisite": "pim_request",
}


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[Env]:
    async with graph_env(tmp_path, PIM_TEMPLATE) as shared:
        yield Env(shared.service, shared.tenant)


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
