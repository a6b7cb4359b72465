"""Revoking sign-in sessions: one principal's, or every user's in a group.

``POST /users/{id}/revokeSignInSessions`` resets the user's ``signInSessionsValidFromDateTime``
so refresh tokens and session cookies issued before it stop working (Graph notes a delay of
a few minutes before they do). Revoking twice is harmless, so a lost answer is simply resent.
For a Conditional Access exclusion the end revokes every user the group holds then
(``GET /groups/{id}/transitiveMembers``, users only), at most ``MAX_GROUP_USERS`` of them: a
break-glass exclusion group is small, and a larger one is an error to report, not to loop on.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from adapters.graph.arguments import is_guid
from adapters.graph.context import ToolContext
from engine.errors import GraphError
from engine.tools import ToolResult

MAX_GROUP_USERS = 100
_USER = "#microsoft.graph.user"


async def _revoke(ctx: ToolContext, principal: str) -> bool:
    resp = await ctx.client.post(f"/users/{principal}/revokeSignInSessions", None, idempotent=True)
    return resp.body.get("value") is True


async def revoke_sessions(ctx: ToolContext, args: Mapping[str, Any]) -> ToolResult:
    principal = args["principal_id"]
    revoked = await _revoke(ctx, principal)
    return ToolResult("success", {"revoked": revoked, "principal_id": principal})


async def revoke_group_sessions(ctx: ToolContext, args: Mapping[str, Any]) -> ToolResult:
    group = args["group_id"]
    members = await ctx.client.get_all(f"/groups/{group}/transitiveMembers", {"$select": "id"})
    users = [
        str(m["id"]) for m in members if m.get("@odata.type") == _USER and is_guid(m.get("id"))
    ]
    if len(users) > MAX_GROUP_USERS:
        raise GraphError("TooManyMembers", f"group has more than {MAX_GROUP_USERS} users")
    revoked = [user for user in users if await _revoke(ctx, user)]
    status = "success" if len(revoked) == len(users) else "error"
    return ToolResult(status, {"group_id": group, "users": len(users), "revoked": revoked})
