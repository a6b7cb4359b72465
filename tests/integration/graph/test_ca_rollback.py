"""Conditional Access rollback removes only our exclusion from the CURRENT policy.

Each of these failed before: the restore wrote the snapshot's whole ``users`` block back,
silently undoing other administrators' edits made during the window, and said
``verified: true, drift: []``.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from adapters.graph import GraphTools
from adapters.graph.simulated import ManualClock, SimulatedTenant
from adapters.graph.simulated.faults import Fault
from bot.gateway_service import ToolGateway
from engine import catalog
from engine.errors import GraphError
from engine.job import CLOSED
from engine.lifecycle import Done
from engine.verify import verify_bundle
from tests.integration.graph.conftest import simulated_service
from tests.integration.graph.support import (
    ALICE,
    EMERGENCY_GROUP,
    EXCLUSION_GROUP,
    MFA_POLICY,
    ca_args,
    has,
)
from tests.integration.graph.test_gateway_boundary import active_job
from tests.support.engine_sim import trust_for
from tests.support.waiting import settle

RESPONDERS = "92834d79-48cc-5a9e-9744-15121128f4a9"


def users(sim: SimulatedTenant) -> dict[str, Any]:
    return dict(sim.directory.policies[MFA_POLICY]["conditions"]["users"])


def ca_patches(sim: SimulatedTenant) -> int:
    return sum(1 for e in sim.requests_log if e.method == "PATCH" and "policies" in e.path)


async def test_exclusion_added_by_another_admin_during_the_window_is_kept_and_reported(
    sim: SimulatedTenant, tools: GraphTools
) -> None:
    await tools.call(catalog.EXCLUDE_GROUP, ca_args())
    theirs = [EMERGENCY_GROUP, EXCLUSION_GROUP, RESPONDERS]
    sim.edit_policy(MFA_POLICY, {"conditions": {"users": users(sim) | {"excludeGroups": theirs}}})

    restored = await tools.call(catalog.RESTORE_CA, ca_args())

    assert restored.ok
    assert has(restored.body, verified=True, drift=["conditions.users.excludeGroups"])
    assert sorted(users(sim)["excludeGroups"]) == sorted([EMERGENCY_GROUP, RESPONDERS])
    check = await tools.call(catalog.READ_CA, ca_args() | {"expect": "restored"})
    assert has(check.body, verified=True, drift=["conditions.users.excludeGroups"])


async def test_every_concurrent_change_is_drift_and_none_is_undone(
    sim: SimulatedTenant, tools: GraphTools
) -> None:
    await tools.call(catalog.EXCLUDE_GROUP, ca_args())
    changed = users(sim) | {"excludeUsers": [ALICE]}
    sim.edit_policy(MFA_POLICY, {"state": "disabled", "conditions": {"users": changed}})

    restored = await tools.call(catalog.RESTORE_CA, ca_args())

    assert restored.body["drift"] == ["conditions.users.excludeUsers", "state"]
    assert restored.body["verified"] is True
    assert users(sim)["excludeUsers"] == [ALICE]
    assert sim.directory.policies[MFA_POLICY]["state"] == "disabled"
    assert EXCLUSION_GROUP not in users(sim)["excludeGroups"]


async def test_our_exclusion_already_removed_by_someone_else_needs_no_write(
    sim: SimulatedTenant, tools: GraphTools
) -> None:
    await tools.call(catalog.EXCLUDE_GROUP, ca_args())
    sim.edit_policy(
        MFA_POLICY, {"conditions": {"users": users(sim) | {"excludeGroups": [EMERGENCY_GROUP]}}}
    )
    written = ca_patches(sim)

    restored = await tools.call(catalog.RESTORE_CA, ca_args())

    assert has(restored.body, verified=True, drift=[])
    assert ca_patches(sim) == written  # nothing was left to undo, so nothing was written


async def test_unchanged_policy_restores_with_no_drift(
    sim: SimulatedTenant, tools: GraphTools
) -> None:
    await tools.call(catalog.EXCLUDE_GROUP, ca_args())
    restored = await tools.call(catalog.RESTORE_CA, ca_args())
    assert has(restored.body, verified=True, restored=True, drift=[], excluded_before=False)
    assert users(sim)["excludeGroups"] == [EMERGENCY_GROUP]


async def test_two_jobs_on_one_policy_excluding_and_restoring_at_once_keep_both_changes(
    sim: SimulatedTenant, tools: GraphTools
) -> None:
    """Two jobs exclude two groups from one policy, then both windows end at once: each
    restore reads the policy and writes back its ``users`` block. Interleaved, the second
    write was computed from a read before the first and put the first job's group back
    (found by the first-law soak: that job ended ``failed``, its exclusion re-created)."""
    ours, theirs = ca_args(), ca_args(job="job-2", group=RESPONDERS)
    excluded = await asyncio.gather(*(tools.call(catalog.EXCLUDE_GROUP, a) for a in (ours, theirs)))
    assert [r.ok for r in excluded] == [True, True]
    assert {EXCLUSION_GROUP, RESPONDERS} <= set(users(sim)["excludeGroups"])

    restored = await asyncio.gather(*(tools.call(catalog.RESTORE_CA, a) for a in (ours, theirs)))

    assert [r.ok for r in restored] == [True, True]
    assert users(sim)["excludeGroups"] == [EMERGENCY_GROUP]  # the seed's, and only it
    for args in (ours, theirs):
        check = await tools.call(catalog.READ_CA, args | {"expect": "restored"})
        assert has(check.body, verified=True)


async def test_a_policy_deleted_during_the_window_took_our_exclusion_with_it(
    sim: SimulatedTenant, tools: GraphTools
) -> None:
    # Another administrator deletes the policy mid-incident. The restore used to fail on
    # its 404 until the rollback's budget was spent: the job ended failed, escalating an
    # exclusion from a policy that no longer exists.
    await tools.call(catalog.EXCLUDE_GROUP, ca_args())
    sim.delete_policy(MFA_POLICY)
    written = ca_patches(sim)

    restored = await tools.call(catalog.RESTORE_CA, ca_args())

    assert restored.ok
    assert has(restored.body, verified=True, policy_deleted=True, drift=["policy deleted"])
    assert ca_patches(sim) == written  # nothing written
    check = await tools.call(catalog.READ_CA, ca_args() | {"expect": "restored"})
    assert has(check.body, verified=True, policy_deleted=True)


async def test_a_policy_deleted_before_the_job_wrote_needs_nothing_restored(
    sim: SimulatedTenant, tools: GraphTools
) -> None:
    sim.delete_policy(MFA_POLICY)  # after approval, before the write: the write fails
    restored = await tools.call(catalog.RESTORE_CA, ca_args())
    assert has(restored.body, verified=True, policy_deleted=True)


async def test_an_error_other_than_not_found_still_fails_the_restore(
    sim: SimulatedTenant, tools: GraphTools
) -> None:
    await tools.call(catalog.EXCLUDE_GROUP, ca_args())
    sim.add_fault(Fault("unavailable", path="/policies/", times=1000))
    with pytest.raises(GraphError) as err:
        await tools.call(catalog.RESTORE_CA, ca_args())
    assert err.value.status == 503
    assert EXCLUSION_GROUP in users(sim)["excludeGroups"]  # still there, and not claimed gone


async def test_a_job_whose_policy_was_deleted_mid_window_ends_closed_and_verifies(
    tmp_path: Path, sim: SimulatedTenant, clock: ManualClock
) -> None:
    """End to end through the gateway and the rollback: closed, nothing escalated, the
    bundle verifies and its receipt says the policy was deleted."""

    async def sleep(seconds: float) -> None:  # waits (chat pacing) pass in the clock's time
        clock.advance(max(seconds, 0.0))
        await asyncio.sleep(0)

    service, tools = await simulated_service(tmp_path, sim, clock, sleep=sleep)
    gateway = ToolGateway(service)
    try:
        token = await active_job(
            service, "ca-exclusion", {"policy_id": MFA_POLICY, "group_id": EXCLUSION_GROUP}
        )
        job = await service.load("job-boundary")
        for step in ("action", "verify_action"):
            node = job.plan.payload["metadata"]["breakglass"][step]
            assert (await gateway.call(job.job_id, token, node["tool"], node["arguments"])).allowed
        sim.delete_policy(MFA_POLICY)
        assert (await service.command(job.job_id, Done(service.actor("console:alice")))).ok
        await settle(pending=lambda: service.tasks)
        job = await service.load(job.job_id)
        assert (job.state, job.still_privileged, job.rollback_verified) == (CLOSED, (), True)
        report = verify_bundle((await service.bundle(job))[0], trust_for(service.keys))
        assert report.valid, report.reasons
        bodies = [
            r.envelope["payload"]
            for r in await service.store.chain(job.job_id)
            if r.envelope and r.envelope["payload"].get("tool_name") == catalog.RESTORE_CA
        ]
        assert [b["result_status"] for b in bodies] == ["success"]
    finally:
        await tools.close()
        await service.store.close()
