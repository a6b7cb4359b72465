"""The strict simulated tenant keeps PIM's own rules, and our tools cope with each of them.

Every rule runs on the tenant's injected clock (``ManualClock``): no test waits for time.
Before the strict profile, the simulated tenant accepted 1-minute grants, let them be removed
at once, treated no request as ``ScheduleCreated``, let the last Global Administrator go and
kept no record of session revocations; our tool turned an early removal into a bare error.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import timedelta

import pytest

from adapters.graph import GraphConfig, GraphTools
from adapters.graph.simulated import ManualClock, SimulatedTenant
from adapters.graph.simulated.clock import iso
from engine import catalog
from engine.errors import GraphError, InputError
from tests.integration.graph.conftest import FAST, config_for
from tests.integration.graph.support import (
    DAVE,
    ERIN,
    EXCLUSION_GROUP,
    GLOBAL_ADMIN,
    MFA_POLICY,
    USER_ADMIN,
    MemorySnapshots,
    ca_args,
    has,
    holders,
    read_args,
    remove_args,
    write_args,
)

REQUESTS = "/roleManagement/directory/roleAssignmentScheduleRequests"
CA_POLICIES = "/identity/conditionalAccess/policies"


def admin_remove(principal: str, role: str) -> dict[str, str]:
    """A raw ``adminRemove`` body, sent without our tool's ownership checks."""
    return {
        "action": "adminRemove",
        "principalId": principal,
        "roleDefinitionId": role,
        "directoryScopeId": "/",
    }


def statuses(sim: SimulatedTenant) -> list[int]:
    return [e.status for e in sim.requests_log if e.method == "POST" and REQUESTS in e.path]


async def test_the_strict_profile_is_on_by_default() -> None:
    assert SimulatedTenant().strict is True
    assert SimulatedTenant(strict=False).strict is False


async def test_active_duration_under_five_minutes_is_refused(
    sim: SimulatedTenant, tools: GraphTools
) -> None:
    before = sim.state()
    raw = {
        "action": "adminAssign",
        "principalId": DAVE,
        "roleDefinitionId": USER_ADMIN,
        "directoryScopeId": "/",
        "justification": "raw request, past our own argument check",
        "scheduleInfo": {"expiration": {"type": "afterDuration", "duration": "PT4M"}},
    }
    with pytest.raises(GraphError) as caught:
        await tools.client.post(REQUESTS, raw)
    assert (caught.value.status, caught.value.code) == (400, "ActiveDurationTooShort")
    assert holders(sim, USER_ADMIN) == set()
    assert sim.state()["assignments"] == before["assignments"]


async def test_our_tool_refuses_under_five_minutes_before_sending(
    sim: SimulatedTenant, tools: GraphTools
) -> None:
    sent = len(sim.requests_log)
    with pytest.raises(InputError):
        await tools.call(catalog.WRITE_ROLE, write_args(minutes=4))
    assert len(sim.requests_log) == sent
    assert holders(sim, USER_ADMIN) == set()


async def test_five_minutes_is_accepted(sim: SimulatedTenant, tools: GraphTools) -> None:
    assert (await tools.call(catalog.WRITE_ROLE, write_args(minutes=5))).ok
    assert holders(sim, USER_ADMIN) == {DAVE}


async def test_early_removal_is_refused_with_when_it_becomes_possible(
    sim: SimulatedTenant, tools: GraphTools, clock: ManualClock
) -> None:
    granted_at = clock.now()
    await tools.call(catalog.WRITE_ROLE, write_args())
    clock.advance(timedelta(minutes=4, seconds=59))

    early = await tools.call(catalog.REMOVE_ROLE, remove_args())

    not_before = iso(granted_at + timedelta(minutes=5))
    assert (early.status, dict(early.body)) == (
        "error",
        {"error": "REMOVAL_NOT_YET_ALLOWED", "not_before": not_before},
    )
    assert holders(sim, USER_ADMIN) == {DAVE}  # still held: containment is the caller's job
    assert statuses(sim)[-1] == 400  # the tenant itself refused, not our tool

    clock.advance(timedelta(seconds=1))
    removed = await tools.call(catalog.REMOVE_ROLE, remove_args())
    assert has(removed.body, removed=True, already_gone=False, verified=True)
    assert holders(sim, USER_ADMIN) == set()


