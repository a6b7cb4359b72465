"""Revoking sign-in sessions: one principal's, or every user's in a group.

``POST /users/{id}/revokeSignInSessions`` resets the user's ``signInSessionsValidFromDateTime``
so refresh tokens and session cookies issued before it stop working (Graph notes a delay of
a few minutes before they do). Revoking twice is harmless, so a lost answer is simply resent.
For a Conditional Access exclusion the end revokes every user the group holds then
(``GET /groups/{id}/transitiveMembers``, users only), at most ``MAX_GROUP_USERS`` of them: a
break-glass exclusion group is small, and a larger one is an error to report, not to loop on.
A principal deleted during the window (found in deleted items) has no sessions left to revoke,
and the answer says so (docs/graph.md).
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
    try:
        revoked = await _revoke(ctx, principal)
    except GraphError as err:
        if err.status != 404 or not await _in_deleted_items(ctx, principal):
            raise
        # Deleted during the window: a deleted account is suspended, and there is no user
        # left to revoke for (docs/graph.md). Said in the result, not hidden.
        body = {"revoked": False, "principal_deleted": True, "principal_id": principal}
        return ToolResult("success", body)
    return ToolResult("success", {"revoked": revoked, "principal_id": principal})


async def _in_deleted_items(ctx: ToolContext, principal: str) -> bool:
    """Is the user in deleted items? Only that proves a deletion: a 404 alone may mean a
    user that never was, and a new deleted item may not be read back at once (we retry)."""
    try:
        await ctx.client.get(f"/directory/deletedItems/{principal}")
    except GraphError as err:
        if err.status == 404:
            return False
        raise
    return True


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
