"""The simulated reporting API (audit and sign-in logs) and the activity reads over it:
filters, paging, the log latency, 429 on bursts, and a read that paces itself through them.

Rate limits are measured on an injected clock that only the client's sleep moves, so no test
here waits on (or races) the wall clock."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import timedelta
from typing import Any

import aiohttp
import pytest

from adapters.graph import GraphTools
from adapters.graph.client import GraphClient
from adapters.graph.simulated import Fault, ManualClock, SimulatedTenant
from engine import activity, catalog
from engine.errors import InputError
from engine.timeutil import iso_ms
from tests.integration.graph.conftest import FAST, config_for
from tests.integration.graph.support import (
    ALICE,
    BOB,
    DAVE,
    DEVICE,
    EMERGENCY_GROUP,
    ERIN,
    MFA_POLICY,
    RESPONDERS,
    TENANT,
    MemorySnapshots,
)
from tests.support.virtual_time import SteppedSeconds

AUDITS = "/v1.0/auditLogs/directoryAudits"
SIGN_INS = "/v1.0/auditLogs/signIns"


@pytest.fixture
def elapsed() -> SteppedSeconds:
    return SteppedSeconds()


@pytest.fixture
async def tenant(clock: ManualClock, elapsed: SteppedSeconds) -> AsyncIterator[SimulatedTenant]:
    async with SimulatedTenant(clock=clock, ca_interval=0.0, rate_clock=elapsed) as sim:
        yield sim


async def get(sim: SimulatedTenant, url: str, **params: str) -> tuple[int, Any, Any]:
    token, _ = sim.core.issue_token()
    headers = {"Authorization": f"Bearer {token}"}
    full = url if url.startswith("http") else sim.base_url + url
    async with (
        aiohttp.ClientSession() as http,
        http.get(full, params=params or None, headers=headers) as resp,
    ):
        return resp.status, await resp.json(), resp.headers


def between(field: str, clock: ManualClock, minutes: float) -> str:
    start, end = clock.now(), clock.now() + timedelta(minutes=minutes)
    return f"{field} ge {iso_ms(start)} and {field} le {iso_ms(end)}"


async def test_audit_log_filters_by_initiator_and_time_and_pages(
    tenant: SimulatedTenant, clock: ManualClock
) -> None:
    span = between("activityDateTime", clock, 5)
    clock.advance(60)
    tenant.act(ALICE, "Reset user password", [BOB])
    tenant.act(BOB, "Reset user password", [ALICE])  # someone else: not Alice's
    clock.advance(60)
    tenant.act(ALICE, "Delete authentication method", [DAVE])
    clock.advance(600)
    tenant.act(ALICE, "Reset user password", [DAVE])  # after the span
    wanted = f"initiatedBy/user/id eq '{ALICE}' and {span}"
    status, page, _ = await get(tenant, AUDITS, **{"$filter": wanted, "$top": "1"})
    seen = []
    while True:
        assert status == 200, page
        assert len(page["value"]) <= 1
        seen += page["value"]
        if "@odata.nextLink" not in page:
            break
        status, page, _ = await get(tenant, page["@odata.nextLink"])
    assert [e["activityDisplayName"] for e in seen] == [
        "Delete authentication method",  # newest first, as Graph lists
        "Reset user password",
    ]
    assert {e["initiatedBy"]["user"]["id"] for e in seen} == {ALICE}


@pytest.mark.parametrize(
    ("params", "why"),
    [
        ({"$filter": "createdDateTime ge '2026-01-01T00:00:00Z'"}, "a quoted DateTimeOffset"),
        ({"$filter": "ipAddress eq '192.0.2.10'"}, "a field the endpoint does not filter on"),
        ({"$filter": f"userId ne '{ALICE}'"}, "an operator outside eq/ge/le"),
        ({"$filter": "userId ge 'a'"}, "ge on an id"),
        ({"$top": "1001"}, "a page above the documented 1,000"),
    ],
)
async def test_sign_in_log_refuses_what_graph_refuses(
    tenant: SimulatedTenant, params: dict[str, str], why: str
) -> None:
    status, body, _ = await get(tenant, SIGN_INS, **params)
    assert status == 400, why
    assert body["error"]["code"] == "BadRequest"


async def test_entries_appear_only_after_the_log_latency(
    tenant: SimulatedTenant, clock: ManualClock
) -> None:
    tenant.set_log_latency(120)
    tenant.sign_in(ALICE)
    wanted = {"$filter": f"userId eq '{ALICE}'"}
    assert (await get(tenant, SIGN_INS, **wanted))[1]["value"] == []
    clock.advance(120)
    (entry,) = (await get(tenant, SIGN_INS, **wanted))[1]["value"]
    assert entry["userId"] == ALICE


async def test_a_burst_gets_429_with_retry_after_until_the_window_moves(
    tenant: SimulatedTenant, elapsed: SteppedSeconds
) -> None:
    answers = [(await get(tenant, SIGN_INS))[0] for _ in range(5)]
    assert answers == [200] * 5  # 5 requests per 10 s are allowed ...
    status, body, headers = await get(tenant, SIGN_INS)
    assert (status, body["error"]["code"]) == (429, "TooManyRequests")  # ... a 6th is not
    assert headers["Retry-After"] == "10"
    elapsed.now += 10
    assert (await get(tenant, SIGN_INS))[0] == 200


def read_args(clock: ManualClock, **targets: str) -> dict[str, Any]:
    since = clock.now()
    return {
        "tenant_id": TENANT,
        **targets,
        "job_id": "job-activity",
        **activity.span(since, since + timedelta(minutes=30)),
    }


@pytest.fixture
async def paced_tools(
    tenant: SimulatedTenant, clock: ManualClock, elapsed: SteppedSeconds
) -> AsyncIterator[GraphTools]:
    """The adapter as configured for Graph: the reporting API paced at one request per 2 s."""
    policy = replace(FAST, reports_interval=2.0, total_budget=60.0)
    config = config_for(tenant, policy)
    client = GraphClient(config, sleep=elapsed.sleep, monotonic=elapsed)
    async with GraphTools(config, MemorySnapshots(), client=client, clock=clock.now) as t:
        yield t


async def test_read_activity_summarises_the_principal_paced_and_through_a_429(
    tenant: SimulatedTenant, clock: ManualClock, elapsed: SteppedSeconds, paced_tools: GraphTools
) -> None:
    args = read_args(clock, principal_id=ALICE)
    clock.advance(60)
    tenant.act(ALICE, "Reset user password", [BOB])
    tenant.act(ALICE, "Reset user password", [DAVE])
    tenant.act(BOB, "Delete user", [DAVE])  # not Alice's doing
    for _ in range(3):
        tenant.sign_in(ALICE)
    tenant.sign_in(BOB)
    tenant.page_size = 2  # Alice's three sign-ins take two pages
    tenant.add_fault(_throttle(retry_after=3))
    result = await paced_tools.call(catalog.READ_ACTIVITY, args)
    assert result.ok, result.body
    audits, sign_ins = result.body["audits"], result.body["sign_ins"]
    assert (audits["count"], sign_ins["count"]) == (2, 3)
    (op,) = audits["operations"]
    assert (op["name"], op["count"]) == ("Reset user password", 2)
    assert sorted(op["targets"]) == sorted(
        tenant.directory.users[u]["userPrincipalName"] for u in (BOB, DAVE)
    )
    reads = [e for e in tenant.requests_log if "/auditLogs/" in e.path]
    assert [e.status for e in reads] == [429, 200, 200, 200]
    assert 3 in elapsed.waits  # the server's Retry-After was honoured ...
    assert elapsed.waits.count(2.0) >= 2  # ... and the reads were paced 2 s apart
    assert result.body["settled"] is False  # read at once: late entries may still come


def _throttle(retry_after: int) -> Fault:
    return Fault("throttle", method="GET", path="/auditLogs/", retry_after=retry_after)


async def test_exclusion_activity_counts_the_sign_ins_the_exclusion_let_through(
    tenant: SimulatedTenant, clock: ManualClock, paced_tools: GraphTools
) -> None:
    tenant.add_member(EMERGENCY_GROUP, DAVE)  # the group MFA_POLICY excludes
    args = read_args(clock, policy_id=MFA_POLICY, group_id=EMERGENCY_GROUP)
    clock.advance(60)
    tenant.sign_in(DAVE)
    tenant.sign_in(DAVE, app="Microsoft Entra admin center")
    tenant.sign_in(ERIN)  # not a member: the exclusion did nothing for her
    result = await paced_tools.call(catalog.READ_EXCLUSION_ACTIVITY, args)
    assert result.ok, result.body
    sign_ins = result.body["sign_ins"]
    assert (sign_ins["count"], sign_ins["let_through"], sign_ins["users"]) == (2, 2, 1)
    line = activity.sentence(activity.read_record("tr_1", result.body), "Dave")
    assert line is not None
    assert "let through 2 sign-in(s) of 1 user(s)" in line


async def test_exclusion_activity_counts_the_members_of_nested_groups(
    tenant: SimulatedTenant, clock: ManualClock, paced_tools: GraphTools
) -> None:
    # A CA exclusion of a group excludes its nested members too ("Conditional Access: Users,
    # groups, and workload identities": "Policy is applied to nested users and groups"), and
    # a group holds devices and groups as well as users ("List group transitive members").
    tenant.add_member(EMERGENCY_GROUP, DAVE)
    tenant.add_member(EMERGENCY_GROUP, RESPONDERS)
    tenant.add_member(RESPONDERS, ALICE)
    tenant.add_member(EMERGENCY_GROUP, DEVICE, kind="device")
    args = read_args(clock, policy_id=MFA_POLICY, group_id=EMERGENCY_GROUP)
    clock.advance(60)
    tenant.sign_in(DAVE)
    nested = tenant.sign_in(ALICE)
    tenant.sign_in(ERIN)  # not a member: the exclusion did nothing for her
    applied = {p["id"]: p["result"] for p in nested["appliedConditionalAccessPolicies"]}
    assert applied[MFA_POLICY] == "notApplied"  # the tenant excluded Alice through nesting
    result = await paced_tools.call(catalog.READ_EXCLUSION_ACTIVITY, args)
    assert result.ok, result.body
    sign_ins = result.body["sign_ins"]
    assert (sign_ins["count"], sign_ins["let_through"], sign_ins["users"]) == (2, 2, 2)
    queried = [e.query for e in tenant.requests_log if e.path == SIGN_INS]
    assert not [q for q in queried if RESPONDERS in q or DEVICE in q]  # users only


async def test_a_span_that_runs_backwards_is_refused_before_anything_is_sent(
    tenant: SimulatedTenant, clock: ManualClock, paced_tools: GraphTools
) -> None:
    args = read_args(clock, principal_id=ALICE)
    args["since"], args["until"] = args["until"], args["since"]
    with pytest.raises(InputError):
        await paced_tools.call(catalog.READ_ACTIVITY, args)
    assert not [e for e in tenant.requests_log if "/auditLogs/" in e.path]


async def test_an_action_in_the_same_second_as_the_span_start_is_inside_it(
    tenant: SimulatedTenant, clock: ManualClock
) -> None:
    clock.advance(0.25)
    wanted = f"initiatedBy/user/id eq '{ALICE}' and " + between("activityDateTime", clock, 1)
    clock.advance(0.5)  # the same second as the span's start, after it
    tenant.act(ALICE, "Reset user password", [BOB])
    status, page, _ = await get(tenant, AUDITS, **{"$filter": wanted})
    assert status == 200
    assert [e["activityDisplayName"] for e in page["value"]] == ["Reset user password"]
