"""The simulated tenant's own contract, over raw HTTP: shapes, errors, labels, control API."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import aiohttp

from adapters.graph import GraphTools
from adapters.graph.simulated import SIM_HEADER, SimulatedTenant
from engine import catalog
from tests.integration.graph.support import (
    ALICE,
    DAVE,
    GLOBAL_ADMIN,
    MFA_POLICY,
    TENANT,
    USER_ADMIN,
    read_args,
    write_args,
)

GRAPH_SCOPE = "https://graph.microsoft.com/.default"


async def token_for(sim: SimulatedTenant, http: aiohttp.ClientSession, **form: str) -> Any:
    data = {
        "grant_type": "client_credentials",
        "client_id": sim.client_id,
        "client_secret": sim.client_secret,
        "scope": GRAPH_SCOPE,
    } | form
    async with http.post(f"{sim.base_url}/{TENANT}/oauth2/v2.0/token", data=data) as resp:
        return resp.status, await resp.json(), resp.headers


async def bearer(sim: SimulatedTenant, http: aiohttp.ClientSession) -> dict[str, str]:
    _, body, _ = await token_for(sim, http)
    return {"Authorization": f"Bearer {body['access_token']}"}


async def test_discovery_document_advertises_https_endpoints(
    sim: SimulatedTenant, http: aiohttp.ClientSession
) -> None:
    url = f"{sim.base_url}/{TENANT}/v2.0/.well-known/openid-configuration"
    async with http.get(url) as resp:
        doc = await resp.json()
        assert resp.headers[SIM_HEADER] == "true"
    host = sim.base_url.removeprefix("http://")
    assert doc["token_endpoint"] == f"https://{host}/{TENANT}/oauth2/v2.0/token"
    assert doc["issuer"] == f"https://{host}/{TENANT}/v2.0"


async def test_token_endpoint_shapes(sim: SimulatedTenant, http: aiohttp.ClientSession) -> None:
    status, body, _ = await token_for(sim, http)
    assert status == 200
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 3599

    status, body, _ = await token_for(sim, http, client_secret="nope")
    assert status == 401
    assert body["error"] == "invalid_client"
    assert body["error_codes"] == [7000215]
    assert body["error_description"].startswith("AADSTS7000215:")

    status, body, _ = await token_for(sim, http, grant_type="password")
    assert (status, body["error"]) == (400, "unsupported_grant_type")
    status, body, _ = await token_for(sim, http, scope="User.Read")
    assert (status, body["error"]) == (400, "invalid_scope")


async def test_graph_refuses_missing_or_unknown_bearer(
    sim: SimulatedTenant, http: aiohttp.ClientSession
) -> None:
    url = f"{sim.graph_base_url}/identity/conditionalAccess/policies/{MFA_POLICY}"
    for headers in ({}, {"Authorization": "Bearer forged"}):
        async with http.get(url, headers=headers | {"client-request-id": "abc"}) as resp:
            body = await resp.json()
            assert resp.status == 401
            assert resp.headers["client-request-id"] == "abc"
            assert resp.headers["request-id"] == body["error"]["innerError"]["request-id"]
            assert resp.headers[SIM_HEADER] == "true"
        assert body["error"]["code"] == "InvalidAuthenticationToken"
        assert set(body["error"]["innerError"]) == {"date", "request-id", "client-request-id"}


async def test_assign_and_remove_bodies(sim: SimulatedTenant, http: aiohttp.ClientSession) -> None:
    url = f"{sim.graph_base_url}/roleManagement/directory/roleAssignmentScheduleRequests"
    assign = {
        "action": "adminAssign",
        "principalId": DAVE,
        "roleDefinitionId": USER_ADMIN,
        "directoryScopeId": "/",
        "justification": "test",
        "scheduleInfo": {"expiration": {"type": "afterDuration", "duration": "PT1H"}},
    }
    headers = await bearer(sim, http)
    async with http.post(url, json=assign, headers=headers) as resp:
        created = await resp.json()
        assert resp.status == 201
    assert created["status"] == "Provisioned"
    assert created["@odata.context"].endswith("roleAssignmentScheduleRequests/$entity")
    assert created["targetScheduleId"]

    async with http.post(url, json=assign, headers=headers) as resp:
        assert (resp.status, (await resp.json())["error"]["code"]) == (400, "RoleAssignmentExists")

    remove = {k: assign[k] for k in ("principalId", "roleDefinitionId", "directoryScopeId")}
    sim.advance(timedelta(minutes=5))  # PIM allows removal only after 5 minutes
    async with http.post(url, json=remove | {"action": "adminRemove"}, headers=headers) as resp:
        assert (resp.status, (await resp.json())["status"]) == (201, "Revoked")
    async with http.post(url, json=remove | {"action": "adminRemove"}, headers=headers) as resp:
        error = (await resp.json())["error"]
        assert (resp.status, error["code"]) == (400, "RoleAssignmentDoesNotExist")


async def test_instances_filter_and_unsupported_filter(
    sim: SimulatedTenant, http: aiohttp.ClientSession
) -> None:
    url = f"{sim.graph_base_url}/roleManagement/directory/roleAssignmentScheduleInstances"
    headers = await bearer(sim, http)
    flt = {"$filter": f"roleDefinitionId eq '{GLOBAL_ADMIN}'"}
    async with http.get(url, params=flt, headers=headers) as resp:
        body = await resp.json()
    assert body["@odata.context"].endswith(
        "#roleManagement/directory/roleAssignmentScheduleInstances"
    )
    assert [i["roleDefinitionId"] for i in body["value"]] == [GLOBAL_ADMIN]
    bad = {"$filter": "startswith(principalId, 'a')"}
    async with http.get(url, params=bad, headers=headers) as resp:
        assert (resp.status, (await resp.json())["error"]["code"]) == (400, "BadRequest")


async def test_ca_rate_limit_answers_429_without_retry_after(
    http: aiohttp.ClientSession,
) -> None:
    async with SimulatedTenant(ca_interval=30.0) as sim:
        url = f"{sim.graph_base_url}/identity/conditionalAccess/policies/{MFA_POLICY}"
        headers = await bearer(sim, http)
        async with http.get(url, headers=headers) as first:
            assert first.status == 200
        async with http.get(url, headers=headers) as second:
            assert second.status == 429
            assert "Retry-After" not in second.headers
            assert (await second.json())["error"]["code"] == "TooManyRequests"


async def test_holders_are_collected_across_pages(sim: SimulatedTenant, tools: GraphTools) -> None:
    sim.page_size = 1
    await tools.call(catalog.WRITE_ROLE, write_args())
    sim.grant(ALICE, USER_ADMIN)
    result = await tools.call(catalog.READ_ROLE, read_args("present"))
    assert result.body["holders"] == sorted([ALICE, DAVE])


async def test_control_api(sim: SimulatedTenant, http: aiohttp.ClientSession) -> None:
    base = f"{sim.base_url}/_sim"
    grant = {"principalId": ALICE, "roleDefinitionId": USER_ADMIN, "durationMinutes": 5}
    async with http.post(f"{base}/grants", json=grant) as resp:
        assert resp.status == 201
    async with http.get(f"{base}/grants") as resp:
        holders = {(g["principalId"], g["origin"]) for g in (await resp.json())["value"]}
    assert (ALICE, "injected") in holders

    async with http.post(f"{base}/clock", json={"advanceSeconds": 301}) as resp:
        assert resp.status == 200
    async with http.get(f"{base}/state") as resp:
        state = await resp.json()
    assert state["simulated"] is True
    alice = [a for a in state["assignments"] if a["principalId"] == ALICE]
    assert [a["state"] for a in alice] == ["expired"]

    fault = {"kind": "throttle", "method": "GET", "path": "policies", "retryAfter": 1}
    async with http.post(f"{base}/faults", json=fault) as resp:
        assert resp.status == 201
    assert len(sim.core.faults.faults) == 1
    async with http.delete(f"{base}/faults") as resp:
        assert resp.status == 204
    assert sim.core.faults.faults == []

    async with http.put(f"{base}/replication", json={"reads": 2}) as resp:
        assert resp.status == 204
    assert sim.core.replication.lag_reads == 2

    async with http.patch(f"{base}/policies/{MFA_POLICY}", json={"state": "disabled"}) as resp:
        assert (await resp.json())["state"] == "disabled"
    async with http.get(f"{base}/requests") as resp:
        logged = (await resp.json())["value"]
    assert {"method": "POST", "path": "/_sim/grants", "status": 201, "query": ""} in logged
