"""Entra role tools against the simulated tenant: grant, verify, roll back, expire, refuse."""

from __future__ import annotations

from datetime import timedelta

import pytest

from adapters.graph import GraphTools
from adapters.graph.simulated import ManualClock, SimulatedTenant
from engine import catalog
from engine.errors import GraphError, InputError
from engine.tools import GRANT_ENDS_AT
from tests.integration.graph.support import (
    ALICE,
    DAVE,
    ERIN,
    GLOBAL_ADMIN,
    USER_ADMIN,
    has,
    holders,
    posts,
    read_args,
    refused,
    remove_args,
    write_args,
)

REQUESTS = "roleAssignmentScheduleRequests"


async def test_grant_verify_rollback_verify(sim: SimulatedTenant, tools: GraphTools) -> None:
    granted = await tools.call(catalog.WRITE_ROLE, write_args(minutes=30))
    assert granted.ok
    assert granted.body["status"] == "Provisioned"
    assert granted.body["recovered_by_read_back"] is False
    assert granted.body["schedule"]["expiration"] == {"type": "afterDuration", "duration": "PT30M"}

    present = await tools.call(catalog.READ_ROLE, read_args("present"))
    assert present.body["verified"] is True
    assert present.body["holders"] == [DAVE]
    assert has(present.body, holders_before=[], unexpected_holders=[], lost_holders=[])

    sim.advance(timedelta(minutes=5))  # PIM allows removal only after 5 minutes
    removed = await tools.call(catalog.REMOVE_ROLE, remove_args())
    assert removed.ok
    assert has(removed.body, removed=True, already_gone=False, verified=True, ours_seen=True)

    absent = await tools.call(catalog.READ_ROLE, read_args("absent"))
    assert absent.body["verified"] is True
    assert absent.body["holders"] == []
    assert holders(sim, USER_ADMIN) == set()
    assert posts(sim, REQUESTS) == 2  # one adminAssign, one adminRemove


async def test_request_carries_marker_ticket_and_pim_expiry(
    sim: SimulatedTenant, tools: GraphTools, clock: ManualClock
) -> None:
    granted = await tools.call(catalog.WRITE_ROLE, write_args(minutes=45, job="job-77"))
    (request,) = sim.directory.requests
    assert request["justification"] == "[breakglass job=job-77] INC-42: restore mail flow"
    assert request["ticketInfo"] == {"ticketNumber": "INC-42", "ticketSystem": "breakglass"}
    (grant,) = [g for g in sim.active_grants() if g.principal_id == DAVE]
    assert grant.end == clock.now() + timedelta(minutes=45)
    # The write says when PIM ends it, to the second: the job names it in an escalation.
    assert grant.end is not None
    assert granted.body[GRANT_ENDS_AT] == grant.end.strftime("%Y-%m-%dT%H:%M:%SZ")


async def test_pim_expiry_removes_the_grant_by_itself(
    sim: SimulatedTenant, tools: GraphTools, clock: ManualClock
) -> None:
    await tools.call(catalog.WRITE_ROLE, write_args(minutes=30))
    clock.advance(timedelta(minutes=29))
    assert (await tools.call(catalog.READ_ROLE, read_args("present"))).body["verified"]

    clock.advance(timedelta(minutes=1))
    absent = await tools.call(catalog.READ_ROLE, read_args("absent"))
    assert absent.body["verified"] is True
    assert holders(sim, USER_ADMIN) == set()

    # The rollback still runs and finds nothing left to do.
    removed = await tools.call(catalog.REMOVE_ROLE, remove_args())
    assert has(removed.body, removed=True, already_gone=True, verified=True, ours_seen=True)


async def test_bearer_token_expiry_on_the_sim_clock_is_renewed(
    sim: SimulatedTenant, tools: GraphTools, clock: ManualClock
) -> None:
    await tools.call(catalog.READ_ROLE, read_args("absent"))
    clock.advance(timedelta(hours=2))  # the sim now refuses the cached token as expired
    assert (await tools.call(catalog.READ_ROLE, read_args("absent"))).body["verified"]
    refusals = [e for e in sim.requests_log if e.status == 401]
    assert len(refusals) == 1


