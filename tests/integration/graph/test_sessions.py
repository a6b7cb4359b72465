"""Session revocation against the simulated tenant: one principal, or every user a
Conditional Access exclusion group holds (the CA template's end step)."""

from __future__ import annotations

import uuid

import pytest

from adapters.graph import GraphTools
from adapters.graph.simulated import SimulatedTenant
from engine import catalog
from engine.errors import GraphError
from tests.integration.graph.support import ALICE, DAVE, EXCLUSION_GROUP, TENANT


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
