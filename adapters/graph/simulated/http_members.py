"""Group membership in the simulated tenant: ``POST /users/{id}/checkMemberGroups``,
``GET /groups/{id}/transitiveMembers`` and ``GET /groups/{id}/members`` (paged; 404 for an
unknown group).

As in Entra, a group's members may be users, other groups, devices, service principals and
organizational contacts ("List group transitive members"). ``members`` lists the direct
members of every kind; ``transitiveMembers`` the flat list of all nested members, the
nested groups included; ``checkMemberGroups`` is transitive ("directoryObject:
checkMemberGroups"), at most 20 group ids per call; and a Conditional Access policy applies
to, and excludes, nested members ("Conditional Access: Users, groups, and workload
identities": "Policy is applied to nested users and groups"). A client that reads only the
direct members, or takes every member for a user, is wrong here as it would be in Entra.
A deleted user is left out of the lists until it is restored (``deletions``).

Members are set through the control surface (``SimulatedTenant.add_member``) and kept in
memory only (not in the persisted directory).
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
from adapters.graph.simulated.odata import check_parameters

MAX_GROUP_IDS = 20
# The directoryObject kinds a group can hold, as their @odata.type names them.
MEMBER_KINDS = frozenset({"user", "group", "device", "servicePrincipal", "orgContact"})


@dataclass
class Memberships:
    members: dict[str, set[str]] = field(default_factory=dict)  # group id -> direct members
    kinds: dict[str, str] = field(default_factory=dict)  # member id -> kind (user if absent)

    def add(self, group_id: str, member_id: str, kind: str) -> None:
        if kind not in MEMBER_KINDS:
            raise ValueError(f"a group member is one of {sorted(MEMBER_KINDS)}, not {kind!r}")
        if member_id == group_id:
            raise ValueError("a group cannot be a member of itself")
        self.members.setdefault(group_id, set()).add(member_id)
        self.kinds[member_id] = kind

    def kind(self, member_id: str) -> str:
        return self.kinds.get(member_id, "user")

    def transitive(self, group_id: str) -> set[str]:
        """Every member of ``group_id``, nested groups and their members included."""
        found: set[str] = set()
        pending = [group_id]
        while pending:
            for member in self.members.get(pending.pop(), set()) - found - {group_id}:
                found.add(member)
                if self.kind(member) == "group":
                    pending.append(member)
        return found

    def groups_of(self, member_id: str) -> set[str]:
        """The groups ``member_id`` belongs to, directly or through nested groups."""
        return {g for g in self.members if member_id in self.transitive(g)}

    def view(self, member_id: str, users: dict[str, Any]) -> dict[str, Any]:
        """A member as Graph lists it: a directoryObject with its @odata.type."""
        kind = self.kind(member_id)
        item: dict[str, Any] = {"@odata.type": f"#microsoft.graph.{kind}", "id": member_id}
        if kind == "user" and member_id in users:
            item["userPrincipalName"] = users[member_id].get("userPrincipalName")
        return item


def record_sign_in(
    core: SimCore, memberships: Memberships, user_id: str, app: str, error_code: int = 0
) -> dict[str, Any]:
    """A sign-in of ``user_id`` now, with what each enabled CA policy did to it (a member
    of an excluded group is ``notApplied``: what a CA exclusion lets through)."""
    user = core.directory.users.get(user_id)
    if user is None:
        raise SimError(404, "Request_ResourceNotFound", "The user does not exist.")
    groups = memberships.groups_of(user_id)
    applied = applied_policies(core.directory.policies, user_id, groups.__contains__)
    return core.activity.sign_in(core.now(), user, app, applied, error_code)


MEMBERSHIPS: web.AppKey[Memberships] = web.AppKey("breakglass_sim_members", Memberships)


async def check_member_groups(request: web.Request) -> web.Response:
    user = core_of(request).directory.user(request.match_info["id"])
    if user is None:
        raise SimError(404, "Request_ResourceNotFound", "The user does not exist.")
    body = await json_body(request)
    if isinstance(body, dict):
        check_parameters(body, ("groupIds",), "checkMemberGroups")
    wanted = body.get("groupIds") if isinstance(body, dict) else None
    if not isinstance(wanted, list) or not all(isinstance(g, str) for g in wanted):
        raise SimError(400, "Request_BadRequest", "groupIds must be a list of ids.")
    if len(wanted) > MAX_GROUP_IDS:
        raise SimError(400, "Request_BadRequest", "At most 20 group ids may be checked.")
    memberships = request.app[MEMBERSHIPS]
    found = [g for g in wanted if user["id"] in memberships.transitive(g)]
    return entity(request, "Collection(Edm.String)", {"value": found})


async def transitive_members(request: web.Request) -> web.Response:
    directory = core_of(request).read_view()
    group = request.match_info["id"]
    if group not in directory.groups:
        raise SimError(404, "Request_ResourceNotFound", f"Resource '{group[:64]}' does not exist.")
    memberships = request.app[MEMBERSHIPS]
    users, found = directory.users, memberships.transitive(group) - set(directory.deleted_users)
    items = [memberships.view(m, users) for m in sorted(found)]
    return collection(request, "directoryObjects", items)


async def list_members(request: web.Request) -> web.Response:
    core, group_id = core_of(request), request.match_info["id"]
    if group_id not in core.read_view().groups:
        raise SimError(404, "Request_ResourceNotFound", "The group does not exist.")
    memberships = request.app[MEMBERSHIPS]
    direct = memberships.members.get(group_id, set()) - set(core.directory.deleted_users)
    items = [memberships.view(m, core.directory.users) for m in sorted(direct)]
    return collection(request, "directoryObjects", items)


def add_routes(app: web.Application, memberships: Memberships) -> None:
    app[MEMBERSHIPS] = memberships
    app.router.add_get(f"{GRAPH_PREFIX}/groups/{{id}}/members", list_members)
    app.router.add_post(f"{GRAPH_PREFIX}/users/{{id}}/checkMemberGroups", check_member_groups)
    app.router.add_get(f"{GRAPH_PREFIX}/groups/{{id}}/transitiveMembers", transitive_members)
