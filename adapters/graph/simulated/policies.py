"""Conditional Access policy updates, as the simulated tenant applies them.

PATCH semantics: top-level properties are replaced; inside ``conditions`` each named
condition (``users``, ``applications``, ...) is replaced as a whole, which is why clients must
send the complete ``users`` object. Read-only properties, properties the types do not define
(``conditionalAccessPolicy``, ``conditionalAccessConditionSet``, ``conditionalAccessUsers``)
and unknown directory ids are refused.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from adapters.graph.simulated.clock import iso
from adapters.graph.simulated.directory import Directory
from adapters.graph.simulated.errors import SimError
from adapters.graph.simulated.odata import check_nested, check_properties

Doc = dict[str, Any]
READ_ONLY = frozenset({"id", "createdDateTime", "modifiedDateTime", "templateId"})
_SPECIAL_USERS = frozenset({"All", "None", "GuestsOrExternalUsers"})
# "conditionalAccessPolicy resource type" (templateId: read-only, as the seed shows it).
POLICY_PROPERTIES = frozenset(
    {
        "conditions",
        "createdDateTime",
        "displayName",
        "grantControls",
        "id",
        "modifiedDateTime",
        "sessionControls",
        "state",
        "templateId",
    }
)
# "conditionalAccessConditionSet resource type" (plus the two conditions newer pages add).
CONDITION_PROPERTIES = frozenset(
    {
        "applications",
        "authenticationFlows",
        "clientApplications",
        "clientAppTypes",
        "devices",
        "insiderRiskLevels",
        "locations",
        "platforms",
        "servicePrincipalRiskLevels",
        "signInRiskLevels",
        "userRiskLevels",
        "users",
    }
)
# "conditionalAccessUsers resource type".
USERS_PROPERTIES = frozenset(
    {
        "excludeGroups",
        "excludeGuestsOrExternalUsers",
        "excludeRoles",
        "excludeUsers",
        "includeGroups",
        "includeGuestsOrExternalUsers",
        "includeRoles",
        "includeUsers",
    }
)


def policy_or_404(directory: Directory, policy_id: str) -> Doc:
    policy = directory.policies.get(policy_id)
    if policy is None:
        raise SimError(404, "NotFound", f"Policy '{policy_id[:64]}' was not found.")
    return policy


def patch(directory: Directory, policy_id: str, body: Any, now: datetime) -> None:
    policy = policy_or_404(directory, policy_id)
    if not isinstance(body, dict) or not body:
        raise SimError(400, "BadRequest", "The request body must be a non-empty JSON object.")
    check_properties(body, POLICY_PROPERTIES, "conditionalAccessPolicy")
    if READ_ONLY & set(body):
        raise SimError(400, "BadRequest", "The request changes a read-only property.")
    conditions = body.get("conditions", {})
    if not isinstance(conditions, dict):
        raise SimError(400, "BadRequest", "conditions must be an object.")
    check_properties(conditions, CONDITION_PROPERTIES, "conditionalAccessConditionSet")
    check_nested(conditions, "users", USERS_PROPERTIES, "conditionalAccessUsers")
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