async def test_the_tenant_answers_early_removal_with_a_graph_error(
    sim: SimulatedTenant, tools: GraphTools
) -> None:
    await tools.call(catalog.WRITE_ROLE, write_args())
    with pytest.raises(GraphError) as caught:
        await tools.client.post(REQUESTS, admin_remove(DAVE, USER_ADMIN))
    assert (caught.value.status, caught.value.code) == (400, "ActiveDurationTooShort")
    assert caught.value.request_id  # a real Graph error body, with its innerError ids


async def test_the_last_global_administrator_cannot_be_removed(
    sim: SimulatedTenant, tools: GraphTools, clock: ManualClock
) -> None:
    body = admin_remove(ERIN, GLOBAL_ADMIN)
    with pytest.raises(GraphError) as caught:
        await tools.client.post(REQUESTS, body)
    assert caught.value.status == 400
    assert holders(sim, GLOBAL_ADMIN) == {ERIN}

    await tools.call(catalog.WRITE_ROLE, write_args(role=GLOBAL_ADMIN))
    clock.advance(timedelta(minutes=5))
    await tools.client.post(REQUESTS, body)  # no longer the last one
    assert holders(sim, GLOBAL_ADMIN) == {DAVE}


@pytest.fixture
async def tools_ahead(
    config: GraphConfig, snapshots: MemorySnapshots, clock: ManualClock
) -> AsyncIterator[GraphTools]:
    """Our clock a minute ahead of the tenant's: the request's start lies in its future."""
    async with GraphTools(
        config, snapshots, clock=lambda: clock.now() + timedelta(minutes=1)
    ) as graph_tools:
        yield graph_tools


async def test_schedule_created_is_a_live_grant(
    sim: SimulatedTenant, tools_ahead: GraphTools, clock: ManualClock
) -> None:
    written = await tools_ahead.call(catalog.WRITE_ROLE, write_args())
    assert written.status == "success"
    assert written.body["status"] == "ScheduleCreated"

    clock.advance(timedelta(minutes=1))
    present = await tools_ahead.call(catalog.READ_ROLE, read_args("present"))
    assert has(present.body, verified=True, present=True)
    # The sweep finds it too: a ScheduleCreated request is ours and live.
    assert [g.job_id for g in await tools_ahead.find_marked_grants()] == ["job-1"]


async def test_session_revocation_is_recorded(
    sim: SimulatedTenant, tools: GraphTools, clock: ManualClock
) -> None:
    args = {"tenant_id": sim.tenant_id, "principal_id": DAVE}
    assert (await tools.call(catalog.REVOKE_SESSIONS, args)).body["revoked"] is True
    assert sim.state()["signInSessionRevocations"] == [{"userId": DAVE, "at": iso(clock.now())}]


@pytest.mark.parametrize(
    "path",
    [
        "/users/00000000-0000-0000-0000-00000000f00d",
        "/groups/00000000-0000-0000-0000-00000000f00d",
        "/roleManagement/directory/roleDefinitions/00000000-0000-0000-0000-00000000f00d",
    ],
)
async def test_unknown_directory_objects_answer_like_graph(tools: GraphTools, path: str) -> None:
    with pytest.raises(GraphError) as caught:
        await tools.client.get(path)
    assert (caught.value.status, caught.value.code) == (404, "Request_ResourceNotFound")
    assert caught.value.message.startswith("Resource '00000000-0000-0000-0000-00000000f00d'")


