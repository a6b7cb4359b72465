"""The simulated tenant keeps its state in a JSON file and resumes it after a restart.

Before, a restarted tenant started from the seed: a grant made before the restart was gone,
so a rollback "verified" a removal that never happened.
"""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest

from adapters.graph import GraphTools
from adapters.graph.simulated import ManualClock, SimulatedTenant
from engine import catalog
from engine.errors import ConfigError
from tests.integration.graph import support
from tests.integration.graph.conftest import config_for


def tenant(clock: ManualClock, path: Path) -> SimulatedTenant:
    return SimulatedTenant(clock=clock, ca_interval=0.02, strict=True, state_path=path)


async def test_a_restarted_tenant_resumes_grants_policies_and_requests(
    tmp_path: Path, clock: ManualClock
) -> None:
    path, snapshots = tmp_path / "tenant.json", support.MemorySnapshots()
    async with tenant(clock, path) as first:
        async with GraphTools(config_for(first), snapshots, clock=clock.now) as tools:
            await tools.call(catalog.WRITE_ROLE, support.write_args())
            await tools.call(catalog.EXCLUDE_GROUP, support.ca_args())
            await tools.call(
                catalog.REVOKE_SESSIONS,
                {"tenant_id": first.tenant_id, "principal_id": support.DAVE},
            )
        state_before = first.state()

    clock.advance(timedelta(minutes=5))
    async with tenant(clock, path) as second:
        resumed = second.state()
        for key in ("assignments", "policies", "roleAssignmentScheduleRequests"):
            assert resumed[key] == state_before[key]
        assert resumed["signInSessionRevocations"] == state_before["signInSessionRevocations"]
        assert support.holders(second, support.USER_ADMIN) == {support.DAVE}

        # The restarted tenant is the same tenant: our rollback finds and removes our grant.
        async with GraphTools(config_for(second), snapshots, clock=clock.now) as tools:
            removed = await tools.call(catalog.REMOVE_ROLE, support.remove_args())
            assert support.has(removed.body, removed=True, already_gone=False, verified=True)
            absent = await tools.call(catalog.READ_ROLE, support.read_args("absent"))
            assert absent.body["verified"] is True
            restored = await tools.call(catalog.RESTORE_CA, support.ca_args())
            assert restored.body["verified"] is True
        assert support.holders(second, support.USER_ADMIN) == set()
        users = second.directory.policies[support.MFA_POLICY]["conditions"]["users"]
        excluded = users["excludeGroups"]
        assert support.EXCLUSION_GROUP not in excluded


async def test_every_change_is_written_at_once_and_atomically(
    tmp_path: Path, clock: ManualClock
) -> None:
    path = tmp_path / "home" / "tenant.json"
    async with tenant(clock, path) as sim:
        assert json.loads(path.read_text())["assignments"][0]["origin"] == "seed"
        sim.grant(support.DAVE, support.USER_ADMIN, minutes=30)
        saved = json.loads(path.read_text())  # no stop needed: written on the change
        assert [a["principal_id"] for a in saved["assignments"]] == [
            a.principal_id for a in sim.directory.assignments
        ]
    assert [p.name for p in path.parent.iterdir()] == ["tenant.json"]  # no temporary left


@pytest.mark.parametrize(
    "text",
    [
        "not json",
        "[]",
        '{"format": "something else"}',
        '{"format": "breakglass-simulated-tenant/1"}',
    ],
)
async def test_a_foreign_or_damaged_state_file_is_a_config_error(
    tmp_path: Path, clock: ManualClock, text: str
) -> None:
    path = tmp_path / "tenant.json"
    path.write_text(text)
    with pytest.raises(ConfigError):
        tenant(clock, path)
    assert path.read_text() == text  # never overwritten
