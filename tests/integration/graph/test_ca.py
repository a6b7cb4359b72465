"""Conditional Access tools: exclude, verify, restore exactly, pace, refuse."""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Mapping
from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest

from adapters.graph import GraphTools
from adapters.graph.ca import snapshot_key
from adapters.graph.client import GraphClient
from adapters.graph.simulated import Fault, ManualClock, SimulatedTenant
from engine import catalog
from engine.errors import GraphError, InputError
from tests.integration.graph.conftest import FAST, config_for
from tests.integration.graph.support import (
    EMERGENCY_GROUP,
    EXCLUSION_GROUP,
    LEGACY_POLICY,
    MFA_POLICY,
    MemorySnapshots,
    ca_args,
    has,
    refused,
)

POLICIES = "conditionalAccess/policies"


def policy(sim: SimulatedTenant, policy_id: str = MFA_POLICY) -> dict[str, Any]:
    return copy.deepcopy(sim.directory.policies[policy_id])


def without_modified(doc: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in doc.items() if k != "modifiedDateTime"}


def patches(sim: SimulatedTenant) -> list[int]:
    return [e.status for e in sim.requests_log if e.method == "PATCH" and POLICIES in e.path]


async def test_exclude_verify_restore_verify(
    sim: SimulatedTenant, tools: GraphTools, snapshots: MemorySnapshots
) -> None:
    original = policy(sim)

    excluded = await tools.call(catalog.EXCLUDE_GROUP, ca_args())
    assert excluded.ok
    assert excluded.body["verified"] is True
    assert excluded.body["excluded_before"] is False
    assert policy(sim)["conditions"]["users"]["excludeGroups"] == [EMERGENCY_GROUP, EXCLUSION_GROUP]
    assert (
        snapshots.saved[f"ca:job-ca:{MFA_POLICY}"]["policy"]["conditions"] == original["conditions"]
    )

    check = await tools.call(catalog.READ_CA, ca_args() | {"expect": "excluded"})
    assert check.body["verified"] is True

    restored = await tools.call(catalog.RESTORE_CA, ca_args())
    assert restored.ok
    assert has(restored.body, verified=True, restored=True, drift=[], ours_seen=True)

    check = await tools.call(catalog.READ_CA, ca_args() | {"expect": "restored"})
    assert check.body["verified"] is True
    assert without_modified(policy(sim)) == without_modified(original)
    assert patches(sim) == [204, 204]


async def test_exclusion_changes_only_the_users_condition(
    sim: SimulatedTenant, tools: GraphTools
) -> None:
    original, other = policy(sim), policy(sim, LEGACY_POLICY)
    await tools.call(catalog.EXCLUDE_GROUP, ca_args())
    changed = policy(sim)
    assert policy(sim, LEGACY_POLICY) == other
    changed["conditions"]["users"]["excludeGroups"].remove(EXCLUSION_GROUP)
    assert without_modified(changed) == without_modified(original)


async def test_retried_exclude_keeps_the_original_snapshot(
    sim: SimulatedTenant, tools: GraphTools, snapshots: MemorySnapshots
) -> None:
    original = policy(sim)
    await tools.call(catalog.EXCLUDE_GROUP, ca_args())
    again = await tools.call(catalog.EXCLUDE_GROUP, ca_args())
    assert again.body["verified"] is True
    assert snapshots.save_calls == 3  # the snapshot twice (the first kept), one write's claim
    kept = snapshots.saved[f"ca:job-ca:{MFA_POLICY}"]["policy"]
    assert without_modified(kept) == without_modified(original)
    assert patches(sim) == [204]  # the retry saw the group excluded and sent nothing

    await tools.call(catalog.RESTORE_CA, ca_args())
    assert without_modified(policy(sim)) == without_modified(original)


async def test_group_excluded_before_the_job_stays_excluded_after_restore(
    sim: SimulatedTenant, tools: GraphTools
) -> None:
    original = policy(sim)
    result = await tools.call(catalog.EXCLUDE_GROUP, ca_args(group=EMERGENCY_GROUP))
    assert result.body["excluded_before"] is True
    assert patches(sim) == []
    restored = await tools.call(catalog.RESTORE_CA, ca_args(group=EMERGENCY_GROUP))
    assert restored.body["ours_seen"] is True  # the job added nothing that could be hidden
    assert without_modified(policy(sim)) == without_modified(original)


