"""Target limits by group against the simulated tenant: a member of an allowed group may be
elevated (the membership is read live before planning); anyone else is refused before
anyone is asked, and nothing is planned."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from engine.limits import TARGET_NOT_ALLOWED
from tests.integration.graph.support import BOB, DAVE, USER_ADMIN
from tests.integration.stepup.conftest import GraphEnv, graph_env

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
