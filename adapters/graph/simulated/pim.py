"""PIM role assignment schedule requests, as the simulated tenant processes them.

Supported actions: ``adminAssign`` (with ``afterDuration``, ``afterDateTime`` or
``noExpiration``) and ``adminRemove``, at directory scope ``/``. Refusals use Graph's codes:
``RoleAssignmentExists``, ``RoleAssignmentDoesNotExist`` and
``RoleAssignmentRequestPolicyValidationFailed`` (duration above the role's maximum, missing
justification).

With ``strict`` (the real tenant's rules, see docs/graph.md): active durations under
``MIN_ACTIVE`` are refused (``ActiveDurationTooShort``); an assignment cannot be removed in its
first ``MIN_ACTIVE`` (``ActiveDurationTooShort`` again, as PIM answers early deactivations); the
last holder of Global Administrator or Privileged Role Administrator cannot be removed; an
assignment whose start lies ahead is answered ``ScheduleCreated`` instead of ``Provisioned``.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from adapters.graph.simulated.clock import iso, parse_iso
from adapters.graph.simulated.directory import Assignment, Directory, RoleDefinition
from adapters.graph.simulated.errors import SimError
from adapters.graph.simulated.odata import check_nested, check_properties

Doc = dict[str, Any]
MIN_ACTIVE = timedelta(minutes=5)
# Built-in role template ids whose last holder the tenant protects.
PROTECTED_ROLES = frozenset(
    {"62e90394-69f5-4237-9190-012177145e10", "e8611ab8-c189-46e8-94e1-60213ab1f814"}
)
# The properties of unifiedRoleAssignmentScheduleRequest and its complex types (not open
# types): "unifiedRoleAssignmentScheduleRequest resource type", "requestSchedule resource
# type", "expirationPattern resource type", "ticketInfo resource type".
REQUEST_PROPERTIES = frozenset(
    {
        "action",
        "appScopeId",
        "approvalId",
        "completedDateTime",
        "createdBy",
        "createdDateTime",
        "customData",
        "directoryScopeId",
        "id",
        "isValidationOnly",
        "justification",
        "principalId",
        "roleDefinitionId",
        "scheduleInfo",
        "status",
        "targetScheduleId",
        "ticketInfo",
    }
)
SCHEDULE_PROPERTIES = frozenset({"startDateTime", "expiration", "recurrence"})
EXPIRATION_PROPERTIES = frozenset({"type", "endDateTime", "duration"})
TICKET_PROPERTIES = frozenset({"ticketNumber", "ticketSystem"})
_DURATION = re.compile(r"P(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)S)?)?")


def parse_duration(text: object) -> timedelta:
    """An ISO 8601 duration such as ``PT30M`` or ``P1DT2H``."""
    match = _DURATION.fullmatch(text) if isinstance(text, str) else None
    if match is None or text in ("P", "PT") or not any(match.groups()):
        raise SimError(400, "BadRequest", "scheduleInfo.expiration.duration is not a duration")
    days, hours, minutes, seconds = (int(g or 0) for g in match.groups())
    return timedelta(days=days, hours=hours, minutes=minutes, seconds=seconds)


def submit(directory: Directory, body: Any, now: datetime, *, strict: bool = False) -> Doc:
    """Process one request; returns the stored request object or raises ``SimError``."""
    if not isinstance(body, dict):
        raise SimError(400, "BadRequest", "The request body must be a JSON object.")
    _check_shape(body)
    action = body.get("action")
    principal_id, role = _target(directory, body)
    scope = body.get("directoryScopeId")
    if scope != "/":
        raise SimError(400, "BadRequest", "Only directoryScopeId '/' is supported here.")
    if action == "adminAssign":
        assignment = _assign(directory, body, principal_id, role, now, strict)
        live = "ScheduleCreated" if strict and assignment.start > now else "Provisioned"
        return _record(directory, body, assignment, live, now)
    if action == "adminRemove":
        existing = directory.active_for(principal_id, role.id, scope, now)
        if existing is None:
            raise SimError(400, "RoleAssignmentDoesNotExist", "The Role assignment does not exist.")
        if strict:
            _check_removable(directory, existing, now)
        existing.removed_at = now
        return _record(directory, body, existing, "Revoked", now)
    raise SimError(400, "BadRequest", "action must be adminAssign or adminRemove here.")


def _check_shape(body: Mapping[str, Any]) -> None:
    """Every property defined by its type, as Graph reads a request body."""
    check_properties(body, REQUEST_PROPERTIES, "unifiedRoleAssignmentScheduleRequest")
    check_nested(body, "scheduleInfo", SCHEDULE_PROPERTIES, "requestSchedule")
    schedule = body.get("scheduleInfo")
    if isinstance(schedule, Mapping):
        check_nested(schedule, "expiration", EXPIRATION_PROPERTIES, "expirationPattern")
    check_nested(body, "ticketInfo", TICKET_PROPERTIES, "ticketInfo")


def _target(directory: Directory, body: Mapping[str, Any]) -> tuple[str, RoleDefinition]:
    principal_id, role_id = body.get("principalId"), body.get("roleDefinitionId")
    if not isinstance(principal_id, str) or principal_id not in directory.users:
        raise SimError(400, "BadRequest", "principalId does not name a user in this tenant.")
    role = directory.roles.get(role_id) if isinstance(role_id, str) else None
    if role is None:
        raise SimError(404, "NotFound", "roleDefinitionId does not name a role definition.")
    return principal_id, role


def _assign(
    directory: Directory,
    body: Mapping[str, Any],
    principal_id: str,
    role: RoleDefinition,
    now: datetime,
    strict: bool,
) -> Assignment:
    if directory.active_for(principal_id, role.id, "/", now) is not None:
        raise SimError(400, "RoleAssignmentExists", "The Role assignment already exists.")
    start, end = _window(body.get("scheduleInfo"), now)
    if strict and end is not None and end - start < MIN_ACTIVE:
        raise SimError(
            400,
            "ActiveDurationTooShort",
            "The role assignment's active duration is too short. The minimum is 5 minutes.",
        )
    failed = _policy_failures(role, body, start, end)
    if failed:
        rules = ", ".join(f'"{r}"' for r in failed)
        raise SimError(
            400,
            "RoleAssignmentRequestPolicyValidationFailed",
            f"The following policy rules failed: [{rules}]",
        )
    assignment = Assignment(principal_id, role.id, start, end, "pim")
    directory.assignments.append(assignment)
    return assignment


def _check_removable(directory: Directory, assignment: Assignment, now: datetime) -> None:
    if now < assignment.start + MIN_ACTIVE:
        raise SimError(
            400,
            "ActiveDurationTooShort",
            "The role assignment cannot be removed within 5 minutes of its activation.",
        )
    if assignment.role_id in PROTECTED_ROLES:
        holders = {
            a.principal_id
            for a in directory.listed_assignments(now)  # a deleted holder administers nothing
            if a.role_id == assignment.role_id
        }
        if holders <= {assignment.principal_id}:
            raise SimError(
                400,
                "BadRequest",
                "The last active holder of this role cannot be removed from the tenant.",
            )


def _window(info: Any, now: datetime) -> tuple[datetime, datetime | None]:
    if not isinstance(info, dict):
        raise SimError(400, "BadRequest", "scheduleInfo is required.")
    try:
        start = parse_iso(info["startDateTime"]) if info.get("startDateTime") else now
    except (TypeError, ValueError) as exc:
        raise SimError(400, "BadRequest", "scheduleInfo.startDateTime is not a date.") from exc
    expiration = info.get("expiration") or {"type": "noExpiration"}
    kind = expiration.get("type") if isinstance(expiration, dict) else None
    if kind == "afterDuration":
        return start, start + parse_duration(expiration.get("duration"))
    if kind == "afterDateTime":
        try:
            return start, parse_iso(str(expiration.get("endDateTime")))
        except ValueError as exc:
            raise SimError(400, "BadRequest", "expiration.endDateTime is not a date.") from exc
    if kind == "noExpiration":
        return start, None
    raise SimError(400, "BadRequest", "scheduleInfo.expiration.type is not supported.")


def _policy_failures(
    role: RoleDefinition, body: Mapping[str, Any], start: datetime, end: datetime | None
) -> list[str]:
    failed = []
    if end is None or end - start > timedelta(minutes=role.max_minutes) or end <= start:
        failed.append("ExpirationRule")
    justification = body.get("justification")
    if role.require_justification and not (
        isinstance(justification, str) and justification.strip()
    ):
        failed.append("JustificationRule")
    return failed


def _record(
    directory: Directory,
    body: Mapping[str, Any],
    assignment: Assignment,
    status: str,
    now: datetime,
) -> Doc:
    request = {
        "id": str(uuid.uuid4()),
        "status": status,
        "createdDateTime": iso(now),
        "completedDateTime": iso(now),
        "approvalId": None,
        "customData": None,
        "action": body["action"],
        "principalId": assignment.principal_id,
        "roleDefinitionId": assignment.role_id,
        "directoryScopeId": assignment.scope,
        "appScopeId": None,
        "isValidationOnly": False,
        "targetScheduleId": assignment.schedule_id,
        "justification": body.get("justification"),
        "createdBy": {"application": {"id": directory.app_id}, "device": None, "user": None},
        "scheduleInfo": body.get("scheduleInfo") or _schedule_of(assignment),
        "ticketInfo": body.get("ticketInfo") or {"ticketNumber": None, "ticketSystem": None},
    }
    directory.requests.append(request)
    return request


def _schedule_of(assignment: Assignment) -> Doc:
    end = assignment.end
    return {
        "startDateTime": iso(assignment.start),
        "recurrence": None,
        "expiration": {
            "type": "afterDateTime" if end else "noExpiration",
            "endDateTime": iso(end) if end else None,
            "duration": None,
        },
    }


def inject(
    directory: Directory, principal_id: str, role_id: str, minutes: int | None, now: datetime
) -> Doc:
    """Another administrator assigns the role (control API): no PIM policy applies."""
    if principal_id not in directory.users or role_id not in directory.roles:
        raise SimError(404, "NotFound", "unknown principal or role")
    if directory.active_for(principal_id, role_id, "/", now) is not None:
        raise SimError(400, "RoleAssignmentExists", "The Role assignment already exists.")
    end = now + timedelta(minutes=minutes) if minutes else None
    assignment = Assignment(principal_id, role_id, now, end, "injected")
    directory.assignments.append(assignment)
    body = {"action": "adminAssign", "justification": "assigned by another administrator"}
    return _record(directory, body, assignment, "Provisioned", now)