async def test_restore_says_when_it_could_not_see_the_jobs_exclusion(
    sim: SimulatedTenant, tools: GraphTools
) -> None:
    # A replica behind the write shows the policy without our group: the restore sends
    # nothing and says it did not see the exclusion, so the rollback reads again later.
    sim.set_replication_lag(seconds=600)
    await tools.call(catalog.EXCLUDE_GROUP, ca_args())
    hidden = await tools.call(catalog.RESTORE_CA, ca_args())
    assert hidden.body["ours_seen"] is False
    assert patches(sim) == [204]  # only the exclusion's own
    assert EXCLUSION_GROUP in policy(sim)["conditions"]["users"]["excludeGroups"]

    sim.advance(timedelta(seconds=600))
    sim.set_replication_lag(seconds=0)  # the replicas catch up
    restored = await tools.call(catalog.RESTORE_CA, ca_args())
    assert has(restored.body, verified=True, ours_seen=True)
    assert EXCLUSION_GROUP not in policy(sim)["conditions"]["users"]["excludeGroups"]


async def test_restore_reports_drift_and_keeps_other_edits(
    sim: SimulatedTenant, tools: GraphTools
) -> None:
    await tools.call(catalog.EXCLUDE_GROUP, ca_args())
    sim.edit_policy(MFA_POLICY, {"state": "enabledForReportingButNotEnforced"})

    restored = await tools.call(catalog.RESTORE_CA, ca_args())
    # Our exclusion is gone (verified); someone else's edit is kept and reported as drift.
    assert has(restored.body, restored=True, verified=True, drift=["state"])
    after = policy(sim)
    assert after["state"] == "enabledForReportingButNotEnforced"  # someone else's edit kept
    assert EXCLUSION_GROUP not in after["conditions"]["users"]["excludeGroups"]

    check = await tools.call(catalog.READ_CA, ca_args() | {"expect": "restored"})
    assert has(check.body, verified=True, drift=["state"])


async def test_lost_patch_is_read_back_not_resent(sim: SimulatedTenant, tools: GraphTools) -> None:
    sim.add_fault(Fault("drop", method="PATCH", path=POLICIES, apply=True))
    result = await tools.call(catalog.EXCLUDE_GROUP, ca_args())
    assert result.body["verified"] is True
    assert patches(sim) == [0]


async def test_restore_of_a_job_that_never_wrote_changes_nothing_and_says_so(
    sim: SimulatedTenant, tools: GraphTools
) -> None:
    # No snapshot: the job's write never reached its PATCH (it takes the snapshot first),
    # say a Kill cancelled it. Nothing of the job's to undo, whoever excludes the group.
    users = policy(sim)["conditions"]["users"]
    users["excludeGroups"] = [*users["excludeGroups"], EXCLUSION_GROUP]  # someone else's
    sim.edit_policy(MFA_POLICY, {"conditions": {"users": users}})
    before = sim.state()
    for tool, extra in ((catalog.RESTORE_CA, {}), (catalog.READ_CA, {"expect": "restored"})):
        result = await tools.call(tool, ca_args(job="never-wrote") | extra)
        assert has(result.body, verified=True, never_changed=True, ours_seen=True)
        assert EXCLUSION_GROUP in result.body["exclude_groups"]  # someone else's: kept
    assert sim.state() == before
    assert patches(sim) == []


async def test_a_damaged_snapshot_is_refused_and_changes_nothing(
    sim: SimulatedTenant, tools: GraphTools, snapshots: MemorySnapshots
) -> None:
    await snapshots.save_snapshot(snapshot_key("damaged", MFA_POLICY), {"policy": "?"})
    before = sim.state()
    with pytest.raises(InputError, match="snapshot"):
        await tools.call(catalog.RESTORE_CA, ca_args(job="damaged"))
    assert sim.state() == before
    assert patches(sim) == []