async def test_ca_throttling_without_retry_after_is_backed_off(
    clock: ManualClock, snapshots: MemorySnapshots
) -> None:
    """Deterministic: the rate gate's clock moves only when the client sleeps."""
    elapsed, waits = [0.0], list[float]()

    async def sleep(seconds: float) -> None:
        waits.append(seconds)
        elapsed[0] += seconds

    unpaced = replace(FAST, ca_interval=0.0, max_attempts=8, base_delay=0.5, max_delay=2.0)
    async with SimulatedTenant(
        clock=clock, ca_interval=1.0, strict=True, rate_clock=lambda: elapsed[0]
    ) as sim:
        config = config_for(sim, unpaced)
        async with GraphTools(config, snapshots, clock=clock.now, sleep=sleep) as tools:
            result = await tools.call(catalog.EXCLUDE_GROUP, ca_args())
        throttled = [e for e in sim.requests_log if e.status == 429]
    assert result.body["verified"] is True
    assert throttled  # the tenant said 429, without Retry-After ...
    assert any(w >= 0.25 for w in waits)  # ... and the client backed off by itself


def raw_assign(**extra: object) -> dict[str, object]:
    """A valid ``adminAssign`` body, sent past our tool, with ``extra`` merged in."""
    body: dict[str, object] = {
        "action": "adminAssign",
        "principalId": DAVE,
        "roleDefinitionId": USER_ADMIN,
        "directoryScopeId": "/",
        "justification": "raw request, past our own argument check",
        "scheduleInfo": {"expiration": {"type": "afterDuration", "duration": "PT30M"}},
    }
    return body | extra


@pytest.mark.parametrize(
    ("path", "body", "unknown"),
    [
        pytest.param(
            REQUESTS, raw_assign(justificaton="typo"), "justificaton", id="misspelt-property"
        ),
        pytest.param(
            REQUESTS,
            raw_assign(scheduleInfo={"expiration": {"type": "afterDuration", "minutes": 30}}),
            "minutes",
            id="nested-unknown-property",
        ),
        pytest.param(
            REQUESTS,
            raw_assign(ticketInfo={"ticketNumber": "INC-42", "url": "https://x.test/42"}),
            "url",
            id="ticket-extra-property",
        ),
        pytest.param(
            f"{CA_POLICIES}/{MFA_POLICY}",
            {"conditions": {"users": {"excludeGroup": [EXCLUSION_GROUP]}}},
            "excludeGroup",
            id="ca-users-singular",
        ),
        pytest.param(
            f"{CA_POLICIES}/{MFA_POLICY}",
            {"condition": {"users": {"excludeGroups": [EXCLUSION_GROUP]}}},
            "condition",
            id="ca-top-level-typo",
        ),
        pytest.param(
            f"{CA_POLICIES}/{MFA_POLICY}",
            {"conditions": {"user": {"excludeGroups": [EXCLUSION_GROUP]}}},
            "user",
            id="ca-condition-typo",
        ),
        pytest.param(
            f"/users/{DAVE}/checkMemberGroups", {"groups": []}, "groups", id="action-parameter"
        ),
    ],
)
async def test_a_property_the_type_does_not_define_is_refused_not_ignored(
    sim: SimulatedTenant, tools: GraphTools, path: str, body: dict[str, object], unknown: str
) -> None:
    # Graph's types are not open: "The property 'x' does not exist on type ..." (400). A
    # tenant that ignored it would let a misspelt justification, ticket or exclusion pass
    # here and fail (or mean something else) against Entra.
    before = sim.state()
    send = tools.client.patch if path.startswith(CA_POLICIES) else tools.client.post
    with pytest.raises(GraphError) as caught:
        await send(path, body)
    assert (caught.value.status, caught.value.code) == (400, "BadRequest")
    assert f"'{unknown}'" in caught.value.message  # the answer names what it refused
    assert sim.state() == before  # nothing granted, the policy untouched


async def test_our_own_bodies_use_only_defined_properties(
    sim: SimulatedTenant, tools: GraphTools, clock: ManualClock
) -> None:
    # Every write our tools send passes the same check: assign (with ticket and schedule),
    # the CA exclusion and its restore (the whole users condition as read), removal.
    assert (await tools.call(catalog.WRITE_ROLE, write_args())).ok
    assert (await tools.call(catalog.EXCLUDE_GROUP, ca_args())).ok
    assert (await tools.call(catalog.RESTORE_CA, ca_args())).ok
    clock.advance(timedelta(minutes=5))
    assert (await tools.call(catalog.REMOVE_ROLE, remove_args())).ok
    refused = [e for e in sim.requests_log if e.method != "GET" and e.status >= 400]
    assert refused == []
