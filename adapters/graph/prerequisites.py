"""Reads a PIM role assignment schedule request by id (a template's prerequisite)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

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
