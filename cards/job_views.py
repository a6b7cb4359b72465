"""From a job (and its chain) to the card views every platform renders.

Names: principals, roles, groups and policies are shown as display name AND id. A target's
display name is the one the tenant gave when the request was resolved (``request["resolved"]``),
else the lookup the service is configured with (the directory seed), else the id itself.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from cards import views
from engine import activity, chain
from engine.errors import InputError
from engine.job import ACTIVE, Job, Plan
from engine.lifecycle import END_EXECUTOR_FAILED, END_WRITE_FAILED
from engine.lifecycle.commands import DELAY_REASONS, DELAYED_DELETED
from engine.ports import ChainRecord
from engine.timeutil import parse_iso

_ROLLBACK_WORDS = {
    "breakglass.rollback.remove_role_assignment": "Remove the role assignment (PIM adminRemove)",
    # DESIGN §6: only our exclusion is removed; a stale snapshot is never written back.
    "breakglass.microsoft_graph.restore_ca_policy": "Remove this job's group exclusion from "
    "the Conditional Access policy (changes by others are kept and reported as drift)",
}
# An ANNOUNCE no transition makes: the reconciliation sweep (bot.sweep) removed what a
# resolved job left behind (detail: grant, at). Told in chat only; the job's chain is closed.
SWEPT = "swept"
_VERIFY_WORDS = {
    "absent": "Check that the principal no longer holds the role",
    "restored": "Check that the group is no longer excluded from the policy",
}


def named(names: Mapping[str, str], object_id: str) -> views.Named:
    return views.Named(names.get(object_id, object_id), object_id)


def target_names(job: Job, names: Mapping[str, str]) -> Mapping[str, str]:
    """``names`` with the display names the tenant gave for this job's targets on top."""
    resolved = job.request.get("resolved")
    found: dict[str, str] = {}
    for entry in resolved.values() if isinstance(resolved, Mapping) else ():
        if not isinstance(entry, Mapping):
            continue
        object_id, display = entry.get("object_id"), entry.get("display_name")
        if isinstance(object_id, str) and isinstance(display, str) and display.strip():
            found[object_id] = display
    return {**names, **found} if found else names


def action_summary(
    job: Job, names: Mapping[str, str], minutes: int | None = None
) -> views.ActionSummary:
    targets = job.request["targets"]
    names = target_names(job, names)
    template = views.Template(job.request["template"])
    if template is views.Template.CA_EXCLUSION:
        subject, resource = targets["group_id"], targets["policy_id"]
    else:
        subject, resource = targets["principal_id"], targets["role_definition_id"]
    return views.ActionSummary(
        template=template,
        tenant=named(names, targets["tenant_id"]),
        subject=named(names, subject),
        resource=named(names, resource),
        duration_minutes=minutes or int(job.request["minutes"]),
        simulated=job.simulated,
    )


def rollback_words(plan: Plan) -> tuple[str, ...]:
    terms = plan.payload["metadata"]["breakglass"]["rollback"]
    steps = [_ROLLBACK_WORDS.get(s["tool"], s["tool"]) for s in terms["steps"]]
    expect = terms["verify"]["arguments"].get("expect", "")
    return (*steps, _VERIFY_WORDS.get(expect, "Verify the rollback with a read"))


def _approvals(plan: Plan, names: Mapping[str, str]) -> tuple[views.Approval, ...]:
    latest = {d.principal: d for d in plan.decisions}
    return tuple(
        views.Approval(named(names, d.principal), parse_iso(d.at))
        for d in latest.values()
        if d.decision == "approve"
    )


def open_plan(job: Job) -> Plan:
    return job.extension if job.extension is not None else job.plan


