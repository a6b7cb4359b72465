"""Entra directory roles through PIM: assign with its own expiry, verify, remove.

Ownership is proved by the job marker in the justification of the ``adminAssign`` request and
the schedule it created; a rollback never removes an assignment this job did not create.

Verification means "exactly our principal gained exactly this role, nothing else changed": the
role's holders are read before the write (kept as evidence under ``holders_key``) and compared
with the holders at each verification read; any other difference is flagged, never verified.

A principal deleted during the window keeps its roles in deleted items and gets them back if
it is restored (docs/graph.md): no request removes them meanwhile, and absence from the lists
proves nothing until the grant's own schedule has ended (``PRINCIPAL_DELETED``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from adapters.graph.arguments import job_marker, marked_deployment, marked_job
from adapters.graph.context import ToolContext
from engine.catalog import REMOVE_ROLE
from engine.errors import GraphError
from engine.ports import MarkedGrant
from engine.timeutil import iso_seconds_up
from engine.tools import GRANT_ENDS_AT, ToolResult

REQUESTS = "/roleManagement/directory/roleAssignmentScheduleRequests"
INSTANCES = "/roleManagement/directory/roleAssignmentScheduleInstances"
ROOT_SCOPE = "/"
# Request states in which the assignment exists or is on its way ("ScheduleCreated" is one).
LIVE_STATES = frozenset(
    {"Provisioned", "Granted", "PendingProvisioning", "PendingScheduleCreation", "ScheduleCreated"}
)
# PIM refuses to remove an assignment during its first minutes (see docs/graph.md).
MIN_ACTIVE_BEFORE_REMOVAL = timedelta(minutes=5)
TOO_EARLY = "ActiveDurationTooShort"
REMOVAL_NOT_YET_ALLOWED = "REMOVAL_NOT_YET_ALLOWED"
PRINCIPAL_DELETED = "PRINCIPAL_DELETED"
CLOCK_SKEW = timedelta(seconds=60)  # tolerated difference between Entra's clock and ours
_DURATION = re.compile(r"P(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)S)?)?")

Doc = dict[str, Any]
_ISO = "%Y-%m-%dT%H:%M:%SZ"


def pair_filter(principal_id: str, role_id: str) -> dict[str, str]:
    # Both ids were checked to be GUIDs, so they cannot break out of the quotes.
    return {"$filter": f"principalId eq '{principal_id}' and roleDefinitionId eq '{role_id}'"}


def assign_body(args: Mapping[str, Any], now: datetime, deployment: str = "") -> Doc:
    marker = job_marker(args["job_id"], deployment)
    justification = f"{marker} {args['justification']}".strip()
    return {
        "action": "adminAssign",
        "principalId": args["principal_id"],
        "roleDefinitionId": args["role_definition_id"],
        "directoryScopeId": ROOT_SCOPE,
        "justification": justification,
        "ticketInfo": {"ticketNumber": args.get("ticket_number"), "ticketSystem": "breakglass"},
        "scheduleInfo": {
            "startDateTime": now.strftime(_ISO),
            "expiration": {"type": "afterDuration", "duration": f"PT{args['duration_minutes']}M"},
        },
    }


def remove_body(args: Mapping[str, Any]) -> Doc:
    return {
        "action": "adminRemove",
        "principalId": args["principal_id"],
        "roleDefinitionId": args["role_definition_id"],
        "directoryScopeId": ROOT_SCOPE,
        "justification": f"{job_marker(args['job_id'])} rollback",
    }


async def active_instances(ctx: ToolContext, principal_id: str, role_id: str) -> list[Doc]:
    found = await ctx.client.get_all(INSTANCES, pair_filter(principal_id, role_id))
    return [i for i in found if i.get("directoryScopeId") == ROOT_SCOPE]


async def holders(ctx: ToolContext, role_id: str) -> tuple[list[str], list[str]]:
    """The role's holders, and those of them holding it through a breakglass job's own grant
    (a marked request): another job's grant coming and going is that job's to receipt and
    verify, not drift here. One read of the instances, one of the requests."""
    role_filter = {"$filter": f"roleDefinitionId eq '{role_id}'"}
    found = await ctx.client.get_all(INSTANCES, role_filter)
    requests = await ctx.client.get_all(REQUESTS, role_filter)
    schedules = {
        r.get("targetScheduleId")
        for r in requests
        if r.get("action") == "adminAssign" and marked_job(r.get("justification"))
    }
    granted = {
        str(i.get("principalId")) for i in found if i.get("roleAssignmentScheduleId") in schedules
    }
    return sorted({str(i.get("principalId")) for i in found}), sorted(granted)


async def job_requests(ctx: ToolContext, args: Mapping[str, Any]) -> list[Doc]:
    """This job's live ``adminAssign`` requests for the principal and role."""
    found = await ctx.client.get_all(
        REQUESTS, pair_filter(args["principal_id"], args["role_definition_id"])
    )
    job_id = args["job_id"]
    return [r for r in found if _is_live_assign(r) and marked_job(r.get("justification")) == job_id]


