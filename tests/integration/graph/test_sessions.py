"""Session revocation against the simulated tenant: one principal, or every user a
Conditional Access exclusion group holds (the CA template's end step)."""

from __future__ import annotations

import uuid

import pytest

from adapters.graph import GraphTools
from adapters.graph.simulated import SimulatedTenant
from engine import catalog
from engine.errors import GraphError
from tests.integration.graph.support import (
    ALICE,
    DAVE,
    DEVICE,
    EXCLUSION_GROUP,
    RESPONDERS,
    TENANT,
)


def revoked(sim: SimulatedTenant) -> list[str]:
    return [r["userId"] for r in sim.directory.revocations]


async def test_a_principal_s_sessions_are_revoked(sim: SimulatedTenant, tools: GraphTools) -> None:
    done = await tools.call(catalog.REVOKE_SESSIONS, {"tenant_id": TENANT, "principal_id": DAVE})
    assert done.ok
    assert revoked(sim) == [DAVE]
    assert sim.directory.users[DAVE]["signInSessionsValidFromDateTime"]


async def test_every_user_of_the_exclusion_group_is_revoked(
    sim: SimulatedTenant, tools: GraphTools
) -> None:
    sim.add_member(EXCLUSION_GROUP, DAVE)
    sim.add_member(EXCLUSION_GROUP, ALICE)
    args = {"tenant_id": TENANT, "group_id": EXCLUSION_GROUP}
    done = await tools.call(catalog.REVOKE_GROUP_SESSIONS, args)
    assert done.ok
    assert done.body["users"] == 2
    assert sorted(revoked(sim)) == sorted([DAVE, ALICE])


async def test_users_of_nested_groups_are_revoked_and_nothing_else(
    sim: SimulatedTenant, tools: GraphTools
) -> None:
    # Graph's transitiveMembers is the flat list of every nested member, of every kind
    # (users, groups, devices...): "List group transitive members".
    sim.add_member(EXCLUSION_GROUP, DAVE)
    sim.add_member(EXCLUSION_GROUP, RESPONDERS)  # a nested group ...
    sim.add_member(RESPONDERS, ALICE)  # ... whose user the exclusion lets through too
    sim.add_member(EXCLUSION_GROUP, DEVICE, kind="device")
    args = {"tenant_id": TENANT, "group_id": EXCLUSION_GROUP}
    done = await tools.call(catalog.REVOKE_GROUP_SESSIONS, args)
    assert done.ok, done.body
    assert done.body["users"] == 2
    assert sorted(revoked(sim)) == sorted([DAVE, ALICE])  # never the group or the device
    posted = [e.path for e in sim.requests_log if e.method == "POST"]
    assert all(RESPONDERS not in p and DEVICE not in p for p in posted)


async def test_the_tenant_lists_nested_members_of_every_kind(
    sim: SimulatedTenant, tools: GraphTools
) -> None:
    sim.add_member(EXCLUSION_GROUP, DAVE)
    sim.add_member(EXCLUSION_GROUP, RESPONDERS)
    sim.add_member(RESPONDERS, ALICE)
    sim.add_member(RESPONDERS, EXCLUSION_GROUP)  # a cycle must not loop
    sim.add_member(EXCLUSION_GROUP, DEVICE, kind="device")
    path = f"/groups/{EXCLUSION_GROUP}"
    direct = await tools.client.get_all(f"{path}/members")
    nested = await tools.client.get_all(f"{path}/transitiveMembers")
    assert {(m["@odata.type"], m["id"]) for m in direct} == {
        ("#microsoft.graph.user", DAVE),
        ("#microsoft.graph.group", RESPONDERS),
        ("#microsoft.graph.device", DEVICE),
    }
    assert {(m["@odata.type"], m["id"]) for m in nested} == {
        ("#microsoft.graph.user", DAVE),
        ("#microsoft.graph.group", RESPONDERS),
        ("#microsoft.graph.user", ALICE),
        ("#microsoft.graph.device", DEVICE),
    }
    # checkMemberGroups is transitive ("directoryObject: checkMemberGroups").
    assert await tools.check_member_groups(ALICE, [EXCLUSION_GROUP, RESPONDERS]) == [
        EXCLUSION_GROUP,
        RESPONDERS,
    ]
    with pytest.raises(ValueError, match="kind"):
        sim.add_member(EXCLUSION_GROUP, "0f6a1f7e-2f4b-4f5c-8d3e-1a2b3c4d5e6f")


async def test_an_empty_group_has_nothing_to_revoke(
    sim: SimulatedTenant, tools: GraphTools
) -> None:
    args = {"tenant_id": TENANT, "group_id": EXCLUSION_GROUP}
    done = await tools.call(catalog.REVOKE_GROUP_SESSIONS, args)
    assert done.ok
    assert done.body["users"] == 0
    assert revoked(sim) == []


async def test_an_unknown_group_is_a_404(sim: SimulatedTenant, tools: GraphTools) -> None:
    with pytest.raises(GraphError) as err:
        await tools.call(
            catalog.REVOKE_GROUP_SESSIONS, {"tenant_id": TENANT, "group_id": str(uuid.uuid4())}
        )
    assert err.value.status == 404
    assert revoked(sim) == []
