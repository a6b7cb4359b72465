"""The simulated Microsoft Graph endpoints (``/v1.0/...``).

Before any handler runs, ``graph_gate`` checks the bearer token (401) and the permissions it
carries (403, ``permissions``), applies the Conditional Access rate limit (429 without
Retry-After) and fires injected faults.
"""

from __future__ import annotations

import contextlib
from typing import Any

from aiohttp import web

from adapters.graph.simulated import deletions, permissions, pim, policies
from adapters.graph.simulated.auditlog import app_initiator, target
from adapters.graph.simulated.clock import iso
from adapters.graph.simulated.core import SimCore
from adapters.graph.simulated.directory import Directory
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
    lacking = core.check_bearer(request.headers.get("Authorization"))
    permissions.check(lacking, request.method, request.path)
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
        created = pim.submit(directory, body, core.now(), strict=core.strict)
        _audit_role_request(core, directory, created)
    return entity(request, f"{REQUESTS_CTX}/$entity", created, status=201)


def _audit_role_request(core: SimCore, directory: Directory, created: dict[str, Any]) -> None:
    """The audit entry of an assignment or removal this app made."""
    user = directory.users[created["principalId"]]
    role = directory.roles[created["roleDefinitionId"]]
    verb = "Add member to role" if created["action"] == "adminAssign" else "Remove member from role"
    core.activity.audit(
        core.now(),
        verb,
        "RoleManagement",
        app_initiator(core.credentials.client_id),
        [
            target("User", user["id"], user.get("userPrincipalName")),
            target("Role", role.id, role.display_name),
        ],
    )


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
    views = [a.instance_view() for a in core.read_view().listed_assignments(core.now())]
    items = [i for i in views if all(i.get(k) == v for k, v in wanted.items())]
    return collection(request, INSTANCES_CTX, items)


async def list_role_definitions(request: web.Request) -> web.Response:
    views = [r.view() for r in core_of(request).directory.roles.values()]
    items = _matching(views, request.query.get("$filter"), ("displayName", "templateId", "id"))
    return collection(request, "roleManagement/directory/roleDefinitions", items)


async def get_role_definition(request: web.Request) -> web.Response:
    wanted = request.match_info["id"]
    roles = core_of(request).directory.roles.values()
    # Built-in roles answer to their id and to their template id alike.
    found = next((r for r in roles if wanted in (r.id, r.view()["templateId"])), None)
    if found is None:
        raise not_found(wanted)
    return entity(request, "roleManagement/directory/roleDefinitions/$entity", found.view())


async def list_groups(request: web.Request) -> web.Response:
    groups = list(core_of(request).read_view().groups.values())
    items = _matching(groups, request.query.get("$filter"), ("displayName", "id"))
    return collection(request, "groups", items)


async def get_group(request: web.Request) -> web.Response:
    group = core_of(request).read_view().groups.get(request.match_info["id"])
    if group is None:
        raise not_found(request.match_info["id"])
    return entity(request, "groups/$entity", group)


def not_found(key: str) -> SimError:
    """Graph's answer for a directory object that does not exist."""
    return SimError(
        404,
        "Request_ResourceNotFound",
        f"Resource '{key[:64]}' does not exist or one of its queried reference-property "
        "objects are not present.",
    )


def _matching(
    items: list[dict[str, Any]], text: str | None, fields: tuple[str, ...]
) -> list[dict[str, Any]]:
    # Graph compares strings in $filter eq without regard to case.
    wanted = parse_filter(text, fields)
    return [
        i
        for i in items
        if all(str(i.get(k) or "").casefold() == v.casefold() for k, v in wanted.items())
    ]


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
        policy = directory.policies[request.match_info["id"]]
    by_app = app_initiator(core.credentials.client_id)
    name = policy.get("displayName")
    changed = [target("Policy", policy["id"], name)]
    core.activity.audit(core.now(), "Update conditional access policy", "Policy", by_app, changed)
    return web.Response(status=204)


async def get_user(request: web.Request) -> web.Response:
    key = request.match_info["id"]
    user = core_of(request).directory.user(key)  # object id or userPrincipalName
    if user is None:
        raise not_found(key)
    return entity(request, "users/$entity", user)


async def get_deleted_item(request: web.Request) -> web.Response:
    core = core_of(request)
    user = deletions.deleted_user(core.read_view(), request.match_info["id"], core.now())
    return entity(request, "directoryObjects/$entity", user)


async def revoke_sessions(request: web.Request) -> web.Response:
    core = core_of(request)
    key = request.match_info["id"]
    user = core.directory.user(key)
    if user is None:
        raise not_found(key)
    with core.write() as directory:
        now = iso(core.now())
        directory.users[user["id"]]["signInSessionsValidFromDateTime"] = now
        directory.revocations.append({"userId": user["id"], "at": now})
    by_app = app_initiator(core.credentials.client_id)
    revoked = [target("User", user["id"], user.get("userPrincipalName"))]
    core.activity.audit(
        core.now(), "Invalidate all refresh tokens for a user", "UserManagement", by_app, revoked
    )
    return entity(request, "Edm.Boolean", {"value": True})


def add_routes(app: web.Application) -> None:
    add = app.router.add_route

    def readable(path: str, list_all: Handler, get_one: Handler) -> None:
        """A Graph collection: GET lists it, GET ``path/{id}`` reads one member."""
        add("GET", path, list_all)
        add("GET", f"{path}/{{id}}", get_one)

    requests = f"{ROLE_MGMT}/roleAssignmentScheduleRequests"
    add("GET", requests, list_requests)
    add("POST", requests, create_request)
    add("GET", f"{requests}/{{id}}", get_request)
    add("GET", f"{ROLE_MGMT}/roleAssignmentScheduleInstances", list_instances)
    readable(f"{ROLE_MGMT}/roleDefinitions", list_role_definitions, get_role_definition)
    readable(f"{GRAPH_PREFIX}/groups", list_groups, get_group)
    readable(f"{CA}/policies", list_policies, get_policy)
    add("PATCH", f"{CA}/policies/{{id}}", patch_policy)
    add("GET", f"{GRAPH_PREFIX}/users/{{id}}", get_user)
    add("POST", f"{GRAPH_PREFIX}/users/{{id}}/revokeSignInSessions", revoke_sessions)
    add("GET", f"{GRAPH_PREFIX}/directory/deletedItems/{{id}}", get_deleted_item)