def approval_view(
    job: Job, names: Mapping[str, str], now: datetime, approver_teams_ids: Sequence[str] = ()
) -> views.ApprovalView:
    plan = open_plan(job)
    start = parse_iso(job.window_start) if job.state == ACTIVE and job.window_start else now
    ends = job.window_end_at() if plan is job.plan and job.window_end else None
    return views.ApprovalView(
        job_id=job.job_id,
        plan_hash_b64u=plan.plan_hash,
        policy_hash_b64u=plan.plan_hash,
        action=action_summary(job, names, plan.minutes),
        ends_at=ends or _plus_minutes(max(start, now), plan.minutes),
        justification=str(job.request["justification"]),
        ticket=str(job.request["ticket"]),
        requester=named(names, job.requester.principal or job.requester.chat_identity),
        rollback=rollback_words(plan),
        approvals=_approvals(plan, names),
        approvals_required=_required(plan),
        approver_teams_ids=tuple(approver_teams_ids),
    )


def _required(plan: Plan) -> int:
    return int(plan.payload["metadata"]["breakglass"]["approvals"]["min_approvers"])


def _plus_minutes(when: datetime, minutes: int) -> datetime:
    return when + timedelta(minutes=minutes)


def approval_result_view(
    job: Job, names: Mapping[str, str], decision: str, principal: str, at: datetime
) -> views.ApprovalResultView:
    plan = open_plan(job) if decision != "approve" or job.extension else job.plan
    return views.ApprovalResultView(
        job_id=job.job_id,
        plan_hash_b64u=plan.plan_hash,
        action=action_summary(job, names, plan.minutes),
        decision=views.Decision(
            decision if decision in ("approve", "deny", "withdraw") else "deny"
        ),
        by=named(names, principal),
        at=at,
        approvals_count=len(plan.approvers()),
        approvals_required=_required(plan),
    )


def status_view(job: Job, names: Mapping[str, str], now: datetime) -> views.StatusView:
    last = None
    if job.last_tool_call:
        tool, _, status = job.last_tool_call.partition(": ")
        last = views.ToolCall(tool, status, now)
    ends = job.window_end_at() or parse_iso(job.expires_at)
    return views.StatusView(
        job_id=job.job_id,
        plan_hash_b64u=job.plan.plan_hash,
        action=action_summary(job, names),
        state=job.state,
        ends_at=ends,
        active=job.state == ACTIVE,
        last_tool_call=last,
    )


_KINDS = {
    chain.REQUEST: "request",
    chain.EXTENSION_REQUEST: "extension_request",
    chain.APPROVAL: "approval",
    chain.TOKEN_ISSUED: "token_issued",
    chain.TOOL_CALL: "tool_call",
    chain.LLM_CALL: "model_call",
    chain.REVOCATION: "revocation",
    chain.RUN_END: "run_end",
}


def receipt_line(record: ChainRecord) -> views.ReceiptLineView:
    event = record.event
    summary, outcome = _describe(record)
    return views.ReceiptLineView(
        job_id=record.job_id,
        seq=record.seq,
        at=parse_iso(event["timestamp"]),
        kind=_KINDS.get(str(event["event_type"]), str(event["event_type"])),
        summary=summary,
        outcome=outcome,
        chain_head_b64u=event["event_hash_b64u"],
    )


def _describe(record: ChainRecord) -> tuple[str, str]:
    payload: Mapping[str, Any] = (record.envelope or {}).get("payload", {})
    kind = record.event["event_type"]
    if kind == chain.TOOL_CALL:
        return str(payload.get("tool_name", "")), str(payload.get("result_status", ""))
    if kind == chain.APPROVAL:
        return (
            f"{payload.get('approval_type', '')} by {payload.get('approver_subject', '')}",
            "recorded",
        )
    if kind == chain.LLM_CALL:
        return f"{payload.get('provider', '')}/{payload.get('model', '')}", "receipted"
    if kind == chain.REVOCATION:
        return f"token {payload.get('jti', '')} revoked ({payload.get('reason', '')})", "revoked"
    if kind == chain.RUN_END:
        return _closed(payload.get("event_count")), str(payload.get("outcome", ""))
    return kind, "recorded"


def _closed(before: object) -> str:
    """The closing record is itself an event: it ends a chain of ``before + 1``."""
    if not isinstance(before, int) or isinstance(before, bool):
        return "chain closed"
    return f"chain closed: {before + 1} events, this one last"


