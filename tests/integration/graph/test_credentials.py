"""Application password tools against the simulated tenant: add, remove by keyId, refuse
strictly (unknown application, unknown keyId), never show the secret, survive a lost answer."""

from __future__ import annotations

import json
import uuid
from typing import Any

import aiohttp
import pytest

from adapters.graph import GraphTools
from adapters.graph.simulated import Fault, SimulatedTenant
from engine import catalog
from engine.errors import GraphError, InputError
from tests.integration.graph.support import TENANT

APP = "4f6c1c1e-7a51-5c57-9d43-2b2cf0d8a9e1"  # "Payroll sync" in the seed


def add_args(app: str = APP, job: str = "job-1") -> dict[str, Any]:
    return {"tenant_id": TENANT, "application_id": app, "job_id": job}


def remove_args(key_id: str, app: str = APP, job: str = "job-1") -> dict[str, Any]:
    return add_args(app, job) | {"key_id": key_id}


def passwords(sim: SimulatedTenant, app: str = APP) -> list[dict[str, Any]]:
    return list(sim.directory.applications[app].get("passwordCredentials", []))


async def test_add_then_remove_by_key_id(sim: SimulatedTenant, tools: GraphTools) -> None:
    added = await tools.call(catalog.ADD_APP_PASSWORD, add_args() | {"display_name": "ops"})
    assert added.ok
    key_id = added.body["key_id"]
    assert [p["keyId"] for p in passwords(sim)] == [key_id]
    assert "[breakglass job=job-1]" in passwords(sim)[0]["displayName"]
    # The secret is never in the result (a hash of it is) nor kept by the tenant.
    assert "secretText" not in added.body
    assert len(added.body["secret_sha256"]) == 64
    assert "secretText" not in passwords(sim)[0]

    removed = await tools.call(catalog.REMOVE_APP_PASSWORD, remove_args(key_id))
    assert removed.ok
    assert removed.body["removed"] is True
    assert removed.body["already_absent"] is False
    assert passwords(sim) == []


async def test_removing_again_is_confirmed_by_reading(
    sim: SimulatedTenant, tools: GraphTools
) -> None:
    key_id = (await tools.call(catalog.ADD_APP_PASSWORD, add_args())).body["key_id"]
    assert (await tools.call(catalog.REMOVE_APP_PASSWORD, remove_args(key_id))).ok
    again = await tools.call(catalog.REMOVE_APP_PASSWORD, remove_args(key_id))
    assert again.ok
    assert again.body["already_absent"] is True


async def test_unknown_application_is_a_404_and_changes_nothing(
    sim: SimulatedTenant, tools: GraphTools
) -> None:
    other = str(uuid.uuid4())
    with pytest.raises(GraphError) as err:
        await tools.call(catalog.ADD_APP_PASSWORD, add_args(other))
    assert err.value.status == 404
    assert err.value.code == "Request_ResourceNotFound"
    with pytest.raises(GraphError) as err:
        await tools.call(catalog.REMOVE_APP_PASSWORD, remove_args(str(uuid.uuid4()), other))
    assert err.value.status == 404
    assert passwords(sim) == []


async def test_sim_refuses_unknown_and_malformed_key_ids(sim: SimulatedTenant) -> None:
    """Graph's own answers, straight from the HTTP surface (the adapter reads them)."""
    token = await _token(sim)
    url = f"{sim.graph_base_url}/applications/{APP}/removePassword"
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    async with aiohttp.ClientSession() as http:
        for key in (str(uuid.uuid4()), "not-a-guid"):
            async with http.post(url, data=json.dumps({"keyId": key}), headers=headers) as resp:
                assert resp.status == 400
                assert (await resp.json())["error"]["code"] == "Request_BadRequest"
        bad = {"passwordCredential": {"secretText": "chosen"}}  # a caller may not pick it
        add_url = url.replace("removePassword", "addPassword")
        async with http.post(add_url, data=json.dumps(bad), headers=headers) as resp:
            assert resp.status == 400
    assert passwords(sim) == []


async def test_bad_key_id_is_refused_before_sending(
    sim: SimulatedTenant, tools: GraphTools
) -> None:
    before = len(sim.requests_log)
    with pytest.raises(InputError):
        await tools.call(catalog.REMOVE_APP_PASSWORD, remove_args("../users"))
    assert len(sim.requests_log) == before


async def test_lost_answer_to_add_is_recovered_without_a_second_password(
    sim: SimulatedTenant, tools: GraphTools
) -> None:
    sim.add_fault(Fault("drop", method="POST", path="addPassword"))
    added = await tools.call(catalog.ADD_APP_PASSWORD, add_args())
    assert added.ok
    assert added.body["recovered"] is True
    assert [p["keyId"] for p in passwords(sim)] == [added.body["key_id"]]


async def test_lost_answer_to_add_behind_replication_lag_makes_no_second_password(
    sim: SimulatedTenant, tools: GraphTools
) -> None:
    # Entra is eventually consistent: "a successful write ... does not guarantee that an
    # immediate read will reflect that change" (docs/graph.md). A read-back that gives up
    # after one stale read resends, and the first password (valid for two years, named for
    # the job but never in its result) is never removed.
    sim.set_replication_lag(reads=2)
    sim.add_fault(Fault("drop", method="POST", path="addPassword"))
    added = await tools.call(catalog.ADD_APP_PASSWORD, add_args())
    assert added.ok
    assert [p["keyId"] for p in passwords(sim)] == [added.body["key_id"]]
    assert added.body["recovered"] is True
    assert [e.status for e in sim.requests_log if "addPassword" in e.path] == [0]  # sent once


async def _token(sim: SimulatedTenant) -> str:
    form = {
        "grant_type": "client_credentials",
        "client_id": sim.client_id,
        "client_secret": sim.client_secret,
        "scope": "https://graph.microsoft.com/.default",
    }
    url = f"{sim.authority_base_url}/{sim.tenant_id}/oauth2/v2.0/token"
    async with aiohttp.ClientSession() as http, http.post(url, data=form) as resp:
        body = await resp.json()
        return str(body["access_token"])