async def find_job_request(ctx: ToolContext, args: Mapping[str, Any], patient: bool) -> Doc | None:
    """This job's request, polling while replication may hide it when ``patient``."""
    if not patient:
        found = await job_requests(ctx, args)
    else:
        found, _ = await ctx.poll(lambda: job_requests(ctx, args), bool)
    return found[-1] if found else None


def holders_key(job_id: str, principal_id: str, role_id: str) -> str:
    return f"role:{job_id}:{principal_id}:{role_id}"


async def save_holders_before(ctx: ToolContext, args: Mapping[str, Any]) -> list[str]:
    """The role's holders before this job's write, and which of them other breakglass jobs
    granted (the first saved set wins on a retry)."""
    key = holders_key(args["job_id"], args["principal_id"], args["role_definition_id"])
    everyone, granted = await holders(ctx, args["role_definition_id"])
    current = {"holders_before": everyone, "breakglass_holders_before": granted}
    saved = await ctx.snapshots.save_snapshot(key, current)
    return sorted(str(h) for h in saved.get("holders_before", current["holders_before"]))


async def write_role_assignment(ctx: ToolContext, args: Mapping[str, Any]) -> ToolResult:
    before = await save_holders_before(ctx, args)
    body = assign_body(args, ctx.now(), ctx.deployment)

    async def send() -> Doc:
        return dict((await ctx.client.post(REQUESTS, body)).body)

    try:
        request, recovered = await ctx.write_once(
            send, lambda: find_job_request(ctx, args, patient=True)
        )
    except GraphError as err:
        if err.code != "RoleAssignmentExists":
            raise
        # Ours already (a retried job step, or a resend after a hidden success)? Else refuse.
        found = await find_job_request(ctx, args, patient=True)
        if found is None or not await _is_active(ctx, args, found):
            raise
        request, recovered = found, True
    # Anything but a live state (PendingApproval, Failed, Denied...) means no grant in place.
    status = "success" if request.get("status") in LIVE_STATES else "error"
    return ToolResult(status, _assigned(request, recovered) | {"holders_before": before})


async def read_role_assignment(ctx: ToolContext, args: Mapping[str, Any]) -> ToolResult:
    principal, role = args["principal_id"], args["role_definition_id"]
    want_present = args["expect"] == "present"
    found, reads = await ctx.poll(
        lambda: active_instances(ctx, principal, role), lambda xs: bool(xs) == want_present
    )
    after, granted = await holders(ctx, role)
    newest = await _newest_marked(ctx, principal, role)
    before, breakglass_before = await _holders_before(ctx, principal, role, newest)
    explained = {*breakglass_before, *granted}
    changes = _other_changes(principal, before, after, explained)
    # Without a baseline, "present" cannot be shown to be our change alone.
    baseline_ok = before is not None or not want_present
    # Nothing listed is no proof of absence while a restore would bring the role back.
    deletion = {} if found or want_present else await _deletion(ctx, principal, newest)
    body = {
        "verified": bool(found) == want_present
        and baseline_ok
        and not any(changes.values())
        and deletion.get("lapsed", True),
        "expect": args["expect"],
        "present": bool(found),
        "principal_id": principal,
        "role_definition_id": role,
        "holders_before": before,
        "holders": after,
        **changes,
        "assignments": [_instance_view(i) for i in found],
        "reads": reads,
        **deletion,
    }
    return ToolResult("success", body)


def _other_changes(
    principal: str, before: list[str] | None, after: list[str], explained: set[str]
) -> Doc:
    """Holders other than ``principal`` that appeared or disappeared since the baseline,
    but for those another breakglass job granted (``explained``)."""
    if before is None:
        return {"unexpected_holders": [], "lost_holders": []}
    others_before = set(before) - {principal} - explained
    others_after = set(after) - {principal} - explained
    return {
        "unexpected_holders": sorted(others_after - others_before),
        "lost_holders": sorted(others_before - others_after),
    }


