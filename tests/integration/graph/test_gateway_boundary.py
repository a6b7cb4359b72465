"""The gateway is the boundary: a call outside the WPC is refused and receipted, and nothing
reaches the tenant, even though the (simulated) tenant would accept it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from adapters.graph.simulated import ManualClock, SimulatedTenant
from bot.app import SIMULATED_SEED, seed_people
from bot.gateway_service import ToolGateway
from bot.service import JobService
from engine import catalog
from engine.cst import TokenKind
from engine.job import ROLLING_BACK
from engine.lifecycle import Approve, Request
from tests.integration.graph.conftest import simulated_service

IDS = seed_people()
ROLE = SIMULATED_SEED["roles"][0]["id"]
OTHER_ROLE = SIMULATED_SEED["roles"][2]["id"]
GROUP = SIMULATED_SEED["groups"][0]["id"]
POLICIES = [p["id"] for p in SIMULATED_SEED["conditionalAccessPolicies"]]


@pytest.fixture
async def service(
    tmp_path: Path, sim: SimulatedTenant, clock: ManualClock
) -> AsyncIterator[JobService]:
    svc, tools = await simulated_service(tmp_path, sim, clock)
    ToolGateway(svc)
    yield svc
    await asyncio.gather(*svc.tasks, return_exceptions=True)  # the rollback the kill started
    await tools.close()
    await svc.store.close()


async def active_job(svc: JobService, template: str, targets: dict[str, str]) -> str:
    request = Request(
        job_id="job-boundary",
        actor=svc.actor("console:alice"),
        template=template,
        targets={"tenant_id": SIMULATED_SEED["tenantId"], **targets},
        minutes=30,
        justification="boundary test",
        ticket="T-1",
    )
    plan = (await svc.request(request)).result["plan_hash"]
    for who in ("bob", "carol"):
        assert (await svc.command("job-boundary", Approve(svc.actor(f"console:{who}"), plan))).ok
    return svc.token_for(await svc.load("job-boundary"), TokenKind.AGENT)


def planned(job: Any) -> dict[str, Any]:
    return dict(job.plan.payload["metadata"]["breakglass"]["action"]["arguments"])


@pytest.mark.parametrize(
    ("change", "why"),
    [({"principal_id": IDS["dave"]}, "principal"), ({"role_definition_id": OTHER_ROLE}, "role")],
)
async def test_role_write_outside_the_wpc_never_reaches_the_tenant(
    service: JobService, sim: SimulatedTenant, change: dict[str, str], why: str
) -> None:
    token = await active_job(
        service, "entra-role", {"principal_id": IDS["alice"], "role_definition_id": ROLE}
    )
    args = planned(await service.load("job-boundary")) | change
    before = len(sim.requests_log)
    assert service.gateway is not None
    outcome = await service.gateway.call("job-boundary", token, catalog.WRITE_ROLE, args)
    assert not outcome.allowed
    assert outcome.reason == "TARGET_OUT_OF_SCOPE"
    assert sim.requests_log[before:] == []  # nothing reached Graph
    assert [a for a in sim.active_grants() if a.origin == "pim"] == []
    job = await service.load("job-boundary")
    assert job.state == ROLLING_BACK  # unexpected_target_detected killed the job
    assert job.end_reason == "unexpected_target_detected"
    chain = await service.store.chain("job-boundary")
    refused = [
        r.envelope for r in chain if r.envelope and r.envelope["envelope_type"] == "tool_receipt"
    ]
    assert refused[0]["payload"]["result_status"] == "error"


async def test_ca_exclusion_of_another_group_or_policy_never_reaches_the_tenant(
    service: JobService, sim: SimulatedTenant
) -> None:
    token = await active_job(service, "ca-exclusion", {"policy_id": POLICIES[0], "group_id": GROUP})
    args = planned(await service.load("job-boundary")) | {"policy_id": POLICIES[1]}
    before = len(sim.requests_log)
    assert service.gateway is not None
    outcome = await service.gateway.call("job-boundary", token, catalog.EXCLUDE_GROUP, args)
    assert (outcome.allowed, outcome.reason) == (False, "TARGET_OUT_OF_SCOPE")
    assert sim.requests_log[before:] == []