async def test_duration_above_role_maximum_is_refused_and_nothing_granted(
    sim: SimulatedTenant, tools: GraphTools
) -> None:
    args = write_args(minutes=120, role=GLOBAL_ADMIN)
    err = await refused(sim, tools, catalog.WRITE_ROLE, args, GraphError)
    assert err.code == "RoleAssignmentRequestPolicyValidationFailed"
    assert err.status == 400
    assert "ExpirationRule" in err.message
    assert err.request_id
    sent = [e.status for e in sim.requests_log if REQUESTS in e.path and e.method == "POST"]
    assert sent == [400]  # refusal seen
    assert holders(sim, GLOBAL_ADMIN) == {ERIN}


async def test_existing_assignment_that_is_not_ours_is_refused(
    sim: SimulatedTenant, tools: GraphTools
) -> None:
    args = write_args(minutes=30, principal=ERIN, role=GLOBAL_ADMIN)
    err = await refused(sim, tools, catalog.WRITE_ROLE, args, GraphError)
    assert err.code == "RoleAssignmentExists"


async def test_retried_write_of_the_same_job_is_not_applied_twice(
    sim: SimulatedTenant, tools: GraphTools
) -> None:
    first = await tools.call(catalog.WRITE_ROLE, write_args())
    again = await tools.call(catalog.WRITE_ROLE, write_args())
    assert again.ok
    assert again.body["request_id"] == first.body["request_id"]
    assert again.body["recovered_by_read_back"] is True
    assert len(sim.active_grants()) == 2  # erin's standing grant and dave's one
    assert len(sim.directory.requests) == 1


async def test_principal_gaining_the_role_during_the_window_is_flagged_not_verified(
    sim: SimulatedTenant, tools: GraphTools, clock: ManualClock
) -> None:
    written = await tools.call(catalog.WRITE_ROLE, write_args())
    assert written.body["holders_before"] == []
    sim.grant(ALICE, USER_ADMIN)  # another administrator, outside breakglass

    during = await tools.call(catalog.READ_ROLE, read_args("present"))
    assert has(during.body, verified=False, present=True, unexpected_holders=[ALICE])
    assert during.body["holders"] == sorted([ALICE, DAVE])
    assert during.body["holders_before"] == []

    clock.advance(timedelta(minutes=5))
    await tools.call(catalog.REMOVE_ROLE, remove_args())
    after = await tools.call(catalog.READ_ROLE, read_args("absent"))
    assert has(after.body, verified=False, present=False, unexpected_holders=[ALICE])
    assert after.body["holders"] == [ALICE]  # dave is clean, but the role did not go back


async def test_rollback_leaves_an_assignment_it_did_not_create(
    sim: SimulatedTenant, tools: GraphTools
) -> None:
    sim.grant(DAVE, USER_ADMIN)
    before = sim.state()
    removed = await tools.call(catalog.REMOVE_ROLE, remove_args())
    assert has(removed.body, already_gone=True, verified=False, ours_seen=False)
    assert sim.state() == before
    assert posts(sim, REQUESTS) == 0


@pytest.mark.parametrize(
    "override",
    [
        {"principal_id": f"{DAVE}' or principalId ne '"},  # OData filter injection
        {"role_definition_id": "../../users"},  # path traversal
        {"duration_minutes": 481},  # above the catalog bound
        {"duration_minutes": True},  # bool is not an integer here
        {"job_id": "job 1]"},  # would forge or break the marker
        {"extra": "x"},
    ],
)
async def test_malformed_arguments_are_refused_before_any_request(
    sim: SimulatedTenant, tools: GraphTools, override: dict[str, object]
) -> None:
    await refused(sim, tools, catalog.WRITE_ROLE, write_args() | override, InputError)


async def test_revoke_sign_in_sessions(sim: SimulatedTenant, tools: GraphTools) -> None:
    args = {"tenant_id": sim.tenant_id, "principal_id": DAVE}
    result = await tools.call(catalog.REVOKE_SESSIONS, args)
    assert result.body == {"revoked": True, "principal_id": DAVE}
    assert sim.directory.users[DAVE]["signInSessionsValidFromDateTime"]


async def test_revoke_for_unknown_user_is_a_graph_error(
    sim: SimulatedTenant, tools: GraphTools
) -> None:
    args = {"tenant_id": sim.tenant_id, "principal_id": "00000000-0000-0000-0000-0000000000aa"}
    err = await refused(sim, tools, catalog.REVOKE_SESSIONS, args, GraphError)
    assert (err.status, err.code) == (404, "Request_ResourceNotFound")
