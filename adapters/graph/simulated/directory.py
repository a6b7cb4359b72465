"""The simulated tenant's directory: users, roles, groups, CA policies, role assignments.

Loaded from a seed document (see ``adapters/graph/seed/default.json``); held in memory;
rendered in Graph's documented shapes by the ``*_view`` helpers.
"""

from __future__ import annotations

import copy
import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from importlib import resources
from typing import Any

from adapters.graph.simulated.clock import iso

Doc = dict[str, Any]


@dataclass(frozen=True)
class RoleDefinition:
    id: str
    display_name: str
    max_minutes: int  # PIM's maximum active-assignment duration for this role
    require_justification: bool = True

    def view(self) -> Doc:
        return {
            "id": self.id,
            "displayName": self.display_name,
            "isBuiltIn": True,
            "isEnabled": True,
            "templateId": self.id,
        }


@dataclass
class Assignment:
    """One active role assignment schedule and its single instance."""

    principal_id: str
    role_id: str
    start: datetime
    end: datetime | None
    origin: str  # seed | pim | injected
    scope: str = "/"
    schedule_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    instance_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    removed_at: datetime | None = None

    def active(self, now: datetime) -> bool:
        if self.removed_at is not None or now < self.start:
            return False
        return self.end is None or now < self.end

    def state(self, now: datetime) -> str:
        if self.removed_at is not None:
            return "removed"
        return "active" if self.active(now) else ("expired" if self.end else "scheduled")

    def instance_view(self) -> Doc:
        return {
            "id": self.instance_id,
            "principalId": self.principal_id,
            "roleDefinitionId": self.role_id,
            "directoryScopeId": self.scope,
            "appScopeId": None,
            "startDateTime": iso(self.start),
            "endDateTime": iso(self.end) if self.end else None,
            "assignmentType": "Assigned",
            "memberType": "Direct",
            "roleAssignmentOriginId": self.instance_id,
            "roleAssignmentScheduleId": self.schedule_id,
        }


@dataclass
class Directory:
    tenant_id: str
    app_id: str
    users: dict[str, Doc]
    roles: dict[str, RoleDefinition]
    groups: dict[str, Doc]
    policies: dict[str, Doc]
    assignments: list[Assignment] = field(default_factory=list)
    requests: list[Doc] = field(default_factory=list)
    revocations: list[Doc] = field(default_factory=list)  # revokeSignInSessions, in order
    # App registrations by object id; their passwordCredentials never keep secretText
    applications: dict[str, Doc] = field(default_factory=dict)
    # Soft-deleted users (Graph's deleted items), by object id, with their deletedDateTime
    deleted_users: dict[str, Doc] = field(default_factory=dict)

    def user(self, key: str) -> Doc | None:
        """A user by object id or by userPrincipalName (case-insensitive, as Graph matches)."""
        found = self.users.get(key)
        if found is not None:
            return found
        wanted = key.casefold()
        return next(
            (
                u
                for u in self.users.values()
                if str(u.get("userPrincipalName")).casefold() == wanted
            ),
            None,
        )

    def active_assignments(self, now: datetime) -> list[Assignment]:
        return [a for a in self.assignments if a.active(now)]

    def listed_assignments(self, now: datetime) -> list[Assignment]:
        """The active assignments Graph lists: a deleted user's are kept (a restore brings
        them back) but not listed (see ``deletions``)."""
        return [a for a in self.active_assignments(now) if a.principal_id not in self.deleted_users]

    def active_for(
        self, principal_id: str, role_id: str, scope: str, now: datetime
    ) -> Assignment | None:
        return next(
            (
                a
                for a in self.active_assignments(now)
                if (a.principal_id, a.role_id, a.scope) == (principal_id, role_id, scope)
            ),
            None,
        )

    def copy(self) -> Directory:
        return copy.deepcopy(self)

    def view(self, now: datetime) -> Doc:
        """Everything, for the control API: the true state, not a lagging replica."""
        return {
            "simulated": True,
            "tenantId": self.tenant_id,
            "now": iso(now),
            "users": list(self.users.values()),
            "deletedUsers": list(self.deleted_users.values()),
            "roles": [r.view() | {"maxMinutes": r.max_minutes} for r in self.roles.values()],
            "groups": list(self.groups.values()),
            "policies": list(self.policies.values()),
            "assignments": [
                a.instance_view() | {"state": a.state(now), "origin": a.origin}
                for a in self.assignments
            ],
            "roleAssignmentScheduleRequests": list(self.requests),
            "signInSessionRevocations": list(self.revocations),
            "applications": list(self.applications.values()),
        }


def default_seed() -> Doc:
    text = resources.files("adapters.graph").joinpath("seed/default.json").read_text("utf-8")
    seed: Doc = json.loads(text)
    return seed


def load_directory(seed: Mapping[str, Any], now: datetime) -> Directory:
    """A directory from a seed document; permanent seed assignments start a day before ``now``."""
    roles = {
        r["id"]: RoleDefinition(
            r["id"], r["displayName"], int(r["maxMinutes"]), bool(r.get("requireJustification", 1))
        )
        for r in seed["roles"]
    }
    directory = Directory(
        tenant_id=seed["tenantId"],
        app_id=seed["application"]["appId"],
        users={u["id"]: dict(u) for u in seed["users"]},
        roles=roles,
        groups={g["id"]: dict(g) for g in seed["groups"]},
        policies={p["id"]: copy.deepcopy(p) for p in seed["conditionalAccessPolicies"]},
        applications={a["id"]: copy.deepcopy(a) for a in seed.get("applications", [])},
    )
    for item in seed.get("roleAssignments", []):
        directory.assignments.append(
            Assignment(
                item["principalId"], item["roleDefinitionId"], now - timedelta(days=1), None, "seed"
            )
        )
    return directory
