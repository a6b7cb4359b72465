"""The sweep with several replicas and deployments: a grant another deployment marked is
never removed, nor one whose job another replica holds; an orphan is removed once."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import Path

import pytest

from adapters.graph.arguments import job_marker, marked_deployment, marked_job
from adapters.store import SqlStore, sqlite_url
from bot.leases import Leases
from bot.sweep import sweep
from engine.ports import MarkedGrant
from tests.support.engine_sim import T0
from tests.support.fakes import Clock, MemoryTenant

GRANT = ("tenant", "principal", "role")


@dataclass
class MarkedBy(MemoryTenant):
    """The memory tenant, its marked grants stamped with the deployment that made them."""

    deployment: str | None = None

    async def find_marked_grants(self) -> list[MarkedGrant]:
        found = await super().find_marked_grants()
        return [replace(g, deployment=self.deployment) for g in found]


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqlStore]:
    opened = await SqlStore.open(sqlite_url(tmp_path))
    yield opened
    await opened.close()


def orphaned(deployment: str | None) -> MarkedBy:
    tenant = MarkedBy(deployment=deployment)
    tenant.roles.add(GRANT)
    tenant.markers[GRANT] = "job-gone"  # no such job in our store
    return tenant


async def test_another_deployments_grant_is_left_alone(store: SqlStore) -> None:
    tenant = orphaned("deployment-b")
    leases = Leases(store, Clock(T0), "replica-a")
    assert await sweep(store, tenant, leases, "deployment-a") == []
    assert GRANT in tenant.roles
    assert tenant.calls == []


async def test_a_grant_whose_lease_another_replica_holds_is_left_to_it(store: SqlStore) -> None:
    tenant = orphaned("deployment-a")
    clock = Clock(T0)
    assert await store.acquire_lease("job-gone", "replica-b", T0 + timedelta(seconds=10), T0)
    assert await sweep(store, tenant, Leases(store, clock, "replica-a"), "deployment-a") == []
    assert GRANT in tenant.roles
    clock.advance(seconds=11)  # replica B is gone: its lease has expired
    removed = await sweep(store, tenant, Leases(store, clock, "replica-a"), "deployment-a")
    assert removed == ["principal holds role"]
    assert GRANT not in tenant.roles
    assert await store.lease_holders(clock()) == {}  # handed back after the removal


def test_markers_name_the_deployment_and_older_ones_none() -> None:
    marked = job_marker("job-1", "deployment-a")
    assert (marked_job(marked), marked_deployment(marked)) == ("job-1", "deployment-a")
    older = job_marker("job-1")
    assert (marked_job(older), marked_deployment(older)) == ("job-1", None)
