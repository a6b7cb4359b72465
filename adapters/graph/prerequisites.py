"""Live reads before approval: a PIM request by id (a template's prerequisite), which of a
few groups a principal is a member of (target limits by group), and whether what a request
asks for is in place already."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from adapters.graph import ca, roles
from adapters.graph.context import ToolContext
from engine.errors import GraphError

_GUID = re.compile(r"^[0-9a-fA-F]{8}(-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}$")
PATH = "/roleManagement/directory/roleAssignmentScheduleRequests/{}"


async def read_pim_request(ctx: ToolContext, request_id: str) -> Mapping[str, Any] | None:
    """The request, or None when the id is not a GUID or the tenant has no such request.
    Needs RoleAssignmentSchedule.Read.Directory (or RoleManagement.Read.Directory)."""
    if not _GUID.match(request_id):
        return None
    try:
        response = await ctx.client.get(PATH.format(request_id))
    except GraphError as err:
        if err.status == 404:
            return None
        raise
    return response.body


MAX_GROUP_IDS = 20  # Graph's limit per checkMemberGroups call


async def check_member_groups(
    ctx: ToolContext, principal_id: str, group_ids: Sequence[str]
) -> list[str]:
    """The groups of ``group_ids`` that ``principal_id`` is a (transitive) member of.
    Needs GroupMember.Read.All and User.Read.All."""
    found: list[str] = []
    for start in range(0, len(group_ids), MAX_GROUP_IDS):
        chunk = list(group_ids[start : start + MAX_GROUP_IDS])
        body = {"groupIds": chunk}
        response = await ctx.client.post(
            f"/users/{principal_id}/checkMemberGroups",
            body,
            idempotent=True,  # a read
        )
        value = response.body.get("value")
        found += [g for g in value if isinstance(g, str)] if isinstance(value, list) else []
    return found


async def grant_in_place(ctx: ToolContext, template: str, targets: Mapping[str, str]) -> bool:
    """Does the tenant already hold what ``template`` would grant on ``targets`` (an active
    assignment of the role; the group excluded from the policy)? Whoever put it there, a job
    for it could not grant it, and its end would take down what it never made. Targets that
    are no ids of this tenant hold nothing: the job's own write refuses them, receipted."""
    keys = _GRANT_TARGETS.get(template, ())
    if not keys or not all(_GUID.match(targets.get(k, "")) for k in keys):
        return False
    try:
        if template == "entra-role":
            principal, role = (targets[k] for k in keys)
            return bool(await roles.active_instances(ctx, principal, role))
        policy = await ca.get_policy(ctx, targets["policy_id"])
    except GraphError as err:
        if err.status == 404:
            return False
        raise
    return targets["group_id"] in ca.excluded_groups(policy)


_GRANT_TARGETS = {
    "entra-role": ("principal_id", "role_definition_id"),
    "ca-exclusion": ("policy_id", "group_id"),
}
