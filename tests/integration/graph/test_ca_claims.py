"""No Conditional Access write is computed from a read older than our own last write.

Graph's replicas may show a policy as it was before our last write (see docs/graph.md). The
first-law soak found the consequence: two exclusions on one policy, the first job's restore
removed its group, the second job's restore then read the policy from a replica behind that
removal and wrote the first group back, after the first job had ended verified
(seed 129794521081033322841316438765962348678: "job-14 is not approved yet but the tenant
already has [group 92834d79… excluded from 3f818883…]").
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from adapters.graph import GraphTools
from adapters.graph.ca_claims import CLAIM_HOLD, STALE
from adapters.graph.simulated import Fault, ManualClock, SimulatedTenant
from engine import catalog
from engine.errors import GraphError
from tests.integration.graph.conftest import config_for
from tests.integration.graph.support import (
    EXCLUSION_GROUP,
    LEGACY_POLICY,
    MemorySnapshots,
    ca_args,
    has,
    refused,
)

RESPONDERS = "92834d79-48cc-5a9e-9744-15121128f4a9"
LAG = timedelta(seconds=60)


def excluded(sim: SimulatedTenant) -> list[str]:
    """What the tenant itself holds (the primary, not a replica)."""
    return sorted(sim.directory.policies[LEGACY_POLICY]["conditions"]["users"]["excludeGroups"])


def patches(sim: SimulatedTenant) -> int:
    return sum(1 for e in sim.requests_log if e.method == "PATCH")


def catch_up(sim: SimulatedTenant) -> None:
    """The lag passes and the replicas stop lagging (so the next write reads back at once)."""
    sim.advance(LAG)
    sim.set_replication_lag(seconds=0)


def job(name: str, group: str) -> dict[str, str]:
    return ca_args(job=name, policy=LEGACY_POLICY, group=group)


async def _two_exclusions_then_lag(sim: SimulatedTenant, tools: GraphTools) -> None:
    for name, group in (("job-a", EXCLUSION_GROUP), ("job-b", RESPONDERS)):
        assert (await tools.call(catalog.EXCLUDE_GROUP, job(name, group))).ok
    sim.set_replication_lag(seconds=LAG.total_seconds())


async def test_a_restore_never_puts_back_what_another_restore_removed(
    sim: SimulatedTenant, tools: GraphTools
) -> None:
    await _two_exclusions_then_lag(sim, tools)
    first = await tools.call(catalog.RESTORE_CA, job("job-a", EXCLUSION_GROUP))
    assert has(first.body, ours_seen=True)  # it read the policy in sync and wrote
    assert excluded(sim) == [RESPONDERS]

    # Every read now shows both groups (a replica behind job-a's removal): writing job-b's
    # restore on it would exclude job-a's group again. It is refused and nothing is sent.
    sent = patches(sim)
    err = await refused(sim, tools, catalog.RESTORE_CA, job("job-b", RESPONDERS), GraphError)
    assert err.code == STALE
    assert (patches(sim), excluded(sim)) == (sent, [RESPONDERS])

    catch_up(sim)  # the restore now reads the removal and writes on it
    second = await tools.call(catalog.RESTORE_CA, job("job-b", RESPONDERS))
    assert has(second.body, verified=True, ours_seen=True)
    assert excluded(sim) == []


async def test_an_exclusion_never_puts_back_what_a_restore_removed(
    sim: SimulatedTenant, tools: GraphTools
) -> None:
    assert (await tools.call(catalog.EXCLUDE_GROUP, job("job-a", EXCLUSION_GROUP))).ok
    sim.set_replication_lag(seconds=LAG.total_seconds())
    await tools.call(catalog.RESTORE_CA, job("job-a", EXCLUSION_GROUP))
    assert excluded(sim) == []

    err = await refused(sim, tools, catalog.EXCLUDE_GROUP, job("job-b", RESPONDERS), GraphError)
    assert err.code == STALE

    catch_up(sim)
    assert (await tools.call(catalog.EXCLUDE_GROUP, job("job-b", RESPONDERS))).ok
    assert excluded(sim) == [RESPONDERS]


async def test_a_write_graph_refused_leaves_its_version_free(
    sim: SimulatedTenant, tools: GraphTools
) -> None:
    # A 400 means the write did not land: the version it was based on is still the newest,
    # and the next write may be based on it at once.
    bogus = job("job-a", "00000000-0000-0000-0000-00000000beef")
    assert (await refused(sim, tools, catalog.EXCLUDE_GROUP, bogus, GraphError)).status == 400
    assert (await tools.call(catalog.EXCLUDE_GROUP, job("job-b", RESPONDERS))).ok
    assert excluded(sim) == [RESPONDERS]


async def test_a_write_whose_answer_was_lost_holds_its_version_until_replicas_settle(
    sim: SimulatedTenant, tools: GraphTools, caplog: pytest.LogCaptureFixture
) -> None:
    # Every answer is lost and nothing lands; the write might have landed for all we know,
    # so the version it was based on is not written on again until the claim's hold passes.
    sim.add_fault(Fault("drop", method="PATCH", times=3, apply=False))
    lost = await refused(
        sim, tools, catalog.EXCLUDE_GROUP, job("job-a", EXCLUSION_GROUP), GraphError
    )
    assert lost.code == "ResponseLost"

    err = await refused(sim, tools, catalog.EXCLUDE_GROUP, job("job-b", RESPONDERS), GraphError)
    assert err.code == STALE
    # Said where an operator looks: the policy keeps what the lost write may have changed
    # until the claim expires (a black-box run saw 5 minutes of this with nothing logged).
    (said,) = [r for r in caplog.records if "the version read is claimed" in r.getMessage()]
    assert said.levelname == "WARNING"
    assert "at most 300 s" in said.getMessage()
    # Said where an operator looks: the policy keeps what the lost write may have changed
    # until the claim expires (a black-box run saw 5 minutes of this with nothing logged).
    (said,) = [r for r in caplog.records if "the version read is claimed" in r.getMessage()]
    assert said.levelname == "WARNING"
    assert "at most 300 s" in said.getMessage()

    sim.advance(CLAIM_HOLD)
    assert (await tools.call(catalog.EXCLUDE_GROUP, job("job-b", RESPONDERS))).ok
    assert excluded(sim) == [RESPONDERS]


async def test_a_replica_never_writes_on_a_version_another_replica_wrote_on(
    sim: SimulatedTenant, tools: GraphTools, snapshots: MemorySnapshots, clock: ManualClock
) -> None:
    # Replicas share the store's claims, not each other's policy locks: replica B reads the
    # policy from a replica behind A's write and must not write its own change on it (that
    # would drop A's group).
    sim.set_replication_lag(seconds=LAG.total_seconds())
    await tools.call(catalog.EXCLUDE_GROUP, job("job-a", EXCLUSION_GROUP))
    assert excluded(sim) == [EXCLUSION_GROUP]
    async with GraphTools(config_for(sim), snapshots, clock=clock.now) as replica_b:
        err = await refused(
            sim, replica_b, catalog.EXCLUDE_GROUP, job("job-b", RESPONDERS), GraphError
        )
        assert err.code == STALE
        catch_up(sim)
        assert (await replica_b.call(catalog.EXCLUDE_GROUP, job("job-b", RESPONDERS))).ok
    assert excluded(sim) == sorted([EXCLUSION_GROUP, RESPONDERS])
