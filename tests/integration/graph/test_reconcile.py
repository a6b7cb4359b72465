"""``find_marked_grants``: what a reconciliation sweep finds, and that its rollbacks work."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from adapters.graph import GraphTools
from adapters.graph.simulated import ManualClock, SimulatedTenant
from adapters.store import SqlStore
from adapters.store.connect import sqlite_url
from engine import catalog
from tests.integration.graph.conftest import config_for
from tests.integration.graph.support import (
    ALICE,
    EXCLUSION_GROUP,
    MFA_POLICY,
    USER_ADMIN,
    ca_args,
    holders,
    write_args,
)


class KeylessSnapshots:
    """A SnapshotStore without the optional ``snapshot_keys`` index."""

    def __init__(self) -> None:
        self.saved: dict[str, object] = {}

    async def save_snapshot(self, key: str, snapshot: dict[str, object]) -> object:
        return self.saved.setdefault(key, snapshot)

    async def load_snapshot(self, key: str) -> object:
        return self.saved.get(key)


async def test_marked_grants_are_found_and_their_rollbacks_clear_them(
    sim: SimulatedTenant, tools: GraphTools
) -> None:
    assert await tools.find_marked_grants() == []  # erin's standing grant is not ours
    await tools.call(catalog.WRITE_ROLE, write_args(job="job-r"))
    await tools.call(catalog.EXCLUDE_GROUP, ca_args(job="job-c"))
    sim.grant(ALICE, USER_ADMIN)  # not ours either
    sim.advance(timedelta(minutes=5))  # PIM allows removal only after 5 minutes

    found = sorted(await tools.find_marked_grants(), key=lambda g: g.job_id)
    assert [(g.job_id, g.rollback_tool) for g in found] == [
        ("job-c", catalog.RESTORE_CA),
        ("job-r", catalog.REMOVE_ROLE),
    ]
    for grant in found:  # the arguments are valid catalog arguments for the rollback tool
        assert (await tools.call(grant.rollback_tool, grant.arguments)).ok

    assert await tools.find_marked_grants() == []
    assert holders(sim, USER_ADMIN) == {ALICE}
    excluded = sim.directory.policies[MFA_POLICY]["conditions"]["users"]["excludeGroups"]
    assert EXCLUSION_GROUP not in excluded


async def test_expired_grants_are_not_reported(
    sim: SimulatedTenant, tools: GraphTools, clock: ManualClock
) -> None:
    await tools.call(catalog.WRITE_ROLE, write_args(minutes=10))
    clock.advance(600)
    assert await tools.find_marked_grants() == []


async def test_without_a_snapshot_index_only_role_grants_are_found(
    sim: SimulatedTenant, clock: ManualClock
) -> None:
    async with GraphTools(config_for(sim), KeylessSnapshots(), clock=clock.now) as tools:  # type: ignore[arg-type]
        await tools.call(catalog.EXCLUDE_GROUP, ca_args(job="job-c"))
        await tools.call(catalog.WRITE_ROLE, write_args(job="job-r"))
        found = await tools.find_marked_grants()
    assert [g.job_id for g in found] == ["job-r"]


async def test_marked_grants_follow_paging(sim: SimulatedTenant, tools: GraphTools) -> None:
    sim.page_size = 1
    await tools.call(catalog.WRITE_ROLE, write_args(job="job-p"))
    sim.grant(ALICE, USER_ADMIN)
    found = await tools.find_marked_grants()
    assert [g.job_id for g in found] == ["job-p"]
    assert any("skiptoken" in e.query for e in sim.requests_log)


async def test_the_service_store_lists_the_exclusions_we_made(
    sim: SimulatedTenant, clock: ManualClock, tmp_path: Path
) -> None:
    """The service hands its SqlStore to the adapter: the sweep must find through it what a
    failed rollback left (a CA exclusion has no end in the tenant but ours)."""
    store = await SqlStore.open(sqlite_url(tmp_path))
    async with store, GraphTools(config_for(sim), store, clock=clock.now) as tools:
        await tools.call(catalog.EXCLUDE_GROUP, ca_args(job="job-c"))
        await tools.call(catalog.WRITE_ROLE, write_args(job="job-r"))
        found = sorted(await tools.find_marked_grants(), key=lambda g: g.job_id)
        assert [g.job_id for g in found] == ["job-c", "job-r"]
        assert await store.snapshot_keys("ca:job-c:") == [f"ca:job-c:{MFA_POLICY}"]
        assert await store.snapshot_keys("ca:job_") == []  # a prefix, not a pattern


async def test_a_deleted_policy_does_not_stop_the_sweep_and_each_policy_is_read_once(
    sim: SimulatedTenant, tools: GraphTools
) -> None:
    await tools.call(catalog.EXCLUDE_GROUP, ca_args(job="job-a"))
    other = next(p for p in sim.directory.policies if p != MFA_POLICY)
    await tools.call(catalog.EXCLUDE_GROUP, ca_args(job="job-b", policy=other))
    sim.delete_policy(other)  # our exclusion went with it
    reads = len(sim.requests_log)

    found = await tools.find_marked_grants()

    assert [g.job_id for g in found] == ["job-a"]
    policy_reads = [r for r in sim.requests_log[reads:] if "/conditionalAccess/" in r.path]
    assert len(policy_reads) == 2, policy_reads  # one per policy with a snapshot
