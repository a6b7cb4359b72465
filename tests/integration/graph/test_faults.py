"""Throttling, outages, lost answers and replication lag, injected by the simulated tenant.

``sleeps`` records every wait the client asks for and yields without waiting, so a
``Retry-After: 7`` is checked as honoured without the test taking seven seconds.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest

from adapters.graph import GraphClient, GraphTools
from adapters.graph.simulated import Fault, ManualClock, SimulatedTenant
from engine import catalog
from engine.errors import GraphError
from tests.integration.graph.conftest import FAST, config_for
from tests.integration.graph.support import (
    DAVE,
    REQUESTS,
    USER_ADMIN,
    MemorySnapshots,
    has,
    holders,
    read_args,
    remove_args,
    statuses,
    write_args,
)
from tests.support.virtual_time import SteppedSeconds

INSTANCES = "roleAssignmentScheduleInstances"


class Sleeps:
    def __init__(self) -> None:
        self.asked: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.asked.append(seconds)
        await asyncio.sleep(0)


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture
def sleep(sleeps: Sleeps) -> Sleeps:
    return sleeps


async def write_once_despite(
    sim: SimulatedTenant, tools: GraphTools, fault: Fault
) -> Mapping[str, Any]:
    """Write a role under ``fault``: the write succeeds and the tenant holds one request."""
    sim.add_fault(fault)
    result = await tools.call(catalog.WRITE_ROLE, write_args())
    assert result.ok
    assert len(sim.directory.requests) == 1
    return result.body


async def test_429_retry_after_is_honoured(
    sim: SimulatedTenant, tools: GraphTools, sleeps: Sleeps
) -> None:
    sim.add_fault(Fault("throttle", method="POST", path=REQUESTS, retry_after=2))
    result = await tools.call(catalog.WRITE_ROLE, write_args())
    assert result.ok
    assert sleeps.asked == [2.0]
    assert statuses(sim, "POST", REQUESTS) == [429, 201]
    assert holders(sim, USER_ADMIN) == {DAVE}


async def test_429_without_retry_after_and_503_back_off_within_bounds(
    sim: SimulatedTenant, tools: GraphTools, sleeps: Sleeps
) -> None:
    sim.add_fault(Fault("throttle", method="POST", path=REQUESTS))
    sim.add_fault(Fault("unavailable", method="POST", path=REQUESTS, times=2))
    result = await tools.call(catalog.WRITE_ROLE, write_args())
    assert result.ok
    assert statuses(sim, "POST", REQUESTS) == [429, 503, 503, 201]
    assert len(sleeps.asked) == 3
    assert all(FAST.base_delay / 2 <= s <= FAST.max_delay for s in sleeps.asked)
    assert len(sim.directory.requests) == 1  # applied once


async def test_503_on_reads_is_retried(sim: SimulatedTenant, tools: GraphTools) -> None:
    sim.add_fault(Fault("unavailable", method="GET", path=INSTANCES, times=2))
    result = await tools.call(catalog.READ_ROLE, read_args("absent"))
    assert result.body["verified"] is True
    assert statuses(sim, "GET", INSTANCES)[:3] == [503, 503, 200]


async def test_gives_up_with_a_typed_error_beyond_the_attempt_bound(
    sim: SimulatedTenant, tools: GraphTools
) -> None:
    before = sim.state()
    sim.add_fault(Fault("unavailable", method="POST", path=REQUESTS, times=50))
    with pytest.raises(GraphError) as caught:
        await tools.call(catalog.WRITE_ROLE, write_args())
    err = caught.value
    assert (err.status, err.code) == (503, "ServiceUnavailable")
    assert f"gave up after {FAST.max_attempts} attempts" in err.message
    assert statuses(sim, "POST", REQUESTS) == [503] * FAST.max_attempts
    assert sim.state() == before


async def test_retry_after_beyond_the_time_budget_gives_up_at_once(
    sim: SimulatedTenant, tools: GraphTools, sleeps: Sleeps
) -> None:
    before = sim.state()
    sim.add_fault(Fault("throttle", method="POST", path=REQUESTS, retry_after=3600))
    with pytest.raises(GraphError) as caught:
        await tools.call(catalog.WRITE_ROLE, write_args())
    assert (caught.value.status, caught.value.code) == (429, "TooManyRequests")
    assert sleeps.asked == []
    assert sim.state() == before


async def test_total_time_budget_bounds_the_retries(
    sim: SimulatedTenant, clock: ManualClock
) -> None:
    # The budget is measured on a clock that moves only when the client waits: the number of
    # attempts follows from the policy, not from how fast this machine answers.
    policy = replace(FAST, max_attempts=1000, base_delay=0.05, max_delay=0.05, total_budget=0.3)
    sim.add_fault(Fault("unavailable", method="GET", path=INSTANCES, times=1000))
    elapsed = SteppedSeconds()
    config = config_for(sim, policy)
    client = GraphClient(config, sleep=elapsed.sleep, monotonic=elapsed)
    async with GraphTools(config, MemorySnapshots(), client=client, clock=clock.now) as tools:
        with pytest.raises(GraphError, match="gave up"):
            await tools.call(catalog.READ_ROLE, read_args("absent"))
    assert sum(elapsed.waits) <= policy.total_budget
    assert 2 <= len(statuses(sim, "GET", INSTANCES)) < 20


async def test_write_whose_answer_was_lost_is_not_applied_twice(
    sim: SimulatedTenant, tools: GraphTools
) -> None:
    body = await write_once_despite(sim, tools, Fault("drop", method="POST", path=REQUESTS))
    assert body["recovered_by_read_back"] is True
    assert body["status"] == "Provisioned"
    assert statuses(sim, "POST", REQUESTS) == [0]  # sent once, its answer dropped
    assert holders(sim, USER_ADMIN) == {DAVE}


async def test_lost_write_hidden_by_replication_lag_is_still_not_applied_twice(
    sim: SimulatedTenant, tools: GraphTools
) -> None:
    # The read-back cannot see the applied write within its bound; the resend is refused
    # with RoleAssignmentExists and a patient read then finds the job's own request.
    sim.set_replication_lag(reads=FAST.readback_attempts + 2)
    body = await write_once_despite(sim, tools, Fault("drop", method="POST", path=REQUESTS))
    assert body["recovered_by_read_back"] is True
    assert statuses(sim, "POST", REQUESTS) == [0, 400]
    assert holders(sim, USER_ADMIN) == {DAVE}


async def test_write_lost_before_it_was_applied_is_resent_after_reading_back(
    sim: SimulatedTenant, tools: GraphTools
) -> None:
    fault = Fault("drop", method="POST", path=REQUESTS, apply=False)
    body = await write_once_despite(sim, tools, fault)
    assert body["recovered_by_read_back"] is False
    assert statuses(sim, "POST", REQUESTS) == [0, 201]


async def test_gateway_timeout_on_a_write_is_treated_as_a_lost_answer(
    sim: SimulatedTenant, tools: GraphTools
) -> None:
    fault = Fault("gateway_timeout", method="POST", path=REQUESTS)
    body = await write_once_despite(sim, tools, fault)
    assert body["recovered_by_read_back"] is True
    assert statuses(sim, "POST", REQUESTS) == [504]


async def test_lost_remove_is_confirmed_by_reading_back(
    sim: SimulatedTenant, tools: GraphTools
) -> None:
    await tools.call(catalog.WRITE_ROLE, write_args())
    sim.advance(timedelta(minutes=5))  # PIM allows removal only after 5 minutes
    sim.add_fault(Fault("drop", method="POST", path=REQUESTS, apply=True))
    removed = await tools.call(catalog.REMOVE_ROLE, remove_args())
    assert has(removed.body, removed=True, verified=True)
    assert statuses(sim, "POST", REQUESTS) == [201, 0]
    assert holders(sim, USER_ADMIN) == set()


async def verify_write_under_lag(
    sim: SimulatedTenant, tools: GraphTools, reads: int
) -> Mapping[str, Any]:
    """Write a role, then verify it while the tenant hides it from the next ``reads`` reads."""
    sim.set_replication_lag(reads=reads)
    await tools.call(catalog.WRITE_ROLE, write_args())
    return (await tools.call(catalog.READ_ROLE, read_args("present"))).body


async def test_verification_read_waits_out_replication_lag(
    sim: SimulatedTenant, tools: GraphTools
) -> None:
    present = await verify_write_under_lag(sim, tools, reads=3)
    assert present["verified"] is True
    assert present["reads"] > 1


async def test_verification_read_reports_false_when_lag_outlasts_the_bound(
    sim: SimulatedTenant, tools: GraphTools
) -> None:
    present = await verify_write_under_lag(sim, tools, reads=100)
    assert present["verified"] is False
    assert present["reads"] == FAST.readback_attempts


async def test_unreachable_graph_is_a_typed_error(sim: SimulatedTenant, tools: GraphTools) -> None:
    await tools.call(catalog.READ_ROLE, read_args("absent"))  # token now cached by MSAL
    await sim.stop()
    with pytest.raises(GraphError) as caught:
        await tools.call(catalog.READ_ROLE, read_args("absent"))
    assert caught.value.code == "ServiceUnreachable"
    assert "gave up after" in caught.value.message


async def test_removal_says_when_it_could_not_see_the_jobs_own_request(
    sim: SimulatedTenant, tools: GraphTools
) -> None:
    # A replica that has not caught up with the write: "already gone" is all the removal can
    # say, and it says it did not see the job's request, so the rollback does not believe it.
    sim.set_replication_lag(seconds=600)
    await tools.call(catalog.WRITE_ROLE, write_args())
    sim.advance(timedelta(minutes=5))
    hidden = await tools.call(catalog.REMOVE_ROLE, remove_args())
    assert has(hidden.body, already_gone=True, ours_seen=False)
    assert holders(sim, USER_ADMIN) == {DAVE}  # still held: the removal never reached it

    sim.advance(timedelta(minutes=5))
    sim.set_replication_lag(seconds=0)  # the replicas catch up
    removed = await tools.call(catalog.REMOVE_ROLE, remove_args())
    assert has(removed.body, removed=True, already_gone=False, verified=True, ours_seen=True)
    assert holders(sim, USER_ADMIN) == set()
