"""Target limits by group against the simulated tenant: a member of an allowed group may be
elevated (the membership is read live before planning); anyone else is refused before
anyone is asked, and nothing is planned."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from adapters.graph.simulated.faults import Fault
from bot.service import JobService
from engine.job import PENDING
from engine.lifecycle import Approve
from engine.limits import TARGET_NOT_ALLOWED
from engine.outcome import Outcome
from tests.integration.graph.support import (
    BOB,
    DAVE,
    EXCLUSION_GROUP,
    MFA_POLICY,
    TENANT,
    USER_ADMIN,
)
from tests.integration.stepup.conftest import CAROL, GraphEnv, graph_env
from tests.support.engine_sim import ca_exclusion_request

RESPONDERS = "92834d79-48cc-5a9e-9744-15121128f4a9"  # "Incident responders" in the seed


GROUP_TEMPLATE = {"roles": [USER_ADMIN], "principal_groups": [RESPONDERS], "step_up": "off"}


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[GraphEnv]:
    async with graph_env(tmp_path, GROUP_TEMPLATE) as shared:
        yield shared


async def test_a_member_of_the_allowed_group_may_be_elevated(env: GraphEnv) -> None:
    env.tenant.add_member(RESPONDERS, DAVE)
    outcome = await env.request("T", DAVE, "j-1")
    assert outcome.ok, outcome
    job = await env.service.load("j-1")
    admitted = job.plan.payload["metadata"]["breakglass"]["access"]["limits"]["admitted"]
    assert admitted["principal_id"] == f"group:{RESPONDERS}"


async def test_someone_outside_the_group_is_refused_before_anyone_is_asked(env: GraphEnv) -> None:
    env.tenant.add_member(RESPONDERS, DAVE)
    outcome = await env.request("T", BOB, "j-2")
    assert (outcome.ok, outcome.reason) == (False, TARGET_NOT_ALLOWED)
    assert "members of" in outcome.detail
    assert await env.service.open_jobs() == []


CA_TEMPLATE = {"ca_policies": [MFA_POLICY], "groups": [EXCLUSION_GROUP], "step_up": "off"}


async def ca_request(service: JobService) -> Outcome:
    """Alice asks that the exclusion group skip the MFA policy (job ``j-ca``)."""
    alice, why = service.actor("console:alice"), "INC-9 MFA provider down"
    asked = ca_exclusion_request(
        "j-ca", alice, TENANT, MFA_POLICY, EXCLUSION_GROUP, justification=why, ticket="INC-9"
    )
    return await service.request(asked)


async def ca_requested(service: JobService) -> str:
    """Alice's request (``ca_request``), admitted: its plan."""
    assert (await ca_request(service)).ok
    return (await service.load("j-ca")).plan.plan_hash


async def test_a_member_of_the_group_a_ca_exclusion_excludes_may_not_approve_it(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Bob joined the group the exclusion would let through after the request: his approval
    is refused (read live from the tenant), recorded on the job and logged; the job waits
    for others."""
    async with graph_env(tmp_path, CA_TEMPLATE, "ca-exclusion") as env:
        service = env.service
        plan = await ca_requested(service)
        env.tenant.add_member(EXCLUSION_GROUP, BOB)
        tenant_before = env.tenant.state()
        caplog.set_level(logging.INFO, logger="breakglass")
        out = await service.command("j-ca", Approve(service.actor("console:bob"), plan))
        assert (out.ok, out.reason) == (False, "EXCLUDED_MEMBER_APPROVAL")
        job = await service.load("j-ca")
        assert (job.state, list(job.plan.approvers())) == (PENDING, [])
        assert job.refusals[-1]["reason"] == "EXCLUDED_MEMBER_APPROVAL"
        assert "refused Approve on j-ca: EXCLUDED_MEMBER_APPROVAL" in caplog.messages
        assert env.tenant.state() == tenant_before
        # Carol is not a member: her approval counts.
        assert (await service.command("j-ca", Approve(service.actor("console:carol"), plan))).ok
        assert list((await service.load("j-ca")).plan.approvers()) == [CAROL]


async def test_an_approvers_membership_the_tenant_cannot_tell_refuses_the_approval(
    tmp_path: Path,
) -> None:
    async with graph_env(tmp_path, CA_TEMPLATE, "ca-exclusion") as env:
        service = env.service
        plan = await ca_requested(service)
        env.tenant.add_fault(Fault("unavailable", path="/checkMemberGroups", times=50))
        out = await service.command("j-ca", Approve(service.actor("console:bob"), plan))
        assert (out.ok, out.reason) == (False, "TENANT_UNAVAILABLE")
        job = await service.load("j-ca")
        assert (job.state, list(job.plan.approvers())) == (PENDING, [])
        assert job.refusals[-1]["reason"] == "TENANT_UNAVAILABLE"


async def test_a_ca_exclusion_only_members_could_approve_is_refused_before_anyone_is_asked(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Bob is in the group and Carol alone may not approve: the request is refused at once
    (it used to wait, asking Bob, whose every click was refused, until it expired)."""
    async with graph_env(tmp_path, CA_TEMPLATE, "ca-exclusion") as env:
        env.tenant.add_member(EXCLUSION_GROUP, BOB)
        tenant_before = env.tenant.state()
        caplog.set_level(logging.INFO, logger="breakglass")
        out = await ca_request(env.service)
        assert (out.ok, out.reason) == (False, "TOO_FEW_APPROVERS")
        assert "member of the group it excludes" in out.detail
        assert "refused request by console:alice: TOO_FEW_APPROVERS" in caplog.messages
        assert await env.service.open_jobs() == []
        assert env.tenant.state() == tenant_before


async def test_a_ca_exclusion_whose_approvers_cannot_be_read_is_refused(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async with graph_env(tmp_path, CA_TEMPLATE, "ca-exclusion") as env:
        env.tenant.add_fault(Fault("unavailable", path="/checkMemberGroups", times=50))
        tenant_before = env.tenant.state()
        caplog.set_level(logging.INFO, logger="breakglass")
        out = await ca_request(env.service)
        assert (out.ok, out.reason) == (False, "TENANT_UNAVAILABLE")
        assert "approvers are members" in out.detail
        assert "refused request by console:alice: TENANT_UNAVAILABLE" in caplog.messages
        assert await env.service.open_jobs() == []
        assert env.tenant.state() == tenant_before
