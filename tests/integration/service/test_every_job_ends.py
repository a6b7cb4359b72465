"""Every approved job ends: ordinary bad input that the tenant refuses (a UPN where an object
id belongs, a policy id that is no GUID) ends the window early, with the write's error
receipted, a signed terminal record, a bundle that verifies and a bounded number of posts. A
Kill ends a job with nothing left: in PIM's first five minutes, of two jobs for one role at
once, or before the write reaches the tenant. A grant the tenant already holds is refused
before anyone is asked. What is around the job failing (chat, shutdown, agent, rollback
runner, another replica's keys): ``test_every_job_ends_despite_failures.py``.

Runs the real Graph adapter against the simulated tenant on loopback, on a manual clock
that the service's injected sleep advances (nothing here waits on wall-clock time)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import pytest

from bot.app import SIMULATED_SEED
from engine import catalog, chain
from engine.job import ACTIVE, CLOSED, KILLED, Job
from engine.lifecycle import END_WRITE_FAILED, Approve, Kill
from engine.receipts import content_hash
from engine.timeutil import parse_iso
from engine.tools import ToolResult
from engine.verify import verify_bundle
from tests.integration.service.simulated import (
    GROUP,
    IDS,
    ROLE,
    RealTools,
    SimEnv,
    alices_request,
    approved_job,
    tool_receipts,
)
from tests.support.engine_sim import trust_for


async def assert_ended_by_the_facts(env: SimEnv, job: Job, write_tool: str) -> None:
    """Closed (nothing was ever sent), the write's error receipted, a terminal record, a
    bundle that verifies, every chain record posted, and in few posts."""
    assert job.state == CLOSED, job
    assert job.end_reason == END_WRITE_FAILED
    assert job.rollback_verified is True
    assert job.still_privileged == ()
    (write,) = [r for r in await tool_receipts(env) if r["tool_name"] == write_tool]
    assert write["result_status"] == "error"
    records = await env.service.store.chain("job-input")
    assert records[-1].event["event_type"] == chain.RUN_END
    bundle, _ = await env.service.bundle(job)
    report = verify_bundle(bundle, trust_for(env.service.keys))
    assert report.valid, report.reasons
    posts = [e for e in env.chat.events if e.kind == "receipts"]
    assert {r.seq for e in posts for r in e.records} == {r.seq for r in records}
    assert len(posts) < len([r for r in records if r.seq > 0])  # receipts went out together
    assert "finish" in env.chat.kinds()


async def test_a_upn_as_the_principal_ends_the_job_with_the_write_error_receipted(
    sim_env: SimEnv,
) -> None:
    upn = "dave@breakglass-sim.onmicrosoft.com"
    job = await approved_job(
        sim_env, "entra-role", {"principal_id": upn, "role_definition_id": ROLE}
    )
    await assert_ended_by_the_facts(sim_env, job, catalog.WRITE_ROLE)
    (write,) = [r for r in await tool_receipts(sim_env) if r["tool_name"] == catalog.WRITE_ROLE]
    refused = {
        "error": "INVALID_ARGUMENT",
        "message": "argument principal_id must be a GUID",
        "sent": False,
    }
    assert write["result_hash_b64u"] == content_hash(refused)


async def test_b_a_ca_exclusion_with_a_wrong_policy_id_ends_the_same_way(
    sim_env: SimEnv,
) -> None:
    job = await approved_job(
        sim_env, "ca-exclusion", {"policy_id": "not-a-guid", "group_id": GROUP}
    )
    await assert_ended_by_the_facts(sim_env, job, catalog.EXCLUDE_GROUP)


async def test_an_early_kill_contains_announces_and_removes_when_pim_allows(
    sim_env: SimEnv,
) -> None:
    s = sim_env.service
    job = await approved_job(
        sim_env, "entra-role", {"principal_id": IDS["dave"], "role_definition_id": ROLE}
    )
    assert (job.state, job.write_done, job.verified_after_write) == (ACTIVE, True, True)
    assert (await s.command("job-input", Kill(s.actor("console:erin")))).ok
    await sim_env.settle()
    job = await s.load("job-input")
    assert job.state == KILLED, job
    assert job.rollback_verified is True
    (delayed,) = [e for e in sim_env.chat.events if e.detail.get("event") == "removal_delayed"]
    assert delayed.detail["contained"] == [catalog.REVOKE_SESSIONS]
    not_before = parse_iso(delayed.detail["not_before"])
    assert sim_env.clock.now() >= not_before  # removed only once PIM allowed it
    calls = [(r["tool_name"], r["result_status"]) for r in await tool_receipts(sim_env)]
    revoked = calls.index((catalog.REVOKE_SESSIONS, "success"))
    removed = calls.index((catalog.REMOVE_ROLE, "success"))
    assert calls.index((catalog.REMOVE_ROLE, "error")) < revoked < removed
    bundle, _ = await s.bundle(job)
    report = verify_bundle(bundle, trust_for(s.keys))
    assert report.valid, report.reasons


STANDING = SIMULATED_SEED["roleAssignments"][0]  # erin holds Global Administrator, standing
POLICY = SIMULATED_SEED["conditionalAccessPolicies"][0]
EXCLUDED = POLICY["conditions"]["users"]["excludeGroups"][0]  # the emergency-access group


@pytest.mark.parametrize(
    ("template", "targets"),
    [
        (
            "entra-role",
            {
                "principal_id": STANDING["principalId"],
                "role_definition_id": STANDING["roleDefinitionId"],
            },
        ),
        ("ca-exclusion", {"policy_id": POLICY["id"], "group_id": EXCLUDED}),
    ],
)
async def test_a_grant_the_tenant_already_holds_is_refused_before_anyone_is_asked(
    sim_env: SimEnv, template: str, targets: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    """Approved, its write would fail (or do nothing), and its end would report the standing
    grant as left behind and revoke its holder's sessions."""
    caplog.set_level(logging.INFO, "breakglass.service")
    s = sim_env.service
    tenant_before = sim_env.sim.state()
    out = await s.request(alices_request(sim_env, template, targets))
    assert (out.ok, out.reason) == (False, "ALREADY_GRANTED")
    assert await s.store.list_jobs() == []
    assert sim_env.chat.events == []
    assert sim_env.sim.state() == tenant_before
    assert "refused request by console:alice: ALREADY_GRANTED" in caplog.messages


