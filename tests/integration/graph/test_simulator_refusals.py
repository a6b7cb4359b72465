"""The simulated tenant refuses the app as Entra does (docs/graph.md, "the app refused"): an
expired, deleted or replaced client secret, a disabled service principal, a Graph permission
an administrator removed, and a token endpoint that does not answer. A token already issued
stays valid (Entra: access tokens are not revoked when the app is), and a permission change
reaches the app only with its next token (its ``roles`` claim)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import aiohttp
import pytest

from adapters.graph import GraphTools
from adapters.graph.simulated import Fault, ManualClock, SimulatedTenant
from engine import catalog
from engine.errors import GraphError
from tests.integration.graph.conftest import config_for
from tests.integration.graph.support import (
    DAVE,
    LEGACY_POLICY,
    TENANT,
    MemorySnapshots,
    read_args,
)
from tests.integration.graph.test_simulator import bearer, token_for

INSTANCES = "roleManagement/directory/roleAssignmentScheduleInstances"
ROLE_WRITE = "RoleAssignmentSchedule.ReadWrite.Directory"
CA_WRITE = "Policy.ReadWrite.ConditionalAccess"
DENIED = (403, "Authorization_RequestDenied", "Insufficient privileges to complete the operation.")


async def call(
    http: aiohttp.ClientSession, method: str, url: str, headers: dict[str, str], **kw: Any
) -> tuple[int, Any]:
    async with http.request(method, url, headers=headers, **kw) as resp:
        return resp.status, await resp.json()


def refused(status: int, body: Any) -> tuple[int, str, str]:
    return status, body["error"]["code"], body["error"]["message"]


async def test_an_expired_secret_is_refused_with_7000222_and_its_earlier_token_still_works(
    sim: SimulatedTenant, http: aiohttp.ClientSession
) -> None:
    headers = await bearer(sim, http)  # issued before the secret expired
    sim.expire_secret()
    status, body, _ = await token_for(sim, http)
    assert (status, body["error"], body["error_codes"]) == (401, "invalid_client", [7000222])
    assert body["error_description"].startswith("AADSTS7000222: The provided client secret keys")
    assert sim.client_secret not in str(body)
    status, _ = await call(http, "GET", f"{sim.graph_base_url}/{INSTANCES}", headers)
    assert status == 200


async def test_a_secret_that_expires_later_is_refused_from_then_on(
    sim: SimulatedTenant, http: aiohttp.ClientSession, clock: ManualClock
) -> None:
    sim.expire_secret(clock.now() + timedelta(minutes=5))
    assert (await token_for(sim, http))[0] == 200
    sim.advance(timedelta(minutes=5))
    assert (await token_for(sim, http))[1]["error_codes"] == [7000222]


async def test_a_replaced_secret_is_7000215_and_the_new_one_is_accepted(
    sim: SimulatedTenant, http: aiohttp.ClientSession
) -> None:
    old = sim.client_secret
    sim.expire_secret()
    new = sim.replace_secret()
    assert sim.client_secret == new != old
    status, body, _ = await token_for(sim, http, client_secret=old)
    assert (status, body["error_codes"]) == (401, [7000215])
    assert (await token_for(sim, http, client_secret=new))[0] == 200  # no longer expired


async def test_a_disabled_service_principal_gets_no_new_token(
    sim: SimulatedTenant, http: aiohttp.ClientSession
) -> None:
    headers = await bearer(sim, http)
    sim.set_app_enabled(False)
    status, body, _ = await token_for(sim, http)
    assert (status, body["error"], body["error_codes"]) == (400, "unauthorized_client", [7000112])
    assert f"Application '{sim.client_id}' is disabled." in body["error_description"]
    status, _ = await call(http, "GET", f"{sim.graph_base_url}/{INSTANCES}", headers)
    assert status == 200  # "existing tokens remain valid until they expire"
    sim.set_app_enabled(True)
    assert (await token_for(sim, http))[0] == 200


async def test_a_removed_permission_is_403_with_the_next_token_only(
    sim: SimulatedTenant, http: aiohttp.ClientSession
) -> None:
    before = sim.state()
    url = f"{sim.graph_base_url}/{INSTANCES}"
    earlier = await bearer(sim, http)
    sim.remove_permission(ROLE_WRITE)
    assert (await call(http, "GET", url, earlier))[0] == 200  # its roles claim still has it
    later = await bearer(sim, http)
    status, body = await call(http, "GET", url, later)
    assert refused(status, body) == DENIED
    assert set(body["error"]["innerError"]) == {"date", "request-id", "client-request-id"}
    requests = f"{sim.graph_base_url}/roleManagement/directory/roleAssignmentScheduleRequests"
    assert (await call(http, "POST", requests, later, json={}))[0] == 403
    sim.restore_permission(ROLE_WRITE)
    assert (await call(http, "GET", url, later))[0] == 403  # until the app's next token
    assert (await call(http, "GET", url, await bearer(sim, http)))[0] == 200
    assert sim.state() == before


async def test_conditional_access_and_sessions_need_their_own_write_permissions(
    sim: SimulatedTenant, http: aiohttp.ClientSession
) -> None:
    before = sim.state()
    sim.remove_permission(CA_WRITE)
    sim.remove_permission("User.RevokeSessions.All")
    headers = await bearer(sim, http)
    policy = f"{sim.graph_base_url}/identity/conditionalAccess/policies/{LEGACY_POLICY}"
    assert (await call(http, "GET", policy, headers))[0] == 200  # Policy.Read.All stays
    status, body = await call(http, "PATCH", policy, headers, json={"state": "disabled"})
    assert refused(status, body) == DENIED
    revoke = f"{sim.graph_base_url}/users/{DAVE}/revokeSignInSessions"
    assert refused(*(await call(http, "POST", revoke, headers))) == DENIED
    assert sim.state() == before  # nothing was applied
    with pytest.raises(ValueError, match="not modelled"):
        sim.remove_permission("Directory.ReadWrite.All")


async def test_the_token_endpoint_can_be_unreachable_and_graph_faults_never_fire_there(
    sim: SimulatedTenant, http: aiohttp.ClientSession
) -> None:
    sim.add_fault(Fault("unavailable"))  # every Graph request: not the token endpoint
    assert (await token_for(sim, http))[0] == 200
    sim.core.faults.clear()
    sim.add_fault(Fault("drop", method="POST", path="/oauth2/v2.0/token", times=2))
    for _ in range(2):
        with pytest.raises(aiohttp.ClientError):
            await token_for(sim, http)
    assert (await token_for(sim, http))[0] == 200
    statuses = [e.status for e in sim.requests_log if e.path.endswith("/oauth2/v2.0/token")]
    assert statuses == [200, 0, 0, 200]  # 0: closed without an answer


async def test_tokens_live_as_long_as_the_tenant_says(http: aiohttp.ClientSession) -> None:
    clock = ManualClock()
    async with SimulatedTenant(clock=clock, token_lifetime=timedelta(minutes=10)) as sim:
        _, body, _ = await token_for(sim, http)
        assert body["expires_in"] == 600
        headers = {"Authorization": f"Bearer {body['access_token']}"}
        url = f"{sim.graph_base_url}/{INSTANCES}"
        sim.advance(timedelta(minutes=10))
        status, answer = await call(http, "GET", url, headers)
        assert (status, answer["error"]["code"]) == (401, "InvalidAuthenticationToken")


async def test_the_control_api_changes_the_app(
    sim: SimulatedTenant, http: aiohttp.ClientSession
) -> None:
    url = f"{sim.base_url}/_sim/app"
    change = {"enabled": False, "secretExpired": True, "removePermissions": [CA_WRITE]}
    status, state = await call(http, "PATCH", url, {}, json=change)
    assert status == 200
    assert (state["enabled"], state["removedPermissions"]) == (False, [CA_WRITE])
    assert state["secretExpires"] is not None
    assert (await token_for(sim, http))[1]["error_codes"] == [7000112]
    change = {"enabled": True, "restorePermissions": [CA_WRITE]}
    status, state = await call(http, "PATCH", url, {}, json=change)
    assert (state["enabled"], state["removedPermissions"]) == (True, [])
    assert (await token_for(sim, http))[1]["error_codes"] == [7000222]  # still expired
    status, body = await call(http, "PATCH", url, {}, json={"removePermissions": ["Mail.Send"]})
    assert (status, body["error"]["code"]) == (400, "BadRequest")


@pytest.mark.parametrize(
    ("refuse", "code", "aadsts"),
    [
        (lambda sim: sim.expire_secret(), "invalid_client", "AADSTS7000222"),
        (lambda sim: sim.replace_secret(), "invalid_client", "AADSTS7000215"),
        (lambda sim: sim.set_app_enabled(False), "unauthorized_client", "AADSTS7000112"),
    ],
    ids=["expired", "replaced", "disabled"],
)
async def test_our_client_reports_the_refusal_without_the_secret(
    sim: SimulatedTenant, clock: ManualClock, refuse: Any, code: str, aadsts: str
) -> None:
    config = config_for(sim)
    refuse(sim)
    async with GraphTools(config, MemorySnapshots(), clock=clock.now) as tools:
        with pytest.raises(GraphError) as caught:
            await tools.call(catalog.READ_ROLE, read_args("absent") | {"tenant_id": TENANT})
    assert caught.value.code == code
    assert aadsts in caught.value.message
    assert config.client_secret is not None
    assert config.client_secret not in str(caught.value)
