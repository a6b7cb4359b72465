"""A principal deleted during its role window, in the simulated tenant and our role tools.

Entra keeps a deleted user in deleted items for 30 days with its roles, and a restore gives
them back ("Recover from deletions", properties maintained with soft delete). So while the
user is deleted no request can remove its role, and that no instance is listed proves
nothing until the grant's own schedule has ended. Before, the simulated tenant could not
delete a user at all, and our removal failed on the refusal until the rollback's budget was
spent (tests/integration/graph/test_deleted_principal_job.py runs whole jobs).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import aiohttp
import pytest

from adapters.graph import GraphTools
from adapters.graph.roles import CLOCK_SKEW, PRINCIPAL_DELETED
from adapters.graph.simulated import ManualClock, SimulatedTenant
from adapters.graph.simulated.errors import SimError
from engine import catalog
from engine.errors import GraphError
from tests.integration.graph.conftest import config_for
from tests.integration.graph.support import (
    ALICE,
    DAVE,
    ERIN,
    EXCLUSION_GROUP,
    GLOBAL_ADMIN,
    REQUESTS,
    TENANT,
    USER_ADMIN,
    MemorySnapshots,
    has,
    holders,
    read_args,
    remove_args,
    statuses,
    write_args,
)


def stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


async def granted_then_deleted(sim: SimulatedTenant, tools: GraphTools) -> datetime:
    """Dave gets User Administrator for 30 minutes, and is deleted 6 minutes in; returns
    when his grant (with the clock skew we allow) lapses."""
    assert (await tools.call(catalog.WRITE_ROLE, write_args(minutes=30))).ok
    lapses = sim.clock.now() + timedelta(minutes=30) + CLOCK_SKEW
    sim.advance(timedelta(minutes=6))
    sim.delete_user(DAVE)
    return lapses


async def test_no_removal_runs_while_the_principal_is_deleted_and_the_result_says_until_when(
    sim: SimulatedTenant, tools: GraphTools
) -> None:
    lapses = await granted_then_deleted(sim, tools)

    removed = await tools.call(catalog.REMOVE_ROLE, remove_args())

    assert removed.status == "error"
    assert has(
        removed.body,
        error=PRINCIPAL_DELETED,
        principal_deleted=True,
        lapsed=False,
        lapses_at=stamp(lapses),
        removed=False,
        verified=False,
        ours_seen=True,
    )
    assert statuses(sim, "POST", REQUESTS)[1:] == [400]  # after the write: adminRemove refused
    assert holders(sim, USER_ADMIN) == {DAVE}  # kept in deleted items, with its schedule
    absent = await tools.call(catalog.READ_ROLE, read_args("absent"))
    # Nothing is listed, yet a restore would bring it back: not verified.
    assert has(absent.body, present=False, verified=False, principal_deleted=True)


async def test_a_restore_before_the_grant_ends_brings_the_role_back_and_it_is_removed(
    sim: SimulatedTenant, tools: GraphTools
) -> None:
    await granted_then_deleted(sim, tools)
    sim.restore_user(DAVE)

    present = await tools.call(catalog.READ_ROLE, read_args("present"))
    assert has(present.body, present=True, verified=True, holders=[DAVE])
    removed = await tools.call(catalog.REMOVE_ROLE, remove_args())
    assert has(removed.body, removed=True, already_gone=False, verified=True)
    assert "principal_deleted" not in removed.body
    assert holders(sim, USER_ADMIN) == set()


async def test_once_the_grant_has_lapsed_nothing_can_come_back_and_the_removal_is_done(
    sim: SimulatedTenant, tools: GraphTools, clock: ManualClock
) -> None:
    lapses = await granted_then_deleted(sim, tools)
    clock.advance(lapses - clock.now())

    removed = await tools.call(catalog.REMOVE_ROLE, remove_args())
    assert removed.ok
    assert has(removed.body, principal_deleted=True, lapsed=True, already_gone=True, verified=True)
    absent = await tools.call(catalog.READ_ROLE, read_args("absent"))
    assert has(absent.body, present=False, verified=True, principal_deleted=True, lapsed=True)

    sim.restore_user(DAVE)  # PIM's expiry ran while he was deleted
    assert holders(sim, USER_ADMIN) == set()


async def test_a_refusal_for_a_principal_that_exists_is_still_raised(
    sim: SimulatedTenant, tools: GraphTools
) -> None:
    # Only a deletion explains a refused removal away. Here Erin, the standing Global
    # Administrator, is deleted, so Dave's grant is the last one PIM protects.
    await tools.call(catalog.WRITE_ROLE, write_args(minutes=30, role=GLOBAL_ADMIN))
    sim.advance(timedelta(minutes=6))
    sim.delete_user(ERIN)
    with pytest.raises(GraphError) as err:
        await tools.call(catalog.REMOVE_ROLE, remove_args(role=GLOBAL_ADMIN))
    assert (err.value.status, err.value.code) == (400, "BadRequest")
    assert holders(sim, GLOBAL_ADMIN) == {DAVE, ERIN}


async def test_a_deleted_user_s_sessions_cannot_be_revoked_and_the_result_says_so(
    sim: SimulatedTenant, tools: GraphTools
) -> None:
    sim.delete_user(DAVE)
    done = await tools.call(catalog.REVOKE_SESSIONS, {"tenant_id": TENANT, "principal_id": DAVE})
    assert done.ok
    assert has(done.body, revoked=False, principal_deleted=True, principal_id=DAVE)
    assert sim.directory.revocations == []


async def test_a_deleted_user_leaves_the_group_member_lists_until_it_is_restored(
    sim: SimulatedTenant, tools: GraphTools
) -> None:
    sim.add_member(EXCLUSION_GROUP, DAVE)
    sim.add_member(EXCLUSION_GROUP, ALICE)
    sim.delete_user(DAVE)
    args = {"tenant_id": TENANT, "group_id": EXCLUSION_GROUP}
    done = await tools.call(catalog.REVOKE_GROUP_SESSIONS, args)
    assert has(done.body, users=1, revoked=[ALICE])
    sim.restore_user(DAVE)
    assert (await tools.call(catalog.REVOKE_GROUP_SESSIONS, args)).body["users"] == 2


async def test_a_user_is_restorable_for_thirty_days_only(
    sim: SimulatedTenant, tools: GraphTools, clock: ManualClock
) -> None:
    with pytest.raises(SimError) as unknown:
        sim.restore_user(DAVE)  # not deleted
    assert unknown.value.status == 404
    sim.delete_user(DAVE)
    with pytest.raises(SimError):
        sim.delete_user(DAVE)  # gone already
    clock.advance(timedelta(days=30, seconds=1))
    with pytest.raises(SimError) as purged:
        sim.restore_user(DAVE)
    assert purged.value.code == "Request_ResourceNotFound"
    # Not in deleted items any more: nothing shows the 404 to be a deletion.
    args = {"tenant_id": TENANT, "principal_id": DAVE}
    with pytest.raises(GraphError) as revoke:
        await tools.call(catalog.REVOKE_SESSIONS, args)
    assert revoke.value.status == 404


async def test_the_control_api_deletes_and_restores_a_user(
    sim: SimulatedTenant, http: aiohttp.ClientSession
) -> None:
    async with http.delete(f"{sim.base_url}/_sim/users/{DAVE}") as resp:
        assert resp.status == 204
    async with http.get(f"{sim.base_url}/_sim/state") as resp:
        state = await resp.json()
    assert [u["id"] for u in state["deletedUsers"]] == [DAVE]
    assert state["deletedUsers"][0]["deletedDateTime"]
    assert DAVE not in [u["id"] for u in state["users"]]
    restore = f"{sim.base_url}/_sim/deletedItems/{DAVE}/restore"
    async with http.post(restore) as resp:
        assert (resp.status, (await resp.json())["id"]) == (200, DAVE)
    async with http.post(restore) as resp:
        assert resp.status == 404
    assert "deletedDateTime" not in sim.directory.users[DAVE]


async def test_a_restarted_tenant_keeps_its_deleted_users(
    tmp_path: Path, clock: ManualClock
) -> None:
    path = tmp_path / "tenant.json"
    async with SimulatedTenant(clock=clock, ca_interval=0.02, state_path=path) as first:
        async with GraphTools(config_for(first), MemorySnapshots(), clock=clock.now) as tools:
            await tools.call(catalog.WRITE_ROLE, write_args(minutes=30))
        first.delete_user(DAVE)
    async with SimulatedTenant(clock=clock, ca_interval=0.02, state_path=path) as second:
        assert DAVE in second.directory.deleted_users
        second.restore_user(DAVE)
        assert holders(second, USER_ADMIN) == {DAVE}
