"""Role verification: exactly our principal gained exactly this role, nothing else changed.

Before, ``read_role_assignment`` listed the role's holders but ``verified`` ignored them.
"""

from __future__ import annotations

from datetime import timedelta

from adapters.graph import GraphTools
from adapters.graph.simulated import ManualClock, SimulatedTenant
from engine import catalog
from tests.integration.graph.support import (
    ALICE,
    BOB,
    DAVE,
    USER_ADMIN,
    has,
    read_args,
    remove_args,
    write_args,
)


async def test_a_holder_lost_during_the_window_is_flagged(
    sim: SimulatedTenant, tools: GraphTools, clock: ManualClock
) -> None:
    sim.grant(ALICE, USER_ADMIN)
    written = await tools.call(catalog.WRITE_ROLE, write_args())
    assert written.body["holders_before"] == [ALICE]
    alice = next(a for a in sim.active_grants() if a.principal_id == ALICE)
    alice.removed_at = clock.now()  # another administrator removes alice meanwhile

    present = await tools.call(catalog.READ_ROLE, read_args("present"))
    assert has(present.body, verified=False, present=True, lost_holders=[ALICE])
    assert present.body["unexpected_holders"] == []


async def test_each_job_is_verified_against_its_own_baseline(
    sim: SimulatedTenant, tools: GraphTools, clock: ManualClock
) -> None:
    await tools.call(catalog.WRITE_ROLE, write_args(job="job-1"))
    clock.advance(timedelta(minutes=5))
    await tools.call(catalog.REMOVE_ROLE, remove_args(job="job-1"))
    sim.grant(ALICE, USER_ADMIN)  # between the jobs: part of job-2's baseline
    clock.advance(timedelta(seconds=1))

    await tools.call(catalog.WRITE_ROLE, write_args(job="job-2"))
    present = await tools.call(catalog.READ_ROLE, read_args("present"))
    assert has(present.body, verified=True, holders_before=[ALICE], unexpected_holders=[])


async def test_present_without_a_baseline_is_not_verified(
    sim: SimulatedTenant, tools: GraphTools
) -> None:
    sim.grant(DAVE, USER_ADMIN)  # not made by breakglass: nothing to compare with
    present = await tools.call(catalog.READ_ROLE, read_args("present"))
    assert has(present.body, verified=False, present=True, holders_before=None)


async def test_two_jobs_on_one_role_do_not_spoil_each_others_verification(
    sim: SimulatedTenant, tools: GraphTools, clock: ManualClock
) -> None:
    # Two responders, each granted the role by a job of their own: the other job's grant
    # coming and going is receipted by that job, not drift in this one.
    await tools.call(catalog.WRITE_ROLE, write_args(job="job-alice", principal=ALICE))
    written = await tools.call(catalog.WRITE_ROLE, write_args(job="job-dave"))
    assert written.body["holders_before"] == [ALICE]  # still kept as evidence

    present = await tools.call(catalog.READ_ROLE, read_args("present"))
    assert has(present.body, verified=True, unexpected_holders=[], lost_holders=[])

    clock.advance(timedelta(minutes=5))
    await tools.call(catalog.REMOVE_ROLE, remove_args(job="job-alice", principal=ALICE))
    await tools.call(catalog.REMOVE_ROLE, remove_args(job="job-dave"))
    absent = await tools.call(catalog.READ_ROLE, read_args("absent"))
    assert has(absent.body, verified=True, present=False, lost_holders=[])
    assert absent.body["holders"] == []

    alice_absent = await tools.call(catalog.READ_ROLE, read_args("absent", principal=ALICE))
    assert has(alice_absent.body, verified=True, present=False, unexpected_holders=[])


async def test_a_holder_granted_outside_breakglass_is_still_drift_beside_another_job(
    sim: SimulatedTenant, tools: GraphTools, clock: ManualClock
) -> None:
    await tools.call(catalog.WRITE_ROLE, write_args(job="job-alice", principal=ALICE))
    await tools.call(catalog.WRITE_ROLE, write_args(job="job-dave"))
    sim.grant(BOB, USER_ADMIN)  # another administrator, by hand, during the window

    clock.advance(timedelta(minutes=5))
    await tools.call(catalog.REMOVE_ROLE, remove_args(job="job-dave"))
    absent = await tools.call(catalog.READ_ROLE, read_args("absent"))
    assert has(absent.body, verified=False, present=False, unexpected_holders=[BOB])
