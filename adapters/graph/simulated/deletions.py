"""Deleting a user, and restoring it from deleted items, in the simulated tenant.

"Delete a user": the user moves to deleted items and "can be restored within 30 days";
"Recover from deletions" (Properties maintained with soft delete): a restored user keeps
"all properties ..., including ObjectID, group memberships, roles, licenses". So a deletion
keeps the user's role assignments (their schedules, and so PIM's expiry, still run) and a
restore brings back those that have not expired. Meanwhile the user is gone: ``GET
/users/{id}``, ``revokeSignInSessions`` and ``checkMemberGroups`` answer 404, a PIM request
naming it is refused (400, the answer for a principal that is no user here), and role
instance and group member lists leave it out; ``GET /directory/deletedItems/{id}`` shows it
("Get deleted item") until it is purged. The pages say nothing about those lists or that
refusal while the user is deleted: docs/graph.md says what is modelled and why.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from adapters.graph.simulated.clock import iso, parse_iso
from adapters.graph.simulated.directory import Directory
from adapters.graph.simulated.errors import SimError

Doc = dict[str, Any]
RETENTION = timedelta(days=30)  # then the deleted user is purged and cannot be restored


def delete_user(directory: Directory, user_id: str, now: datetime) -> None:
    user = directory.users.pop(user_id, None)
    if user is None:
        raise _not_found(user_id)
    directory.deleted_users[user_id] = user | {"deletedDateTime": iso(now)}


def deleted_user(directory: Directory, user_id: str, now: datetime) -> Doc:
    """``GET /directory/deletedItems/{id}``: a user deleted less than 30 days ago."""
    deleted = directory.deleted_users.get(user_id)
    if deleted is None or now - parse_iso(str(deleted["deletedDateTime"])) > RETENTION:
        raise _not_found(user_id)
    return {"@odata.type": "#microsoft.graph.user"} | deleted


def restore_user(directory: Directory, user_id: str, now: datetime) -> Doc:
    """``POST /directory/deletedItems/{id}/restore``: the user, as it was."""
    deleted_user(directory, user_id, now)
    deleted = directory.deleted_users.pop(user_id)
    user = {k: v for k, v in deleted.items() if k != "deletedDateTime"}
    directory.users[user_id] = user
    return dict(user)


def _not_found(key: str) -> SimError:
    return SimError(
        404,
        "Request_ResourceNotFound",
        f"Resource '{key[:64]}' does not exist or one of its queried reference-property "
        "objects are not present.",
    )
