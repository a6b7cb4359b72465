"""The activity reads (issue 17 §5): what the elevated principal did during the window, and
which sign-ins a Conditional Access exclusion let through.

Graph (docs/graph.md cites the pages): ``GET /auditLogs/directoryAudits`` filtered on
``initiatedBy/user/id`` and ``activityDateTime`` (ge/le), ``GET /auditLogs/signIns`` on
``userId`` and ``createdDateTime``; both need ``AuditLog.Read.All``, page with
``@odata.nextLink`` (at most 1,000 entries a page) and belong to the reporting service,
which allows 5 requests per 10 s per app and tenant: the client paces ``/auditLogs/`` at
``RetryPolicy.reports_interval`` and honours 429's ``Retry-After`` within its budget.
Entries reach the logs up to minutes late; the result says whether the read came late
enough (``settled``).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from adapters.graph.arguments import is_guid
from adapters.graph.context import ToolContext
from engine import activity
from engine.errors import InputError
from engine.timeutil import iso_ms, parse_iso
from engine.tools import ToolResult

AUDITS = "/auditLogs/directoryAudits"
SIGN_INS = "/auditLogs/signIns"
PAGE = "1000"  # the documented maximum page size
MAX_PAGES = 10  # per log and principal: past 10,000 entries the read gives up (unavailable)
MAX_MEMBERS = 10  # excluded group members whose sign-ins are read, one query each
MAX_SPAN = timedelta(days=2)
_USER = "#microsoft.graph.user"


def _span(args: Mapping[str, Any]) -> tuple[datetime, datetime]:
    """``since`` and ``until`` as UTC instants; InputError before anything is sent."""
    try:
        since, until = parse_iso(args["since"]), parse_iso(args["until"])
    except (InputError, ValueError) as exc:
        raise InputError("since and until must be ISO 8601 UTC instants") from exc
    if not since <= until <= since + MAX_SPAN:
        raise InputError("since must precede until, at most two days apart")
    return since.astimezone(UTC), until.astimezone(UTC)


def _between(field: str, since: datetime, until: datetime) -> str:
    # OData DateTimeOffset literals are unquoted.
    return f"{field} ge {iso_ms(since)} and {field} le {iso_ms(until)}"


async def _audits(ctx: ToolContext, user: str, since: datetime, until: datetime) -> list[Any]:
    where = f"initiatedBy/user/id eq '{user}' and " + _between("activityDateTime", since, until)
    params = {"$filter": where, "$top": PAGE}
    return await ctx.client.get_all(AUDITS, params, max_pages=MAX_PAGES)


async def _sign_ins(ctx: ToolContext, user: str, since: datetime, until: datetime) -> list[Any]:
    where = f"userId eq '{user}' and " + _between("createdDateTime", since, until)
    params = {"$filter": where, "$top": PAGE}
    return await ctx.client.get_all(SIGN_INS, params, max_pages=MAX_PAGES)


def _result(ctx: ToolContext, since: datetime, until: datetime, **parts: Any) -> ToolResult:
    # Compact on purpose: the bundle carries this result as it is (engine.activity).
    body = {
        "window": activity.span(since, until),
        **parts,
        "settled": activity.settled(until, ctx.now()),
    }
    return ToolResult("success", body)


async def read_activity(ctx: ToolContext, args: Mapping[str, Any]) -> ToolResult:
    """The principal's audit entries (what it initiated) and sign-ins over the span."""
    since, until = _span(args)
    principal = str(args["principal_id"])
    audits = await _audits(ctx, principal, since, until)
    sign_ins = await _sign_ins(ctx, principal, since, until)
    return _result(
        ctx,
        since,
        until,
        audits=activity.summarize_audits(audits),
        sign_ins=activity.summarize_sign_ins(sign_ins),
    )


async def read_exclusion_activity(ctx: ToolContext, args: Mapping[str, Any]) -> ToolResult:
    """The sign-ins of the excluded group's users (nested groups' included) over the span,
    counting those the policy did not apply to (what the exclusion let through)."""
    since, until = _span(args)
    group, policy = str(args["group_id"]), str(args["policy_id"])
    # The exclusion lets through nested members too ("Policy is applied to nested users and
    # groups"), and a group also holds groups and devices: every nested member, users only.
    members = await ctx.client.get_all(f"/groups/{group}/transitiveMembers", {"$select": "id"})
    # Only GUIDs go into a filter: an id from the wire never shapes the query.
    ids = sorted(
        {str(m["id"]) for m in members if m.get("@odata.type") == _USER and is_guid(m.get("id"))}
    )
    entries: list[Any] = []
    for member in ids[:MAX_MEMBERS]:
        entries += await _sign_ins(ctx, member, since, until)
    skipped = {"members_not_read": len(ids) - MAX_MEMBERS} if len(ids) > MAX_MEMBERS else {}
    return _result(
        ctx, since, until, sign_ins=activity.summarize_sign_ins(entries, policy), **skipped
    )