def kill_result_view(
    job: Job, records: Sequence[ChainRecord], names: Mapping[str, str]
) -> views.KillResultView:
    revoked = tuple(f"scoped token {t.jti} ({t.kind})" for t in job.tokens if t.revoked_at)
    words = rollback_words(job.plan)
    verified = bool(job.rollback_verified)
    outcome = views.StepOutcome.OK if verified else views.StepOutcome.FAILED
    steps = tuple(views.RollbackStep(w, outcome, verified) for w in words)
    by = named(names, job.ended_by) if job.ended_by and job.ended_by != "gateway" else None
    return views.KillResultView(
        job_id=job.job_id,
        action=action_summary(job, names),
        trigger=job.end_reason or job.state,
        ended_at=parse_iso(job.ended_at) if job.ended_at else parse_iso(job.created_at),
        revoked=revoked,
        steps=steps if job.tokens else (),
        still_privileged=tuple(job.still_privileged),
        by=by,
    )


REPORT_ROUTE = "/v1/reports/{job_id}"  # the public, read-only HTML report of a resolved job


def report_url(public_url: str | None, job_id: str) -> str | None:
    """Where the audit summary links the report; None without a public URL."""
    if not public_url:
        return None
    return public_url.rstrip("/") + REPORT_ROUTE.format(job_id=job_id)


def audit_summary_view(
    job: Job,
    records: Sequence[ChainRecord],
    names: Mapping[str, str],
    bundle_hash: str,
    public_url: str | None = None,
) -> views.AuditSummaryView:
    ran = tuple(
        f"{line.at:%H:%M:%S} {line.summary}: {line.outcome}"
        for line in (receipt_line(r) for r in records if r.event["event_type"] == chain.TOOL_CALL)
    )
    return views.AuditSummaryView(
        job_id=job.job_id,
        action=action_summary(job, names),
        requester=named(names, job.requester.principal or job.requester.chat_identity),
        approvals=_approvals(job.plan, names),
        ran=ran,
        started_at=parse_iso(job.created_at),
        ended_at=parse_iso(job.ended_at) if job.ended_at else parse_iso(job.created_at),
        outcome=job.state,
        rollback_verified=bool(job.rollback_verified),
        bundle_hash_b64u=bundle_hash,
        bundle_file=f"{job.job_id}.bundle.json",
        report_url=report_url(public_url, job.job_id),
        activity=activity.sentence(job.activity, _elevated(job, names)),
    )


def _elevated(job: Job, names: Mapping[str, str]) -> str:
    """Who held the privilege, as the audit message names them."""
    principal = str(job.request.get("targets", {}).get("principal_id", ""))
    return target_names(job, names).get(principal, principal) or "the principal"


def announcement_view(
    job: Job, names: Mapping[str, str], detail: Mapping[str, Any]
) -> views.Announcement | None:
    """The view of an ANNOUNCE effect that has a card of its own (None: the others)."""
    event = detail.get("event")
    if event == SWEPT:
        try:
            at = parse_iso(detail.get("at"))
        except InputError:
            return None
        grant = str(detail.get("grant", ""))
        return views.SweptView(job.job_id, action_summary(job, names), grant, at)
    if event in DELAY_REASONS:
        try:
            not_before = parse_iso(detail.get("not_before"))
        except InputError:
            return None
        contained = tuple(str(tool) for tool in detail.get("contained") or ())
        deleted = event == DELAYED_DELETED
        return views.RemovalDelayedView(
            job.job_id, action_summary(job, names), not_before, contained, deleted
        )
    if event in (END_WRITE_FAILED, END_EXECUTOR_FAILED):
        said = str(detail.get("detail", ""))
        return views.EndedEarlyView(job.job_id, action_summary(job, names), str(event), said)
    return None


def announcement_key(detail: Mapping[str, Any]) -> str:
    """Names one announcement, so a re-delivered event posts nothing twice (the event tells
    a delayed removal from a deleted principal's wait for the same moment)."""
    when = detail.get("not_before") or detail.get("at") or ""  # "at": a sweep's removal
    return f"announce:{detail.get('event', '')}:{when}"
