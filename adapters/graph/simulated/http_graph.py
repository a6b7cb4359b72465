"""The simulated Microsoft Graph endpoints (``/v1.0/...``).

Before any handler runs, ``graph_gate`` checks the bearer token (401), applies the
Conditional Access rate limit (429 without Retry-After) and fires injected faults.
"""

from __future__ import annotations

import contextlib

from aiohttp import web

from adapters.graph.simulated import pim, policies
from adapters.graph.simulated.clock import iso
from adapters.graph.simulated.errors import SimError
from adapters.graph.simulated.faults import Fault
from adapters.graph.simulated.http_common import (
    DROPPED,
    GRAPH_PREFIX,
    Handler,
    collection,
    core_of,
    entity,
    json_body,
)
from adapters.graph.simulated.odata import parse_filter

ROLE_MGMT = f"{GRAPH_PREFIX}/roleManagement/directory"
CA = f"{GRAPH_PREFIX}/identity/conditionalAccess"
REQUESTS_CTX = "roleManagement/directory/roleAssignmentScheduleRequests"
INSTANCES_CTX = "roleManagement/directory/roleAssignmentScheduleInstances"


@web.middleware
async def graph_gate(request: web.Request, handler: Handler) -> web.StreamResponse:
    if not request.path.startswith(GRAPH_PREFIX + "/"):
        return await handler(request)
    core = core_of(request)
    core.check_bearer(request.headers.get("Authorization"))
    if request.path.startswith(CA + "/"):
        core.ca_gate.admit()
    fault = core.faults.take(request.method, request.path)
    return await (_with_fault(request, handler, fault) if fault else handler(request))


async def _with_fault(request: web.Request, handler: Handler, fault: Fault) -> web.StreamResponse:
    if fault.kind == "throttle":
        headers = {"Retry-After": str(fault.retry_after)} if fault.retry_after is not None else {}
        raise SimError(429, "TooManyRequests", "Too many requests.", headers)
    if fault.kind == "unavailable":
        raise SimError(503, "ServiceUnavailable", "The service is temporarily unavailable.")
    if fault.apply:
        with contextlib.suppress(SimError):  # the caller never learns the outcome
            await handler(request)
    if fault.kind == "gateway_timeout":
        raise SimError(504, "GatewayTimeout", "The gateway timed out waiting for the service.")
    request[DROPPED] = True
    if request.transport is not None:
        request.transport.close()
    return web.Response(status=204)


async def list_requests(request: web.Request) -> web.Response:
    core = core_of(request)
    wanted = parse_filter(
        request.query.get("$filter"), ("principalId", "roleDefinitionId", "status", "action")
    )
    items = [r for r in core.read_view().requests if all(r.get(k) == v for k, v in wanted.items())]
    return collection(request, REQUESTS_CTX, items)


async def create_request(request: web.Request) -> web.Response:
    core = core_of(request)
    body = await json_body(request)
    with core.write() as directory:
        created = pim.submit(directory, body, core.now())
    return entity(request, f"{REQUESTS_CTX}/$entity", created, status=201)


async def get_request(request: web.Request) -> web.Response:
    wanted = request.match_info["id"]
    found = next((r for r in core_of(request).read_view().requests if r["id"] == wanted), None)
    if found is None:
        raise SimError(404, "NotFound", "The request was not found.")
    return entity(request, f"{REQUESTS_CTX}/$entity", found)


async def list_instances(request: web.Request) -> web.Response:
    core = core_of(request)
    wanted = parse_filter(
        request.query.get("$filter"), ("principalId", "roleDefinitionId", "directoryScopeId")
    )
    views = [a.instance_view() for a in core.read_view().active_assignments(core.now())]
    items = [i for i in views if all(i.get(k) == v for k, v in wanted.items())]
    return collection(request, INSTANCES_CTX, items)


async def list_role_definitions(request: web.Request) -> web.Response:
    roles = core_of(request).directory.roles.values()
    return collection(
        request, "roleManagement/directory/roleDefinitions", [r.view() for r in roles]
    )


async def list_policies(request: web.Request) -> web.Response:
    items = list(core_of(request).read_view().policies.values())
    return collection(request, "identity/conditionalAccess/policies", items)


async def get_policy(request: web.Request) -> web.Response:
    policy = policies.policy_or_404(core_of(request).read_view(), request.match_info["id"])
    return entity(request, "identity/conditionalAccess/policies/$entity", policy)


async def patch_policy(request: web.Request) -> web.Response:
    core = core_of(request)
    body = await json_body(request)
    with core.write() as directory:
        policies.patch(directory, request.match_info["id"], body, core.now())
    return web.Response(status=204)


async def get_user(request: web.Request) -> web.Response:
    user = core_of(request).directory.users.get(request.match_info["id"])
    if user is None:
        raise SimError(404, "Request_ResourceNotFound", "Resource does not exist.")
    return entity(request, "users/$entity", user)


async def revoke_sessions(request: web.Request) -> web.Response:
    core = core_of(request)
    user_id = request.match_info["id"]
    if user_id not in core.directory.users:
        raise SimError(
            404, "Request_ResourceNotFound", f"Resource '{user_id[:64]}' does not exist."
        )
    with core.write() as directory:
        directory.users[user_id]["signInSessionsValidFromDateTime"] = iso(core.now())
    return entity(request, "Edm.Boolean", {"value": True})


def add_routes(app: web.Application) -> None:
    add = app.router.add_route
    add("GET", f"{ROLE_MGMT}/roleAssignmentScheduleRequests", list_requests)
    add("POST", f"{ROLE_MGMT}/roleAssignmentScheduleRequests", create_request)
    add("GET", f"{ROLE_MGMT}/roleAssignmentScheduleRequests/{{id}}", get_request)
    add("GET", f"{ROLE_MGMT}/roleAssignmentScheduleInstances", list_instances)
    add("GET", f"{ROLE_MGMT}/roleDefinitions", list_role_definitions)
    add("GET", f"{CA}/policies", list_policies)
    add("GET", f"{CA}/policies/{{id}}", get_policy)
    add("PATCH", f"{CA}/policies/{{id}}", patch_policy)
    add("GET", f"{GRAPH_PREFIX}/users/{{id}}", get_user)
    add("POST", f"{GRAPH_PREFIX}/users/{{id}}/revokeSignInSessions", revoke_sessions)
