"""Conditional Access policy updates, as the simulated tenant applies them.

PATCH semantics: top-level properties are replaced; inside ``conditions`` each named
condition (``users``, ``applications``, ...) is replaced as a whole, which is why clients must
send the complete ``users`` object. Read-only properties and unknown directory ids are refused.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from adapters.graph.simulated.clock import iso
from adapters.graph.simulated.directory import Directory
from adapters.graph.simulated.errors import SimError

Doc = dict[str, Any]
READ_ONLY = frozenset({"id", "createdDateTime", "modifiedDateTime", "templateId"})
_SPECIAL_USERS = frozenset({"All", "None", "GuestsOrExternalUsers"})


def policy_or_404(directory: Directory, policy_id: str) -> Doc:
    policy = directory.policies.get(policy_id)
    if policy is None:
        raise SimError(404, "NotFound", f"Policy '{policy_id[:64]}' was not found.")
    return policy


def patch(directory: Directory, policy_id: str, body: Any, now: datetime) -> None:
    policy = policy_or_404(directory, policy_id)
    if not isinstance(body, dict) or not body:
        raise SimError(400, "BadRequest", "The request body must be a non-empty JSON object.")
    if READ_ONLY & set(body):
        raise SimError(400, "BadRequest", "The request changes a read-only property.")
    conditions = body.get("conditions", {})
    if not isinstance(conditions, dict):
        raise SimError(400, "BadRequest", "conditions must be an object.")
    if "users" in conditions:
        _check_users(directory, conditions["users"])
    merge(policy, body)
    policy["modifiedDateTime"] = iso(now)


def merge(policy: Doc, body: Mapping[str, Any]) -> None:
    for key, value in body.items():
        if key == "conditions" and isinstance(policy.get("conditions"), dict):
            policy["conditions"].update(value)
        else:
            policy[key] = value


def _check_users(directory: Directory, users: Any) -> None:
    if not isinstance(users, dict):
        raise SimError(400, "BadRequest", "conditions.users must be an object.")
    for key in ("includeUsers", "excludeUsers", "includeGroups", "excludeGroups"):
        ids = users.get(key, [])
        if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
            raise SimError(400, "BadRequest", f"conditions.users.{key} must be a list of ids.")
        known = directory.groups if "Groups" in key else directory.users
        unknown = [i for i in ids if i not in known and i not in _SPECIAL_USERS]
        if unknown:
            raise SimError(400, "BadRequest", f"conditions.users.{key} names an unknown object.")