async def test_unknown_group_is_refused_by_graph_and_policy_unchanged(
    sim: SimulatedTenant, tools: GraphTools
) -> None:
    args = ca_args(group="00000000-0000-0000-0000-00000000beef")
    err = await refused(sim, tools, catalog.EXCLUDE_GROUP, args, GraphError)
    assert (err.status, err.code) == (400, "BadRequest")


async def test_paced_client_stays_under_the_ca_rate_limit(
    sim: SimulatedTenant, tools: GraphTools
) -> None:
    await tools.call(catalog.EXCLUDE_GROUP, ca_args())
    await tools.call(catalog.RESTORE_CA, ca_args())
    ca_calls = [e.status for e in sim.requests_log if POLICIES in e.path]
    assert len(ca_calls) >= 5
    assert 429 not in ca_calls


async def test_unpaced_client_is_throttled_without_retry_after_and_recovers(
    clock: ManualClock,
) -> None:
    # The sim allows one CA request per 0.15 s; this client does not pace itself at all.
    policy_ = replace(FAST, ca_interval=0.0, max_attempts=30, base_delay=0.02, max_delay=0.08)
    async with SimulatedTenant(clock=clock, ca_interval=0.15) as sim:
        async with GraphTools(
            config_for(sim, policy_), MemorySnapshots(), clock=clock.now
        ) as tools:
            result = await tools.call(catalog.EXCLUDE_GROUP, ca_args())
        assert result.body["verified"] is True
        throttled = [e for e in sim.requests_log if e.status == 429]
        assert throttled
        assert (
            EXCLUSION_GROUP
            in sim.directory.policies[MFA_POLICY]["conditions"]["users"]["excludeGroups"]
        )


RESPONDERS = "92834d79-48cc-5a9e-9744-15121128f4a9"


class HeldPacer:
    """The client's sleeps: while ``hold`` is set, a paced request waits until cancelled;
    then each waits as asked (so the tenant's own rate limit is kept)."""

    def __init__(self) -> None:
        self.hold = True
        self.waiting = asyncio.Event()

    async def sleep(self, seconds: float) -> None:
        if seconds > 0 and self.hold:
            self.waiting.set()
            await asyncio.Event().wait()
        await asyncio.sleep(seconds)


class StoreAfterAHop(MemorySnapshots):
    """Saves that take a turn of the event loop, as the SQL store's thread does."""

    async def save_snapshot(self, key: str, snapshot: Mapping[str, Any]) -> Mapping[str, Any]:
        await asyncio.sleep(0)
        return await super().save_snapshot(key, snapshot)


async def test_a_write_cancelled_before_it_left_frees_its_claim_at_once(
    sim: SimulatedTenant, clock: ManualClock
) -> None:
    """A Kill during the pacer's wait cancelled a claimed write that never left: its claim
    was held 5 minutes, and every CA write on the policy was refused meanwhile (a black-box
    run: another job's exclusion outlived its window by 5 minutes, a new one was never
    granted). A claim stays only for a write that may have reached the tenant. A Kill
    cancels the agent's calls twice (the executor's halt, then the rollback's): the second
    cancel must not take the void back."""
    pacer = HeldPacer()
    config = config_for(sim)
    client = GraphClient(config, sleep=pacer.sleep, monotonic=lambda: 0.0)  # each CA call waits
    async with GraphTools(config, StoreAfterAHop(), client=client, clock=clock.now) as tools:
        killed = asyncio.ensure_future(tools.call(catalog.EXCLUDE_GROUP, ca_args(job="killed")))
        await asyncio.wait_for(pacer.waiting.wait(), timeout=30)  # its PATCH waits to be paced
        killed.cancel()
        await asyncio.sleep(0)  # it handles the first cancel: the void is on its way
        killed.cancel()
        with pytest.raises(asyncio.CancelledError):
            await killed
        pacer.hold = False
        result = await tools.call(catalog.EXCLUDE_GROUP, ca_args(job="next", group=RESPONDERS))
    assert has(result.body, verified=True)
    assert patches(sim) == [204]  # the next job's write only
    excluded = policy(sim)["conditions"]["users"]["excludeGroups"]
    assert RESPONDERS in excluded
    assert EXCLUSION_GROUP not in excluded
