"""Sample views of every moment: the inputs of the golden files and the contract test."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from cards import slack, teams, views


def b64u_sha256(data: bytes) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


JOB = "bg-20251125-7f3a"
PLAN = b64u_sha256(b"plan")
POLICY = b64u_sha256(b"policy")
HEAD = b64u_sha256(b"chain head")
BUNDLE = b64u_sha256(b"bundle")
T0 = datetime(2025, 11, 25, 17, 30, tzinfo=UTC)
NOW = T0 + timedelta(minutes=17, seconds=30)

TENANT = views.Named("Contoso", "9c0f3b7e-1d2a-4b8e-9f10-2a3b4c5d6e7f")
ALICE = views.Named("Alice Example", "0b1c2d3e-aaaa-4bbb-8ccc-111111111111")
BOB = views.Named("Bob Requester", "0b1c2d3e-bbbb-4bbb-8ccc-222222222222")
CAROL = views.Named("Carol Approver", "0b1c2d3e-cccc-4bbb-8ccc-333333333333")
DAVE = views.Named("Dave Approver", "0b1c2d3e-dddd-4bbb-8ccc-444444444444")
ROLE = views.Named("Exchange Administrator", "29232cdf-9323-42fd-ade2-1d097af3e4de")
GROUP = views.Named("BG Exclusion 01", "5e6f7a8b-0000-4c1d-9e2f-555555555555")
POLICY_CA = views.Named("Require MFA for admins", "7a8b9c0d-0000-4e1f-8a2b-666666666666")

ROLE_ACTION = views.ActionSummary(views.Template.ENTRA_ROLE, TENANT, ALICE, ROLE, 30)
CA_ACTION = views.ActionSummary(
    views.Template.CA_EXCLUSION, TENANT, GROUP, POLICY_CA, 45, simulated=True
)
ROLLBACK = (
    "Remove the Exchange Administrator assignment this job created (PIM adminRemove).",
    "Read the role's assignments until Alice Example no longer holds it.",
    "Check that no other principal gained the role during the window.",
)
TEAMS_APPROVERS = ("29:1carol-teams-id", "29:1dave-teams-id")


def approval(action: views.ActionSummary = ROLE_ACTION, **over: Any) -> views.ApprovalView:
    fields: dict[str, Any] = {
        "job_id": JOB,
        "plan_hash_b64u": PLAN,
        "policy_hash_b64u": POLICY,
        "action": action,
        "ends_at": T0 + timedelta(minutes=action.duration_minutes + 10),
        "justification": "INC-4711: mailbox rules hijacked; need Exchange admin to purge them.",
        "ticket": "INC-4711",
        "requester": BOB,
        "rollback": ROLLBACK,
        "approvals": (views.Approval(CAROL, T0 + timedelta(minutes=2)),),
        "approver_teams_ids": TEAMS_APPROVERS,
    }
    fields.update(over)
    return views.ApprovalView(**fields)


def approval_result(
    decision: views.Decision = views.Decision.APPROVE, count: int = 1
) -> views.ApprovalResultView:
    reason = "Not enough detail in the ticket." if decision is views.Decision.DENY else ""
    return views.ApprovalResultView(
        JOB, PLAN, ROLE_ACTION, decision, CAROL, T0, count, reason=reason
    )


def status(active: bool = True, action: views.ActionSummary = ROLE_ACTION) -> views.StatusView:
    call = views.ToolCall("breakglass.microsoft_graph.write_role_assignment", "success", T0)
    state = "running" if active else "closed"
    ends = T0 + timedelta(minutes=30)
    return views.StatusView(JOB, PLAN, action, state, ends, active, call)


def receipt(**over: Any) -> views.ReceiptLineView:
    fields: dict[str, Any] = {
        "job_id": JOB,
        "seq": 7,
        "at": T0 + timedelta(seconds=42),
        "kind": "tool_call",
        "summary": "breakglass.microsoft_graph.write_role_assignment",
        "outcome": "success",
        "chain_head_b64u": HEAD,
    }
    fields.update(over)
    return views.ReceiptLineView(**fields)


def receipts(count: int = 30) -> list[views.ReceiptLineView]:
    """A burst of ``count`` records, as one receipts event carries them."""
    return [receipt(seq=seq, at=T0 + timedelta(seconds=seq)) for seq in range(3, 3 + count)]


REVOKE_SESSIONS = "breakglass.microsoft_graph.revoke_sign_in_sessions"


def removal_delayed(contained: tuple[str, ...] = (REVOKE_SESSIONS,)) -> views.RemovalDelayedView:
    not_before = T0 + timedelta(minutes=5, seconds=20)  # shown as 17:36: never too early
    return views.RemovalDelayedView(JOB, ROLE_ACTION, not_before, contained)


def ended_early(reason: str = "write_failed") -> views.EndedEarlyView:
    detail = "Graph 400 ActiveDurationTooShort: the active duration is too short"
    return views.EndedEarlyView(JOB, ROLE_ACTION, reason, detail)


def kill_result(failed: bool = False) -> views.KillResultView:
    steps = (
        views.RollbackStep(
            "Remove the Exchange Administrator assignment", views.StepOutcome.OK, True
        ),
        views.RollbackStep("Revoke Alice Example's sign-in sessions", views.StepOutcome.OK, True),
    )
    still: tuple[str, ...] = ()
    if failed:
        detail = "Graph 503 ServiceUnavailable after 5 tries"
        steps = (
            views.RollbackStep(steps[0].description, views.StepOutcome.FAILED, False, detail),
            steps[1],
        )
        still = ("Alice Example still holds Exchange Administrator in Contoso",)
    return views.KillResultView(
        job_id=JOB,
        action=ROLE_ACTION,
        trigger="kill",
        ended_at=T0 + timedelta(minutes=12),
        revoked=("agent token (jti 2f1c…)", "executor halted"),
        steps=steps,
        still_privileged=still,
        by=DAVE,
    )


def audit_summary(verified: bool = True) -> views.AuditSummaryView:
    return views.AuditSummaryView(
        job_id=JOB,
        action=ROLE_ACTION,
        requester=BOB,
        approvals=(views.Approval(CAROL, T0), views.Approval(DAVE, T0 + timedelta(minutes=1))),
        ran=(
            "17:31:10 UTC breakglass.microsoft_graph.write_role_assignment → success",
            "17:31:12 UTC breakglass.microsoft_graph.read_role_assignment → verified present",
            "17:42:00 UTC breakglass.rollback.remove_role_assignment → success",
        ),
        started_at=T0,
        ended_at=T0 + timedelta(minutes=12),
        outcome="killed, rolled back",
        rollback_verified=verified,
        bundle_hash_b64u=BUNDLE,
    )


def request_form(prefilled: bool = False) -> views.RequestFormView:
    if not prefilled:
        return views.RequestFormView(max_duration_minutes=60, context="C0123ABC")
    values = views.RequestValues(
        views.Template.ENTRA_ROLE,
        "alice@contoso.example",
        ROLE.display_name,
        30,
        "INC-4711: purge hijacked mailbox rules",
        "INC-4711",
    )
    error = "Duration above the template maximum of 60 minutes."
    return views.RequestFormView(
        max_duration_minutes=60, values=values, error=error, context="C0123ABC"
    )


Render = Callable[[], dict[str, Any]]

# The moments both platforms show alike: name -> (kind of view, the view); each platform draws
# a kind with its own function.
_SHARED: dict[str, tuple[str, Callable[[], Any]]] = {
    "approval_result_approved": ("approval_result", approval_result),
    "approval_result_complete": ("approval_result", lambda: approval_result(count=2)),
    "approval_result_denied": ("approval_result", lambda: approval_result(views.Decision.DENY)),
    "status_active": ("status", status),
    "status_closed": ("status", lambda: status(active=False)),
    "status_simulated": ("status", lambda: status(action=CA_ACTION)),
    "receipt": ("receipt", receipt),
    "receipts_burst": ("receipts", receipts),
    "removal_delayed": ("announcement", removal_delayed),
    "removal_delayed_uncontained": ("announcement", lambda: removal_delayed(())),
    "write_failed": ("announcement", ended_early),
    "executor_failed": ("announcement", lambda: ended_early("executor_failed")),
    "kill_result": ("kill_result", kill_result),
    "kill_result_failed": ("kill_result", lambda: kill_result(failed=True)),
    "audit_summary": ("audit_summary", audit_summary),
    "audit_summary_unverified": ("audit_summary", lambda: audit_summary(verified=False)),
}


def _drawn(draw: Callable[[Any], dict[str, Any]], view: Callable[[], Any]) -> Render:
    return lambda: draw(view())


def _drawn_by(draw: dict[str, Callable[[Any], dict[str, Any]]]) -> dict[str, Render]:
    return {name: _drawn(draw[kind], view) for name, (kind, view) in _SHARED.items()}


def walk(node: Any) -> Iterator[dict[str, Any]]:
    """Every JSON object in a rendered card or message, depth first."""
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from walk(value)


# name -> renderer; every golden file and every contract check iterates this one table.
TEAMS: dict[str, Render] = {
    "request_form": lambda: teams.request_form_card(request_form()),
    "request_form_prefilled": lambda: teams.request_form_card(request_form(prefilled=True)),
    "approval_approver": lambda: teams.approval_card(approval(), for_approver=True),
    "approval_read_only": lambda: teams.approval_card(approval(), for_approver=False),
    "approval_withdraw": lambda: teams.approval_card(
        approval(), for_approver=True, viewer_approved=True
    ),
    "approval_simulated_ca": lambda: teams.approval_card(approval(CA_ACTION), for_approver=True),
    **_drawn_by(
        {
            "approval_result": teams.moment.approval_result,
            "status": lambda view: teams.moment.status(view, NOW),
            "receipt": teams.receipt_card,
            "receipts": teams.receipts_card,
            "announcement": teams.moment.announcement,
            "kill_result": teams.moment.kill_result,
            "audit_summary": teams.moment.audit_summary,
        }
    ),
}
SLACK: dict[str, Render] = {
    "request_form": lambda: slack.request_modal(request_form()),
    "request_form_prefilled": lambda: slack.request_modal(request_form(prefilled=True)),
    "approval": lambda: slack.approval_message(approval()),
    "approval_first": lambda: slack.approval_message(approval(approvals=())),
    "approval_simulated_ca": lambda: slack.approval_message(approval(CA_ACTION)),
    **_drawn_by(
        {
            "approval_result": slack.moment.approval_result,
            "status": lambda view: slack.moment.status(view, NOW),
            "receipt": slack.receipt_message,
            "receipts": slack.receipts_message,
            "announcement": slack.moment.announcement,
            "kill_result": slack.moment.kill_result,
            "audit_summary": slack.moment.audit_summary,
        }
    ),
}