async def _newest_marked(ctx: ToolContext, principal: str, role: str) -> Doc | None:
    """The newest breakglass ``adminAssign`` request for this principal and role."""
    found = await ctx.client.get_all(REQUESTS, pair_filter(principal, role))
    ours = [r for r in found if r.get("action") == "adminAssign"]
    ours.sort(key=lambda r: str(r.get("createdDateTime") or ""))  # Graph promises no order
    marked = [r for r in ours if marked_job(r.get("justification"))]
    return marked[-1] if marked else None


async def _holders_before(
    ctx: ToolContext, principal: str, role: str, newest: Doc | None
) -> tuple[list[str] | None, list[str]]:
    """The baseline saved by the newest breakglass write (``newest``) for this principal and
    role: its holders (None: no baseline), and which of them breakglass jobs granted."""
    if newest is None:
        return None, []
    job_id = str(marked_job(newest.get("justification")))
    snap = await ctx.snapshots.load_snapshot(holders_key(job_id, principal, role)) or {}
    saved, granted = snap.get("holders_before"), snap.get("breakglass_holders_before")
    if not isinstance(saved, list):
        return None, []
    granted = granted if isinstance(granted, list) else []  # a baseline from before it
    return sorted(str(h) for h in saved), [str(h) for h in granted]


async def remove_role_assignment(ctx: ToolContext, args: Mapping[str, Any]) -> ToolResult:
    principal, role = args["principal_id"], args["role_definition_id"]
    ours = await find_job_request(ctx, args, patient=True)
    active = await active_instances(ctx, principal, role)
    ours_schedule = ours.get("targetScheduleId") if ours else None
    foreign = [i for i in active if i.get("roleAssignmentScheduleId") != ours_schedule]
    # ``ours_seen``: the tenant showed this job's request. When it did not, "already gone" may
    # only mean that a replica has not caught up with the write; the rollback reads again.
    seen = ours is not None
    if ours is None or foreign:
        # Nothing of this job's is left to remove; whatever else grants the role stays.
        body = _removal(already_gone=True, still_held=bool(active), seen=seen)
        return ToolResult("success", body)
    try:
        already_gone = await _send_remove(ctx, args)
    except GraphError as err:
        if err.code == TOO_EARLY:
            return ToolResult("error", _not_yet(ctx, active))
        # Graph documents no answer for a deleted principal: whatever refusal, read the user.
        deletion = await _deletion(ctx, principal, ours) if err.status in (400, 404) else {}
        if not deletion:
            raise
        return _while_deleted(deletion)
    # "Does not exist" may only mean that the principal, and its roles with it, are deleted.
    if already_gone and (deletion := await _deletion(ctx, principal, ours)):
        return _while_deleted(deletion)
    remaining, reads = await ctx.poll(lambda: active_instances(ctx, principal, role), _empty)
    body = _removal(already_gone=already_gone, still_held=bool(remaining), seen=seen)
    return ToolResult("success" if not remaining else "error", body | {"reads": reads})


async def marked_role_grants(ctx: ToolContext) -> list[MarkedGrant]:
    """Live assignments created by a breakglass job (found through their request's marker)."""
    requests = [r for r in await ctx.client.get_all(REQUESTS) if _is_live_assign(r)]
    marked = {
        str(r["targetScheduleId"]): r
        for r in requests
        if r.get("targetScheduleId") and marked_job(r.get("justification"))
    }
    pairs = {(str(r["principalId"]), str(r["roleDefinitionId"])) for r in marked.values()}
    grants = []
    for principal, role in sorted(pairs):
        for instance in await active_instances(ctx, principal, role):
            request = marked.get(str(instance.get("roleAssignmentScheduleId")))
            if request is not None:
                grants.append(_marked(ctx, request))
    return grants


async def _deletion(ctx: ToolContext, principal: str, request: Doc | None) -> Doc:
    """{} while the principal is a user of the tenant. Else it was deleted, and a restore
    would bring back the role that ``request`` (the breakglass grant) gave, until that
    grant's schedule ends: ``lapsed`` once it has, or when there is no grant."""
    try:
        await ctx.client.get(f"/users/{principal}")
        return {}
    except GraphError as err:
        if err.status != 404:
            raise
    end = _schedule_end(request) if request is not None else None
    lapses = end + CLOCK_SKEW if end is not None else None
    lapsed = request is None or (lapses is not None and ctx.now() >= lapses)
    when = lapses.strftime(_ISO) if lapses is not None else None
    return {"principal_deleted": True, "lapses_at": when, "lapsed": lapsed}


def _while_deleted(deletion: Doc) -> ToolResult:
    """No request can remove a deleted principal's role. Once the grant has lapsed nothing
    can come back, and the removal is done; before, it is not (``lapses_at``: when)."""
    body = {"removed": False, "ours_seen": True, **deletion}
    if deletion["lapsed"]:
        return ToolResult("success", body | {"already_gone": True, "verified": True})
    return ToolResult("error", body | {"error": PRINCIPAL_DELETED, "verified": False})