async def test_two_early_kills_of_one_role_for_two_people_both_end_verified(
    sim_env: SimEnv, caplog: pytest.LogCaptureFixture
) -> None:
    # Two responders at once, each given User Administrator by a job of their own: each
    # job's baseline holds the other's grant, which goes while it runs. Neither is drift.
    s = sim_env.service
    role = SIMULATED_SEED["roles"][2]["id"]
    jobs = {"job-dave": IDS["dave"], "job-alice": IDS["alice"]}
    for job_id, principal in jobs.items():
        request = alices_request(sim_env, "entra-role", {"principal_id": principal})
        request = replace(request, job_id=job_id)
        request.targets["role_definition_id"] = role
        out = await s.request(request)
        assert out.ok, out
        for who in ("bob", "carol"):
            approval = Approve(s.actor(f"console:{who}"), out.result["plan_hash"])
            assert (await s.command(job_id, approval)).ok
        await sim_env.settle()
    for job_id in jobs:
        assert (await s.command(job_id, Kill(s.actor("console:erin")))).ok
    await sim_env.settle()

    for job_id in jobs:
        job = await s.load(job_id)
        assert (job.state, job.rollback_verified, job.still_privileged) == (KILLED, True, ())
        bundle, _ = await s.bundle(job)
        report = verify_bundle(bundle, trust_for(s.keys))
        assert report.valid, report.reasons
    left = [g for g in sim_env.sim.active_grants() if g.role_id == role]
    assert not [g for g in left if g.principal_id in jobs.values()]
    assert not [r for r in caplog.records if "ESCALATION" in r.getMessage()]


@dataclass
class HeldWrite(RealTools):
    """The planned CA write waits before its first request until the Kill cancels it: the
    Kill that lands between the last approval and the write reaching the tenant (a
    black-box run: the job ended `failed`, escalating an exclusion that had never been
    made, while the verifier called its rollback verified)."""

    entered: asyncio.Event = field(default_factory=asyncio.Event)

    async def call(self, tool_name: str, arguments: Mapping[str, Any]) -> ToolResult:
        if tool_name == catalog.EXCLUDE_GROUP:
            self.entered.set()
            await asyncio.Event().wait()  # cancelled by the Kill's settle
        return await super().call(tool_name, arguments)


async def test_a_kill_before_the_ca_write_reaches_the_tenant_ends_killed_with_nothing_left(
    sim_env: SimEnv, caplog: pytest.LogCaptureFixture
) -> None:
    s = sim_env.service
    s.tools = held = HeldWrite(s.tools)
    policy = POLICY["id"]
    out = await s.request(
        alices_request(sim_env, "ca-exclusion", {"policy_id": policy, "group_id": GROUP})
    )
    assert out.ok, out
    for who in ("bob", "carol"):
        approval = Approve(s.actor(f"console:{who}"), out.result["plan_hash"])
        assert (await s.command("job-input", approval)).ok
    await asyncio.wait_for(held.entered.wait(), timeout=60)  # the write is on its way
    killed_at = sim_env.clock.now()
    assert (await s.command("job-input", Kill(s.actor("console:erin")))).ok
    await sim_env.settle()
    # No write to wait for: the rollback does not sit out the replication settle time.
    assert sim_env.clock.now() - killed_at < s.rules.replication_settle / 2

    job = await s.load("job-input")
    assert (job.state, job.rollback_verified, job.still_privileged) == (KILLED, True, ())
    assert not [r for r in caplog.records if "ESCALATION" in r.getMessage()]
    patched = [e for e in sim_env.sim.requests_log if e.method == "PATCH"]
    assert patched == []  # the tenant was never changed, and nothing was "restored"
    assert (
        GROUP not in sim_env.sim.directory.policies[policy]["conditions"]["users"]["excludeGroups"]
    )
    calls = [(r["tool_name"], r["result_status"]) for r in await tool_receipts(sim_env)]
    assert calls[:3] == [
        (catalog.EXCLUDE_GROUP, "error"),  # cancelled, receipted
        (catalog.RESTORE_CA, "success"),  # nothing of ours to undo
        (catalog.READ_CA, "success"),
    ]
    bundle, _ = await s.bundle(job)
    report = verify_bundle(bundle, trust_for(s.keys))
    assert report.valid, report.reasons
