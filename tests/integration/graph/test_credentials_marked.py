"""Removing every password a job marked on an application (``key_id: "*"``, ADR 0020): what
a credential write whose result was never recorded may have created. Only names that end
with the job's exact marker go; the result names the key ids found, never a secret."""

from __future__ import annotations

from typing import Any

from adapters.graph import GraphTools
from adapters.graph.simulated import SimulatedTenant
from engine import catalog
from engine.containment import EVERY_MARKED_KEY
from tests.integration.graph.support import TENANT

APP = "4f6c1c1e-7a51-5c57-9d43-2b2cf0d8a9e1"  # "Payroll sync" in the seed


def add_args(job: str, name: str | None = None) -> dict[str, Any]:
    args = {"tenant_id": TENANT, "application_id": APP, "job_id": job}
    return args | ({"display_name": name} if name is not None else {})


def every_marked(job: str) -> dict[str, Any]:
    return {"tenant_id": TENANT, "application_id": APP, "job_id": job, "key_id": EVERY_MARKED_KEY}


def key_ids(sim: SimulatedTenant) -> list[str]:
    return [p["keyId"] for p in sim.directory.applications[APP].get("passwordCredentials", [])]


async def add(tools: GraphTools, job: str, name: str | None = None) -> str:
    result = await tools.call(catalog.ADD_APP_PASSWORD, add_args(job, name))
    assert result.ok
    return str(result.body["key_id"])


async def test_every_password_the_job_marked_goes_and_nothing_else(
    sim: SimulatedTenant, tools: GraphTools
) -> None:
    ours = [await add(tools, "job-1"), await add(tools, "job-1", "ops")]
    # Another job's, and one whose agent-chosen name carries job-1's marker in the middle
    # (the real marker, job-2's, is appended after it): neither is job-1's.
    others = [await add(tools, "job-2"), await add(tools, "job-2", "x [breakglass job=job-1]")]

    removed = await tools.call(catalog.REMOVE_APP_PASSWORD, every_marked("job-1"))

    assert removed.ok
    assert sorted(removed.body["removed_key_ids"]) == sorted(ours)
    assert removed.body["remaining_key_ids"] == []
    assert sorted(key_ids(sim)) == sorted(others)
    assert "secret" not in str(removed.body).lower()


async def test_none_marked_is_a_success_that_names_no_key(
    sim: SimulatedTenant, tools: GraphTools
) -> None:
    other = await add(tools, "job-2")
    removed = await tools.call(catalog.REMOVE_APP_PASSWORD, every_marked("job-1"))
    assert removed.ok
    assert removed.body["removed_key_ids"] == []
    assert key_ids(sim) == [other]
