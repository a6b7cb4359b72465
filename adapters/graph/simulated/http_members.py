"""Group membership in the simulated tenant: ``POST /users/{id}/checkMemberGroups`` and
``GET /groups/{id}/transitiveMembers`` (users only, paged; 404 for an unknown group) and
``GET /groups/{id}/members`` (direct members, paged).

Members are set through the control surface (``SimulatedTenant.add_member``) and kept in
memory only (not in the persisted directory): they serve target limits that admit members
of a group. Like Graph, at most 20 group ids per call.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from adapters.graph.simulated.auditlog import applied_policies
from adapters.graph.simulated.core import SimCore
from adapters.graph.simulated.errors import SimError
from adapters.graph.simulated.http_common import (
    GRAPH_PREFIX,
    collection,
    core_of,
    entity,
    json_body,
)

MAX_GROUP_IDS = 20


@dataclass
class Memberships:
    members: dict[str, set[str]] = field(default_factory=dict)  # group id -> user ids


def record_sign_in(
    core: SimCore, memberships: Memberships, user_id: str, app: str, error_code: int = 0
) -> dict[str, Any]:
    """A sign-in of ``user_id`` now, with what each enabled CA policy did to it (a member
    of an excluded group is ``notApplied``: what a CA exclusion lets through)."""
    user = core.directory.users.get(user_id)
    if user is None:
        raise SimError(404, "Request_ResourceNotFound", "The user does not exist.")
    groups = {g for g, ids in memberships.members.items() if user_id in ids}
    applied = applied_policies(core.directory.policies, user_id, groups.__contains__)
    return core.activity.sign_in(core.now(), user, app, applied, error_code)


MEMBERSHIPS: web.AppKey[Memberships] = web.AppKey("breakglass_sim_members", Memberships)


async def check_member_groups(request: web.Request) -> web.Response:
    user = core_of(request).directory.user(request.match_info["id"])
    if user is None:
        raise SimError(404, "Request_ResourceNotFound", "The user does not exist.")
    body = await json_body(request)
    wanted = body.get("groupIds") if isinstance(body, dict) else None
    if not isinstance(wanted, list) or not all(isinstance(g, str) for g in wanted):
        raise SimError(400, "Request_BadRequest", "groupIds must be a list of ids.")
    if len(wanted) > MAX_GROUP_IDS:
        raise SimError(400, "Request_BadRequest", "At most 20 group ids may be checked.")
    members = request.app[MEMBERSHIPS].members
    found = [g for g in wanted if user["id"] in members.get(g, set())]
    return entity(request, "Collection(Edm.String)", {"value": found})


async def transitive_members(request: web.Request) -> web.Response:
    directory = core_of(request).read_view()
    group = request.match_info["id"]
    if group not in directory.groups:
        raise SimError(404, "Request_ResourceNotFound", f"Resource '{group[:64]}' does not exist.")
    members = sorted(request.app[MEMBERSHIPS].members.get(group, set()))
    users = [{"@odata.type": "#microsoft.graph.user", "id": m} for m in members]
    return collection(request, "directoryObjects", users)


async def list_members(request: web.Request) -> web.Response:
    core, group_id = core_of(request), request.match_info["id"]
    if group_id not in core.read_view().groups:
        raise SimError(404, "Request_ResourceNotFound", "The group does not exist.")
    users = core.directory.users
    ids = sorted(request.app[MEMBERSHIPS].members.get(group_id, set()))
    items = [
        {
            "@odata.type": "#microsoft.graph.user",
            "id": i,
            "userPrincipalName": users[i].get("userPrincipalName"),
        }
        for i in ids
        if i in users
    ]
    return collection(request, "directoryObjects", items)


def add_routes(app: web.Application, memberships: Memberships) -> None:
    app[MEMBERSHIPS] = memberships
    app.router.add_get(f"{GRAPH_PREFIX}/groups/{{id}}/members", list_members)
    app.router.add_post(f"{GRAPH_PREFIX}/users/{{id}}/checkMemberGroups", check_member_groups)
    app.router.add_get(f"{GRAPH_PREFIX}/groups/{{id}}/transitiveMembers", transitive_members)
