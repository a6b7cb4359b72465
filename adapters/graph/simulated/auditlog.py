"""The simulated tenant's activity logs: directory audit entries and sign-in entries.

The tenant records an audit entry for what happens in it (role assignments and removals,
Conditional Access policy changes, session revocations, and whatever the control surface
says a user did) and a sign-in entry when a user signs in (the step-up sign-in page, or
``SimulatedTenant.sign_in``). A sign-in carries ``appliedConditionalAccessPolicies``: for an
enabled policy that includes the user, ``notApplied`` when the user (or a group of theirs) is
excluded, else ``success``.

Modelled limits, as documented for Graph's reporting API (docs/graph.md): entries become
readable ``latency`` after they happen (Entra: 2 min for 95 %, 5 min for 99 %; 0 here unless
set), and ``ReportsGate`` allows ``limit`` requests per ``window`` seconds (5 per 10 s),
answering 429 with ``Retry-After`` beyond that. Kept in memory only (not persisted).
"""

from __future__ import annotations

import math
import time
import uuid
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from adapters.graph.simulated.errors import SimError

Doc = dict[str, Any]
APP_NAME = "breakglass (SIMULATED)"


def precise(moment: datetime) -> str:
    """Log timestamps carry fractions of a second, as Graph's do ("…T21:20:02.7215374Z"):
    an action in the same second as a window's start must not fall before it."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def user_initiator(user: Mapping[str, Any]) -> Doc:
    who = {k: user.get(k) for k in ("id", "displayName", "userPrincipalName")}
    return {"user": who, "app": None}


def app_initiator(app_id: str) -> Doc:
    return {"user": None, "app": {"appId": app_id, "displayName": APP_NAME}}


def target(kind: str, object_id: str, name: str | None = None) -> Doc:
    """A ``targetResource``: a user names itself by its UPN, other objects by display name."""
    key = "userPrincipalName" if kind == "User" else "displayName"
    return {"id": object_id, "type": kind, key: name}


@dataclass
class ActivityLog:
    audits: list[Doc] = field(default_factory=list)
    sign_ins: list[Doc] = field(default_factory=list)
    latency: timedelta = timedelta(0)

    def audit(
        self,
        at: datetime,
        activity: str,
        category: str,
        initiated_by: Doc,
        targets: Sequence[Doc],
        result: str = "success",
    ) -> Doc:
        entry = {
            "id": f"Directory_{uuid.uuid4()}",
            "category": category,
            "correlationId": str(uuid.uuid4()),
            "result": result,
            "resultReason": "",
            "activityDisplayName": activity,
            "activityDateTime": precise(at),
            "loggedByService": "Core Directory",
            "operationType": "Update",
            "initiatedBy": initiated_by,
            "targetResources": list(targets),
            "additionalDetails": [],
        }
        self.audits.append(entry)
        return entry

    def sign_in(
        self,
        at: datetime,
        user: Mapping[str, Any],
        app: str,
        applied: Sequence[Doc],
        error_code: int = 0,
    ) -> Doc:
        entry = {
            "id": str(uuid.uuid4()),
            "createdDateTime": precise(at),
            "userId": user["id"],
            "userDisplayName": user.get("displayName"),
            "userPrincipalName": user.get("userPrincipalName"),
            "appDisplayName": app,
            "appId": str(uuid.uuid5(uuid.NAMESPACE_URL, app)),
            "ipAddress": "192.0.2.10",  # TEST-NET-1: a simulated address
            "clientAppUsed": "Browser",
            "conditionalAccessStatus": _overall(applied),
            "isInteractive": True,
            "status": {"errorCode": error_code, "failureReason": None if not error_code else "x"},
            "appliedConditionalAccessPolicies": list(applied),
        }
        self.sign_ins.append(entry)
        return entry

    def readable(self, entries: list[Doc], field_name: str, now: datetime) -> list[Doc]:
        """The entries that have reached the log by ``now``, newest first (as Graph lists)."""
        ready = [e for e in entries if _at(e[field_name]) + self.latency <= now]
        return sorted(ready, key=lambda e: str(e[field_name]), reverse=True)


def user_did(
    log: ActivityLog,
    now: datetime,
    users: Mapping[str, Doc],
    who: object,
    activity: str,
    target_ids: object,
) -> Doc:
    """The audit entry of a change ``who`` made to these users (the control surface's
    stand-in for a person acting in the tenant); 400 unless every id names a user."""
    ids = target_ids if isinstance(target_ids, list) else None
    if who not in users or ids is None or not all(t in users for t in ids):
        raise SimError(400, "BadRequest", "user and targets must name users of this tenant")
    named = [target("User", t, users[t].get("userPrincipalName")) for t in ids]
    by = user_initiator(users[str(who)])
    return log.audit(now, activity[:120] or "Update user", "UserManagement", by, named)


def _overall(applied: Sequence[Doc]) -> str:
    results = {a["result"] for a in applied}
    if "failure" in results:
        return "failure"
    return "success" if "success" in results else "notApplied"


def _at(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def applied_policies(
    policies: Mapping[str, Doc], user_id: str, is_member: Callable[[str], bool]
) -> list[Doc]:
    """What each enabled CA policy did to this user's sign-in: ``success`` when it applied,
    ``notApplied`` when the user is outside it or excluded (by id or through a group)."""
    out = []
    for policy in policies.values():
        if policy.get("state") != "enabled":
            continue
        users = policy.get("conditions", {}).get("users", {})
        included = "All" in users.get("includeUsers", ()) or user_id in users.get(
            "includeUsers", ()
        )
        included = included or any(is_member(g) for g in users.get("includeGroups", ()))
        excluded = user_id in users.get("excludeUsers", ()) or any(
            is_member(g) for g in users.get("excludeGroups", ())
        )
        result = "success" if included and not excluded else "notApplied"
        out.append({"id": policy["id"], "displayName": policy.get("displayName"), "result": result})
    return out


class ReportsGate:
    """At most ``limit`` requests per ``window`` seconds, on a monotonic clock (injectable,
    like ``core.RateGate``); beyond that 429 with the seconds until a slot frees."""

    def __init__(
        self, limit: int, window: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.limit, self.window, self._clock = limit, window, clock
        self._seen: deque[float] = deque()

    def admit(self) -> None:
        now = self._clock()
        while self._seen and now - self._seen[0] >= self.window:
            self._seen.popleft()
        if len(self._seen) >= self.limit:
            wait = max(1, math.ceil(self._seen[0] + self.window - now))
            raise SimError(
                429,
                "TooManyRequests",
                "Too many requests to the reporting API.",
                {"Retry-After": str(wait)},
            )
        self._seen.append(now)