def _schedule_end(request: Mapping[str, Any]) -> datetime | None:
    """When the request's assignment expires: its end, or its start plus its duration, the
    start no earlier than the request's creation (Entra moves a past start to now)."""
    info = request.get("scheduleInfo")
    expiration = info.get("expiration") if isinstance(info, Mapping) else None
    if not isinstance(info, Mapping) or not isinstance(expiration, Mapping):
        return None
    end = _parse_time(expiration.get("endDateTime"))
    if end is not None:
        return end
    duration = _parse_duration(expiration.get("duration"))
    starts = [_parse_time(info.get("startDateTime")), _parse_time(request.get("createdDateTime"))]
    known = [s for s in starts if s is not None]
    return max(known) + duration if duration is not None and known else None


def _parse_duration(text: object) -> timedelta | None:
    match = _DURATION.fullmatch(text) if isinstance(text, str) else None
    if match is None or not any(match.groups()):
        return None
    days, hours, minutes, seconds = (int(g or 0) for g in match.groups())
    return timedelta(days=days, hours=hours, minutes=minutes, seconds=seconds)


def _not_yet(ctx: ToolContext, active: list[Doc]) -> Doc:
    """PIM refused an early removal: when it becomes possible (UTC, ISO 8601)."""
    starts = [_parse_time(i.get("startDateTime")) for i in active]
    known = [s for s in starts if s is not None]
    start = max(known) if known else ctx.now()
    not_before = start + MIN_ACTIVE_BEFORE_REMOVAL
    return {"error": REMOVAL_NOT_YET_ALLOWED, "not_before": not_before.strftime(_ISO)}


def _parse_time(text: object) -> datetime | None:
    if not isinstance(text, str):
        return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else None


async def _send_remove(ctx: ToolContext, args: Mapping[str, Any]) -> bool:
    """Send ``adminRemove``; True when the assignment was already gone."""
    principal, role = args["principal_id"], args["role_definition_id"]

    async def send() -> bool:
        await ctx.client.post(REQUESTS, remove_body(args))
        return False

    async def gone() -> bool | None:
        found, _ = await ctx.poll(lambda: active_instances(ctx, principal, role), _empty)
        return None if found else False

    try:
        await ctx.write_once(send, gone)
    except GraphError as err:
        if err.code != "RoleAssignmentDoesNotExist":
            raise
        return True
    return False


async def _is_active(ctx: ToolContext, args: Mapping[str, Any], request: Doc) -> bool:
    active = await active_instances(ctx, args["principal_id"], args["role_definition_id"])
    schedule = request.get("targetScheduleId")
    return any(i.get("roleAssignmentScheduleId") == schedule for i in active)


def _marked(ctx: ToolContext, request: Doc) -> MarkedGrant:
    job_id = marked_job(request.get("justification")) or ""
    principal, role = str(request["principalId"]), str(request["roleDefinitionId"])
    return ctx.marked_grant(
        job_id,
        REMOVE_ROLE,
        {"principal_id": principal, "role_definition_id": role},
        f"directory role {role} assigned to {principal} by breakglass job {job_id}",
        marked_deployment(request.get("justification")),
    )


def _is_live_assign(request: Mapping[str, Any]) -> bool:
    return request.get("action") == "adminAssign" and request.get("status") in LIVE_STATES


def _empty(items: list[Doc]) -> bool:
    return not items


def _assigned(request: Mapping[str, Any], recovered: bool) -> Doc:
    end = _schedule_end(request)  # PIM removes the assignment then, whatever becomes of us
    return {
        "request_id": request.get("id"),
        "status": request.get("status"),
        "principal_id": request.get("principalId"),
        "role_definition_id": request.get("roleDefinitionId"),
        "directory_scope_id": request.get("directoryScopeId"),
        "target_schedule_id": request.get("targetScheduleId"),
        "schedule": request.get("scheduleInfo"),
        "recovered_by_read_back": recovered,
        GRANT_ENDS_AT: iso_seconds_up(end) if end is not None else None,
    }


def _removal(*, already_gone: bool, still_held: bool, seen: bool) -> Doc:
    return {
        "removed": True,
        "already_gone": already_gone,
        "verified": not still_held,
        "ours_seen": seen,
    }


def _instance_view(instance: Mapping[str, Any]) -> Doc:
    keys = ("id", "startDateTime", "endDateTime", "assignmentType", "memberType")
    return {k: instance.get(k) for k in keys}
